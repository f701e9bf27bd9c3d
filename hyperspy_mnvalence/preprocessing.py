"""Preprocessing of Mn L2,3 spectra: one implementation for training and inference.

Every function here is pure numpy (scipy for filters) and works on a 2D array of
spectra ``(n_spectra, n_channels)`` sharing one energy axis. Nothing depends on the
absolute energy calibration: the Mn L3 white line is located in each spectrum, a
power-law background is fitted on the pre-edge *relative to that position*, and a fixed
window around it is cut out on the model's energy grid.

The chain (:func:`preprocess`) is:

1. :func:`to_uniform_grid` - resample any axis (uniform at any dispersion, or
   non-uniform but monotonic) to the model's grid (0.1 eV per channel), with box
   averaging when the input is finer than the grid, as one linear operator.
2. :func:`locate_l3` - find the L3 white line with a difference-of-Gaussians filter,
   which ignores the smooth background, then refine it on the smoothed spectrum.
3. :func:`subtract_background` - closed-form log-log least-squares power-law fit on a
   pre-edge window that ends before the onset; a constant where the pre-edge is short,
   flat, or not positive (published, already background-subtracted spectra).
4. :func:`edge_present` - flags spectra with no Mn L2,3 edge (vacuum, other elements,
   zeros, NaN) so they are never given a confident guess.
5. :func:`extract_window` - cut the model's window around the L3 peak (padding with
   edge values where the data are shorter).
6. :func:`normalise` - min-max to [0, 1], then subtract the mean (Chatzidakis & Botton).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import fft, ndimage

__all__ = [
    "DEFAULT_PREPROCESSING",
    "single_threaded_blas",
    "Preprocessed",
    "edge_present",
    "extract_window",
    "locate_l3",
    "normalise",
    "overlaps_search_range",
    "preprocess",
    "resampling_matrix",
    "smoothed_noise",
    "channel_noise",
    "subtract_background",
    "to_uniform_grid",
]

#: Preprocessing parameters of the shipped model; stored in the ONNX metadata, which
#: takes precedence when a model is loaded.
DEFAULT_PREPROCESSING: dict = {
    "energy_step_eV": 0.1,
    "window_eV": [-10.0, 20.0],  # relative to the L3 peak
    "search_range_eV": [618.0, 672.0],  # nominal 640 eV +-15 eV, plus the Titan's +5 eV
    "onset_before_peak_eV": 3.0,
    "background_width_eV": 15.0,
    "background_gap_eV": 1.0,
    "normalisation": "minmax_meansub",
    "alignment": "l3_peak",
}

# Reason codes for spectra that are not classified.
REASONS = {
    0: "ok",
    1: "non-finite values (NaN or Inf) in the energies used",
    2: "all zero or constant over the energies used",
    3: "no Mn L2,3 edge found",
}


def overlaps_search_range(energy: np.ndarray, search_range, margin: float = 5.0) -> bool:
    """Whether an energy axis reaches at least ``margin`` eV into the edge's search range.

    Parameters
    ----------
    energy : numpy.ndarray
        Energies in eV.
    search_range : tuple of float
        ``(lo, hi)`` in eV where the L3 edge is looked for.
    margin : float
        eV of overlap needed at either end.

    Returns
    -------
    bool
    """
    lo, hi = (float(v) for v in search_range)
    return float(np.max(energy)) >= lo + margin and float(np.min(energy)) <= hi - margin


def _pre_edge_margin(params: dict) -> float:
    """eV below the L3 peak that the pre-edge background fit reads."""
    p = params
    return p["background_width_eV"] + p["onset_before_peak_eV"] + p["background_gap_eV"]


def _read_range(params: dict, search, background_window=None) -> tuple[float, float]:
    """The energies (eV) :func:`preprocess` reads for an L3 peak searched in ``search``.

    From the pre-edge fit (or the window, if it reaches further) below the search range
    to the end of the window, plus 2 eV, above it; down to a fixed background window.
    """
    w0, w1 = params["window_eV"]
    lo = search[0] - max(_pre_edge_margin(params), -w0)
    hi = search[1] + w1 + 2
    if background_window is not None:
        lo = min(lo, background_window[0])
    return lo, hi


def _channels_between(e: np.ndarray, lo: float, hi: float) -> slice:
    """The channels of a monotonic axis with energies in ``[lo, hi]``, as a slice."""
    idx = np.nonzero((e >= lo) & (e <= hi))[0]
    return slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0)


def _check_energy(energy: np.ndarray, n_channels: int) -> np.ndarray:
    energy = np.asarray(energy, dtype=np.float64)
    if energy.ndim != 1 or energy.size != n_channels:
        raise ValueError(
            f"The energy axis has {energy.size} values but the spectra have {n_channels} "
            "channels; pass one energy value per channel."
        )
    if not np.all(np.isfinite(energy)):
        raise ValueError("The energy axis contains NaN or Inf values; fix its calibration.")
    d = np.diff(energy)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError(
            "The energy axis is not monotonic; a spectrum needs strictly increasing (or "
            "decreasing) energies. Sort the channels or fix the axis before classifying."
        )
    return energy


def resampling_matrix(energy: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear operator that resamples spectra from ``energy`` onto ``grid``.

    Linear interpolation; where the input is sampled more finely than the grid, each
    output is the mean of the interpolant at several points spread over one grid step
    (a box average, for anti-aliasing), so noise is averaged rather than picked.
    Both are exact for linear functions. Points outside the input range take the
    edge values.

    Parameters
    ----------
    energy : numpy.ndarray
        Increasing input energies, shape ``(n_in,)``; need not be uniform.
    grid : numpy.ndarray
        Uniform output energies, shape ``(n_out,)``.

    Returns
    -------
    numpy.ndarray
        Matrix ``M`` of shape ``(n_in, n_out)`` such that ``spectra @ M`` resamples.
    """
    energy = np.asarray(energy, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    n_in = energy.size
    step = grid[1] - grid[0] if grid.size > 1 else 1.0
    ratio = step / float(np.median(np.diff(energy)))
    k = 1 if ratio <= 1.5 else 2 * int(np.ceil(ratio)) + 1
    offs = np.linspace(-step / 2, step / 2, k) if k > 1 else np.zeros(1)
    pts = np.clip((grid[:, None] + offs[None, :]).ravel(), energy[0], energy[-1])
    hi = np.clip(np.searchsorted(energy, pts, side="right"), 1, n_in - 1)
    lo = hi - 1
    w_hi = np.clip((pts - energy[lo]) / (energy[hi] - energy[lo]), 0.0, 1.0)
    cols = np.repeat(np.arange(grid.size), k)
    m = np.zeros((n_in, grid.size))
    np.add.at(m, (lo, cols), (1.0 - w_hi) / k)
    np.add.at(m, (hi, cols), w_hi / k)
    return m


def to_uniform_grid(
    spectra: np.ndarray,
    energy: np.ndarray,
    step: float = 0.1,
    energy_range: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample spectra to a uniform grid of ``step`` eV.

    Parameters
    ----------
    spectra : numpy.ndarray
        Shape ``(n, n_channels)``.
    energy : numpy.ndarray
        Monotonic energy axis, shape ``(n_channels,)``, uniform or not.
    step : float
        Output step in eV.
    energy_range : tuple of float, optional
        Limit the output grid to this range (intersected with the data's range).

    Returns
    -------
    resampled : numpy.ndarray
        Shape ``(n, n_out)``: float32 for single-precision (or 8/16-bit integer)
        input, float64 otherwise.
    grid : numpy.ndarray
        The output energies, multiples of ``step``.
    """
    spectra = np.asarray(spectra)
    energy = _check_energy(energy, spectra.shape[-1])
    if energy[0] > energy[-1]:
        energy = energy[::-1]
        spectra = spectra[..., ::-1]
    lo, hi = energy[0], energy[-1]
    if energy_range is not None:
        lo, hi = max(lo, energy_range[0]), min(hi, energy_range[1])
    if hi - lo < 10 * step:
        raise ValueError(
            f"Only {hi - lo:.2f} eV of the spectrum lie in the range used to look for the "
            "Mn L2,3 edge; the energy range does not contain it."
        )
    start = np.ceil(lo / step - 1e-6) * step
    grid = start + step * np.arange(int(np.floor((hi - start) / step + 1e-6)) + 1)
    # single precision stays single (half the memory traffic; counts are exact in it)
    dtype = np.float32 if spectra.dtype in _SINGLE else np.float64
    blocks = _resampler(energy.tobytes(), grid.tobytes(), np.dtype(dtype).str)
    lead = spectra.shape[:-1]
    x = spectra.reshape(-1, spectra.shape[-1])
    first = 0
    if x.dtype != dtype:  # convert only the channels used
        first, last = blocks[0][2], max(b[3] for b in blocks)
        x = x[:, first:last].astype(dtype)
    out = np.empty((x.shape[0], grid.size), dtype)
    for j0, j1, r0, r1, m in blocks:
        np.matmul(x[:, r0 - first : r1 - first], m, out=out[:, j0:j1])
    return out.reshape(lead + (grid.size,)), grid


#: Input dtypes resampled in single precision.
_SINGLE = tuple(
    np.dtype(t) for t in (np.float16, np.float32, np.int8, np.uint8, np.int16, np.uint16)
)


@lru_cache(maxsize=32)
def _resampler(energy_bytes: bytes, grid_bytes: bytes, dtype: str = "<f8") -> tuple:
    """Resampling operator for one (energy axis, grid, dtype), built once, as bands.

    The operator is banded (each output reads a few neighbouring inputs), so it is
    stored as dense blocks: outputs ``j0:j1`` are ``x[:, r0:r1] @ m`` for each
    ``(j0, j1, r0, r1, m)`` returned. Dense products of these narrow bands run several
    times faster than a sparse product and read the input in place. Cached, so
    batches and dask blocks sharing an energy axis (every block of a spectrum image)
    reuse it.
    """
    energy = np.frombuffer(energy_bytes, dtype=np.float64)
    grid = np.frombuffer(grid_bytes, dtype=np.float64)
    m = resampling_matrix(energy, grid).astype(dtype)
    blocks = []
    for j0 in range(0, grid.size, _BAND):
        j1 = min(j0 + _BAND, grid.size)
        used = np.nonzero(np.any(m[:, j0:j1] != 0, axis=1))[0]
        r0, r1 = int(used[0]), int(used[-1]) + 1
        blocks.append((j0, j1, r0, r1, np.ascontiguousarray(m[r0:r1, j0:j1])))
    return tuple(blocks)


_blas_lock = threading.Lock()
_blas_users = [0, None]  # calls inside, their limiter


@lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def single_threaded_blas():
    """One BLAS thread inside the block, then the user's setting again.

    For work that runs preprocessing in several threads or dask workers: the
    resampling's band products are small, so BLAS threads would only spin and take
    the cores from the other batches (classification on 2 cores was about 1.7x
    slower). Concurrent blocks share one limit, lifted when the last one leaves.
    """
    with _blas_lock:
        if _blas_users[0] == 0:
            _blas_users[1] = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users[0] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users[0] -= 1
            if _blas_users[0] == 0:
                _blas_users[1].restore_original_limits()
                _blas_users[1] = None


#: Outputs per dense band of the resampling operator (fastest of 32-256 on 2 cores).
_BAND = 32


def _smooth(y: np.ndarray, sigma_ch: float) -> np.ndarray:
    return ndimage.gaussian_filter1d(y, sigma_ch, axis=-1, mode="nearest")


def _gauss_radius(sigma_ch: float) -> int:
    # scipy.ndimage.gaussian_filter1d's kernel radius for truncate=4
    return int(4.0 * float(sigma_ch) + 0.5)


@lru_cache(maxsize=32)
def _dog_kernel(step: float) -> tuple[np.ndarray, int]:
    """Kernel of the 0.6 eV - 3 eV difference of Gaussians and its radius.

    The two kernels are those of :func:`scipy.ndimage.gaussian_filter1d` (truncate 4),
    each normalised to sum 1, so filtering with this kernel equals
    ``_smooth(y, 0.6 / step) - _smooth(y, 3 / step)`` away from the row ends.
    """
    big = _gauss_radius(3.0 / step)
    kernel = np.zeros(2 * big + 1)
    for sigma, sign in ((0.6 / step, 1.0), (3.0 / step, -1.0)):
        r = _gauss_radius(sigma)
        x = np.arange(-r, r + 1)
        w = np.exp(-0.5 * (x / sigma) ** 2)
        kernel[big - r : big + r + 1] += sign * w / w.sum()
    return kernel, big


def _dog(y: np.ndarray, step: float, i0: int, i1: int) -> np.ndarray:
    """The 0.6 eV - 3 eV difference of Gaussians of each row at channels ``i0:i1``.

    Equals ``(_smooth(y, 0.6 / step) - _smooth(y, 3 / step))[:, i0:i1]`` (``"nearest"``
    row ends) up to rounding: the needed segment of each row, extended by the kernel
    radius with its edge values, is convolved by FFT, which costs a fraction of two
    wide direct filters or a dense matrix product.
    """
    kernel, r = _dog_kernel(float(step))
    # A circular convolution of length n >= the extended segment is exact at the
    # outputs kept (each reads only channels before it, none wrapped around); the
    # segment is gathered n wide, so the FFT needs no padded copy.
    n = fft.next_fast_len(i1 - i0 + 2 * r, real=True)
    idx = np.clip(np.arange(i0 - r, i0 - r + n), 0, y.shape[1] - 1)
    seg = y[:, idx]
    spec = fft.rfft(seg, n, axis=1)
    spec *= fft.rfft(kernel, n).astype(spec.dtype)  # single precision stays single
    return fft.irfft(spec, n, axis=1)[:, 2 * r : 2 * r + (i1 - i0)]


def _smooth_at(
    y: np.ndarray, local_idx: np.ndarray, first: np.ndarray, width: int, sigma_ch: float
) -> np.ndarray:
    """``_smooth(y, sigma_ch)`` evaluated only near a few channels of each row.

    Gathers channels ``first - R ... first + width + R`` of each row (clipped to the
    row, which is exactly the ``"nearest"`` extension), filters that short segment,
    and returns its values at ``local_idx`` (indices relative to ``first``). Every
    returned value equals the full-row filter's value at that channel, as long as the
    channel itself is inside the row.
    """
    r = _gauss_radius(sigma_ch)
    pos = np.clip(first[:, None] + np.arange(-r, width + r)[None, :], 0, y.shape[1] - 1)
    seg = _smooth(np.take_along_axis(y, pos, axis=1), sigma_ch)
    return np.take_along_axis(seg, local_idx + r, axis=1)


def locate_l3(
    y: np.ndarray,
    grid: np.ndarray,
    search_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Locate the Mn L3 white-line maximum in each spectrum.

    A difference-of-Gaussians filter (0.6 and 3 eV) responds to white lines and not to
    the smooth background; its maximum inside ``search_range`` gives the coarse position,
    which is refined as the maximum of the lightly smoothed spectrum within +-1.5 eV
    after removing a local linear trend.

    Parameters
    ----------
    y : numpy.ndarray
        Spectra on a uniform grid, shape ``(n, m)``.
    grid : numpy.ndarray
        The uniform energy grid, shape ``(m,)``.
    search_range : tuple of float, optional
        Energies between which to look (default ``DEFAULT_PREPROCESSING``).

    Returns
    -------
    numpy.ndarray
        Integer channel index of the L3 peak for each spectrum, shape ``(n,)``.
    """
    step = grid[1] - grid[0]
    lo, hi = search_range or DEFAULT_PREPROCESSING["search_range_eV"]
    i0 = int(np.searchsorted(grid, lo))
    i1 = int(np.searchsorted(grid, hi, side="right"))
    if i1 - i0 < 5:
        raise ValueError(
            f"The spectrum ({grid[0]:.1f}-{grid[-1]:.1f} eV) does not cover the range "
            f"{lo:.0f}-{hi:.0f} eV where the Mn L3 edge is searched for; the energy range "
            "does not contain the Mn L2,3 edge (or pass energy_window=(lo, hi) around it)."
        )
    n_ch = y.shape[1]
    # the difference of Gaussians is needed only inside the search range
    coarse = i0 + np.argmax(_dog(y, float(step), i0, i1), axis=1)
    # refine on the lightly smoothed spectrum, within +-1.5 eV
    r = int(round(1.5 / step))
    offs = np.arange(-r, r + 1)
    idx = np.clip(coarse[:, None] + offs[None, :], 0, n_ch - 1)
    seg = _smooth_at(y, idx - coarse[:, None] + r, coarse - r, 2 * r + 1, 0.3 / step)
    # remove the linear trend between the segment ends (background slope)
    t = (offs + r) / (2 * r)
    seg = seg - (seg[:, :1] * (1 - t) + seg[:, -1:] * t)
    return idx[np.arange(len(idx)), np.argmax(seg, axis=1)]


def _window_mask(n_ch: int, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    ch = np.arange(n_ch)[None, :]
    return (ch >= start[:, None]) & (ch < stop[:, None])


def subtract_background(
    y: np.ndarray,
    grid: np.ndarray,
    peak: np.ndarray,
    method: str = "auto",
    width_eV: float | None = None,
    onset_before_peak_eV: float | None = None,
    gap_eV: float | None = None,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """Subtract a power-law background fitted on the pre-edge of each spectrum.

    The fit window ends ``gap_eV`` before the onset (``onset_before_peak_eV`` before the
    L3 peak) and spans ``width_eV``, clipped to the data. The power law
    ``A * E**-r`` is fitted by closed-form least squares in log-log space, for all
    spectra at once. Where the window holds fewer than 5 channels, or non-positive
    values (already background-subtracted data), or the fitted law would rise with
    energy, a constant (the window's mean) is subtracted instead.

    Parameters
    ----------
    y : numpy.ndarray
        Spectra on a uniform grid, shape ``(n, m)``.
    grid : numpy.ndarray
        Energies, shape ``(m,)``, or ``(n, m)`` where each spectrum is a segment of a
        uniform grid of its own (the same step).
    peak : numpy.ndarray
        L3 peak channel per spectrum, shape ``(n,)``.
    method : {"auto", "power_law", "constant", "none"}
        ``"auto"`` and ``"power_law"`` fit a power law with the constant fallback;
        ``"constant"`` subtracts the pre-edge mean; ``"none"`` returns ``y`` unchanged.
    width_eV, onset_before_peak_eV, gap_eV : float, optional
        Window geometry (defaults in ``DEFAULT_PREPROCESSING``).
    window : tuple of float, optional
        A fixed absolute fit window ``(start, stop)`` in eV for all spectra, instead of
        the one placed relative to each peak.

    Returns
    -------
    numpy.ndarray
        Background-subtracted spectra, shape ``(n, m)``.
    """
    if method in ("none", None, False):
        return y.copy()
    if method not in ("auto", "power_law", "constant", True):
        raise ValueError(
            f"Unknown background method {method!r}; use 'auto', 'power_law', 'constant' or 'none'."
        )
    p = DEFAULT_PREPROCESSING
    grid = np.asarray(grid)
    per_row = grid.ndim == 2
    step = grid[..., 1].flat[0] - grid[..., 0].flat[0]
    n, m = y.shape
    if window is not None:
        if per_row:
            raise ValueError("A fixed background window needs one energy axis for all spectra.")
        a = np.full(n, np.searchsorted(grid, window[0]))
        b = np.full(n, np.searchsorted(grid, window[1]))
        if int(b[0] - a[0]) < 3:
            raise ValueError(
                f"The background window {tuple(window)} holds fewer than 3 channels of "
                f"the energies read around the edge ({grid[0]:.1f}-{grid[-1]:.1f} eV); "
                "choose a pre-edge window: below the Mn L3 onset (about 635 eV when "
                "calibrated) and inside the data."
            )
    else:
        width = p["background_width_eV"] if width_eV is None else width_eV
        before = p["onset_before_peak_eV"] if onset_before_peak_eV is None else onset_before_peak_eV
        gap = p["background_gap_eV"] if gap_eV is None else gap_eV
        b = np.clip(peak - int(round((before + gap) / step)), 0, m)
        a = np.clip(b - int(round(width / step)), 0, m)
    a = np.asarray(a)
    b = np.maximum(np.asarray(b), a)
    count = b - a
    if n and np.all(a == a[0]) and np.all(b == b[0]):
        # one window for all rows (spectra aligned on their peaks): slices, no masks
        w = int(b[0] - a[0])
        pos = np.broadcast_to(np.arange(a[0], b[0]), (n, w))
        mask = None
        yw = y[:, a[0] : b[0]]
    else:
        # gather each row's window [a, b) into a short array (right-aligned, masked
        # where clipped) instead of masking whole rows
        w = max(int(count.max(initial=0)), 1)
        pos = b[:, None] - w + np.arange(w)[None, :]
        mask = pos >= a[:, None]
        yw = np.take_along_axis(y, np.clip(pos, 0, m - 1), axis=1)

    def masked(v, fill=0.0, rows=slice(None)):
        return v if mask is None else np.where(mask[rows], v, fill)

    safe_count = np.maximum(count, 1)
    const = masked(yw).sum(1) / safe_count
    # where there is no pre-edge at all, use the minimum before the peak
    none = count == 0
    if np.any(none):
        before_peak = _window_mask(m, np.zeros(n, int), np.maximum(peak, 1))
        const[none] = np.where(before_peak, y, np.inf)[none].min(1)
    out = y - const[:, None]
    if method in ("auto", "power_law", True):
        positive = np.all(masked(yw, 1.0) > 0, axis=1) & (count >= 5)
        if np.any(positive):
            # views rather than copies where every row qualifies (the usual case)
            pos_rows = slice(None) if positive.all() else positive
            yy = yw[pos_rows]
            cnt = count[pos_rows]
            lgrid = np.log(grid)
            if per_row:
                lgrid = lgrid[pos_rows]
                lx = np.take_along_axis(lgrid, np.clip(pos[pos_rows], 0, m - 1), axis=1)
            else:
                lx = lgrid[np.clip(pos[pos_rows], 0, m - 1)]
            ly = np.log(masked(yy, 1.0, pos_rows))
            sx = masked(lx, 0.0, pos_rows).sum(1)
            sy = masked(ly, 0.0, pos_rows).sum(1)
            sxx = masked(lx * lx, 0.0, pos_rows).sum(1)
            sxy = masked(lx * ly, 0.0, pos_rows).sum(1)
            den = cnt * sxx - sx * sx
            slope = (cnt * sxy - sx * sy) / np.where(den == 0, 1, den)
            icpt = (sy - slope * sx) / cnt
            ok = (den > 0) & (slope <= 0) & np.isfinite(slope)
            rows = np.arange(n)[pos_rows][ok]
            # again views where every row has a fit
            fit, rows = (slice(None), slice(None)) if rows.size == n else (ok, rows)
            lg = lgrid[fit] if per_row else lgrid[None, :]
            out[rows] = y[rows] - np.exp(icpt[fit, None] + slope[fit, None] * lg)
    return out


def extract_window(
    y: np.ndarray,
    start: np.ndarray,
    n_channels: int,
) -> np.ndarray:
    """Cut ``n_channels`` channels from each spectrum from channel ``start`` on.

    Channels outside the data take the nearest edge value.

    Parameters
    ----------
    y : numpy.ndarray
        Shape ``(n, m)``.
    start : numpy.ndarray
        First channel per spectrum (may be negative), shape ``(n,)``.
    n_channels : int
        Window length.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, n_channels)``.
    """
    idx = np.clip(np.asarray(start)[:, None] + np.arange(n_channels)[None, :], 0, y.shape[1] - 1)
    return np.take_along_axis(y, idx, axis=1)


def normalise(x: np.ndarray) -> np.ndarray:
    """Min-max scale each spectrum to [0, 1], then subtract its mean.

    Parameters
    ----------
    x : numpy.ndarray
        Shape ``(n, m)``.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, m)``; constant rows give zeros.
    """
    mn = x.min(axis=1, keepdims=True)
    rng = x.max(axis=1, keepdims=True) - mn
    z = (x - mn) / np.where(rng > 0, rng, 1.0)
    z -= z.mean(axis=1, keepdims=True)
    return z.astype(np.float32)


def channel_noise(spectra: np.ndarray, max_differences: int = 512) -> np.ndarray:
    """Noise per channel of each spectrum, from channel-to-channel differences.

    Median absolute deviation of the first differences, divided by sqrt(2): robust to
    edges and smooth backgrounds. Use it on the raw (not interpolated) channels. For
    sparse counts (mostly zeros, where the MAD collapses to 0) it is floored at
    the standard deviation of the differences, so vacuum pixels are not taken for edges.
    Long spectra use every k-th difference only, at most ``max_differences`` of them
    (the same estimate from a sample; a fraction of the work).

    Parameters
    ----------
    spectra : numpy.ndarray
        Shape ``(n, m)``.
    max_differences : int
        Most differences used per spectrum.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``.
    """
    m = spectra.shape[1]
    k = max(1, -(-(m - 1) // max_differences))  # every k-th difference
    hi, lo = spectra[:, 1::k], spectra[:, : m - 1 : k]
    if spectra.dtype not in (np.float32, np.float64):
        # integer counts (unsigned differences would wrap) and float16 (too coarse)
        hi, lo = hi.astype(np.float64), lo.astype(np.float64)
    d = hi - lo
    floor = d.std(axis=1)
    d -= _row_median(d)[:, None]
    np.abs(d, out=d)
    mad = _row_median(d)
    return np.maximum(1.4826 * mad, floor) / np.sqrt(2)


def _row_median(a: np.ndarray) -> np.ndarray:
    """Median of each row, as ``np.median(a, axis=1)`` for finite values; reorders ``a``.

    One in-place partition at the upper middle; for an even length the lower middle
    is the largest value left of it.
    """
    k = a.shape[1]
    h = k // 2
    a.partition(h, axis=1)
    upper = a[:, h]
    if k % 2:
        return upper.copy()
    return (a[:, :h].max(axis=1) + upper) / 2


def smoothed_noise(spectra: np.ndarray, energy: np.ndarray, sigma_eV: float = 0.3) -> np.ndarray:
    """Noise of each spectrum after Gaussian smoothing by ``sigma_eV``.

    Parameters
    ----------
    spectra : numpy.ndarray
        Raw spectra, shape ``(n, m)``.
    energy : numpy.ndarray
        Their energy axis, shape ``(m,)``.
    sigma_eV : float
        Smoothing width.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``.
    """
    disp = float(np.median(np.abs(np.diff(energy))))
    s_ch = max(sigma_eV / disp, 0.5)
    return channel_noise(spectra) / np.sqrt(max(2 * np.sqrt(np.pi) * s_ch, 1.0))


#: Windows (eV from the L3 peak) that :func:`edge_present` reads on the smoothed spectrum.
_EDGE_WINDOWS_EV = {
    "pre": (-8.0, -4.0),
    "trough": (4.5, 7.0),
    "l2": (8.0, 14.0),
    "post": (17.0, 22.0),
}


def edge_present(
    y: np.ndarray,
    grid: np.ndarray,
    peak: np.ndarray,
    min_snr: float = 8.0,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Whether each background-subtracted spectrum shows a Mn L2,3 edge.

    Tests, on the spectrum smoothed by 0.3 eV: an L3 peak well above the noise
    (``min_snr`` times the noise of the smoothed spectrum), clearly above the trough
    between L3 and L2 (a white line), an L2 maximum 8-14 eV above L3 that rises above
    that trough, a trough above the pre-edge (edge jump) but well below the L3 height
    (rejects broad edges such as O K, whose fine structure otherwise resembles a
    white-line pair), and no large drop after the edge. On the Titan training spectra
    (the hardest, boundary-leaning subset) about 2.5 % fail these tests; on the wide
    Titan Mn2+ set 0.3 %; pure power-law Poisson noise passes 0 in 12,000.

    Parameters
    ----------
    y : numpy.ndarray
        Background-subtracted spectra on a uniform grid, shape ``(n, m)``.
    grid : numpy.ndarray
        Energies, shape ``(m,)``.
    peak : numpy.ndarray
        L3 peak channel per spectrum.
    min_snr : float
        Minimum L3 height over the noise of the smoothed spectrum.
    noise : numpy.ndarray, optional
        Noise of the 0.3 eV-smoothed spectrum per spectrum (see :func:`smoothed_noise`);
        estimated from ``y`` if omitted (only right where ``y`` is not interpolated).

    Returns
    -------
    numpy.ndarray
        Boolean, shape ``(n,)``.
    """
    step = grid[1] - grid[0]
    n, m = y.shape
    peak = np.asarray(peak)
    # The tests read the smoothed spectrum only between -8 and +22 eV of the peak
    # (clipped to the data): smooth that segment of each row, not the whole row.
    lo_off = min(0, *(int(round(w[0] / step)) for w in _EDGE_WINDOWS_EV.values()))
    hi_off = max(1, *(int(round(w[1] / step)) for w in _EDGE_WINDOWS_EV.values()))
    width = hi_off - lo_off
    first = peak + lo_off
    r = _gauss_radius(0.3 / step)
    p0 = int(peak[0]) if n else 0
    if n and np.all(peak == p0) and p0 + lo_off - r >= 0 and p0 + hi_off + r <= m:
        # one peak channel for all rows (spectra aligned on their peaks), nothing
        # clipped: the same numbers from slices
        ys = _smooth(y[:, p0 + lo_off - r : p0 + hi_off + r], 0.3 / step)[:, r : r + width]

        def mean_at(lo_eV, hi_eV, fn=np.mean):
            a = p0 + int(round(lo_eV / step)) - first[0]
            b = p0 + int(round(hi_eV / step)) - first[0]
            return fn(ys[:, a : max(b, a + 1)], axis=1)

    else:
        ys = _smooth_at(y, np.broadcast_to(np.arange(width), (n, width)), first, width, 0.3 / step)

        def mean_at(lo_eV, hi_eV, fn=np.mean):
            a = np.clip(peak + int(round(lo_eV / step)), 0, m - 1)
            b = np.clip(peak + int(round(hi_eV / step)), 1, m)
            mk = _window_mask(width, a - first, np.maximum(b, a + 1) - first)
            if fn is np.max:
                return np.where(mk, ys, -np.inf).max(1)
            return np.where(mk, ys, 0).sum(1) / np.maximum(mk.sum(1), 1)

    h3 = ys[np.arange(n), peak - first]
    pre = mean_at(*_EDGE_WINDOWS_EV["pre"])
    trough = mean_at(*_EDGE_WINDOWS_EV["trough"])
    l2 = mean_at(*_EDGE_WINDOWS_EV["l2"], np.max)
    post = mean_at(*_EDGE_WINDOWS_EV["post"])
    if noise is None:
        noise = channel_noise(y) / np.sqrt(2 * np.sqrt(np.pi) * 0.3 / step)
    # digitized/noise-free data: noise ~ 0; use a small fraction of the height
    noise = np.maximum(noise, 1e-3 * np.abs(h3))
    height = h3 - pre
    return (
        (height > min_snr * noise)
        & (h3 - trough > 0.3 * height)
        & (l2 - trough > np.maximum(0.1 * height, 2 * noise))
        & (trough - pre > 0.0)
        & (trough - pre < 0.42 * height)
        & (post - pre > -0.2 * height)
    )


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
    """

    x: np.ndarray
    valid: np.ndarray
    reason: np.ndarray
    peak_eV: np.ndarray
    params: dict = field(default_factory=dict)


def preprocess(
    spectra: np.ndarray,
    energy: np.ndarray,
    *,
    params: dict | None = None,
    background: str | bool = "auto",
    background_window: tuple[float, float] | None = None,
    energy_window: tuple[float, float] | None = None,
    center_offset_eV: np.ndarray | float | None = None,
    min_snr: float = 8.0,
    check_edge: bool = True,
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
        Threshold of :func:`edge_present`.
    check_edge : bool
        If False, every finite non-constant spectrum counts as valid (training data).

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
    lo, hi = _read_range(p, search, background_window)
    # Only the channels the resampling reads must be finite (a NaN far from the edge,
    # such as the padding of a drift correction, does not matter): those between lo
    # and hi, plus two input or grid steps for the interpolation and box averaging.
    e = _check_energy(energy, spectra.shape[1])
    margin = 2.0 * max(step, float(np.max(np.abs(np.diff(e)))))
    read = _channels_between(e, lo - margin, hi + margin)
    # one pass: a row sums to a finite value iff its values are finite (short of
    # overflow, which the exact test of the rows that fail settles)
    acc = np.float64 if spectra.dtype == np.float16 else None  # float16 sums overflow
    finite = np.isfinite(spectra[:, read].sum(axis=1, dtype=acc))
    if not finite.all():
        finite[~finite] = np.all(np.isfinite(spectra[~finite, read]), axis=1)
    data = spectra if finite.all() else np.where(finite[:, None], spectra, 0)
    y, grid = to_uniform_grid(data, energy, step, (lo, hi))
    peak = locate_l3(y, grid, search)
    off = np.zeros(n) if center_offset_eV is None else np.broadcast_to(center_offset_eV, (n,))
    # the raw channels inside the grid are contiguous (monotonic axis): slice, not mask
    inside = _channels_between(e, grid[0], grid[-1])
    used = data[:, inside]
    constant = used.min(axis=1) == used.max(axis=1)
    reason = np.zeros(n, dtype=np.int8)
    reason[~finite] = 1
    reason[finite & constant] = 2
    noise = smoothed_noise(used, e[inside]) if check_edge else None
    has_edge = np.ones(n, dtype=bool)
    x = np.empty((n, n_win), dtype=np.float32)

    def finish(rows, yy, gg, pk):
        # background, edge test and window of some rows, in double precision (log fit)
        yy = subtract_background(
            np.asarray(yy, np.float64), gg, pk, background, window=background_window
        )
        if check_edge:
            has_edge[rows] = edge_present(yy, grid, pk, min_snr=min_snr, noise=noise[rows])
        start = pk + np.round((w0 + off[rows]) / step).astype(int)
        x[rows] = normalise(extract_window(yy, start, n_win))

    # Each row is read only from its background window to the end of its edge tests
    # (+22 eV and the smoothing radius) or of its cut window. Rows whose span lies
    # inside the grid are processed as that segment alone (exactly the same numbers,
    # a fraction of the work); the others, near a grid end, as whole rows.
    lo_ch = min(
        -int(round(_pre_edge_margin(p) / step)), int(np.floor((w0 + off.min(initial=0)) / step))
    )
    lo_ch -= 1
    reach = max(w[1] for w in _EDGE_WINDOWS_EV.values())
    hi_ch = max(int(round(reach / step)), int(np.ceil((w1 + off.max(initial=0)) / step)))
    hi_ch += _gauss_radius(0.3 / step) + 2
    inner = (peak + lo_ch >= 0) & (peak + hi_ch <= grid.size)
    if background_window is not None:
        inner[:] = False
    rows = np.nonzero(inner)[0]
    if rows.size:
        cols = peak[rows, None] + np.arange(lo_ch, hi_ch)[None, :]
        finish(rows, y[rows[:, None], cols], grid[cols], np.full(rows.size, -lo_ch))
    rows = np.nonzero(~inner)[0]
    if rows.size:
        finish(rows, y[rows], grid, peak[rows])
    reason[(reason == 0) & ~has_edge] = 3
    valid = reason == 0
    x[~valid] = 0.0
    peak_eV = np.where(valid, grid[peak], np.nan)
    return Preprocessed(x=x, valid=valid, reason=reason, peak_eV=peak_eV, params=p)
