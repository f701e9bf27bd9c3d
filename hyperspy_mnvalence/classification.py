"""Classification of Mn L2,3 spectra: numpy and dask kernels, and HyperSpy wrappers.

The kernel :func:`classify_spectra` maps an array of spectra ``(..., n_channels)`` to
``(..., N_OUT)`` values per spectrum (three probabilities, their ensemble spread, the L3
peak energy and a reason code). It is pure numpy and is mapped over dask blocks that
hold whole spectra (navigation chunks only), so lazy and distributed signals go through
the same code. :func:`classify_mn_valence` wraps it for HyperSpy signals and builds
the result signal; :mod:`.maps` derives maps from that result.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .decisions import (
    EDGE_MIN_SNR,
    RANGE_FLAGS,
    out_of_range,
    scattered_peaks,
    spectrum_range_flags,
    thick_sample_condition,
    warn_out_of_range,
)
from .decisions._range import _dispersion
from .maps import VALENCE_AXIS, _dask_compute, _search_range, _warn_if_nothing_found
from .model import (
    BROAD_RESOLUTION_EV,
    DEFAULT_MODEL,
    ONE_EV_DISPERSION,
    SHIPPED_MODELS,
    MnValenceModel,
    _resolve_threads,
    load_model,
)
from .preprocessing import (
    REASONS,
    overlaps_search_range,
    preprocess,
    single_threaded_blas,
)

__all__ = [
    "N_OUT",
    "classify_mn_valence",
    "classify_spectra",
    "onnx_batch",
]

#: Values per spectrum returned by :func:`classify_spectra`:
#: p2, p3, p4, std2, std3, std4, L3 peak (eV), reason code, spikes replaced, out-of-range
#: flags (bits 1, 2, 4 of ``decisions.RANGE_FLAGS``; bit 8 needs the neighbours).
N_OUT = 10
#: Spectra per onnxruntime call for one network: smaller calls keep the activations in
#: cache (on 2 cores 512-1024 used the least CPU time per spectrum; see
#: benchmarks/RESULTS.md). An ensemble, whose members run side by side as grouped
#: convolutions, gets proportionally fewer (at least 128: its CPU time per spectrum is
#: the same from 128 to 1024), so that its activations take no more memory.
ONNX_BATCH = 1024
_EELS_TYPES = ("EELS", "EELS_MnValence", "TEM EELS")


def onnx_batch(model: MnValenceModel, batch_size: int) -> int:
    """Spectra per onnxruntime call for ``model`` in batches of ``batch_size``.

    Parameters
    ----------
    model : MnValenceModel
    batch_size : int
        Spectra per preprocessing batch.

    Returns
    -------
    int
        ``min(batch_size, ONNX_BATCH)``, and for an ensemble at most
        ``ONNX_BATCH / members`` (but at least 128).
    """
    return min(batch_size, ONNX_BATCH, max(128, ONNX_BATCH // max(model.n_members, 1)))


def classify_spectra(
    spectra: np.ndarray,
    energy: np.ndarray,
    *,
    model: str | MnValenceModel | None = None,
    model_name: str = DEFAULT_MODEL,
    background: str | bool = "auto",
    background_window: tuple[float, float] | None = None,
    energy_window: tuple[float, float] | None = None,
    batch_size: int = 512,
    min_snr: float = EDGE_MIN_SNR,
    show_progressbar: bool = False,
    n_threads: int | None = None,
    remove_spikes: bool = True,
) -> np.ndarray:
    """Classify an array of spectra that share one energy axis.

    Parameters
    ----------
    spectra : numpy.ndarray
        Shape ``(..., n_channels)``.
    energy : numpy.ndarray
        Energies in eV, shape ``(n_channels,)`` (uniform or not).
    model : str, MnValenceModel or None
        Model path or object; ``None`` for the shipped model ``model_name``.
    model_name : str
        Shipped model used when ``model`` is None.
    background, background_window, energy_window, min_snr, remove_spikes
        See :func:`hyperspy_mnvalence.preprocessing.preprocess`.
    batch_size : int
        Spectra preprocessed and fed to onnxruntime at a time.
    show_progressbar : bool
        Show a tqdm progress bar over the batches.
    n_threads : int, optional
        Batches processed at once in threads (numpy, scipy and onnxruntime release the
        GIL). Default: the number of CPUs, at most 4; dask blocks use 1 because the
        scheduler already runs blocks in parallel.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(..., N_OUT)``: probabilities of Mn2+, Mn3+, Mn4+, their
        ensemble standard deviations, the L3 peak energy, the reason code (0: valid;
        see ``preprocessing.REASONS``), the number of channels replaced as spikes and
        the out-of-range flags of the spectrum (bits 1, 2 and 4 of
        ``decisions.RANGE_FLAGS``).
        Probabilities, spread and peak are NaN where the spectrum is not valid.
    """
    m = load_model(model, name=model_name)
    per_call = onnx_batch(m, batch_size)
    spectra = np.asarray(spectra)
    lead = spectra.shape[:-1]
    flat = spectra.reshape(-1, spectra.shape[-1])
    n = flat.shape[0]
    out = np.full((n, N_OUT), np.nan, np.float32)
    batch_size = max(int(batch_size), 1)
    starts = range(0, n, batch_size)
    n_threads = _resolve_threads(n_threads, len(starts))

    def run(i: int) -> None:
        # every batch writes its own rows of ``out``; float64 only per batch
        pre = preprocess(
            flat[i : i + batch_size],
            energy,
            params=m.preprocessing,
            background=background,
            background_window=background_window,
            energy_window=energy_window,
            min_snr=min_snr,
            remove_spikes=remove_spikes,
        )
        block = out[i : i + batch_size]
        block[:, 7] = pre.reason
        block[:, 8] = pre.n_spikes
        block[:, 9] = spectrum_range_flags(
            flat[i : i + batch_size], energy, m.preprocessing, m.metadata, pre.peak_eV
        )
        ok = pre.valid
        if np.any(ok):
            # onnxruntime runs one thread per call, so batches preprocess and infer side
            # by side (measured, 2 cores, fcn_lite: 0.70 -> 0.60 CPU s per 16k spectra)
            probs, spread = m.predict(pre.x[ok], batch_size=per_call, n_threads=1)
            block[ok, 0:3] = probs
            block[ok, 3:6] = spread
            block[ok, 6] = pre.peak_eV[ok]

    # one BLAS thread while batches run side by side (their products are small)
    with single_threaded_blas():
        if n_threads > 1:
            pool = ThreadPoolExecutor(n_threads, thread_name_prefix="mnvalence")
            done = pool.map(run, starts)
        else:
            done = map(run, starts)
        if show_progressbar and n > batch_size:
            from tqdm.auto import tqdm

            done = tqdm(done, total=len(starts), desc="Mn valence", unit="batch")
        try:
            for _ in done:
                pass
        finally:
            if n_threads > 1:
                pool.shutdown(wait=True, cancel_futures=True)
    return out.reshape(lead + (N_OUT,))


#: Results of the lazy path's blocks, kept per process (the least recently used go
#: first): a lazy result's probabilities, spread, L3 peak and reason code are four
#: slices of one dask graph, and computing or saving them one after the other would
#: otherwise run every spectrum through the network four times (six for fractions).
_BLOCK_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
#: Most bytes it holds (8 values per pixel: 8 million pixels).
BLOCK_CACHE_BYTES = 256 * 2**20
_block_cache_lock = threading.Lock()


def _block_kernel(
    block: np.ndarray,
    energy: np.ndarray,
    model_ref,
    kwargs: dict,
    graph_key: str | None = None,
    block_info=None,
) -> np.ndarray:
    # model_ref is a path or None: each worker process loads (and caches) its own session;
    # one thread per block, the dask scheduler runs blocks in parallel
    key = None
    if graph_key is not None and block_info is not None:
        key = (graph_key, tuple(block_info[None]["chunk-location"]))
        with _block_cache_lock:
            hit = _BLOCK_CACHE.get(key)
            if hit is not None:
                _BLOCK_CACHE.move_to_end(key)
                return hit.copy()
    out = classify_spectra(block, energy, model=model_ref, n_threads=1, **kwargs)
    if key is not None and out.nbytes <= BLOCK_CACHE_BYTES:
        with _block_cache_lock:
            _BLOCK_CACHE[key] = out.copy()
            # counted from the entries (a few thousand at most): never out of step
            while sum(v.nbytes for v in _BLOCK_CACHE.values()) > BLOCK_CACHE_BYTES:
                _BLOCK_CACHE.popitem(last=False)
    return out


#: Upper limits for one dask block of the lazy path: spectra and bytes of input.
BLOCK_SPECTRA = 4096
BLOCK_BYTES = 64 * 2**20


def _navigation_chunks(data, block_spectra: int = BLOCK_SPECTRA, block_bytes: int = BLOCK_BYTES):
    """Rechunk ``data`` so every block holds whole spectra and is of bounded size.

    The signal (last) axis becomes one chunk; navigation chunks are left alone when
    blocks are already within ``block_spectra`` spectra and ``block_bytes`` bytes and
    otherwise chosen by dask within those limits, so a block is a few thousand spectra.

    Parameters
    ----------
    data : dask.array.Array
        Shape ``navigation + (n_channels,)``.
    block_spectra, block_bytes : int
        Limits per block.

    Returns
    -------
    dask.array.Array
    """
    n_ch = data.shape[-1]
    limit = max(min(block_bytes, block_spectra * n_ch * data.dtype.itemsize), 1)
    nav = data.ndim - 1
    whole_signal = len(data.chunks[-1]) == 1
    biggest = int(np.prod([max(c) for c in data.chunks[:-1]])) if nav else 1
    if whole_signal and biggest * n_ch * data.dtype.itemsize <= limit:
        return data
    spec = {i: "auto" for i in range(nav)}
    spec[nav] = -1
    return data.rechunk(spec, block_size_limit=limit)


def _contiguous_chunks(
    shape: tuple, itemsize: int, block_spectra: int = BLOCK_SPECTRA, block_bytes: int = BLOCK_BYTES
) -> tuple:
    """Chunks of a C-ordered array ``navigation + (n_channels,)`` whose blocks are
    contiguous runs of whole spectra, of about equal size within the block limits.

    The first navigation axis is split into runs of whole rows; only where one row is
    over the limit is it cut into single rows and the next axis split. A block that is
    a strided view (dask's square ``"auto"`` chunks) is copied whole by the kernel's
    ``reshape`` (measured 128x128x2048 float32: 64x64 blocks, 32 MB copied per block).

    Parameters
    ----------
    shape : tuple of int
    itemsize : int
        Bytes per value.
    block_spectra, block_bytes : int
        Limits per block.

    Returns
    -------
    tuple of tuple of int
    """
    nav, n_ch = shape[:-1], shape[-1]
    per = max(1, min(block_spectra, block_bytes // max(n_ch * itemsize, 1)))
    chunks = []
    for i, n in enumerate(nav):
        inner = int(np.prod(nav[i + 1 :], dtype=np.int64))
        if inner > per and n > 0:
            chunks.append((1,) * n)  # one row at a time; split the next axis
            continue
        rows = max(per // max(inner, 1), 1)
        k = -(-n // rows) if n else 1  # blocks along this axis, then sizes evened out
        chunks.append(tuple(n // k + (j < n % k) for j in range(k)) if n else (0,))
        chunks.extend((m,) for m in nav[i + 1 :])
        break
    return tuple(chunks) + ((n_ch,),)


def _in_memory_blocks(x: np.ndarray, batch_size: int, block_spectra: int = BLOCK_SPECTRA):
    """Dask blocks of the in-memory spectra ``x`` for the lazy path, without a copy.

    A C-ordered array is seen as ``(n_spectra, n_channels)`` and cut into runs of whole
    preprocessing batches, so every batch holds the spectra the eager path's does: the
    edge decision pools the noise over a batch (``decisions.pooled_noise``), so other
    batches can flip a pixel near the threshold (3 of 1024 with 8x8 blocks). Blocks
    spread over the cores, at most ``block_spectra`` spectra (at least one batch).

    Parameters
    ----------
    x : numpy.ndarray
        Spectra, shape ``navigation + (n_channels,)``.
    batch_size : int
        Spectra per preprocessing batch.
    block_spectra : int
        Most spectra per block (rounded down to whole batches).

    Returns
    -------
    data : dask.array.Array
        Shape ``(n_spectra, n_channels)``, or, when ``x`` is not C-ordered, ``x``'s own
        shape in navigation blocks of contiguous rows.
    navigation_shape : tuple or None
        The shape to give the result's navigation axes (None: already theirs).
    """
    if not x.flags.c_contiguous:
        return _dask_view(x, _contiguous_chunks(x.shape, x.dtype.itemsize)), None
    flat = x.reshape(-1, x.shape[-1])  # a view
    n = flat.shape[0]
    batches = -(-n // batch_size)
    cores = max(os.cpu_count() or 1, 1)
    per = batch_size * max(1, min(-(-batches // cores), block_spectra // batch_size))
    sizes = tuple(min(per, n - i) for i in range(0, n, per)) or (0,)
    return _dask_view(flat, (sizes, (x.shape[-1],))), x.shape[:-1]


def _dask_view(x: np.ndarray, chunks: tuple):
    """A dask array whose blocks are views of the in-memory array ``x``.

    ``dask.array.from_array`` copies a numpy array whole and hashes it for its name
    (0.2-0.3 s of CPU for 128x128x2048 float32); views need neither.
    """
    import itertools

    import dask.array as da
    from dask.array.core import slices_from_chunks

    name = f"mn-valence-input-{uuid.uuid4().hex}"
    keys = itertools.product([name], *(range(len(c)) for c in chunks))
    dsk = {k: x[slc] for k, slc in zip(keys, slices_from_chunks(chunks), strict=True)}
    return da.Array(dsk, name, chunks, dtype=x.dtype, meta=np.empty((0,) * x.ndim, x.dtype))


def _with_scattered_flag(peak: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """``flags`` plus bit 8 where the L3 ``peak`` is far from its neighbours'."""
    return np.where(scattered_peaks(peak), flags + 8, flags).astype(np.float32)


def _range_flags(peak, flags):
    """Range flags per pixel with bit 8: eager, over the whole map; lazy, block by block
    (the classification's blocks: one task each, and a crop computes only its own)."""
    if not hasattr(peak, "dask"):
        return _with_scattered_flag(peak, flags)
    return peak.map_blocks(
        _with_scattered_flag, flags, dtype=np.float32, meta=np.empty((0,) * peak.ndim, np.float32)
    )


# ---------------------------------------------------------------------------------------
# HyperSpy layer
# ---------------------------------------------------------------------------------------


#: Energy-axis units understood, and their factor to eV (unset units are read as eV).
_ENERGY_UNITS = {"ev": 1.0, "kev": 1000.0, "mev": 1e-3, "": 1.0, "<undefined>": 1.0}


def _energy_axis(s) -> np.ndarray:
    ax = s.axes_manager.signal_axes[0]
    energy = np.asarray(ax.axis, dtype=np.float64)
    units = str(getattr(ax, "units", "") or "").strip()
    factor = _ENERGY_UNITS.get(units.lower())
    if factor is None:
        raise ValueError(
            f"The energy axis has units {units!r}; classify_mn_valence reads energy-loss "
            "axes in 'eV', 'keV' or 'meV'. Convert the axis (scale and offset) and set "
            "s.axes_manager.signal_axes[0].units accordingly."
        )
    return energy * factor if factor != 1.0 else energy


def _check_signal(s) -> None:
    from hyperspy.signal import BaseSignal

    if not isinstance(s, BaseSignal):
        raise TypeError(
            f"classify_mn_valence needs a HyperSpy EELS signal, not {type(s).__name__}. "
            "Wrap arrays with s = hs.signals.Signal1D(data), call "
            "s.set_signal_type('EELS_MnValence') and set the energy axis "
            "(s.axes_manager.signal_axes[0]: offset, scale, units 'eV')."
        )
    if s.axes_manager.signal_dimension != 1:
        raise ValueError(
            f"classify_mn_valence needs spectra (signal dimension 1), but this signal has "
            f"signal dimension {s.axes_manager.signal_dimension} ({s}). If the energy "
            "axis is a navigation axis, use s.as_signal1D(energy_axis_index)."
        )
    st = s.metadata.get_item("Signal.signal_type", "")
    if st not in _EELS_TYPES:
        raise TypeError(
            f"classify_mn_valence needs an EELS signal, but this signal's signal_type is "
            f"{st!r}. If it holds EELS spectra, call s.set_signal_type('EELS_MnValence') "
            "first: then s.classify_mn_valence() and mnv.classify_mn_valence(s) both work "
            "(after exspy's s.set_signal_type('EELS') only the function form "
            "mnv.classify_mn_valence(s) does: an EELSSpectrum has no such method)."
        )
    dtype = np.dtype(s.data.dtype)
    if dtype.kind not in "biuf":
        kind = "complex" if dtype.kind == "c" else "non-numeric"
        raise TypeError(
            f"classify_mn_valence needs real-valued spectra, but s.data has {kind} dtype "
            f"{dtype}; convert it first (e.g. s.real or abs(s) for complex data, or "
            "s.change_dtype('float32'))."
        )
    if s.data.size == 0:
        raise ValueError(f"The signal {s} holds no data (an axis of size 0).")


def _check_resolution(resolution_eV) -> float | None:
    """``resolution_eV`` as a float (None stays None), or a ValueError naming it."""
    import numbers

    if resolution_eV is None:
        return None
    if (
        isinstance(resolution_eV, bool | np.bool_)
        or not isinstance(resolution_eV, numbers.Real)
        or not np.isfinite(float(resolution_eV))
        or resolution_eV <= 0
    ):
        raise ValueError(
            "resolution_eV must be the zero-loss peak's FWHM in eV, a finite number > 0 "
            f"(or None where not known), got {resolution_eV!r}"
        )
    return float(resolution_eV)


#: Values accepted for ``background``.
BACKGROUNDS = ("auto", "power_law", "constant", "none")


def _check_arguments(
    *,
    background,
    model,
    batch_size,
    min_snr,
    show_progressbar,
    lazy_output,
) -> None:
    """Check the scalar arguments of :func:`classify_mn_valence`, naming any bad one."""
    import numbers

    if not (isinstance(background, bool) or background in BACKGROUNDS):
        raise ValueError(
            f"background must be one of {', '.join(repr(b) for b in BACKGROUNDS)} or a "
            f"bool, got {background!r}"
        )
    if not (model is None or isinstance(model, str | os.PathLike | MnValenceModel)):
        raise TypeError(
            "model must be None (the shipped model), a shipped model's name "
            f"({', '.join(repr(k) for k in SHIPPED_MODELS)}), the path of a .onnx file or a "
            f"MnValenceModel, got {type(model).__name__} {model!r}"
        )
    if (
        isinstance(batch_size, bool | np.bool_)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if (
        isinstance(min_snr, bool | np.bool_)
        or not isinstance(min_snr, numbers.Real)
        or not np.isfinite(float(min_snr))
        or min_snr < 0
    ):
        raise ValueError(
            f"min_snr must be a finite number >= 0 (default {EDGE_MIN_SNR:g}; 0 keeps every spectrum "
            f"with an L3 peak), got {min_snr!r}"
        )
    for name, value in (("show_progressbar", show_progressbar), ("lazy_output", lazy_output)):
        if value is not None and not isinstance(value, bool | np.bool_):
            raise TypeError(f"{name} must be True, False or None, got {value!r}")


def _check_background_window(
    window: tuple[float, float], energy: np.ndarray, search: tuple[float, float], step: float
) -> None:
    """A fixed background window must be pre-edge and hold channels of the data."""
    lo, hi = window
    if hi > search[1]:
        raise ValueError(
            f"background_window ({lo:g}, {hi:g}) eV ends above {search[1]:g} eV, after "
            f"where the Mn L3 edge is looked for ({search[0]:g}-{search[1]:g} eV): it must "
            "be a pre-edge window, below the L3 onset (about 635 eV when calibrated)."
        )
    e0, e1 = max(lo, float(np.min(energy))), min(hi, float(np.max(energy)))
    if e1 - e0 < 3 * step:
        raise ValueError(
            f"background_window ({lo:g}, {hi:g}) eV holds fewer than 3 channels of the data "
            f"({float(np.min(energy)):.1f}-{float(np.max(energy)):.1f} eV); choose a "
            "pre-edge window inside the data, below the L3 onset (about 635 eV when "
            "calibrated)."
        )


def _check_window(name: str, window) -> tuple[float, float] | None:
    """``window`` as ``(lo, hi)`` floats with lo < hi, or a clear error."""
    if window is None:
        return None
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair of energies (lo, hi) in eV, got {window!r}"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be two finite energies in eV, got ({lo:g}, {hi:g})")
    if not lo < hi:
        raise ValueError(f"{name} must be (lo, hi) with lo < hi, got ({lo:g}, {hi:g})")
    return lo, hi


#: What each kind of model is for, to point at the right function.
_TASK_FUNCTIONS = {
    "classification": "classify_mn_valence",
    "fractions": "decompose_mn_valence",
}


def _check_range(
    energy: np.ndarray, search: tuple[float, float], energy_window: tuple | None = None
) -> None:
    if overlaps_search_range(energy, search):
        return
    lo, hi = search
    e0, e1 = float(np.min(energy)), float(np.max(energy))
    for factor, unit, verb in ((1000.0, "keV", "multiply"), (1e-3, "meV", "divide")):
        # a core-loss axis once rescaled: over the search range, from 0 to at most 10x it
        # (a low loss from -20 eV, or channel numbers, are not keV)
        scaled = (e0 * factor, e1 * factor)
        if (
            0.0 <= scaled[0]
            and scaled[1] <= 10.0 * hi
            and overlaps_search_range(energy * factor, search)
        ):
            raise ValueError(
                f"The energy axis runs from {e0:g} to {e1:g} in units read as eV: that "
                f"looks like {unit}. Set s.axes_manager.signal_axes[0].units = '{unit}' "
                f"(or {verb} the axis' scale and offset by 1000); the Mn L3 edge is "
                f"looked for between {lo:g} and {hi:g} eV."
            )
    hint = ""
    if energy_window is not None and hi < 10 < e1:
        hint = (
            f" energy_window is in eV: ({lo:g}, {hi:g}) looks like keV; did you mean "
            f"({1000 * lo:g}, {1000 * hi:g})?"
        )
    raise ValueError(
        f"The energy range {e0:.1f}-{e1:.1f} eV does not contain the Mn L2,3 edge, "
        f"which is looked for between {lo:g} and {hi:g} eV (nominal L3 at 640 eV "
        "+-15 eV for any calibration)." + hint + " Load a core-loss spectrum image "
        "covering about 620-670 eV, or pass energy_window=(lo, hi) if your calibration "
        "is off by more."
    )


def _output_signal(data, s, title: str, quantity: str, lazy: bool):
    """A signal holding ``data`` of shape ``extra + navigation_shape`` of ``s``."""
    import hyperspy.api as hs

    nav_axes = s.axes_manager.navigation_axes
    nav_dim = len(nav_axes)
    extra = data.ndim - nav_dim
    # dask data go straight into a lazy signal: as_lazy() would build every signal twice
    # (a deep copy; most of the lazy path's graph-building CPU)
    direct = lazy and hasattr(data, "dask")
    if nav_dim == 0 and extra == 0:
        out = (hs.signals.LazySignal if direct else hs.signals.BaseSignal)(data)
    elif nav_dim <= 1:
        out = (hs.signals.LazySignal1D if direct else hs.signals.Signal1D)(data)
    elif nav_dim == 2:
        out = (hs.signals.LazySignal2D if direct else hs.signals.Signal2D)(data)
    else:
        cls = hs.signals.LazySignal if direct else hs.signals.BaseSignal
        out = cls(data).transpose(signal_axes=nav_dim)
    if lazy and not out._lazy:
        out = out.as_lazy()
    # signal axes: the input's navigation axes, calibration included
    for src, dst in zip(nav_axes, out.axes_manager.signal_axes if nav_dim else [], strict=False):
        dst.name, dst.units = src.name, src.units
        if src.is_uniform:
            dst.scale, dst.offset = src.scale, src.offset
        else:  # a non-uniform axis keeps its coordinates
            dst.convert_to_non_uniform_axis()
            dst.axis = np.array(src.axis, dtype=float)
    if extra == 1:
        ax = out.axes_manager.navigation_axes[0] if nav_dim else out.axes_manager.signal_axes[0]
        ax.name, ax.units = VALENCE_AXIS["name"], VALENCE_AXIS["units"]
        ax.scale, ax.offset = VALENCE_AXIS["scale"], VALENCE_AXIS["offset"]
    out.metadata.General.title = title
    out.metadata.Signal.quantity = quantity
    return out


def classify_mn_valence(
    s,
    *,
    energy_window: tuple[float, float] | None = None,
    background: str | bool = "auto",
    background_window: tuple[float, float] | None = None,
    model: str | MnValenceModel | None = None,
    batch_size: int = 512,
    min_snr: float = EDGE_MIN_SNR,
    show_progressbar: bool | None = None,
    lazy_output: bool | None = None,
    remove_spikes: bool = True,
    low_loss=None,
    resolution_eV: float | None = None,
    _model_name: str = DEFAULT_MODEL,
    _title: str = "Mn valence probability",
    _task: str = "classification",
    _deconvolved_out: list | None = None,
):
    """Probability that the Mn in each pixel is Mn2+, Mn3+ or Mn4+.

    Works for any energy calibration, dispersion (resampled to the model's 0.1 eV
    grid) and uniform or non-uniform energy axis: the Mn L3 white line is located in
    every spectrum and the background is fitted on its own pre-edge.

    Parameters
    ----------
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
        placed before each spectrum's own L3 onset.
    model : str, path-like or MnValenceModel, optional
        Default (None or ``"acquisition"``): the five-network ensemble trained on
        simulated raw acquisitions, chosen by the robustness suite (best on thick
        samples, coarse resolution and coarse dispersion). ``"ensemble"`` for the
        ten-network ensemble trained on the clean Titan spectra (a few points better on
        thin, clean data; ``mnv.model_card("ensemble")``), ``"fast"`` for the default's
        fold-1 network alone (no ensemble spread; ``mnv.model_card("fast")``), ``"lite"`` for
        the smaller single network (a little less accurate; ``mnv.model_card("lite")``),
        ``"thin"`` for the five networks trained on thin acquisitions only (best on thin
        samples and on spectra deconvolved with their low loss, poor on thick raw ones;
        with ``low_loss`` and no model given it is the one used), ``"broad"`` for five
        networks trained at 1.4-2 eV resolution (used when ``resolution_eV`` of 1.4 eV or
        more is given), ``"1ev"`` for five networks trained at 1 eV per channel (used for
        spectra at 0.95-1.05 eV per channel unless a model, a low loss or such a
        resolution is given), or a retrained ``.onnx`` model. The speed of each is in ``benchmarks/RESULTS.md``.
    batch_size : int
        Spectra per preprocessing/inference batch.
    min_snr : float
        Minimum L3 height over the noise of the smoothed spectrum for a pixel to count
        as having a Mn edge; the default, 8.0, is calibrated on simulated negatives
        (see the user guide, "What the no-edge flag guarantees").
    show_progressbar : bool, optional
        Default: HyperSpy's ``preferences.General.show_progressbar``.
    lazy_output : bool, optional
        Default: lazy if ``s`` is lazy.
    remove_spikes : bool
        Replace cosmic-ray spikes and hot channels before anything else (conservative:
        edges are never touched); the count per pixel is in
        ``metadata.MnValence.n_spikes``.
    low_loss : exspy.signals.EELSSpectrum, optional
        The low-loss spectrum image of the same area (same navigation shape, zero-loss
        peak included): the core loss is Fourier-ratio deconvolved with it first
        (:func:`hyperspy_mnvalence.lowloss.deconvolve_plural_scattering`), for thick
        samples; the t/lambda map is stored in ``metadata.MnValence.t_over_lambda``.
        The deconvolved spectra are thin ones, so unless ``model`` is given they are
        read by the ``"thin"`` model.
    resolution_eV : float, optional
        The instrument's energy resolution, the FWHM of the zero-loss peak (eV), where
        known (``low_loss.estimate_peak_width()``; with ``low_loss`` it is measured there
        when not given). From 1.4 eV up (``model.BROAD_RESOLUTION_EV``), and unless
        ``model`` or ``low_loss`` is given, the ``"broad"`` model reads the spectra: five
        networks trained at 1.4-2 eV resolution, several points more accurate there than
        the default (``mnv.model_card("broad")``). A resolution outside the one the model
        was trained at is named in the out-of-range warning.

    Returns
    -------
    hyperspy.signal.BaseSignal
        Data of shape ``(3,) + s.data.shape[:-1]``: a stack of probability maps over a
        navigation axis "Mn valence" (2, 3, 4); its signal axes are ``s``'s navigation
        axes. NaN where a pixel has no Mn L2,3 edge. ``metadata.MnValence`` holds the
        ensemble spread (``probability_std``), the L3 peak map (``l3_peak_eV``), the
        reason codes (``reason``, legend in ``reason_codes``), the spikes replaced per
        pixel (``n_spikes``), the out-of-range flags per pixel (``range_flags``: the
        sum of the bits that apply, legend in ``range_flag_codes``), with ``low_loss``
        the t/lambda map (``t_over_lambda``), and the parameters. One warning names
        any condition outside the validated range (dispersion, short pre-edge,
        scattered L3 peaks, without ``low_loss`` a thick sample seen in the spectra).

    Examples
    --------
    >>> import hyperspy_mnvalence as mnv
    >>> s = mnv.make_demo_spectrum_image()
    >>> p = mnv.classify_mn_valence(s)
    >>> p.data.shape
    (3, 48, 64)
    """
    import dask.array as da
    from hyperspy.defaults_parser import preferences

    _check_signal(s)
    _check_arguments(
        background=background,
        model=model,
        batch_size=batch_size,
        min_snr=min_snr,
        show_progressbar=show_progressbar,
        lazy_output=lazy_output,
    )
    energy_window = _check_window("energy_window", energy_window)
    background_window = _check_window("background_window", background_window)
    resolution_eV = _check_resolution(resolution_eV)
    t_over_lambda = spikes_before = None
    if low_loss is not None:
        from .lowloss import FWHM_KEY, SPIKES_KEY, deconvolve_plural_scattering

        s, t_over_lambda = deconvolve_plural_scattering(s, low_loss, bool(remove_spikes))
        spikes_before = s.metadata.get_item(SPIKES_KEY) if remove_spikes else None
        fwhm = s.metadata.get_item(FWHM_KEY)  # what the spectra were deconvolved with
        if resolution_eV is None and fwhm is not None and np.isfinite(fwhm) and fwhm > 0:
            resolution_eV = float(fwhm)
        if _deconvolved_out is not None:  # the CLI's --white-line reads the same spectra
            _deconvolved_out.append(s)
        if model is None and _model_name == DEFAULT_MODEL:
            model = "thin"  # spectra made thin: the model trained on thin ones
    energy = _energy_axis(s)  # (the deconvolved spectra keep the core loss's axis)
    if model is None and _model_name == DEFAULT_MODEL:  # no low loss: the raw spectra
        if resolution_eV is not None and resolution_eV >= BROAD_RESOLUTION_EV:
            model = "broad"  # a coarse resolution: the model trained at it
        elif ONE_EV_DISPERSION[0] <= _dispersion(energy) <= ONE_EV_DISPERSION[1]:
            model = "1ev"  # 1 eV per channel: the model trained on that sampling
    m = load_model(model, name=_model_name)
    if m.task != _task:
        raise ValueError(
            f"The model {m.path.name} is a {m.task!r} model, not a {_task!r} model: use "
            f"{_TASK_FUNCTIONS.get(m.task, 'the function made for it')} with it, or "
            "model=None for the shipped one."
        )
    search = energy_window or _search_range(m.preprocessing)  # where the L3 edge is looked for
    _check_range(energy, search, energy_window)
    if background_window is not None and background not in ("none", False):
        _check_background_window(
            background_window, energy, search, float(m.preprocessing["energy_step_eV"])
        )
    if show_progressbar is None:
        show_progressbar = bool(preferences.General.show_progressbar)
    lazy_in = bool(s._lazy)
    lazy = lazy_in if lazy_output is None else bool(lazy_output)
    kwargs = dict(
        model_name=_model_name,
        background=background,
        background_window=background_window,
        energy_window=energy_window,
        batch_size=batch_size,
        min_snr=min_snr,
        remove_spikes=bool(remove_spikes),
    )
    model_ref = None if model is None else str(m.path)
    if lazy_in or lazy:
        nav_shape = None
        if lazy_in:
            data = s.data
        else:
            # runs of the eager path's batches, views of the array (no copy)
            data, nav_shape = _in_memory_blocks(s.data, batch_size)
        if data.ndim == 1:
            data = data[None]
        if nav_shape is None:
            data = _navigation_chunks(data)
        # a name of its own for every call: the key of the block cache, which serves
        # the slices of this one result (probabilities, spread, peak, reason) computed
        # one after the other; never another call's data that happen to share a dask
        # name, a retrained model file or other settings
        name = f"mn-valence-{uuid.uuid4().hex}"
        res = da.map_blocks(
            _block_kernel,
            data,
            energy,
            model_ref,
            kwargs,
            graph_key=name,
            name=name,
            chunks=data.chunks[:-1] + ((N_OUT,),),
            dtype=np.float32,
            meta=np.empty((0,) * data.ndim, np.float32),
        )
        if nav_shape is not None:
            res = res.reshape(nav_shape + (N_OUT,))
        elif s.data.ndim == 1:
            res = res[0]
        if not lazy:
            (res,) = _dask_compute(res, show_progressbar=show_progressbar)
        stack = da.moveaxis(res, -1, 0) if lazy else np.moveaxis(res, -1, 0)
    else:
        res = classify_spectra(
            np.asarray(s.data), energy, model=m, show_progressbar=show_progressbar, **kwargs
        )
        stack = np.moveaxis(res, -1, 0)
    if not lazy:
        _warn_if_nothing_found(stack[7], search, m.preprocessing)
    conditions = out_of_range(
        energy,
        m.preprocessing,
        m.metadata,
        None if lazy else stack[6],
        None if lazy else stack[7],
        resolution_eV=resolution_eV,
    )
    if low_loss is None and not (lazy or lazy_in):
        # plasmon replicas of the white lines in a sample of the pixels with an edge
        thick = thick_sample_condition(
            np.asarray(s.data).reshape(-1, s.data.shape[-1]),
            energy,
            stack[6].ravel(),
            background=background,
            background_window=background_window,
        )
        if thick:
            conditions.append(thick)
    warn_out_of_range(conditions)
    p = _output_signal(stack[0:3], s, _title, "Probability", lazy)
    spread = _output_signal(stack[3:6], s, "Ensemble spread", "Standard deviation", lazy)
    peak = _output_signal(stack[6], s, "Mn L3 peak energy", "Energy (eV)", lazy)
    reason = _output_signal(stack[7], s, "Reason code", "Code", lazy)
    spikes = stack[8]
    if spikes_before is not None:  # replaced before the low-loss deconvolution
        spikes = spikes + spikes_before.reshape(spikes.shape)
        if not lazy and hasattr(spikes, "compute"):
            spikes = spikes.compute()
    n_spikes = _output_signal(spikes, s, "Spikes replaced", "Channels", lazy)
    # bit 8 (an L3 peak far from its neighbours') needs the map, not one spectrum
    flags = _range_flags(stack[6], stack[9])
    range_flags = _output_signal(flags, s, "Out-of-range flags", "Flags", lazy)
    p.metadata.set_item("MnValence.probability_std", spread)
    p.metadata.set_item("MnValence.l3_peak_eV", peak)
    p.metadata.set_item("MnValence.reason", reason)
    p.metadata.set_item("MnValence.n_spikes", n_spikes)
    p.metadata.set_item("MnValence.range_flags", range_flags)
    p.metadata.set_item("MnValence.range_flag_codes", {str(k): v for k, v in RANGE_FLAGS.items()})
    if t_over_lambda is not None:  # in the layout of the other maps
        tl = t_over_lambda.data  # lazy with a lazy core loss: kept so for a lazy result
        tl = (tl if lazy and hasattr(tl, "compute") else np.asarray(tl)).astype(np.float32)
        tl = tl.reshape(s.data.shape[:-1])
        p.metadata.set_item(
            "MnValence.t_over_lambda",
            _output_signal(tl, s, "t/lambda", "Relative thickness", lazy),
        )
    p.metadata.set_item("MnValence.reason_codes", {str(k): v for k, v in REASONS.items()})
    p.metadata.set_item("MnValence.classes", m.classes)
    p.metadata.set_item("MnValence.task", m.task)
    p.metadata.set_item("MnValence.model", m.path.name)
    p.metadata.set_item(
        "MnValence.parameters",
        {
            "background": str(background),
            "background_window": list(background_window) if background_window else None,
            "energy_window": list(energy_window) if energy_window else None,
            "min_snr": float(min_snr),
            "remove_spikes": bool(remove_spikes),
            "low_loss": low_loss is not None,
            "resolution_eV": resolution_eV,
        },
    )
    p.metadata.set_item("General.original_title", s.metadata.get_item("General.title", ""))
    return p
