"""Power-law (or constant) pre-edge background subtraction."""

from __future__ import annotations

import numpy as np

from ._params import DEFAULT_PREPROCESSING


def window_mask(n_ch: int, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
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
    aligned = bool(n and np.all(a == a[0]) and np.all(b == b[0]))
    if aligned:
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
        before_peak = window_mask(m, np.zeros(n, int), np.maximum(peak, 1))
        const[none] = np.where(before_peak, y, np.inf)[none].min(1)
    fit_law = method in ("auto", "power_law", True)
    out = y - const[:, None] if not fit_law else np.empty_like(y)
    if fit_law:
        fitted = np.zeros(n, dtype=bool)
        positive = np.all(masked(yw, 1.0) > 0, axis=1) & (count >= 5)
        if np.any(positive):
            # views rather than copies where every row qualifies (the usual case)
            pos_rows = slice(None) if positive.all() else positive
            yy = yw[pos_rows]
            cnt = count[pos_rows]
            lgrid = np.log(grid)
            if per_row:
                lgrid = lgrid[pos_rows]
                if aligned:
                    lx = lgrid[:, a[0] : b[0]]
                else:
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
            fitted[rows] = True
            fit, rows = (slice(None), slice(None)) if rows.size == n else (ok, rows)
            lg = lgrid[fit] if per_row else lgrid[None, :]
            law = lg * slope[fit, None]
            law += icpt[fit, None]
            np.exp(law, out=law)
            if isinstance(rows, slice):
                np.subtract(y, law, out=out)
            else:
                out[rows] = y[rows] - law
        if not fitted.all():  # the constant where no power law was fitted
            out[~fitted] = y[~fitted] - const[~fitted, None]
    return out
