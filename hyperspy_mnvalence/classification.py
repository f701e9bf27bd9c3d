"""Classification of Mn L2,3 spectra: numpy and dask kernels, and HyperSpy wrappers.

The kernel :func:`classify_spectra` maps an array of spectra ``(..., n_channels)`` to
``(..., N_OUT)`` values per spectrum (three probabilities, their ensemble spread, the L3
peak energy and a reason code). It is pure numpy and is mapped over dask blocks that
hold whole spectra (navigation chunks only), so lazy and distributed signals go through
the same code. :func:`classify_mn_valence` wraps it for HyperSpy signals and builds
the result signal; :mod:`.maps` derives maps from that result.
"""

from __future__ import annotations

import threading
import uuid
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._docstrings import share_parameters
from .blocks import in_memory_blocks, navigation_chunks
from .decisions import (
    EDGE_MIN_SNR,
    WEAK_EDGE_FLAG,
    out_of_range,
    snr_threshold,
    spectrum_range_flags,
    thick_sample_condition,
    warn_out_of_range,
)
from .decisions._range import median_step
from .maps import dask_compute, search_range, warn_if_nothing_found
from .model import (
    BROAD_RESOLUTION_EV,
    DEFAULT_MODEL,
    FRACTIONS_MODEL,
    ONE_EV_DISPERSION,
    WEAK_CONTRAST,
    WEAK_MODEL,
    MnValenceModel,
    default_model_path,
    load_model,
    resolve_threads,
)
from .preprocessing import (
    preprocess,
    single_threaded_blas,
)
from .results import result_signal
from .signal_checks import (
    check_arguments,
    check_background_window,
    check_energy_range,
    check_resolution,
    check_signal,
    check_window,
    energy_axis,
)

__all__ = [
    "N_OUT",
    "TASKS",
    "classify_mn_valence",
    "classify_spectra",
    "onnx_batch",
    "run_task",
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
    weak_model: str | MnValenceModel | None = None,
    weak_below: float = WEAK_CONTRAST,
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
    weak_model : str, MnValenceModel or None
        A second classifier for weak edges (``"weak"``): spectra whose measured L3
        height over the background (``Preprocessed.l3_over_background``) is below
        ``weak_below`` are read by it, every other one by ``model``, from one
        preprocessing; their range flags carry bit 16. ``None``: ``model`` reads all.
    weak_below : float
        The measured L3/background below which ``weak_model`` reads
        (:data:`~hyperspy_mnvalence.model.WEAK_CONTRAST`).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(..., N_OUT)``: probabilities of Mn2+, Mn3+, Mn4+, their
        ensemble standard deviations, the L3 peak energy, the reason code (0: valid;
        see ``preprocessing.REASONS``), the number of channels replaced as spikes and
        the out-of-range flags of the spectrum (bits 1, 2 and 4 of
        ``decisions.RANGE_FLAGS``; bit 16 where ``weak_model`` read it).
        Probabilities, spread and peak are NaN where the spectrum is not valid.
    """
    m = load_model(model, name=model_name)
    weak = None if weak_model is None else load_model(weak_model)
    if weak is not None and weak.preprocessing != m.preprocessing:
        raise ValueError(
            f"The weak-edge model {weak.path.name} preprocesses spectra differently from "
            f"{m.path.name}; both read the same preprocessed spectra, so give models "
            "with the same preprocessing (or no weak_model)."
        )
    per_call = onnx_batch(m, batch_size)
    spectra = np.asarray(spectra)
    lead = spectra.shape[:-1]
    flat = spectra.reshape(-1, spectra.shape[-1])
    n = flat.shape[0]
    out = np.full((n, N_OUT), np.nan, np.float32)
    batch_size = max(int(batch_size), 1)
    starts = range(0, n, batch_size)
    n_threads = resolve_threads(n_threads, len(starts))

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
        low = np.zeros_like(ok)
        if weak is not None:
            low = ok & (pre.l3_over_background < weak_below)  # weak edges: the specialist
            block[low, 9] += WEAK_EDGE_FLAG
        # onnxruntime runs one thread per call, so batches preprocess and infer side
        # by side (measured, 2 cores, fcn_lite: 0.70 -> 0.60 CPU s per 16k spectra)
        for net, rows in ((m, ok & ~low), (weak, low)):
            if np.any(rows):
                probs, spread = net.predict(pre.x[rows], batch_size=per_call, n_threads=1)
                block[rows, 0:3] = probs
                block[rows, 3:6] = spread
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


# ---------------------------------------------------------------------------------------
# HyperSpy layer
# ---------------------------------------------------------------------------------------


#: The two tasks a model is made for: the public function of each, its shipped model
#: and the title of its result.
TASKS = {
    "classification": ("classify_mn_valence", DEFAULT_MODEL, "Mn valence probability"),
    "fractions": ("decompose_mn_valence", FRACTIONS_MODEL, "Mn valence fractions"),
}


@share_parameters
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
):
    """Probability that the Mn in each pixel is Mn2+, Mn3+ or Mn4+.

    Works for any energy calibration, dispersion (resampled to the model's 0.1 eV
    grid) and uniform or non-uniform energy axis: the Mn L3 white line is located in
    every spectrum and the background is fitted on its own pre-edge.

    Parameters
    ----------
    {signal_parameters}
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
        resolution is given), ``"weak"`` for five networks trained on weak edges only
        (L3 2-5 % above the background; ``mnv.model_card("weak")``), or a retrained
        ``.onnx`` model. When no model is given and the default reads, the pixels whose
        measured L3/background (``preprocess(...).l3_over_background``) is below 4.9 %
        (:data:`~hyperspy_mnvalence.model.WEAK_CONTRAST`) are read by ``"weak"``, which
        reads them several points better (range flag 16); ``model="acquisition"`` reads
        every pixel with the default. The speed of each is in ``benchmarks/RESULTS.md``.
    {run_parameters}
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
    return run_task(
        s,
        "classification",
        energy_window=energy_window,
        background=background,
        background_window=background_window,
        model=model,
        batch_size=batch_size,
        min_snr=min_snr,
        show_progressbar=show_progressbar,
        lazy_output=lazy_output,
        remove_spikes=remove_spikes,
        low_loss=low_loss,
        resolution_eV=resolution_eV,
    )


def run_task(
    s,
    task: str,
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
    deconvolved_out: list | None = None,
):
    """Run a model of ``task`` over a signal: what :func:`classify_mn_valence` and
    :func:`~hyperspy_mnvalence.decompose_mn_valence` share.

    Checks the inputs, deconvolves with ``low_loss``, picks the model (the task's
    shipped one, or a specialist for a low loss, a coarse ``resolution_eV`` or 1 eV
    per channel), runs the kernel eagerly or block by block, warns once about any
    condition out of range and builds the result signal (:mod:`.results`).

    Parameters
    ----------
    s : hyperspy.signal.BaseSignal
    task : {"classification", "fractions"}
    deconvolved_out : list, optional
        With ``low_loss``, the deconvolved signal is appended to it (the command line's
        white-line ratio reads the same spectra).
    energy_window, background, background_window, model, batch_size, min_snr, \
show_progressbar, lazy_output, remove_spikes, low_loss, resolution_eV
        As for :func:`classify_mn_valence`.

    Returns
    -------
    hyperspy.signal.BaseSignal
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    _, model_name, title = TASKS[task]
    check_signal(s)
    check_arguments(
        background=background,
        model=model,
        batch_size=batch_size,
        min_snr=min_snr,
        show_progressbar=show_progressbar,
        lazy_output=lazy_output,
    )
    energy_window = check_window("energy_window", energy_window)
    background_window = check_window("background_window", background_window)
    resolution_eV = check_resolution(resolution_eV)
    t_over_lambda = spikes_before = None
    if low_loss is not None:
        s, t_over_lambda, spikes_before, fwhm = _deconvolve(s, low_loss, bool(remove_spikes))
        if resolution_eV is None:
            resolution_eV = fwhm
        if deconvolved_out is not None:
            deconvolved_out.append(s)
    energy = energy_axis(s)  # (the deconvolved spectra keep the core loss's axis)
    weak = None
    if model is None and task == "classification":
        model = _specialist(low_loss is not None, resolution_eV, energy)
        if model is None:
            # the default reads; weak edges go to the weak-edge model (rule
            # weak_contrast_route: selection_outcome.json)
            weak = str(default_model_path(WEAK_MODEL))  # loaded where it reads
    m = load_model(model, name=model_name)
    if (m.metadata.get("training") or {}).get("smoke"):
        warnings.warn(
            f"{m.path.name} is a smoke-test model (a tiny pipeline check, trained for "
            "seconds): its valences mean nothing; train a real model for data.",
            UserWarning,
            stacklevel=3,
        )
    if m.task != task:
        raise ValueError(
            f"The model {m.path.name} is a {m.task!r} model, not a {task!r} model: use "
            f"{TASKS.get(m.task, ('the function made for it',))[0]} with it, or "
            "model=None for the shipped one."
        )
    search = energy_window or search_range(m.preprocessing)  # where the L3 edge is looked for
    units = str(getattr(s.axes_manager.signal_axes[0], "units", "") or "")
    check_energy_range(energy, search, energy_window, units)
    if background_window is not None and background not in ("none", False):
        check_background_window(
            background_window, energy, search, float(m.preprocessing["energy_step_eV"])
        )
    if show_progressbar is None:
        from hyperspy.defaults_parser import preferences

        show_progressbar = bool(preferences.General.show_progressbar)
    lazy = bool(s._lazy) if lazy_output is None else bool(lazy_output)
    kwargs = dict(
        model_name=model_name,
        background=background,
        background_window=background_window,
        energy_window=energy_window,
        batch_size=batch_size,
        min_snr=min_snr,
        remove_spikes=bool(remove_spikes),
    )
    if weak is not None:
        kwargs.update(weak_model=weak, weak_below=WEAK_CONTRAST)
    model_ref = None if model is None else str(m.path)
    stack = _compute(s, energy, m, model_ref, kwargs, lazy, show_progressbar)
    if not lazy:
        warn_if_nothing_found(stack[7], search, m.preprocessing)
    conditions = out_of_range(
        energy,
        m.preprocessing,
        m.metadata,
        None if lazy else stack[6],
        None if lazy else stack[7],
        resolution_eV=resolution_eV,
    )
    if low_loss is None and not (lazy or s._lazy):
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
    parameters = {
        "background": str(background),
        "background_window": list(background_window) if background_window else None,
        "energy_window": list(energy_window) if energy_window else None,
        "min_snr": float(min_snr),
        # the threshold applied at the input's dispersion (decisions.snr_threshold)
        "edge_snr_threshold": _applied_threshold(min_snr, energy),
        "remove_spikes": bool(remove_spikes),
        "low_loss": low_loss is not None,
        "resolution_eV": resolution_eV,
        # weak edges read by the weak-edge model (range flag 16), or None
        "weak_edge_model": None
        if weak is None
        else {"model": WEAK_MODEL, "below_l3_over_background": WEAK_CONTRAST},
    }
    return result_signal(
        stack,
        s,
        m,
        title=title,
        lazy=lazy,
        parameters=parameters,
        spikes_before=spikes_before,
        t_over_lambda=t_over_lambda,
    )


def _applied_threshold(min_snr: float, energy: np.ndarray) -> float:
    """``min_snr`` as the edge decision applies it at the input's median dispersion."""
    disp = median_step(energy)
    return snr_threshold(float(min_snr), None if not np.isfinite(disp) else disp)


def _deconvolve(s, low_loss, remove_spikes: bool):
    """``s`` Fourier-ratio deconvolved with ``low_loss``; its t/lambda map, the spikes
    replaced first and the zero-loss FWHM it was deconvolved with (None if unknown)."""
    from .lowloss import FWHM_KEY, SPIKES_KEY, deconvolve_plural_scattering

    s, t_over_lambda = deconvolve_plural_scattering(s, low_loss, remove_spikes)
    spikes_before = s.metadata.get_item(SPIKES_KEY) if remove_spikes else None
    fwhm = s.metadata.get_item(FWHM_KEY)
    ok = fwhm is not None and np.isfinite(fwhm) and fwhm > 0
    return s, t_over_lambda, spikes_before, float(fwhm) if ok else None


def _specialist(deconvolved: bool, resolution_eV: float | None, energy: np.ndarray):
    """The shipped classifier for these spectra when the user named none: ``"thin"``
    after a low-loss deconvolution, ``"broad"`` at a known coarse resolution, ``"1ev"``
    at 1 eV per channel, else None (the default)."""
    if deconvolved:
        return "thin"  # spectra made thin: the model trained on thin ones
    if resolution_eV is not None and resolution_eV >= BROAD_RESOLUTION_EV:
        return "broad"  # a coarse resolution: the model trained at it
    if ONE_EV_DISPERSION[0] <= median_step(energy) <= ONE_EV_DISPERSION[1]:
        return "1ev"  # 1 eV per channel: the model trained on that sampling
    return None


def _compute(s, energy, m, model_ref, kwargs: dict, lazy: bool, show_progressbar: bool):
    """The kernel's values for every spectrum of ``s``, their axis first: eager in
    batches, or block by block through dask (a lazy input or a lazy result)."""
    if not (s._lazy or lazy):
        res = classify_spectra(
            np.asarray(s.data), energy, model=m, show_progressbar=show_progressbar, **kwargs
        )
        return np.moveaxis(res, -1, 0)
    import dask.array as da

    nav_shape = None
    if s._lazy:
        data = s.data
    else:
        # runs of the eager path's batches, views of the array (no copy)
        data, nav_shape = in_memory_blocks(s.data, kwargs["batch_size"])
    if data.ndim == 1:
        data = data[None]
    if nav_shape is None:
        data = navigation_chunks(data)
    # a name of its own for every call: the key of the block cache, which serves the
    # slices of this one result (probabilities, spread, peak, reason) computed one after
    # the other; never another call's data that happen to share a dask name, a
    # retrained model file or other settings
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
        (res,) = dask_compute(res, show_progressbar=show_progressbar)
        return np.moveaxis(res, -1, 0)
    return da.moveaxis(res, -1, 0)
