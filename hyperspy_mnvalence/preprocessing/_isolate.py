"""The edge alone on the spectrum's own axis: what a Fourier-ratio deconvolution needs.

Fourier-ratio deconvolution divides the core loss by the low loss in Fourier space, which
treats the spectrum as periodic. A raw core loss begins on a high background: the jump
from its end back to its start, divided by the low loss, rings as alternating plasmon
replicas of that background (their weights reach ``exp(t/lambda)``) across the whole
window, the edge included. exspy's ``fourier_ratio_deconvolution`` therefore expects the
background removed. :func:`isolate_edge` does that with the same pre-edge power-law fit as
the preprocessing, placed before each spectrum's own L3 peak (any calibration), and sets
the channels below the fit window to zero.
"""

from __future__ import annotations

import numpy as np

from ._background import subtract_background
from ._l3 import locate_l3
from ._params import DEFAULT_PREPROCESSING, pre_edge_margin

__all__ = ["isolate_edge"]


def isolate_edge(
    spectra: np.ndarray,
    energy: np.ndarray,
    search_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Spectra with their pre-edge power-law background removed, zero below its window.

    Parameters
    ----------
    spectra : numpy.ndarray
        Raw spectra, shape ``(n, m)``, on a uniform energy axis.
    energy : numpy.ndarray
        Energies in eV, shape ``(m,)``, increasing.
    search_range : tuple of float, optional
        Where to look for the L3 peak (default: the preprocessing's search range).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n, m)``: the edge above the fitted background, 0 below the
        fit window (a row without finite values is returned as zeros).

    Examples
    --------
    >>> from hyperspy_mnvalence.simulations import simulate_acquisition
    >>> from hyperspy_mnvalence.preprocessing import isolate_edge
    >>> acq = simulate_acquisition(2, valence=3, l3_over_background=0.2, poisson=False, rng=0)
    >>> edge = isolate_edge(acq.spectra, acq.energy)
    >>> bool(abs(edge[:, :40]).max() == 0 and edge.max() > 0.15 * acq.spectra.max())
    True
    """
    y = np.nan_to_num(np.atleast_2d(np.asarray(spectra, dtype=np.float64)))
    e = np.asarray(energy, dtype=np.float64)
    search = tuple(search_range or DEFAULT_PREPROCESSING["search_range_eV"])
    peak = locate_l3(y, e, search)
    out = subtract_background(y, e, peak)
    step = float(e[1] - e[0])
    start = peak - int(round(pre_edge_margin(DEFAULT_PREPROCESSING) / step))
    out[np.arange(y.shape[1])[None, :] < start[:, None]] = 0.0
    return out
