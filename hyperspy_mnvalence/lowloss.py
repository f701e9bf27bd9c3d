"""Plural scattering: Fourier-ratio deconvolution of the core loss with its low loss.

Thick samples (t/lambda of about 1 and more) add plasmon replicas of the L3 and L2
lines to the spectrum and change the edge shape the network reads. With the low-loss
spectrum image of the same area, :func:`deconvolve_plural_scattering` removes them
through exspy's ``fourier_ratio_deconvolution`` (the tool EELS users know) and measures
t/lambda with exspy's ``estimate_elastic_scattering_threshold`` and
``estimate_thickness``. It is what ``classify_mn_valence(s, low_loss=ll)`` and
``decompose_mn_valence(s, low_loss=ll)`` run first.

The background is removed before the deconvolution (exspy's method expects it: a raw
core loss begins on a high background whose periodic jump would ring across the edge as
plasmon replicas), with the preprocessing's own pre-edge fit before each spectrum's L3
peak. Real files are handled as they come: a core-loss extrapolation that fails in exspy
(a ``TypeError`` has been seen on real data) is retried without it; blank low-loss
pixels (all zero, or not finite) leave their edge undeconvolved (their t/lambda is
NaN); NaN channels count as zero; a low loss whose navigation shape differs from the
core loss's is refused with one error that says what to do. A lazy core loss is
deconvolved block by block (the low loss, lazy or not, cut into the same navigation
blocks): the result and the t/lambda map are lazy too.
"""

from __future__ import annotations

import logging

import numpy as np

from .preprocessing import isolate_edge

__all__ = ["deconvolve_plural_scattering"]

_logger = logging.getLogger(__name__)


def _as_eels(signal, what: str):
    from exspy.signals import EELSSpectrum

    if not hasattr(signal, "axes_manager") or signal.axes_manager.signal_dimension != 1:
        raise TypeError(
            f"The {what} must be a one-dimensional EELS signal (exspy EELSSpectrum, e.g. "
            f"hs.load(file, signal_type='EELS')), got {type(signal).__name__}."
        )
    if isinstance(signal, EELSSpectrum):
        return signal.deepcopy()
    out = signal.deepcopy()
    out.set_signal_type("EELS")
    return out


def _nav_shape(signal) -> tuple[int, ...]:
    return tuple(signal.data.shape[:-1])


def _check_pair(core, ll) -> None:
    """One error for a low loss that does not belong to the core loss."""
    if _nav_shape(ll) != _nav_shape(core):
        raise ValueError(
            f"The low loss has navigation shape {_nav_shape(ll) or '(one spectrum)'} but the "
            f"core loss {_nav_shape(core) or '(one spectrum)'}: pass the low-loss spectrum "
            "image recorded with this core loss (the same scan), binned or cropped to the "
            "same pixels."
        )
    c_ax, l_ax = core.axes_manager.signal_axes[0], ll.axes_manager.signal_axes[0]
    if not np.isclose(c_ax.scale, l_ax.scale, rtol=1e-3):
        raise ValueError(
            f"The low loss has {l_ax.scale:g} eV per channel but the core loss "
            f"{c_ax.scale:g}; Fourier-ratio deconvolution needs the same dispersion "
            "(rebin one of them)."
        )


def _spectra(data: np.ndarray, axis: dict):
    """An EELSSpectrum of ``data`` with the energy axis ``axis`` (offset, scale, units)."""
    from exspy.signals import EELSSpectrum

    sig = EELSSpectrum(data)
    ax = sig.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = axis["offset"], axis["scale"], axis["units"]
    return sig


def _axis(sig) -> dict:
    ax = sig.axes_manager.signal_axes[0]
    return {"offset": float(ax.offset), "scale": float(ax.scale), "units": ax.units}


def _deconvolve_block(core: np.ndarray, low: np.ndarray, c_axis: dict, l_axis: dict) -> np.ndarray:
    """One navigation block of a lazy core loss, deconvolved with its low loss."""
    c = np.asarray(core).reshape(-1, core.shape[-1])
    flat = np.nan_to_num(np.asarray(low, dtype=np.float64)).reshape(-1, low.shape[-1])
    if not (flat.sum(axis=1) > 0).any():  # a block of blank low loss: as blank pixels
        e = c_axis["offset"] + c_axis["scale"] * np.arange(c.shape[-1])
        return isolate_edge(np.nan_to_num(c.astype(np.float64)), e).reshape(core.shape)
    out, _ = deconvolve_plural_scattering(_spectra(c, c_axis), _spectra(flat, l_axis))
    return np.asarray(out.data, dtype=np.float64).reshape(core.shape)


def _thickness_block(low: np.ndarray, l_axis: dict) -> np.ndarray:
    """t/lambda of one navigation block of a low loss (NaN where blank)."""
    flat = np.nan_to_num(np.asarray(low, dtype=np.float64)).reshape(-1, low.shape[-1])
    blank = ~(flat.sum(axis=1) > 0)
    t = np.full(flat.shape[0], np.nan)
    if not blank.all():
        ll = _spectra(flat[~blank], l_axis)
        tl = ll.estimate_thickness(threshold=ll.estimate_elastic_scattering_threshold())
        t[~blank] = np.asarray(tl.data, dtype=np.float64).reshape(-1)
    return t.reshape(low.shape[:-1])


def _deconvolve_lazy(s, low_loss):
    """:func:`deconvolve_plural_scattering` of a lazy core loss, block by block."""
    import dask.array as da
    from hyperspy.signal import BaseSignal

    core = _as_eels(s, "core loss")
    ll = _as_eels(low_loss, "low loss")
    _check_pair(core, ll)
    nav = core.data.ndim - 1
    cdata = core.data.rechunk({nav: -1})
    ldata = ll.data if ll._lazy else da.from_array(np.asarray(ll.data), chunks=-1)
    ldata = ldata.rechunk(cdata.chunks[:-1] + (-1,))
    c_axis, l_axis = _axis(core), _axis(ll)
    out = da.map_blocks(
        _deconvolve_block, cdata, ldata, c_axis, l_axis, dtype=np.float64, chunks=cdata.chunks
    )
    t = da.map_blocks(_thickness_block, ldata, l_axis, dtype=np.float64, drop_axis=nav)
    tl = BaseSignal(t).as_lazy()
    tl.metadata.General.title = "t/lambda"
    return core._deepcopy_with_new_data(out), tl


def deconvolve_plural_scattering(s, low_loss):
    """Core loss without plural scattering, and the t/lambda map.

    Parameters
    ----------
    s : exspy.signals.EELSSpectrum
        The core-loss spectrum image (not modified).
    low_loss : exspy.signals.EELSSpectrum
        The low loss of the same pixels (zero-loss peak and plasmons, the same
        navigation shape, or a single spectrum for a single core-loss spectrum), at the
        core loss's dispersion.

    Returns
    -------
    deconvolved : exspy.signals.EELSSpectrum
        Lazy when ``s`` is (deconvolved block by block when computed). The
        single-scattering edge (same navigation and energy axes as ``s``), its
        pre-edge power-law background removed first as Fourier-ratio deconvolution
        needs (:func:`~hyperspy_mnvalence.preprocessing.isolate_edge`; zero below the
        fit window). Blank low-loss pixels keep that background-free edge as it is.
    t_over_lambda : hyperspy.signal.BaseSignal
        Relative thickness per pixel (NaN where the low loss is blank).

    Raises
    ------
    ValueError
        If the navigation shapes differ, or no low-loss pixel holds counts.

    Examples
    --------
    >>> from hyperspy_mnvalence.simulations import simulate_acquisition
    >>> from hyperspy_mnvalence.simulations.lowloss import simulate_low_loss
    >>> core = simulate_acquisition(4, valence=4, t_over_lambda=1.5, rng=0).to_signal()
    >>> ll = simulate_low_loss(4, t_over_lambda=1.5, rng=1)
    >>> import exspy
    >>> L = exspy.signals.EELSSpectrum(ll.spectra)
    >>> ax = L.axes_manager.signal_axes[0]
    >>> ax.offset, ax.scale, ax.units = float(ll.energy[0]), 0.25, "eV"
    >>> d, tl = deconvolve_plural_scattering(core, L)
    >>> bool(abs(float(tl.data.mean()) - 1.5) < 0.1)
    True
    """
    if s._lazy:
        return _deconvolve_lazy(s, low_loss)
    core = _as_eels(s, "core loss")
    ll = _as_eels(low_loss, "low loss")
    if ll._lazy:
        ll.compute()
    _check_pair(core, ll)
    c_ax = core.axes_manager.signal_axes[0]
    data = np.nan_to_num(np.asarray(ll.data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    flat = data.reshape(-1, data.shape[-1])
    blank = ~(flat.sum(axis=1) > 0)
    if blank.all():
        raise ValueError("The low loss holds no counts in any pixel; check the file.")
    if blank.any():
        # exspy cannot deconvolve with an empty low loss: give those pixels a valid one
        # and put their core loss back afterwards
        flat[blank] = flat[np.nonzero(~blank)[0][0]]
        _logger.info("%d blank low-loss pixels: core loss left as it is", int(blank.sum()))
    ll.data = data.astype(np.float32) if ll.data.dtype == np.float32 else data
    # exspy's Fourier ratio needs the background removed: a raw core loss starts on a
    # high background, whose periodic jump rings as plasmon replicas over the edge
    e = np.asarray(c_ax.axis, dtype=np.float64)
    raw = np.nan_to_num(np.asarray(core.data, dtype=np.float64))
    core.data = isolate_edge(raw.reshape(-1, e.size), e).reshape(raw.shape)
    try:
        out = core.fourier_ratio_deconvolution(ll, extrapolate_coreloss=True)
    except (TypeError, ValueError, IndexError) as exc:
        _logger.info(
            "fourier_ratio_deconvolution with core-loss extrapolation failed (%s: %s); without it",
            type(exc).__name__,
            exc,
        )
        out = core.fourier_ratio_deconvolution(ll, extrapolate_coreloss=False)
    if out.data.shape != core.data.shape:  # keep the core loss's axes
        out = out.isig[c_ax.offset : c_ax.offset + c_ax.scale * c_ax.size]
    if blank.any():
        o = out.data.reshape(-1, out.data.shape[-1])
        o[blank] = core.data.reshape(-1, core.data.shape[-1])[blank]
    threshold = ll.estimate_elastic_scattering_threshold()
    tl = ll.estimate_thickness(threshold=threshold)
    t = np.asarray(tl.data, dtype=np.float64).reshape(-1)
    t[blank] = np.nan
    tl.data = t.reshape(tl.data.shape)
    tl.metadata.General.title = "t/lambda"
    _logger.debug("deconvolved %d spectra; median t/lambda %.3g", flat.shape[0], np.nanmedian(t))
    return out, tl
