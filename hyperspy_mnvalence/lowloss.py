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
peak. exspy's ``fourier_ratio_deconvolution`` takes some settings from all the pixels it
is given at once (the elastic threshold's tolerance, the FWHM of the zero loss of the
first pixel, power-law extrapolations whose fit fails for all pixels when it fails for
one: a ``TypeError`` on real data); here they are fixed once for the whole map and the
extrapolations are not used, so every pixel's result depends on its own spectra only
and a lazy map deconvolved block by block equals the eager one. Real files are handled
as they come: cosmic-ray spikes are replaced first (a spike taken for L3 would misplace
the background fit); pixels where exspy finds no elastic threshold take the map's
median; blank low-loss
pixels (all zero, or not finite) leave their edge undeconvolved (their t/lambda is
NaN); NaN channels count as zero; a low loss whose navigation shape differs from the
core loss's is refused with one error that says what to do. A lazy core loss is
deconvolved block by block (the low loss, lazy or not, cut into the same navigation
blocks): the result and the t/lambda map are lazy too.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import numpy as np

from .decisions import remove_spikes as _remove_spikes
from .preprocessing import isolate_edge

__all__ = ["deconvolve_plural_scattering"]

_logger = logging.getLogger(__name__)


_QUIET_LOCK = threading.Lock()
_QUIET_STATE = {"depth": 0, "shown": None}


@contextlib.contextmanager
def _quiet():
    """exspy's own progress bars off (its per-pixel steps are one step here), restored after.

    HyperSpy's preference is global and blocks of a lazy map run in threads: the first
    to enter saves it and the last to leave restores it.
    """
    from hyperspy.defaults_parser import preferences

    with _QUIET_LOCK:
        if _QUIET_STATE["depth"] == 0:
            _QUIET_STATE["shown"] = preferences.General.show_progressbar
            preferences.General.show_progressbar = False
        _QUIET_STATE["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_STATE["depth"] -= 1
            if _QUIET_STATE["depth"] == 0:
                preferences.General.show_progressbar = _QUIET_STATE["shown"]


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
    e = np.asarray(l_ax.axis, dtype=np.float64)
    if not (e.size and e.min() <= 0.0 <= e.max()):
        raise ValueError(
            f"The low loss's energy axis runs from {e.min():g} to {e.max():g} eV and so "
            "holds no zero-loss peak (0 eV): pass the low-loss spectrum image recorded with "
            "this core loss, zero-loss peak included (it is what the deconvolution divides "
            "by), calibrated so that the peak sits at 0 eV."
        )
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


def _clean(data):
    """Float64 counts with NaN and infinities set to zero (numpy or dask)."""
    if hasattr(data, "dask"):
        return data.astype(np.float64).map_blocks(np.nan_to_num, nan=0.0, posinf=0.0, neginf=0.0)
    return np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _map_settings(ll) -> tuple[np.ndarray, np.ndarray, float]:
    """What the deconvolution of every pixel shares, taken from the whole low loss.

    exspy derives two settings from all the pixels it is given: the elastic threshold's
    tolerance (the largest of the pixels' smallest slopes) and the FWHM of the Gaussian
    the result is convolved with (the current pixel's zero-loss peak). Taken once from
    the whole map and passed to every block, each pixel's result depends only on its
    own spectra, so a lazy map, deconvolved block by block, equals the eager one.

    Returns
    -------
    threshold : numpy.ndarray
        Elastic threshold per pixel (eV), navigation shape; where exspy finds none, the
        map's median (or five zero-loss widths); NaN only for blank pixels.
    blank : numpy.ndarray
        Pixels whose low loss holds no counts.
    fwhm : float
        Zero-loss FWHM of the first pixel with counts (eV).
    """
    data = _clean(ll.data)
    sums = data.sum(axis=-1)
    blank = ~(np.asarray(sums.compute() if hasattr(sums, "dask") else sums) > 0)
    if blank.all():
        raise ValueError("The low loss holds no counts in any pixel; check the file.")
    clean = ll._deepcopy_with_new_data(data)
    th = clean.estimate_elastic_scattering_threshold()
    threshold = np.asarray(th.data, dtype=np.float64).reshape(blank.shape)
    first = np.unravel_index(int(np.argmax(~blank.ravel())), blank.shape)
    one = _spectra(np.asarray(clean.data[first], dtype=np.float64), _axis(ll))
    fwhm = float(np.asarray(one.estimate_peak_width().data).ravel()[0])
    # exspy gives NaN where it finds no inflexion (a thin pixel: nothing but the zero
    # loss); such a pixel would be lost: use the map's median threshold, or, where no
    # pixel has one, five zero-loss widths (past the zero loss, before any plasmon)
    lost = np.isnan(threshold) & ~blank
    if lost.any():
        found = threshold[np.isfinite(threshold)]
        threshold[lost] = np.median(found) if found.size else max(5.0 * fwhm, 1.0)
        _logger.info("%d pixels without an elastic threshold: the map's used", int(lost.sum()))
    return threshold, blank, fwhm


def _despiked(core: np.ndarray, e: np.ndarray, spikes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``core`` with their spikes replaced (pixel by pixel: no hot-channel test
    across pixels, which would make a pixel depend on its block), and the counts."""
    c = _clean(core).reshape(-1, core.shape[-1])
    if not spikes or c.shape[0] == 0:
        return c, np.zeros(c.shape[0], dtype=np.int32)
    out, counts = _remove_spikes(c, e, hot_channels=False)
    return out.astype(np.float64, copy=False), counts.astype(np.int32)


def _spike_block(core: np.ndarray, c_axis: dict) -> np.ndarray:
    """Spikes replaced per pixel of a block of a lazy core loss."""
    e = c_axis["offset"] + c_axis["scale"] * np.arange(core.shape[-1])
    return _despiked(core, e, True)[1].reshape(core.shape[:-1])


def _deconvolve_block(*args, **kwargs) -> np.ndarray:
    """:func:`_deconvolve_rows` without the spike counts (a lazy map's block function)."""
    with _quiet():
        return _deconvolve_rows(*args, **kwargs)[0]


def _deconvolve_rows(
    core: np.ndarray,
    low: np.ndarray,
    threshold: np.ndarray,
    c_axis: dict,
    l_axis: dict,
    fwhm: float,
    spikes: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Deconvolve a block of pixels (the whole map, or one navigation block of a lazy one).

    The background-free edge (:func:`~hyperspy_mnvalence.preprocessing.isolate_edge`)
    is deconvolved with exspy's ``fourier_ratio_deconvolution`` at the map's
    ``threshold`` and ``fwhm`` (:func:`_map_settings`), without its power-law
    extrapolations: their fit succeeds or fails for all the pixels given at once, so
    with them a pixel's result would depend on its neighbours in the block. Blank
    low-loss pixels keep the background-free edge as it is. With ``spikes``, cosmic-ray
    spikes are replaced first: a spike taken for the L3 peak would misplace the
    background fit, and the deconvolution would spread it.
    """
    from hyperspy.signal import BaseSignal

    k = core.shape[-1]
    e = c_axis["offset"] + c_axis["scale"] * np.arange(k)
    despiked, counts = _despiked(core, e, spikes)
    edge = isolate_edge(despiked, e)
    counts = counts.reshape(core.shape[:-1])
    flat = _clean(low).reshape(-1, low.shape[-1])
    th = np.array(threshold, dtype=np.float64).reshape(-1)
    blank = ~(flat.sum(axis=1) > 0)
    if blank.all():
        return edge.reshape(core.shape), counts
    if blank.any():  # exspy cannot divide by an empty low loss: lend one, undo after
        first = int(np.argmax(~blank))
        flat[blank], th[blank] = flat[first], th[first]
    out = _spectra(edge, c_axis).fourier_ratio_deconvolution(
        _spectra(flat, l_axis),
        fwhm=fwhm,
        threshold=BaseSignal(th).T,
        extrapolate_lowloss=False,
        extrapolate_coreloss=False,
    )
    o = np.asarray(out.data, dtype=np.float64).reshape(-1, out.data.shape[-1])[:, :k]
    o[blank] = edge[blank]
    return o.reshape(core.shape), counts


def _thickness_block(low: np.ndarray, threshold: np.ndarray, l_axis: dict) -> np.ndarray:
    """t/lambda of a block of low-loss pixels at the map's thresholds (NaN where blank)."""
    from hyperspy.signal import BaseSignal

    flat = _clean(low).reshape(-1, low.shape[-1])
    th = np.asarray(threshold, dtype=np.float64).reshape(-1)
    blank = ~(flat.sum(axis=1) > 0)
    t = np.full(flat.shape[0], np.nan)
    if not blank.all():
        ll = _spectra(flat[~blank], l_axis)
        with _quiet():
            tl = ll.estimate_thickness(threshold=BaseSignal(th[~blank]).T)
        t[~blank] = np.asarray(tl.data, dtype=np.float64).reshape(-1)
    return t.reshape(low.shape[:-1])


def _deconvolve_lazy(core, ll, remove_spikes: bool):
    """:func:`deconvolve_plural_scattering` of a lazy core loss, block by block."""
    import dask.array as da
    from hyperspy.signal import BaseSignal

    threshold, _, fwhm = _map_settings(ll)
    nav = core.data.ndim - 1
    cdata = core.data.rechunk({nav: -1})
    ldata = ll.data if ll._lazy else da.from_array(np.asarray(ll.data), chunks=-1)
    ldata = ldata.rechunk(cdata.chunks[:-1] + (-1,))
    tdata = da.from_array(threshold, chunks=cdata.chunks[:-1])
    c_axis, l_axis = _axis(core), _axis(ll)
    out = da.map_blocks(
        _deconvolve_block, cdata, ldata, tdata[..., None], c_axis, l_axis, fwhm,
        remove_spikes, dtype=np.float64, chunks=cdata.chunks,
    )  # fmt: skip
    t = da.map_blocks(
        _thickness_block, ldata, tdata[..., None], l_axis, dtype=np.float64, drop_axis=nav
    )
    tl = BaseSignal(t).as_lazy()
    tl.metadata.General.title = "t/lambda"
    result = core._deepcopy_with_new_data(out)
    result.metadata.set_item(FWHM_KEY, fwhm)
    if remove_spikes:
        n = da.map_blocks(_spike_block, cdata, c_axis, dtype=np.int32, drop_axis=nav)
        result.metadata.set_item(SPIKES_KEY, n)
    return result, tl


#: Where the deconvolved signal keeps the spikes replaced before the deconvolution
#: (per pixel; ``classify_mn_valence`` adds them to its ``n_spikes`` map).
SPIKES_KEY = "MnValence.spikes_before_deconvolution"
#: Where the deconvolved signal keeps the zero-loss FWHM (eV) it was deconvolved with:
#: the instrument's resolution, which ``classify_mn_valence`` checks against the model's.
FWHM_KEY = "MnValence.zero_loss_fwhm_eV"


def deconvolve_plural_scattering(s, low_loss, remove_spikes: bool = True):
    """Core loss without plural scattering, and the t/lambda map.

    Parameters
    ----------
    s : exspy.signals.EELSSpectrum
        The core-loss spectrum image (not modified).
    low_loss : exspy.signals.EELSSpectrum
        The low loss of the same pixels (zero-loss peak and plasmons, the same
        navigation shape, or a single spectrum for a single core-loss spectrum), at the
        core loss's dispersion.
    remove_spikes : bool
        Replace cosmic-ray spikes first (pixel by pixel, as
        :func:`~hyperspy_mnvalence.decisions.remove_spikes` without its hot-channel
        test); the counts per pixel are kept in the result's
        ``metadata.MnValence.spikes_before_deconvolution``.

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

    Notes
    -----
    The zero-loss FWHM (eV) of the first low-loss pixel with counts, which the result
    stays convolved with, is kept in the result's ``metadata.MnValence.zero_loss_fwhm_eV``.

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
    core = _as_eels(s, "core loss")
    ll = _as_eels(low_loss, "low loss")
    _check_pair(core, ll)
    with _quiet():
        if core._lazy:
            return _deconvolve_lazy(core, ll, bool(remove_spikes))
        return _deconvolve_eager(core, ll, bool(remove_spikes))


def _deconvolve_eager(core, ll, remove_spikes: bool):
    """:func:`deconvolve_plural_scattering` of an eager core loss, in one block."""
    if ll._lazy:
        ll.compute()
    threshold, blank, fwhm = _map_settings(ll)
    if blank.any():
        _logger.info("%d blank low-loss pixels: core loss left as it is", int(blank.sum()))
    c_axis, l_axis = _axis(core), _axis(ll)
    out, counts = _deconvolve_rows(
        core.data, ll.data, threshold, c_axis, l_axis, fwhm, bool(remove_spikes)
    )
    t = _thickness_block(ll.data, threshold, l_axis)
    tl = ll._get_navigation_signal(data=t).transpose(signal_axes=0) if t.ndim else None
    if tl is None:  # a single spectrum
        from hyperspy.signal import BaseSignal

        tl = BaseSignal(np.atleast_1d(t))
    tl.set_signal_type("")
    tl.metadata.General.title = "t/lambda"
    if _logger.isEnabledFor(logging.DEBUG) and np.isfinite(t).any():  # no all-NaN median
        _logger.debug("deconvolved %d spectra; median t/lambda %.3g", t.size, np.nanmedian(t))
    result = core._deepcopy_with_new_data(out)
    result.metadata.set_item(FWHM_KEY, fwhm)
    if remove_spikes:
        result.metadata.set_item(SPIKES_KEY, counts)
    return result, tl
