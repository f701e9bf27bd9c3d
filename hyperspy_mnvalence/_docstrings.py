"""Parameter descriptions shared by the public functions, each written once.

A docstring holds ``{signal_parameters}`` (indented like the other entries) where
these go; :func:`share_parameters` fills it in.
"""

from __future__ import annotations

import textwrap

__all__ = ["RUN_PARAMETERS", "SIGNAL_PARAMETERS", "share_parameters"]

#: The input and the preprocessing settings of classify_mn_valence and
#: decompose_mn_valence (numpydoc entries, no indentation).
SIGNAL_PARAMETERS = """\
s : exspy.signals.EELSSpectrum
    Any EELS signal (single spectrum, line scan, map or stack; eager or lazy). It
    is never modified.
energy_window : tuple of float, optional
    Energies ``(lo, hi)`` in eV between which to look for the L3 edge; default is
    the model's search range (nominal 640 eV +-15 eV, and more).
background : {"auto", "power_law", "constant", "none"} or bool
    Pre-edge background subtraction; ``"none"`` (or False) for spectra that are
    already background-subtracted. ``"auto"`` fits a power law where the pre-edge
    is positive and long enough, else subtracts a constant.
background_window : tuple of float, optional
    Fixed absolute pre-edge fit window ``(start, stop)`` in eV; by default it is
    placed before each spectrum's own L3 onset."""

#: The run settings shared by the same two functions.
RUN_PARAMETERS = """\
batch_size : int
    Spectra per preprocessing/inference batch.
min_snr : float
    Minimum L3 height over the noise of the smoothed spectrum for a pixel to count
    as having a Mn edge; the default, 7.0 (scaled to 8 from 0.75 eV per channel on),
    is calibrated on simulated negatives (see the user guide, "What the no-edge flag
    guarantees").
show_progressbar : bool, optional
    Default: HyperSpy's ``preferences.General.show_progressbar``.
lazy_output : bool, optional
    Default: lazy if ``s`` is lazy.
remove_spikes : bool
    Replace cosmic-ray spikes and hot channels before anything else (conservative:
    edges are never touched); the count per pixel is in
    ``metadata.MnValence.n_spikes``."""


def share_parameters(func):
    """Fill ``{signal_parameters}`` and ``{run_parameters}`` in ``func``'s docstring.

    Each placeholder stands alone on its line; the entries take its indentation.
    """
    doc = func.__doc__ or ""
    for key, text in (("signal_parameters", SIGNAL_PARAMETERS), ("run_parameters", RUN_PARAMETERS)):
        marker = "{" + key + "}"
        for line in doc.splitlines():
            if line.strip() == marker:
                indent = line[: len(line) - len(line.lstrip())]
                doc = doc.replace(line, textwrap.indent(text, indent))
                break
    func.__doc__ = doc
    return func
