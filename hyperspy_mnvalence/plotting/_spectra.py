"""Spectra behind a result: chosen pixels with their fits, and the mean spectrum per class."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import offset_copy

from ._common import (
    NO_EDGE_LABEL,
    VALENCE_COLORS,
    VALENCE_LABELS,
    mean_and_label,
    new_figure,
    readable_axes,
    result_arrays,
)

__all__ = ["plot_class_spectra", "plot_pixel_spectra"]

_logger = logging.getLogger(__name__)


def _result_parameters(p) -> dict:
    """The preprocessing options a result was made with (background, windows)."""
    if isinstance(p, np.ndarray):
        return {}
    params = p.metadata.get_item("MnValence.parameters")
    params = params.as_dictionary() if params is not None else {}
    out = {}
    bg = params.get("background")
    if bg is not None:
        out["background"] = {"True": "auto", "False": "none"}.get(str(bg), str(bg))
    for k in ("background_window", "energy_window"):
        if params.get(k) is not None:
            out[k] = tuple(float(v) for v in params[k])
    if params.get("min_snr") is not None:
        out["min_snr"] = float(params["min_snr"])
    return out


def _background_fits(
    spectra: np.ndarray, energy: np.ndarray, peak_eV: np.ndarray, params: dict
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """The pre-edge background of each spectrum as preprocessing fits it, from the
    start of its fit window to 35 eV past the L3 peak (None where no edge or none)."""
    from ..preprocessing import DEFAULT_PREPROCESSING, subtract_background, to_uniform_grid

    method = params.get("background", "auto")
    if method in ("none", False) or not np.any(np.isfinite(peak_eV)):
        return [None] * len(spectra)
    d = DEFAULT_PREPROCESSING
    step = float(d["energy_step_eV"])
    reach = d["background_width_eV"] + d["onset_before_peak_eV"] + d["background_gap_eV"]
    window = params.get("background_window")
    lo = float(np.nanmin(peak_eV)) - reach - 2.0
    if window is not None:
        lo = min(lo, window[0])
    hi = float(np.nanmax(peak_eV)) + 36.0
    y, grid = to_uniform_grid(np.nan_to_num(spectra), energy, step, (lo, hi))
    ok = np.isfinite(peak_eV)
    pk = np.clip(np.searchsorted(grid, np.where(ok, peak_eV, grid[0])), 0, grid.size - 1)
    bg = y - subtract_background(np.asarray(y, np.float64), grid, pk, method, window=window)
    out = []
    for i in range(len(spectra)):
        if not ok[i]:
            out.append(None)
            continue
        start = window[0] if window is not None else peak_eV[i] - reach
        keep = (grid >= start) & (grid <= peak_eV[i] + 35.0)
        out.append((grid[keep], bg[i, keep]))
    return out


def _pixel_position(idx: tuple[int, ...], axes: list[dict]) -> str:
    """``x = 2.5 nm, y = 3 nm (4, 6)``: calibrated position and HyperSpy indices."""
    # axes are in numpy order; idx in HyperSpy order (fastest first)
    parts = [
        f"{a['name']} = {a['coords'][i]:.3g} {a['units']}".rstrip()
        for a, i in zip(axes[::-1], idx, strict=True)
    ]
    return f"{', '.join(parts)} ({', '.join(str(int(j)) for j in idx)})"


def plot_pixel_spectra(
    s,
    p,
    pixels: Sequence[int | Sequence[int]],
    *,
    fig: Figure | None = None,
    normalize: bool = False,
    title: str | None = None,
    zoom: bool = True,
    background: bool = True,
) -> Figure:
    """Spectra of chosen pixels around the Mn L2,3 edge, as the classifier read them.

    Each spectrum is drawn with the pre-edge background that preprocessing fits to it
    (dashed, from the start of its fit window) and a marker at the L3 peak it located;
    the legend gives each pixel's calibrated position (with its indices) and its
    valence probabilities, or "no Mn edge". The energy axis is zoomed on the edge
    (25 eV before to 35 eV after the L3 peaks found).

    Parameters
    ----------
    s : hyperspy.signal.BaseSignal
        The EELS spectrum image (signal dimension 1, the energy axis).
    p : hyperspy.signal.BaseSignal or numpy.ndarray
        Its classification result (see the module notes); its background and energy
        window options are used for the fit.
    pixels : sequence
        Navigation indices in HyperSpy order (``(x, y)`` for a map, an int for a line
        scan), as used by ``s.inav``.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (cleared first).
    normalize : bool
        Scale each spectrum (and its background) to its maximum (to compare shapes).
    title : str, optional
        Axes title.
    zoom : bool
        Zoom on the edge; ``False`` shows the whole energy range.
    background : bool
        Draw the background fits.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..decisions import EDGE_MIN_SNR
    from ..preprocessing import preprocess
    from ..signal_checks import energy_axis

    prob, axes = result_arrays(p)
    axes = readable_axes(axes)
    nav_dim = s.axes_manager.navigation_dimension
    if prob.ndim - 1 != nav_dim:
        raise ValueError(
            f"The result has {prob.ndim - 1} spatial dimensions but the signal has "
            f"{nav_dim} navigation dimensions; pass the result of this signal."
        )
    e_ax = s.axes_manager.signal_axes[0]
    energy = energy_axis(s)  # eV whatever the axis' units
    pixels = list(pixels) if nav_dim else [()]
    if not pixels:
        raise ValueError("pixels is empty: give at least one pixel, e.g. [(x, y)].")
    sizes = tuple(a.size for a in s.axes_manager.navigation_axes)  # HyperSpy order (x, y)
    idxs, spectra = [], []
    for pix in pixels:
        idx = (pix,) if np.ndim(pix) == 0 and nav_dim else tuple(pix)
        if len(idx) != nav_dim:
            raise ValueError(f"Pixel {pix!r} needs {nav_dim} indices (HyperSpy order).")
        if any(not -n <= int(i) < n for i, n in zip(idx, sizes, strict=True)):
            raise ValueError(
                f"Pixel {pix!r} is outside the navigation shape {sizes} (HyperSpy order: "
                "x first, as for s.inav)."
            )
        sub = s.inav[idx] if nav_dim else s
        y = sub.data.compute() if getattr(sub, "_lazy", False) else sub.data
        idxs.append(idx)
        spectra.append(np.asarray(y, dtype=float))
    spectra = np.array(spectra)
    params = _result_parameters(p)
    pre_kw = {k: v for k, v in params.items() if k != "min_snr"}
    try:
        pre = preprocess(spectra, energy, min_snr=params.get("min_snr", EDGE_MIN_SNR), **pre_kw)
        peaks = np.asarray(pre.peak_eV, dtype=float)
    except ValueError as err:  # the range holds no edge: draw the spectra alone
        _logger.info("no L3 peaks for the figure: %s", err)
        peaks = np.full(len(spectra), np.nan)
    fits = _background_fits(spectra, energy, peaks, params) if background else [None] * len(peaks)
    fig = new_figure(fig, (10.5, 4.8))
    ax = fig.add_subplot()
    style_colors = ["black", "#0077BB", "#EE7733", "#009988", "#CC3311", "#33BBEE", "#EE3377"]
    segments, seg_colors, marks = [], [], []
    for i, (idx, y) in enumerate(zip(idxs, spectra, strict=True)):
        color = style_colors[i % len(style_colors)]
        pk = prob[(slice(None),) + tuple(idx[::-1])]
        scale = 1.0
        if normalize and np.nanmax(np.abs(y)) > 0:
            scale = 1.0 / np.nanmax(np.abs(y))
        if np.all(np.isfinite(pk)):
            probs = ", ".join(f"{lab} {v:.2f}" for lab, v in zip(VALENCE_LABELS, pk, strict=True))
        else:
            probs = NO_EDGE_LABEL
        where = _pixel_position(idx, axes) if nav_dim else "spectrum"
        ax.plot(energy, y * scale, lw=1.0, color=color, label=f"{where}: {probs}")
        if fits[i] is not None:
            e, b = fits[i]
            segments.append(np.column_stack([e, b * scale]))
            seg_colors.append(color)
        if np.isfinite(peaks[i]):
            marks.append((peaks[i], float(np.interp(peaks[i], energy, y)) * scale, color))
    extra = []
    if segments:
        ax.add_collection(
            LineCollection(segments, colors=seg_colors, linestyles="--", linewidths=1.0)
        )
        extra.append(Line2D([], [], color="0.3", ls="--", label="background fit (pre-edge)"))
    if marks:
        ex, ey, ec = zip(*marks, strict=True)
        above = offset_copy(ax.transData, fig=fig, y=7, units="points")  # over the peak
        ax.scatter(
            ex, ey, marker="v", s=45, c=list(ec), zorder=3, edgecolors="black", transform=above
        )
        extra.append(Line2D([], [], color="0.3", marker="v", ls="", label="L3 peak (as located)"))
    if zoom:
        found = peaks[np.isfinite(peaks)]
        if found.size:
            lo, hi = float(found.min()) - 25.0, float(found.max()) + 35.0
        else:
            lo, hi = params.get("energy_window", (618.0, 672.0))
            lo, hi = lo - 15.0, hi + 20.0
        lo, hi = max(lo, float(energy.min())), min(hi, float(energy.max()))
        inside = (energy >= lo) & (energy <= hi)
        if np.any(inside):
            vals = np.concatenate(
                [spectra[:, inside].ravel()] + [f[1] for f in fits if f is not None]
            )
            if normalize:
                vals = np.concatenate(
                    [
                        (y / np.nanmax(np.abs(y)) if np.nanmax(np.abs(y)) > 0 else y)[inside]
                        for y in spectra
                    ]
                )
            vmin, vmax = float(np.nanmin(vals)), float(np.nanmax(vals))
            pad = 0.05 * (vmax - vmin or 1.0)
            ax.set_ylim(vmin - pad, vmax + pad)
        ax.set_xlim(lo, hi)
    xl = e_ax.name if isinstance(e_ax.name, str) else "Energy loss"
    ax.set_xlabel(f"{xl} (eV)")
    ax.set_ylabel("Intensity (normalised)" if normalize else "Intensity")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(
        handles + extra,
        names + [h.get_label() for h in extra],
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    if title:
        ax.set_title(title)
    return fig


def plot_class_spectra(
    s,
    p,
    *,
    max_per_class: int = 2000,
    fig: Figure | None = None,
    title: str | None = None,
) -> Figure:
    """The network's input averaged over the pixels of each most likely valence.

    A check of a map: every spectrum is preprocessed as for classification (L3 peak
    located, background removed, window of -10 to +20 eV around the peak, min-max
    scaled), so calibration drift and thickness do not blur the averages, and the mean
    of each valence's pixels is drawn with a band of +- one standard deviation. Edges
    that look alike across classes, or a wide band, point at pixels worth a look with
    :func:`plot_pixel_spectra`.

    Parameters
    ----------
    s : hyperspy.signal.BaseSignal
        The EELS spectrum image that was classified (eager or lazy).
    p : hyperspy.signal.BaseSignal
        Its result (classification or fractions: the majority valence is used).
    max_per_class : int
        At most this many pixels per valence, evenly spread over them.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (cleared first).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(max_per_class, bool) or int(max_per_class) != max_per_class or max_per_class < 1:
        raise ValueError(f"max_per_class must be a whole number >= 1, got {max_per_class!r}")
    from ..preprocessing import DEFAULT_PREPROCESSING, preprocess
    from ..signal_checks import energy_axis

    prob, _ = result_arrays(p)
    label = mean_and_label(prob)[1].ravel()  # NaN where no Mn edge
    n_ch = s.axes_manager.signal_shape[0]
    if label.size != int(np.prod(s.axes_manager.navigation_shape or (1,))):
        raise ValueError("The result does not match the signal's pixels; pass the result of s.")
    energy = energy_axis(s)
    flat = s.data.reshape(-1, n_ch)
    params = _result_parameters(p)
    kw = {
        "background": params.get("background", "auto"),
        "background_window": params.get("background_window"),
        "energy_window": params.get("energy_window"),
    }
    w0, w1 = DEFAULT_PREPROCESSING["window_eV"]
    step = float(DEFAULT_PREPROCESSING["energy_step_eV"])
    fig = new_figure(fig, (8.5, 4.5))
    ax = fig.add_subplot()
    for k in range(3):
        idx = np.nonzero(label == k)[0]
        if idx.size == 0:
            continue
        if idx.size > max_per_class:
            idx = idx[np.linspace(0, idx.size - 1, max_per_class).astype(int)]
        spectra = flat[idx]
        if getattr(spectra, "compute", None) is not None:
            spectra = spectra.compute()
        pre = preprocess(np.asarray(spectra), energy, **kw)
        x = pre.x[pre.valid]
        if not len(x):
            continue
        e = w0 + step * np.arange(x.shape[1])
        mean, sd = x.mean(0), x.std(0)
        ax.fill_between(e, mean - sd, mean + sd, color=VALENCE_COLORS[k], alpha=0.2, lw=0)
        ax.plot(e, mean, color=VALENCE_COLORS[k], lw=1.5, label=f"{VALENCE_LABELS[k]} (n={len(x)})")
    ax.set_xlim(w0, w1)
    ax.set_xlabel("Energy loss relative to the L3 peak (eV)")
    ax.set_ylabel("Network input (min-max scaled, mean removed)")
    ax.legend(
        fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), title="most likely valence"
    )
    ax.set_title(title or "Mean preprocessed spectrum per valence (± 1 s.d.)")
    return fig
