"""Maps derived from a Mn valence result, and the maps kept in its metadata.

A result of :func:`~hyperspy_mnvalence.classify_mn_valence` or
:func:`~hyperspy_mnvalence.decompose_mn_valence` holds three values per pixel (class
probabilities or fractions) on a first axis named "Mn valence", followed by the
spatial axes of the input, NaN where a pixel has no Mn L2,3 edge; its
``metadata.MnValence`` keeps the ensemble spread, the L3 peak and the reason codes
(and, for fractions, the mean oxidation state and its uncertainty) as signals of the
same layout. Everything here works on eager and lazy (dask) results alike: the maps of
a lazy result are lazy and computed when used. A derived map of one pixel (the result of
one spectrum, or of a ``(1,)`` or ``(1, 1)`` map) converts with ``float()`` and ``int()``.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np

_logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from hyperspy.signal import BaseSignal

__all__ = [
    "VALENCE_AXIS",
    "compute_result",
    "confidence",
    "mean_valence",
    "most_likely_valence",
    "no_edge_mask",
    "normalised_entropy",
    "uncertainty",
    "valence_maps",
]


def search_range(params: dict | None) -> tuple[float, float]:
    """Where the L3 edge is looked for, from a model's preprocessing parameters."""
    from .preprocessing import DEFAULT_PREPROCESSING

    lo, hi = {**DEFAULT_PREPROCESSING, **(params or {})}["search_range_eV"]
    return float(lo), float(hi)


#: Start of the warning for a result with no spectrum classified (the command line,
#: which reports that case as the input's error, does not print it again).
NOTHING_CLASSIFIED = "No spectrum was classified"


def nothing_classified(reason) -> tuple[str, set[int]] | None:
    """Why no spectrum was classified: ``("<reason>: <count>; ...", codes)``, or None
    when some spectrum was (or there is none).

    Parameters
    ----------
    reason : array-like
        The reason codes of a result (``metadata.MnValence.reason``).
    """
    from .preprocessing import REASONS

    reason = np.asarray(reason)
    if reason.size == 0 or np.any(reason == 0):
        return None
    codes, counts = np.unique(reason[np.isfinite(reason)].astype(int), return_counts=True)
    why = "; ".join(f"{REASONS.get(c, c)}: {n}" for c, n in zip(codes, counts, strict=True))
    return why, set(codes.tolist())


def warn_if_nothing_found(reason, search: tuple[float, float], params: dict | None = None) -> None:
    """A warning, with the reasons, when no spectrum at all was classified.

    ``search`` is where the L3 edge was looked for; ``params`` the model's preprocessing
    parameters (default: the shipped models').
    """
    from .preprocessing import DEFAULT_PREPROCESSING, read_range

    found = nothing_classified(reason)
    if found is None:
        return
    why, codes = found
    lo, hi = search
    if codes == {1}:
        r0, r1 = read_range({**DEFAULT_PREPROCESSING, **(params or {})}, (0.0, 0.0))
        advice = (
            f"every spectrum has non-finite channels within what it reads (from about "
            f"{-r0:g} eV below its L3 peak to {r1:g} eV above it; bad channels elsewhere "
            "do not matter): crop the spectra or interpolate over the bad channels"
        )
    else:
        advice = (
            f"the L3 edge was looked for between {lo:g} and {hi:g} eV: check the energy "
            "calibration and range of the data, energy_window, and background ('none' "
            "for background-subtracted data)"
        )
    warnings.warn(
        f"{NOTHING_CLASSIFIED} ({why}); every value of the result is NaN. "
        f"{advice[0].upper()}{advice[1:]}.",
        stacklevel=3,
    )


#: The first axis of every result: the three valences.
VALENCE_AXIS = {"name": "Mn valence", "units": "", "scale": 1.0, "offset": 2.0, "size": 3}


def _xp(data):
    if isinstance(data, np.ndarray):
        return np
    import dask.array as da

    return da


class _OnePixelNumber:
    """Mixed into the class of every derived map: ``float(m)`` and ``int(m)`` give the
    value of a map of one pixel (the result of one spectrum, or of a ``(1,)`` or
    ``(1, 1)`` map; a lazy map is computed then), and name ``.data`` otherwise."""

    def _one_value(self):
        size = int(np.prod(self.data.shape))
        if size != 1:
            raise TypeError(
                f"float() and int() need a map of one pixel, but this one has {size} "
                f"(shape {tuple(self.data.shape)}): read its values from .data."
            )
        return np.asarray(self.data).reshape(-1)[0]

    def __float__(self) -> float:
        return float(self._one_value())

    def __int__(self) -> int:
        return int(self._one_value())

    def _assign_subclass(self, *args, **kwargs):
        # HyperSpy swaps the class on compute(), as_lazy(), slicing to fewer axes...:
        # keep the conversion
        super()._assign_subclass(*args, **kwargs)
        _as_number(self)


#: The classes made by :func:`_number_class`, by HyperSpy class.
_NUMBER_CLASSES: dict[type, type] = {}


def _number_class(base: type) -> type:
    """``base`` (a HyperSpy signal class) with :class:`_OnePixelNumber` mixed in."""
    if base not in _NUMBER_CLASSES:
        _NUMBER_CLASSES[base] = type(base.__name__, (_OnePixelNumber, base), {})
    return _NUMBER_CLASSES[base]


def _as_number(sig):
    """Give map ``sig`` the conversions of :class:`_OnePixelNumber` (in place)."""
    if not isinstance(sig, _OnePixelNumber):
        sig.__class__ = _number_class(type(sig))
    return sig


def map_like(p, arr, title: str, quantity: str):
    """A map with the signal axes of result ``p`` (``float(map)`` for one pixel)."""
    if p.axes_manager.navigation_dimension == 0:
        import hyperspy.api as hs

        out = hs.signals.BaseSignal(np.asarray(arr) if np.ndim(arr) == 0 else arr)
        if p._lazy:
            out = out.as_lazy()
    else:
        out = p.inav[0]._deepcopy_with_new_data(arr)
        if out.metadata.has_item("MnValence"):
            del out.metadata.MnValence
    out.metadata.General.title = title
    out.metadata.Signal.quantity = quantity
    return _as_number(out)


def result_data(p):
    """The data of a result, valence axis first; a clear error for anything else."""
    am = getattr(p, "axes_manager", None)
    axes = [] if am is None else [*am.navigation_axes, *am.signal_axes]
    first = next((a for a in axes if a.index_in_array == 0), None)
    if first is None or first.name != VALENCE_AXIS["name"] or first.size != 3:
        what = repr(p) if am is not None else f"{type(p).__name__} of shape {np.shape(p)}"
        raise ValueError(
            f"{what} is not a Mn valence result (an axis 'Mn valence' of 3 values first): "
            "pass the result of classify_mn_valence or decompose_mn_valence (or a spatial "
            "slice of one, p.isig[...]), not one valence's map (p.inav[k]) or the spectra."
        )
    return p.data


def valid_argmax(prob):
    """Most likely class index along axis 0, and where all three values are finite.

    Works on numpy and dask arrays of shape ``(3, ...)``.
    """
    xp = _xp(prob)
    valid = xp.all(xp.isfinite(prob), axis=0)
    return xp.argmax(xp.where(valid, prob, -1.0), axis=0), valid


def expected_valence(prob, valences) -> np.ndarray:
    """``sum_k p_k v_k / sum_k p_k`` along axis 0; NaN where not finite or all zero."""
    xp = _xp(prob)
    v = np.asarray(valences, dtype=np.float32).reshape((3,) + (1,) * (prob.ndim - 1))
    valid = xp.all(xp.isfinite(prob), axis=0)
    safe = xp.where(valid, prob, 0.0)
    tot = safe.sum(axis=0)
    ok = valid & (tot > 0)
    return xp.where(ok, (safe * v).sum(axis=0) / xp.where(ok, tot, 1.0), np.nan)


def result_valences(p) -> np.ndarray:
    return np.asarray(p.metadata.get_item("MnValence.classes", [2, 3, 4]), dtype=np.float32)


def most_likely_valence(p: BaseSignal) -> BaseSignal:
    """Map of the most likely valence (2, 3 or 4; NaN where no Mn edge).

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal
        Result of :func:`classify_mn_valence`.

    Returns
    -------
    hyperspy.signal.BaseSignal
    """
    d = result_data(p)  # valence axis first for every layout
    xp = _xp(d)
    idx, valid = valid_argmax(d)
    v = result_valences(p)
    # a lookup per block: dask cannot index with a dask array of more than one dimension
    chosen = v[idx] if xp is np else idx.map_blocks(v.__getitem__, dtype=v.dtype)
    val = xp.where(valid, chosen, np.nan).astype(np.float32)
    return map_like(p, val, "Most likely Mn valence", "Valence")


def mean_valence(p: BaseSignal) -> BaseSignal:
    """Probability-weighted mean valence, sum_k p_k v_k (NaN where no Mn edge).

    For a classifier this is an expectation over classes, not a mixed-valence
    fraction; see :func:`hyperspy_mnvalence.decompose_mn_valence` for fractions.

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal
        Result of :func:`classify_mn_valence` (or ``decompose_mn_valence``).

    Returns
    -------
    hyperspy.signal.BaseSignal
    """
    val = expected_valence(result_data(p), result_valences(p)).astype(np.float32)
    return map_like(p, val, "Mean Mn valence", "Valence")


def confidence(p: BaseSignal) -> BaseSignal:
    """Highest class probability per pixel (NaN where no Mn edge).

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal

    Returns
    -------
    hyperspy.signal.BaseSignal
    """
    return map_like(p, result_data(p).max(axis=0), "Confidence", "Probability")


def uncertainty(p: BaseSignal) -> BaseSignal:
    """Normalised entropy of the class probabilities, in [0, 1] (NaN where no edge).

    0 means a certain answer, 1 means all three valences equally likely. The ensemble
    spread of each probability is in ``p.metadata.MnValence.probability_std``.

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal

    Returns
    -------
    hyperspy.signal.BaseSignal
    """
    h = normalised_entropy(result_data(p))  # valence axis first for every layout
    return map_like(p, h, "Uncertainty (normalised entropy)", "Entropy")


def normalised_entropy(prob):
    """Entropy of three probabilities along axis 0, divided by ``log(3)``.

    Parameters
    ----------
    prob : numpy.ndarray or dask.array.Array
        Probabilities, the three valences on axis 0.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float32 in [0, 1]; NaN where a probability is not finite (no Mn edge).
    """
    xp = _xp(prob)
    q = xp.clip(prob, 1e-12, 1.0)
    h = -(q * xp.log(q)).sum(axis=0) / np.log(3.0)
    return xp.where(xp.all(xp.isfinite(prob), axis=0), h, np.nan).astype(np.float32)


def no_edge_mask(p: BaseSignal) -> BaseSignal:
    """Boolean map, True where the pixel has no Mn L2,3 edge (or bad values).

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal

    Returns
    -------
    hyperspy.signal.BaseSignal
    """
    d = result_data(p)  # valence axis first for every layout
    xp = _xp(d)
    return map_like(p, ~xp.isfinite(d[0]), "No Mn edge", "Mask")


# --- the maps in metadata.MnValence are sliced with their result, by index -----------------
#
# HyperSpy slices a signal's data and, for the targets listed in the class attribute
# ``_additional_slicing_targets``, objects found there with the same slices. The maps of a
# result are reached through the property ``_mnvalence_maps`` (added to BaseSignal below;
# it raises AttributeError, so is skipped, for every signal without such maps), which
# slices each map with the index slices of the result's own axes: a recalibrated result
# keeps the right pixels, and integer indices drop the same axes from the maps.


def _spatial_shape(sig, layout: int) -> tuple:
    """Array shape of ``sig`` without its valence axis (``layout`` 1: valence first)."""
    return tuple(sig.data.shape[layout:])


def _slice_maps(p, slices, is_navigation) -> dict:
    """The maps of result ``p`` cut with the slices HyperSpy is applying to ``p``."""
    array_slices = p._get_array_slices(slices, is_navigation)  # index based, array order
    own = tuple(p.data.shape[1:])
    out = {}
    for key in _RESULT_MAPS:
        m = p.metadata.get_item(f"MnValence.{key}")
        if m is None or not hasattr(m, "_slicer"):
            continue
        layout = 1 if m.data.ndim == p.data.ndim else 0  # valence axis first or not
        if _spatial_shape(m, layout) != own:  # cut earlier by other means: left alone
            out[key] = m
            continue
        target = array_slices if layout else array_slices[1:]
        try:
            am = m.axes_manager
            order = [a.index_in_array for a in (*am.navigation_axes, *am.signal_axes)]
            user = tuple(target[i] for i in order)
            if all(isinstance(t, slice) and t == slice(None) for t in user):
                out[key] = m
            else:
                out[key] = m._slicer(user, None)
        except Exception as exc:  # never break the slicing of the result itself
            _logger.info("metadata.MnValence.%s could not be sliced (%s): left out", key, exc)
            out[key] = None
    return out


class _MapSlicer:
    """What HyperSpy slices for ``metadata.MnValence``'s maps (see ``_mnvalence_maps``)."""

    def __init__(self, signal) -> None:
        self.signal = signal

    def _slicer(self, slices, isNavigation=None, out=None):  # noqa: N803 (HyperSpy's name)
        maps = _slice_maps(self.signal, slices, isNavigation)
        if out is None:
            return maps
        _set_maps(out.signal, maps)
        return None


def _get_maps(self) -> _MapSlicer:
    if not any(self.metadata.has_item(f"MnValence.{k}") for k in _RESULT_MAPS):
        raise AttributeError("_mnvalence_maps")
    return _MapSlicer(self)


def _set_maps(self, maps: dict) -> None:
    for key, m in maps.items():
        if m is None:
            if self.metadata.has_item(f"MnValence.{key}"):
                delattr(self.metadata.MnValence, key)
        else:
            self.metadata.set_item(f"MnValence.{key}", m)


def _register_slicing() -> None:
    """Let HyperSpy slice a result's metadata maps with the result (idempotent)."""
    from hyperspy.signal import BaseSignal

    if not isinstance(getattr(BaseSignal, "_mnvalence_maps", None), property):
        BaseSignal._mnvalence_maps = property(_get_maps, _set_maps)
    targets = list(getattr(BaseSignal, "_additional_slicing_targets", []))
    if "_mnvalence_maps" not in targets:
        BaseSignal._additional_slicing_targets = [*targets, "_mnvalence_maps"]


def _sync_calibration(m, p) -> None:
    """Give map ``m`` the spatial calibration of result ``p`` (the same pixels)."""
    have, want = (
        [a for a in x.axes_manager.signal_axes if a.name != VALENCE_AXIS["name"]] for x in (m, p)
    )
    for dst, src in zip(have, want, strict=True):
        if src.is_uniform and dst.is_uniform:
            dst.name, dst.units = src.name, src.units
            dst.scale, dst.offset = src.scale, src.offset
        elif not src.is_uniform and not dst.is_uniform:
            dst.name, dst.units = src.name, src.units
            dst.axis = np.array(src.axis, dtype=float)


def metadata_map(p, key: str):
    """``p.metadata.MnValence.<key>``, covering the pixels of ``p``.

    The maps are sliced with their result (by index, see ``_slice_maps``) and given the
    result's current calibration. For a result sliced before that (a file written by an
    earlier version), the pixels ``p`` kept are looked up by their coordinates. Returns
    None where the map is absent or those pixels cannot be found in it.
    """
    m = p.metadata.get_item(f"MnValence.{key}")
    if m is None:
        return None
    have, want = (
        [a for a in x.axes_manager.signal_axes if a.name != VALENCE_AXIS["name"]] for x in (m, p)
    )
    if not want:  # one spectrum
        return m if all(a.size == 1 for a in have) else None
    if [a.size for a in have] == [a.size for a in want]:
        _sync_calibration(m, p)
        return m
    if len(have) != len(want):
        return None
    slices = []
    for a, b in zip(want, have, strict=True):
        if not (a.is_uniform and b.is_uniform) or b.scale == 0:
            return None
        pos = (np.asarray(a.axis) - b.offset) / b.scale
        k = np.round(pos).astype(int)
        step = int(k[1] - k[0]) if k.size > 1 else 1
        if (
            np.any(np.abs(pos - k) > 1e-3)
            or k.min() < 0
            or k.max() >= b.size
            or step <= 0
            or np.any(np.diff(k) != step)
        ):
            return None
        slices.append(slice(int(k[0]), int(k[-1]) + 1, step))
    return m.isig[tuple(slices)]


def dask_compute(*arrays, show_progressbar: bool) -> tuple:
    """``dask.compute(*arrays)`` in one pass, with dask's progress bar if asked.

    One BLAS thread for the whole computation, set here in the calling thread: a limit
    set from inside dask's worker threads often does not take effect there (OpenBLAS
    kept 2 threads; the lazy path then cost 1.2-1.4x the eager path's CPU per spectrum).
    """
    import dask

    from .preprocessing import single_threaded_blas

    with single_threaded_blas():
        if not show_progressbar:
            return dask.compute(*arrays)
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return dask.compute(*arrays)


#: The maps a result keeps in ``metadata.MnValence`` (the last two: fractions only).
_RESULT_MAPS = (
    "probability_std",
    "l3_peak_eV",
    "reason",
    "n_spikes",
    "range_flags",
    "t_over_lambda",
    "mean_valence",
    "mean_valence_std",
)


def compute_result(p: BaseSignal, show_progressbar: bool | None = None) -> BaseSignal:
    """Compute a lazy result and the maps in its metadata together, in place.

    The probabilities (or fractions), their ensemble spread, the L3 peak, the reason
    codes and (fractions) the mean oxidation state and its uncertainty are slices of
    one dask graph. ``p.compute()`` computes only the first; this computes all that is
    still lazy in one pass, so every spectrum goes through the network once, also on a
    ``dask.distributed`` cluster (where a lazy result cannot be saved to ``.hspy``
    directly: compute it with this first). A slice of a result (``p.isig[...]``)
    carries its maps cut to its pixels, so only those are computed; maps that cannot be
    matched to the pixels of a result sliced by an earlier version are left out, with a
    warning.
    The result is small (8 to 10 numbers per pixel). Warns when no spectrum at all was
    classified.

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal
        Result of :func:`~hyperspy_mnvalence.classify_mn_valence` or
        :func:`~hyperspy_mnvalence.decompose_mn_valence`, or a slice of one.
    show_progressbar : bool, optional
        Default: HyperSpy's ``preferences.General.show_progressbar``.

    Returns
    -------
    hyperspy.signal.BaseSignal
        ``p``, now eager, with eager maps (matching its pixels) in its metadata.
    """
    from hyperspy.defaults_parser import preferences

    result_data(p)  # a result (or a slice of one), not the spectra
    if show_progressbar is None:
        show_progressbar = bool(preferences.General.show_progressbar)
    maps, dropped = {}, []
    for key in _RESULT_MAPS:
        if not p.metadata.has_item(f"MnValence.{key}"):
            continue
        m = metadata_map(p, key)
        if m is None:
            delattr(p.metadata.MnValence, key)
            dropped.append(key)
        else:
            maps[key] = m
            p.metadata.set_item(f"MnValence.{key}", m)
    if dropped:
        warnings.warn(
            f"metadata.MnValence {', '.join(dropped)} cover the whole original result and "
            "cannot be matched to the pixels of this slice (taken with an integer index by "
            "an earlier version): left out. Slice the whole result again to keep them.",
            stacklevel=2,
        )
    reason_was_lazy = "reason" in maps and maps["reason"]._lazy
    sigs = ([p] if p._lazy else []) + [m for m in maps.values() if m._lazy]
    if sigs:
        arrays = dask_compute(*(m.data for m in sigs), show_progressbar=show_progressbar)
        for sig, arr in zip(sigs, arrays, strict=True):
            sig.data = arr  # in-memory chunks now: computing them reads them
            sig.compute(show_progressbar=False)
    if reason_was_lazy:  # the eager path warned when it classified
        window = p.metadata.get_item("MnValence.parameters.energy_window")
        warn_if_nothing_found(maps["reason"].data, tuple(window or search_range(None)))
    return p


def valence_maps(p) -> dict:
    """All derived maps of a result at once.

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal

    Returns
    -------
    dict
        ``most_likely``, ``mean_valence``, ``confidence``, ``uncertainty``,
        ``no_edge``, and ``spread`` / ``l3_peak_eV`` from the metadata when present
        (cut to the pixels of ``p`` where ``p`` is a slice of a result).
    """
    out = {
        "most_likely": most_likely_valence(p),
        "mean_valence": mean_valence(p),
        "confidence": confidence(p),
        "uncertainty": uncertainty(p),
        "no_edge": no_edge_mask(p),
    }
    for k, key in (("spread", "probability_std"), ("l3_peak_eV", "l3_peak_eV")):
        m = metadata_map(p, key)
        if m is not None:
            out[k] = _as_number(m)  # float() for one pixel, as the maps above
    return out


_register_slicing()
