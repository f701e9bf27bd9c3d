"""Simulated spectra as HyperSpy EELS signals, with their truth in the metadata."""

from __future__ import annotations

import numpy as np

__all__ = ["eels_signal", "to_signal"]


def eels_signal(
    spectra: np.ndarray,
    energy: np.ndarray,
    navigation_shape: tuple[int, ...] | None = None,
    title: str = "Simulated spectra",
    dispersion_eV: float | None = None,
):
    """Spectra on a uniform energy axis as a plain exspy ``EELSSpectrum``.

    A light wrapper (no truth in the metadata, unlike :func:`to_signal`) for spectra
    handed straight to exspy, such as a simulated low loss.

    Parameters
    ----------
    spectra : numpy.ndarray
        ``(n, k)`` spectra.
    energy : numpy.ndarray
        ``(k,)`` uniform energy axis in eV.
    navigation_shape : tuple of int, optional
        Numpy-order navigation shape; default ``(n,)``.
    title : str
        The signal's title.
    dispersion_eV : float, optional
        Energy per channel, where it is known exactly (default ``energy[1] - energy[0]``).

    Returns
    -------
    exspy.signals.EELSSpectrum
    """
    import exspy

    shape = (spectra.shape[0],) if navigation_shape is None else tuple(navigation_shape)
    sig = exspy.signals.EELSSpectrum(spectra.reshape(shape + (-1,)))
    ax = sig.axes_manager.signal_axes[0]
    if dispersion_eV is not None:
        scale = float(dispersion_eV)
    else:
        scale = float(energy[1] - energy[0]) if energy.size > 1 else 1.0
    ax.offset, ax.scale, ax.units = float(energy[0]), scale, "eV"
    sig.metadata.General.title = title
    return sig


def to_signal(
    acq,
    navigation_shape: tuple[int, ...] | None = None,
    *,
    lazy: bool = False,
    pixel_size_nm: float = 1.0,
    title: str = "Simulated Mn L2,3 acquisition",
):
    """An :class:`~hyperspy_mnvalence.simulations.Acquisition` as an EELS signal.

    Parameters
    ----------
    acq : Acquisition
        Spectra, energy axis and truth.
    navigation_shape : tuple of int, optional
        Numpy-order navigation shape; default ``(n,)`` (none for one spectrum).
    lazy : bool
        Return a lazy (dask) signal.
    pixel_size_nm : float
        Scale of the navigation axes.
    title : str
        ``metadata.General.title``.

    Returns
    -------
    MnValenceEELSSpectrum
        ``signal_type`` ``"EELS_MnValence"``; the per-spectrum truth arrays, reshaped to
        the navigation shape, in ``metadata.Sample.simulation`` and the valence in
        ``metadata.Sample.mn_valence_truth`` (0 where no edge).
    """
    import exspy

    n, m = acq.spectra.shape
    if navigation_shape is None:
        navigation_shape = () if n == 1 else (n,)
    navigation_shape = tuple(int(k) for k in navigation_shape)
    if int(np.prod(navigation_shape, dtype=np.int64)) != n:
        raise ValueError(f"navigation_shape {navigation_shape} does not hold {n} spectra.")
    s = exspy.signals.EELSSpectrum(acq.spectra.reshape(navigation_shape + (m,)))
    names = ("x", "y", "z")
    for ax, name in zip(s.axes_manager.navigation_axes, names, strict=False):
        ax.name, ax.units, ax.scale, ax.offset = name, "nm", pixel_size_nm, 0.0
    ax_e = s.axes_manager.signal_axes[0]
    d = float(acq.truth.get("dispersion_eV", acq.energy[1] - acq.energy[0]))
    ax_e.name, ax_e.units, ax_e.scale, ax_e.offset = "Energy loss", "eV", d, float(acq.energy[0])
    s.metadata.General.title = title
    s.set_microscope_parameters(beam_energy=200.0, convergence_angle=20.0, collection_angle=30.0)
    s.metadata.set_item("Sample.elements", ["Mn", "O"])
    sim = {}
    for k, v in acq.truth.items():
        if isinstance(v, list | str | bool):
            if isinstance(v, list):
                continue  # ragged (spike channels per spectrum): see n_spikes
            sim[k] = v
            continue
        a = np.asarray(v)
        if a.ndim == 0:
            sim[k] = a.item()  # HDF5 keeps 0-d values as attributes, not datasets
        elif a.shape[0] == n and n > 1:
            sim[k] = a.reshape(navigation_shape + a.shape[1:])
        elif a.shape[0] == n:
            sim[k] = a[0] if a.ndim > 1 else a[0].item()
        else:
            sim[k] = a
    s.metadata.set_item("Sample.simulation", sim)
    s.metadata.set_item("Sample.mn_valence_truth", sim["valence"])
    try:
        s.set_signal_type("EELS_MnValence")
    except Exception:  # the signal class may not be registered (yet)
        s.metadata.Signal.signal_type = "EELS_MnValence"
    return s.as_lazy() if lazy else s
