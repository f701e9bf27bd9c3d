"""Cosmic-ray spikes and hot channels: found and replaced before anything else.

A channel is a spike when it stands far above *both* its neighbours (the excess over
the larger of the two, many robust noise sigmas) *and* that excess is most of its height
above the spectrum 2 eV either side: a feature one or two channels wide, narrower than
any Mn L2,3 white line can be at the spectrum's dispersion. The narrowness limit was
measured on noise-free simulated edges (0.1 eV resolution, every valence, L3 50 % above
background, any channel phase): the largest excess/height ratio of an edge channel is
0.004 at 0.05 eV per channel, 0.05 at 0.25, 0.15 at 0.5 and 0.37 at 1-1.5; the
limit used, :func:`_narrow_limit` (0.27 at 0.05 eV, 0.34 at 0.25, 0.62 from 1 eV on),
stays at least 0.25 above it. A spike spilling into the next channel is found by
its excess over the channels on either side of the pair (the neighbour on one side and
the channel after the spill on the other): noise-free edges reach an excess/height
ratio of 0.007 at 0.05 eV per channel, 0.09 at 0.25, 0.23 at 0.5 and 0.52-0.59 at 1-1.5
by that measure, and the limit, :func:`_pair_limit`, stays at least 0.25 above it; both
channels of the pair are replaced. What a spill leaves is also found in a second pass. Hot channels (the same channel high in every spectrum of a
map) are found on the mean spectrum of the batch and confirmed in most spectra.
Replaced values are the mean of the channels two away (the lower of the two pairs
around), so the spectrum's noise level is kept.

Spikes below the threshold (5-8 sigma of the channel noise) stay. At 0.25 eV per channel
and finer the edge decision's flank test rejects them as L3 peaks (narrower than a white
line); at 0.5 eV per channel and coarser, where such a spike is 0.5-3 eV wide, that test
reads farther out (:func:`~hyperspy_mnvalence.decisions.flank_test`).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["find_spikes", "remove_spikes", "SPIKE_SIGMAS"]

_logger = logging.getLogger(__name__)

#: A spike's excess over its larger neighbour, in robust sigmas of the channel-to-channel
#: differences (Gaussian noise exceeds it in about one channel in 10^9; the edge
#: decision's calibration is the same at 4.5, which replaced a noise channel in about
#: 0.1 % of spike-free spectra).
SPIKE_SIGMAS = 6.0

#: Most differences used per spectrum for the noise scale.
_MAX_DIFFERENCES = 128


def _narrow_limit(dispersion: float) -> float:
    """Smallest excess/height ratio that only a feature narrower than an edge reaches."""
    # the measured edge ratio is below 0.37 * dispersion (eV) up to 1 eV, 0.37 beyond
    return 0.25 + 0.37 * min(float(dispersion), 1.0)


def _pair_limit(dispersion: float) -> float:
    """The same for a spike spilling into a neighbour, measured past the spill."""
    # the measured edge ratio is below 0.6 * dispersion (eV) up to 1 eV, 0.59 beyond
    return 0.25 + 0.6 * min(float(dispersion), 1.0)


def _difference_scale(x: np.ndarray) -> np.ndarray:
    """Robust scale of each row's first differences (sampled).

    The median absolute difference over 0.6745 (a standard deviation for Gaussian
    noise), floored at a quarter of their standard deviation. Sparse counts (mostly
    zeros), where the median collapses to 0, take 2.5 times the mean absolute
    difference instead, so that single counts are not spikes (one spike raises the mean
    by its height over the number of differences only).
    """
    m = x.shape[1]
    k = max(1, -(-(m - 1) // _MAX_DIFFERENCES))
    d = x[:, 1::k] - x[:, : m - 1 : k]
    # the standard deviation is at most the root mean square: only rows whose root mean
    # square passes the floor's bound need it (heavy tails), the rest take the median
    rms = np.sqrt(np.einsum("ij,ij->i", d, d) / max(d.shape[1], 1))
    np.abs(d, out=d)
    mean_abs = d.mean(axis=1)
    h = d.shape[1] // 2
    d.partition(h, axis=1)
    mad = d[:, h]
    robust = 1.4826 * mad
    sd = np.zeros_like(robust)
    need = 0.26 * rms >= robust  # a margin for the rounding of the sums
    if need.any():
        sd[need] = (x[need, 1::k] - x[need, : m - 1 : k]).std(axis=1)
    return np.where(mad > 0, np.maximum(robust, 0.25 * sd), 2.5 * mean_abs)


#: Rows screened at a time (the temporaries stay in cache; 64 measured fastest of 16-256).
_ROWS = 64


def _candidates(
    x: np.ndarray, scale: np.ndarray, reach: int, limit: float, pair_limit: float = np.inf
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, channels and spill sides of the spikes of ``x`` (interior channels only).

    A channel is a spike when its excess over its larger neighbour passes the threshold
    (spill side 0), or, for a channel whose excess passes 0.6 of it, when its excess
    over its neighbour on one side and the channel after the spill on the other does
    (spill side -1 or +1: that neighbour is part of the spike; for a channel that passes
    alone, only where the neighbour stands a quarter of the threshold above its other
    neighbours). The narrowness test uses ``limit`` and ``pair_limit`` respectively.
    """
    n, m = x.shape
    none = (np.array([], dtype=np.intp),) * 3
    if m < 2 * reach + 1 or reach < 2:
        return none
    thr = (SPIKE_SIGMAS * scale).astype(x.dtype)[:, None]
    screen = 0.6 * thr  # a spike spilling up to 40 % of its height into a neighbour
    w = m - 2 * reach
    buf = np.empty((min(n, _ROWS), w), dtype=x.dtype)
    found = []
    for r0 in range(0, n, _ROWS):
        r1 = min(r0 + _ROWS, n)
        e = buf[: r1 - r0]
        np.maximum(x[r0:r1, reach - 1 : m - reach - 1], x[r0:r1, reach + 1 : m - reach + 1], out=e)
        np.subtract(x[r0:r1, reach : m - reach], e, out=e)
        # the rows with a candidate first (a reduction), then their channels
        rows = np.nonzero(e.max(axis=1) > screen[r0:r1, 0])[0]
        if rows.size:
            sub = e[rows]
            rr, cc = np.nonzero(sub > screen[r0 + rows])
            found.append((rows[rr] + r0, cc + reach, sub[rr, cc]))
    if not found:
        return none
    rows = np.concatenate([f[0] for f in found])
    c = np.concatenate([f[1] for f in found])
    excess = np.concatenate([f[2] for f in found])
    t = thr[rows, 0]
    xc = x[rows, c]
    base = np.minimum(x[rows, c - reach], x[rows, c + reach])
    single = (excess > t) & (excess > limit * (xc - base))
    # past a spill: the excess over the far side's neighbour and the near side's second
    right = xc - np.maximum(x[rows, c - 1], x[rows, c + 2])
    left = xc - np.maximum(x[rows, c - 2], x[rows, c + 1])
    side = np.where(right >= left, 1, -1)
    past = np.maximum(right, left)
    # a channel that passes alone takes its neighbour along only where that stands up
    # itself (a quarter of the threshold)
    near = x[rows, c + side] - np.maximum(x[rows, c - side], x[rows, c + 2 * side])
    if np.isfinite(pair_limit):
        pair = (past > t) & (past > pair_limit * (xc - base)) & (~single | (near > 0.25 * t))
    else:  # single channels only (inf * 0 would be NaN, with a RuntimeWarning)
        pair = np.zeros_like(single)
    keep = single | pair
    return rows[keep], c[keep], np.where(pair, side, 0)[keep]


def _replace(x: np.ndarray, rows: np.ndarray, c: np.ndarray) -> None:
    m = x.shape[1]
    lo1, hi1 = np.maximum(c - 1, 0), np.minimum(c + 1, m - 1)
    lo2, hi2 = np.maximum(c - 2, 0), np.minimum(c + 2, m - 1)
    near = 0.5 * (x[rows, lo1] + x[rows, hi1])
    far = 0.5 * (x[rows, lo2] + x[rows, hi2])
    x[rows, c] = np.minimum(near, far)


def find_spikes(
    x: np.ndarray, dispersion: float, hot_channels: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find spikes and hot channels and replace them.

    Parameters
    ----------
    x : numpy.ndarray
        Spectra, float, shape ``(n, m)``; not modified.
    dispersion : float
        eV per channel.
    hot_channels : bool
        Also look for channels high in most spectra of the batch (8 or more spectra).

    Returns
    -------
    cleaned : numpy.ndarray
        ``x`` itself where nothing was found, else a copy with the channels replaced.
    counts : numpy.ndarray
        Channels replaced per spectrum, shape ``(n,)``.
    hot : numpy.ndarray
        Indices of the hot channels found (replaced in every spectrum).
    """
    n, m = x.shape
    counts = np.zeros(n, dtype=np.int32)
    hot = np.array([], dtype=np.int64)
    reach = max(2, int(round(2.0 / max(dispersion, 1e-9))))
    limit = _narrow_limit(dispersion)
    pair_limit = _pair_limit(dispersion)
    if n == 0 or m < 2 * reach + 1:
        return x, counts, hot
    scale = _difference_scale(x)
    # noise-free rows: a spike must still stand out of the row's own range
    k = max(1, m // 64)
    scale = np.maximum(scale, 1e-6 * np.abs(x[:, ::k]).max(axis=1))
    out = x
    if hot_channels and n >= 8:
        mean = x.mean(axis=0, keepdims=True)
        sm = np.maximum(_difference_scale(mean), 1e-6 * float(np.abs(mean).max()))
        cand = np.unique(_candidates(mean, sm, reach, limit)[1])  # one channel each
        if cand.size:
            excess = x[:, cand] - np.maximum(x[:, cand - 1], x[:, cand + 1])
            # confirmed where most spectra show it (not a few big spikes in one channel);
            # blank or constant spectra (no noise scale) have no say
            live = scale > 0
            typical = (
                np.median(excess[live] / scale[live, None], axis=0)
                if live.any()
                else np.zeros(cand.size)
            )
            hot = cand[typical > 3.0]
            if hot.size:
                out = x.copy()
                rr, cc = np.meshgrid(np.arange(n), hot, indexing="ij")
                _replace(out, rr.ravel(), cc.ravel())
                counts += hot.size
                _logger.debug("hot channels %s replaced in %d spectra", hot.tolist(), n)
    rows, c, side = _candidates(out, scale, reach, limit, pair_limit)
    if rows.size:
        if out is x:
            out = x.copy()
        np.add.at(counts, rows, 1)
        _replace(out, rows, c)
        spill = side != 0
        if spill.any():  # the spilled-into neighbour, from its cleaned surroundings
            np.add.at(counts, rows[spill], 1)
            _replace(out, rows[spill], c[spill] + side[spill])
        # what is left of a spill shows once its neighbour is replaced
        hit = np.unique(rows)
        sub = out[hit]
        r2, c2, _ = _candidates(sub, scale[hit], reach, limit)
        if r2.size:
            np.add.at(counts, hit[r2], 1)
            _replace(sub, r2, c2)
            out[hit] = sub
    return out, counts, hot


def remove_spikes(
    spectra: np.ndarray, energy: np.ndarray, hot_channels: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Spectra with their cosmic-ray spikes and hot channels replaced.

    Conservative: a channel is replaced only where it stands at least
    :data:`SPIKE_SIGMAS` robust sigmas above both neighbours *and* is narrower than a
    Mn L2,3 white line can be at this dispersion (see the module docstring), so edges
    are never touched.

    Parameters
    ----------
    spectra : numpy.ndarray
        Shape ``(n, m)`` or ``(m,)``; not modified.
    energy : numpy.ndarray
        Energy axis in eV, shape ``(m,)``.
    hot_channels : bool
        Also replace channels that are high in most spectra (needs 8 spectra or more).

    Returns
    -------
    cleaned : numpy.ndarray
        A float copy of ``spectra`` (float32 for single precision or small integers).
    counts : numpy.ndarray
        Channels replaced per spectrum.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_mnvalence.decisions import remove_spikes
    >>> e = np.arange(600.0, 700.0, 0.25)
    >>> y = np.random.default_rng(0).poisson(1000.0, (2, e.size)).astype(float)
    >>> y[0, 100] += 2000.0
    >>> cleaned, counts = remove_spikes(y, e)
    >>> counts.tolist(), bool(cleaned[0, 100] < 1200)
    ([1, 0], True)
    """
    x = np.array(spectra, dtype=np.float32 if np.asarray(spectra).itemsize <= 4 else np.float64)
    one = x.ndim == 1
    x = np.atleast_2d(x)
    disp = float(np.median(np.abs(np.diff(np.asarray(energy, dtype=np.float64)))))
    x, counts, _ = find_spikes(x, disp, hot_channels=hot_channels)
    return (x[0], counts) if one else (x, counts)
