"""Locating the Mn L3 white line in each spectrum."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._filters import dog, gauss_radius, gaussian_band, gaussian_smooth_at
from ._params import DEFAULT_PREPROCESSING


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
    coarse = i0 + np.argmax(dog(y, float(step), i0, i1), axis=1)
    # refine on the lightly smoothed spectrum, within +-1.5 eV
    r = int(round(1.5 / step))
    offs = np.arange(-r, r + 1)
    idx = np.clip(coarse[:, None] + offs[None, :], 0, n_ch - 1)
    t = (offs + r) / (2 * r)

    def refine(seg):
        # remove the linear trend between the segment ends (background slope)
        seg = seg - (seg[:, :1] * (1 - t) + seg[:, -1:] * t)
        return np.argmax(seg, axis=1), seg

    def smoothed(rows):
        c = coarse[rows]
        return gaussian_smooth_at(y[rows], idx[rows] - c[:, None] + r, c - r, 2 * r + 1, 0.3 / step)

    radius = gauss_radius(0.3 / step)
    inside = (coarse - r - radius >= 0) & (coarse + r + radius < n_ch)
    best = np.empty(len(idx), dtype=np.intp)
    if inside.any():
        # rows whose smoothing reads no row end: one product with the Gaussian's matrix,
        # in double precision then rounded like the filter; a near tie between the two
        # highest values is settled by the filter itself
        rows = np.nonzero(inside)[0]
        span = 2 * (r + radius) + 1
        segs = np.lib.stride_tricks.sliding_window_view(y, span, axis=1)[
            rows, coarse[rows] - r - radius
        ]
        val = (segs.astype(np.float64) @ _smoothing_matrix(float(step), r)).astype(y.dtype)
        pick, det = refine(val)
        top2 = np.partition(det, -2, axis=1)[:, -2:]
        scale = np.abs(val).max(axis=1)
        tie = top2[:, 1] - top2[:, 0] <= 1e-6 * scale
        if tie.any():
            pick[tie] = refine(smoothed(rows[tie]))[0]
        best[rows] = pick
    if not inside.all():
        rows = np.nonzero(~inside)[0]
        best[rows] = refine(smoothed(rows))[0]
    return idx[np.arange(len(idx)), best]


@lru_cache(maxsize=32)
def _smoothing_matrix(step: float, r: int) -> np.ndarray:
    """``(2 (r + R) + 1, 2 r + 1)``: the 0.3 eV Gaussian (radius ``R``) of a segment."""
    m = gaussian_band(0.3 / step, 2 * r + 1)
    m.setflags(write=False)
    return m
