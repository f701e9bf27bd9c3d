"""The preprocessing pipeline: raw spectra to the network's input and per-pixel decisions.

:func:`preprocess` runs, in order: the finiteness check, resampling to the model's grid
(:func:`~hyperspy_mnvalence.preprocessing.to_uniform_grid`), the L3 search
(:func:`~hyperspy_mnvalence.preprocessing.locate_l3`), the background
(:func:`~hyperspy_mnvalence.preprocessing.subtract_background`), the edge decision
(:func:`~hyperspy_mnvalence.decisions.edge_present`), and the window cut and
normalisation. Only the channels each spectrum needs are processed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .decisions._edge import (
    EDGE_MIN_SNR,
    EDGE_WINDOWS_EV,
    decide_edges,
    edge_features,
    noise_lag,
    raw_channel_noise,
)
from .decisions._spikes import find_spikes
from .preprocessing._background import subtract_background
from .preprocessing._filters import gauss_radius
from .preprocessing._l3 import locate_l3
from .preprocessing._params import (
    DEFAULT_PREPROCESSING,
    channels_between,
    check_energy,
    pre_edge_margin,
    read_range,
)
from .preprocessing._resample import SINGLE_DTYPES, to_uniform_grid
from .preprocessing._window import extract_window, normalise

__all__ = ["Preprocessed", "preprocess"]

_logger = logging.getLogger(__name__)


#: Spectra whose largest value (in a sample of the channels read) lies outside
#: ``2**-SAFE_EXPONENT ... 2**SAFE_EXPONENT`` are scaled by a power of two first: squares
#: and sums of squares in single precision then neither overflow nor underflow.
SAFE_EXPONENT = 40


def _rescale_extremes(data: np.ndarray, read: slice) -> np.ndarray:
    """``data`` with rows of extreme magnitude scaled by a power of two (a copy if any).

    Every step after is invariant to a spectrum's intensity scale, so a map multiplied by
    1e17 or 1e-30 gives the same decisions and network input as the map itself.
    """
    if data.dtype.kind != "f" or data.shape[0] == 0:
        return data
    mag = np.abs(data[:, read][:, ::8]).max(axis=1, initial=0).astype(np.float64)
    big = 2.0**SAFE_EXPONENT
    bad = (mag > big) | ((mag > 0) & (mag < 1.0 / big))
    if not bad.any():
        return data
    out = data.astype(np.promote_types(data.dtype, np.float32))  # a copy
    k = -np.round(np.log2(mag[bad]))
    out[bad] *= np.exp2(k)[:, None].astype(out.dtype)
    _logger.debug("%d spectra of extreme magnitude scaled by powers of two", int(bad.sum()))
    return out


@dataclass
class Preprocessed:
    """Output of :func:`preprocess`.

    Attributes
    ----------
    x : numpy.ndarray
        Model input, float32, shape ``(n, n_window)``.
    valid : numpy.ndarray
        Boolean, shape ``(n,)``: the spectrum has a Mn L2,3 edge and finite values.
    reason : numpy.ndarray
        Integer code per spectrum (see ``REASONS``).
    peak_eV : numpy.ndarray
        L3 peak energy per spectrum in the input calibration (NaN where invalid).
    params : dict
        The preprocessing parameters used.
    n_spikes : numpy.ndarray
        Channels replaced as spikes or hot channels per spectrum.
    edge_snr : numpy.ndarray
        The edge test's L3 height over the noise of the smoothed spectrum (NaN where
        not tested); ``valid`` needs it above ``min_snr`` and the shape tests passed.
    l3_over_background : numpy.ndarray
        The measured L3 height above the fitted background over the background at the
        L3 peak (the smoothed height the edge test reads; ``inf`` where no background
        is left under the edge, e.g. background-subtracted input; NaN where not
        tested): the acquisition's edge contrast, whatever the dose.
    """

    x: np.ndarray
    valid: np.ndarray
    reason: np.ndarray
    peak_eV: np.ndarray
    params: dict = field(default_factory=dict)
    n_spikes: np.ndarray | None = None
    edge_snr: np.ndarray | None = None
    l3_over_background: np.ndarray | None = None


def _bridge_gaps(spectra: np.ndarray, read: slice, rows: np.ndarray, e: np.ndarray):
    """Non-finite channels of ``rows`` bridged linearly over the channels ``read``.

    A dead or saturated channel far from a spectrum's edge must not cost the pixel (a
    dead detector column used to blank a whole map): the gaps are bridged so that the
    resampling and the L3 search run, and :func:`preprocess` then rejects only the rows
    whose own span holds a gap. Rows with no finite channel in ``read`` stay zero and
    are rejected. A linear bridge cannot raise a peak above its ends.

    Returns
    -------
    data : numpy.ndarray
        A copy of ``spectra`` with the bridged rows (and zeros for hopeless ones); the
        channels outside ``read`` are left as they are (nothing reads them).
    gaps : tuple of numpy.ndarray
        The bridged rows, where their gaps are (over the channels ``read``), and which of
        them had a finite channel there at all.
    """
    dtype = np.promote_types(spectra.dtype, np.float32)
    data = spectra.astype(dtype)  # a copy
    part = data[rows, read]
    good = np.isfinite(part)
    usable = good.any(axis=1)
    m = part.shape[1]
    idx = np.arange(m)
    prev = np.maximum.accumulate(np.where(good, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(good, idx, m)[:, ::-1], axis=1)[:, ::-1]
    p0, n0 = np.clip(prev, 0, m - 1), np.clip(nxt, 0, m - 1)
    r = np.arange(part.shape[0])[:, None]
    e_read = e[read]
    span = e_read[n0] - e_read[p0]
    w = np.where(span != 0, (e_read[None, :] - e_read[p0]) / np.where(span != 0, span, 1), 0.0)
    w = np.where(prev < 0, 1.0, np.where(nxt >= m, 0.0, w))
    fill = (1 - w) * np.nan_to_num(part[r, p0]) + w * np.nan_to_num(part[r, n0])
    part = np.where(good, part, fill)
    part[~usable] = 0.0
    data[rows, read] = part
    return data, (rows, ~good, usable)


def preprocess(
    spectra: np.ndarray,
    energy: np.ndarray,
    *,
    params: dict | None = None,
    background: str | bool = "auto",
    background_window: tuple[float, float] | None = None,
    energy_window: tuple[float, float] | None = None,
    center_offset_eV: np.ndarray | float | None = None,
    min_snr: float = EDGE_MIN_SNR,
    check_edge: bool = True,
    remove_spikes: bool = True,
) -> Preprocessed:
    """Turn raw spectra into the model's input, whatever their calibration.

    Parameters
    ----------
    spectra : numpy.ndarray
        Shape ``(n, n_channels)`` (a single spectrum of shape ``(n_channels,)`` is
        accepted too).
    energy : numpy.ndarray
        Energy axis in eV, shape ``(n_channels,)``: uniform at any dispersion, or
        non-uniform but monotonic.
    params : dict, optional
        Preprocessing parameters (a model's metadata); defaults to
        ``DEFAULT_PREPROCESSING``.
    background : {"auto", "power_law", "constant", "none"} or bool
        Background subtraction (``False``/``"none"`` for background-subtracted data).
    background_window : tuple of float, optional
        Fixed absolute pre-edge fit window in eV; by default it is placed before each
        spectrum's own onset.
    energy_window : tuple of float, optional
        Absolute energies between which to look for the L3 edge (default: the model's
        search range, nominal 640 eV +-15 eV and more).
    center_offset_eV : float or numpy.ndarray, optional
        Shift of the cut window relative to the L3 peak (training augmentation;
        inference leaves it at 0).
    min_snr : float
        Threshold of the edge decision on the L3 height over the noise of the smoothed
        spectrum (:func:`~hyperspy_mnvalence.decisions.decide_edges`); the default
        (:data:`~hyperspy_mnvalence.decisions.EDGE_MIN_SNR`, 7.0) is calibrated on the
        acquisition simulator's negatives; from 0.75 eV per channel on it is scaled to
        8/7 of itself (:func:`~hyperspy_mnvalence.decisions.snr_threshold`).
    check_edge : bool
        If False, every finite non-constant spectrum counts as valid (training data).
    remove_spikes : bool
        Replace cosmic-ray spikes and hot channels first, in the channels read (see
        :func:`~hyperspy_mnvalence.decisions.remove_spikes`: a channel many robust
        sigmas above both neighbours and narrower than an edge can be at the
        dispersion; edges are never touched). The count per spectrum is in
        ``Preprocessed.n_spikes``.

    Returns
    -------
    Preprocessed
    """
    p = dict(DEFAULT_PREPROCESSING)
    if params:
        p.update({k: v for k, v in params.items() if k in p})
    step = float(p["energy_step_eV"])
    w0, w1 = p["window_eV"]
    n_win = int(round((w1 - w0) / step))
    spectra = np.asarray(spectra)
    if spectra.ndim == 1:
        spectra = spectra[None, :]
    if spectra.ndim != 2:
        raise ValueError("spectra must have shape (n_spectra, n_channels)")
    n = spectra.shape[0]
    search = tuple(energy_window) if energy_window is not None else tuple(p["search_range_eV"])
    # keep what the edge, its pre-edge and the window can use
    lo, hi = read_range(p, search, background_window)
    # Only the channels the resampling reads must be finite (a NaN far from the edge,
    # such as the padding of a drift correction, does not matter): those between lo
    # and hi, plus two input or grid steps for the interpolation and box averaging.
    e = check_energy(energy, spectra.shape[1])
    margin = 2.0 * max(step, float(np.max(np.abs(np.diff(e)))))
    read = channels_between(e, lo - margin, hi + margin)
    # one pass: a row sums to a finite value iff its values are finite (short of
    # overflow, which the exact test of the rows that fail settles)
    acc = np.float64 if spectra.dtype == np.float16 else None  # float16 sums overflow
    finite = np.isfinite(spectra[:, read].sum(axis=1, dtype=acc))
    gaps = None  # rows with non-finite channels, bridged for now (see _bridge_gaps)
    if not finite.all():
        finite[~finite] = np.all(np.isfinite(spectra[~finite, read]), axis=1)
    if finite.all():
        data = spectra
    else:
        data, gaps = _bridge_gaps(spectra, read, np.nonzero(~finite)[0], e)
        finite[gaps[0]] = True  # until the rows' own spans are known (below)
    data = _rescale_extremes(data, read)
    # the input's dispersion (eV per channel) where the edge is read
    disp = float(np.median(np.abs(np.diff(e[read])))) if read.stop - read.start > 1 else step
    n_spikes = np.zeros(n, dtype=np.int32)
    if remove_spikes and n:
        dtype = np.float32 if data.dtype in SINGLE_DTYPES else np.float64
        part = data[:, read]
        if part.dtype != dtype:
            part = part.astype(dtype)
        part, n_spikes, _ = find_spikes(part, disp)
        if n_spikes.any():
            data = data.astype(np.promote_types(data.dtype, dtype))  # a copy
            data[:, read] = part
    y, grid = to_uniform_grid(data, energy, step, (lo, hi))
    peak = locate_l3(y, grid, search)
    off = np.zeros(n) if center_offset_eV is None else np.broadcast_to(center_offset_eV, (n,))
    # the grid channels each row reads, relative to its L3 peak: from its background fit
    # (or its window) to the end of its edge tests (or its window) and the smoothing
    lo_ch = (
        min(-int(round(pre_edge_margin(p) / step)), int(np.floor((w0 + off.min(initial=0)) / step)))
        - 1
    )
    reach = max(w[1] for w in EDGE_WINDOWS_EV.values())
    hi_ch = max(int(round(reach / step)), int(np.ceil((w1 + off.max(initial=0)) / step)))
    hi_ch += gauss_radius(0.3 / step) + 2
    # the raw channels inside the grid are contiguous (monotonic axis): slice, not mask
    inside = channels_between(e, grid[0], grid[-1])
    used = data[:, inside]
    # constant rows: only those constant on every 8th channel can be (exact, an eighth
    # of the reads for the rest)
    sample = used[:, ::8]
    constant = sample.min(axis=1) == sample.max(axis=1)
    if constant.any():
        maybe = used[constant]
        constant[constant] = maybe.min(axis=1) == maybe.max(axis=1)
    if gaps is not None:
        # a bridged row counts as non-finite only where a gap lies in what it reads
        rows_g, bad, usable = gaps
        if background_window is None:
            span_lo = grid[np.clip(peak[rows_g] + lo_ch, 0, grid.size - 1)]
            span_hi = grid[np.clip(peak[rows_g] + hi_ch, 0, grid.size - 1)]
        else:  # a fixed background window: the whole grid is read
            span_lo = np.full(rows_g.size, grid[0])
            span_hi = np.full(rows_g.size, grid[-1])
        pad = 2.0 * max(step, disp)  # the resampling reads a channel or two beyond
        e_read = e[read][None, :]
        near = (e_read >= (span_lo - pad)[:, None]) & (e_read <= (span_hi + pad)[:, None])
        hit = ~usable | (bad & near).any(axis=1)
        finite[rows_g[hit]] = False
    reason = np.zeros(n, dtype=np.int8)
    reason[~finite] = 1
    reason[finite & constant] = 2
    edge_snr = np.full(n, np.nan)
    features: dict[str, np.ndarray] = {}
    has_edge = np.ones(n, dtype=bool)
    contrast = np.full(n, np.nan)
    x = np.empty((n, n_win), dtype=np.float32)

    def finish(rows, yy, gg, pk):
        # background, edge test and window of some rows, in double precision (log fit)
        raw = np.asarray(yy, np.float64)
        yy = subtract_background(raw, gg, pk, background, window=background_window)
        if check_edge:
            feats = edge_features(yy, grid, pk, lag_eV=noise_lag(disp), dispersion=disp)
            for k, v in feats.items():
                features.setdefault(k, np.full(n, np.nan))[rows] = v
            # the edge's contrast: its height over the background fitted under the peak
            at = np.arange(len(pk))
            bg = raw[at, pk] - yy[at, pk]
            with np.errstate(divide="ignore", invalid="ignore"):
                contrast[rows] = np.where(bg > 0, (feats["h3"] - feats["pre"]) / bg, np.inf)
        start = pk + np.round((w0 + off[rows]) / step).astype(int)
        x[rows] = normalise(extract_window(yy, start, n_win))

    # Each row is read only from its background window to the end of its edge tests
    # (+22 eV and the smoothing radius) or of its cut window. Rows whose span lies
    # inside the grid are processed as that segment alone (exactly the same numbers,
    # a fraction of the work); the others, near a grid end, from that end to the
    # farthest channel any of them reads (the same numbers as whole rows); lo_ch and
    # hi_ch, the span each row reads around its peak, are set above.
    inner = (peak + lo_ch >= 0) & (peak + hi_ch <= grid.size)
    if background_window is not None:
        inner[:] = False
    rows = np.nonzero(inner)[0]
    if rows.size:
        # each row's segment: a window of hi_ch - lo_ch channels from peak + lo_ch
        first = peak[rows] + lo_ch
        segs = np.lib.stride_tricks.sliding_window_view(y, hi_ch - lo_ch, axis=1)[rows, first]
        grids = np.lib.stride_tricks.sliding_window_view(grid, hi_ch - lo_ch)[first]
        finish(rows, segs, grids, np.full(rows.size, -lo_ch))
    rows = np.nonzero(~inner)[0]
    if rows.size and background_window is None:
        low = peak[rows] + lo_ch < 0  # the others reach past the grid's end
        for group, at_start in ((rows[low], True), (rows[~low], False)):
            if group.size:
                if at_start:
                    s0, s1 = 0, min(grid.size, int(peak[group].max()) + hi_ch)
                else:
                    s0, s1 = int(peak[group].min()) + lo_ch, grid.size
                finish(group, y[group, s0:s1], grid[s0:s1], peak[group] - s0)
    elif rows.size:  # a fixed background window: whole rows
        finish(rows, y[rows], grid, peak[rows])
    if check_edge and n:
        # each spectrum's noise at the tested scale, made precise over the batch, and the
        # calibrated decision (decisions.decide_edges)
        ok = reason == 0
        has_edge[:] = False
        has_edge[ok], snr = decide_edges(
            {k: v[ok] for k, v in features.items()},
            min_snr,
            # every row's (a view, not a copy of the rows kept), then those kept
            raw_channel_noise(used)[ok],
            grid[peak[ok]],
            search,
            disp,
        )
        edge_snr[ok] = snr
    reason[(reason == 0) & ~has_edge] = 3
    valid = reason == 0
    x[~valid] = 0.0
    peak_eV = np.where(valid, grid[peak], np.nan)
    return Preprocessed(
        x=x,
        valid=valid,
        reason=reason,
        peak_eV=peak_eV,
        params=p,
        n_spikes=n_spikes,
        edge_snr=edge_snr,
        l3_over_background=np.where(reason == 0, contrast, np.nan),
    )
