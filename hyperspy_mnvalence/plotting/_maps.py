"""Maps of a result: probabilities, valence, uncertainty, cross-checks; line scans and stacks."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..maps import normalised_entropy
from ._common import (
    L3_CMAP,
    NAN_COLOR,
    NO_EDGE_LABEL,
    PROB_CMAP,
    RATIO_CMAP,
    UNCERTAINTY_CMAP,
    VALENCE_CMAP,
    VALENCE_COLORS,
    VALENCE_LABELS,
    VALENCES,
    add_scalebar,
    axis_dict,
    axis_label,
    composite_rgb,
    image_extent,
    mean_and_label,
    new_figure,
    no_edge_handle,
    pixel_edges,
    readable_axes,
    result_arrays,
    valence_handles,
)

__all__ = ["plot_valence_maps"]

_logger = logging.getLogger(__name__)


#: At most this many maps of a stack are drawn (evenly chosen).
_MAX_STACK_ROWS = 8


def _kind(p, kind: str | None) -> str:
    """``"probabilities"`` (classification) or ``"fractions"`` (mixed valence)."""
    if kind is None:
        task = None if isinstance(p, np.ndarray) else p.metadata.get_item("MnValence.task")
        return "fractions" if task == "fractions" else "probabilities"
    if kind not in ("probabilities", "fractions"):
        raise ValueError(f"kind must be 'probabilities' or 'fractions', not {kind!r}")
    return kind


def _mean_valence_std(p) -> np.ndarray | None:
    """The mean-valence uncertainty map stored by ``decompose_mn_valence``, if any."""
    if isinstance(p, np.ndarray):
        return None
    from ..maps import metadata_map

    std = metadata_map(p, "mean_valence_std")
    if std is None:
        return None
    data = std.data.compute() if getattr(std, "_lazy", False) else std.data
    data = np.asarray(data, dtype=np.float64)
    # a single network has no spread: nothing to show
    return data if np.any(data[np.isfinite(data)] > 0) else None


def _signal_array(x, name: str) -> tuple[np.ndarray, list[dict] | None]:
    """Data and (for a signal) its spatial axes in numpy order."""
    if isinstance(x, np.ndarray):
        return np.asarray(x, dtype=float), None
    data = x.data.compute() if getattr(x, "_lazy", False) else x.data
    am = x.axes_manager
    axes = sorted((*am.navigation_axes, *am.signal_axes), key=lambda a: a.index_in_array)
    return np.asarray(data, dtype=float), [axis_dict(a) for a in axes]


def _cross_check_maps(cross_check, signal, p, shape: tuple[int, ...]) -> dict | None:
    """The white-line ratio and L3 position maps for ``cross_check``, or None."""
    if cross_check is False or cross_check is None:
        return None
    if cross_check is True:
        if signal is None:
            raise ValueError(
                "cross_check=True needs the spectra: pass signal=s (the signal that was "
                "classified), or cross_check=mnv.white_line_ratio(s)."
            )
        from ..white_line import white_line_ratio

        params = {}
        if not isinstance(p, np.ndarray):
            par = p.metadata.get_item("MnValence.parameters")
            par = par.as_dictionary() if par is not None else {}
            params = {
                k: par[k]
                for k in ("background", "background_window", "energy_window", "min_snr")
                if par.get(k) is not None
            }
        cross_check = white_line_ratio(signal, **params)
    ratio, _ = _signal_array(cross_check, "white-line ratio")
    l3 = cross_check.metadata.get_item("WhiteLine.l3_position_eV")
    l3 = None if l3 is None else _signal_array(l3, "L3 position")[0]
    if l3 is not None and l3.size != ratio.size:  # a slice: metadata maps are not cut
        l3 = None
    if ratio.size != int(np.prod(shape)):
        raise ValueError(
            f"The white-line ratio map has shape {ratio.shape} but the result's pixels "
            f"{shape}: pass the white-line ratio of the spectra that were classified."
        )
    return {
        "ratio": ratio.reshape(shape),
        "l3": None if l3 is None else np.asarray(l3).reshape(shape),
    }


def plot_valence_maps(
    p,
    *,
    fig: Figure | None = None,
    title: str | None = None,
    kind: str | None = None,
    image=None,
    cross_check=False,
    signal=None,
    scalebar: bool = True,
) -> Figure:
    """Figure of a Mn valence result: class probabilities or mixed-valence fractions.

    Pixels without a Mn edge are drawn in :data:`NAN_COLOR` (light cyan, outside every
    colour map used) and named in the legend; legends and colour bars sit outside the
    data; spatial axes are calibrated, in a readable length unit, and maps carry a scale
    bar. The layout follows the data:

    * 2D navigation (a map): the three probability (or fraction) maps (cividis, 0-1),
      the RGB composite in the valence colours, the most likely valence, the mean
      valence ``sum_k p_k v_k`` (viridis, 2-4) and the uncertainty (normalised entropy
      of the probabilities, magma, 0-1). For fractions
      (:func:`~hyperspy_mnvalence.decompose_mn_valence`) the mean oxidation state and,
      where the result holds it, its uncertainty (the ensemble members' disagreement,
      ``metadata.MnValence.mean_valence_std``, in place of the majority valence) are
      shown. Panels are laid out in rows of four for square-ish maps, in one or two
      columns for wide thin maps (21 x 2) and in one row for tall thin ones, so each
      stays large enough to read. Each panel with a colour scale has its colour bar.
    * 3D navigation (a stack of maps, the slowest axis indexing the maps): one row per
      map (at most 8, evenly chosen) of composite, most likely (or majority) valence,
      mean valence and uncertainty, with one colour bar per column.
    * 1D navigation (a line scan; also a map one pixel wide): profiles of the three
      values, of the mean valence (for fractions with a band of +- its uncertainty
      where the result holds it) and, for probabilities, of the uncertainty, against
      the calibrated position over the whole scan: no-edge pixels are shaded, never
      dropped.
    * no navigation (one spectrum): a bar chart of the three values.

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal or numpy.ndarray
        The probabilities or fractions, shape ``(3,) + navigation shape`` (see the
        module notes).
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (cleared first); a new one by default.
    title : str, optional
        Figure title; default the signal's title.
    kind : {"probabilities", "fractions"}, optional
        What the three values are; by default read from the result's metadata
        (``MnValence.task``), probabilities for numpy arrays.
    image : hyperspy.signal.BaseSignal or numpy.ndarray, optional
        An image acquired with the spectrum image (ADF/HAADF) for maps: an extra panel
        shows the most likely valence over it (half transparent; no-edge pixels show the
        image only). A signal is placed by its own calibration; a numpy array must have
        the map's shape.
    cross_check : bool or hyperspy.signal.BaseSignal
        Add the classical white-line cross-check beside the network's maps: the L3/L2
        ratio and the L3 position of :func:`~hyperspy_mnvalence.white_line_ratio`.
        ``True`` computes them from ``signal`` (with the background and energy window
        the result was made with); or pass the result of ``white_line_ratio``.
    signal : hyperspy.signal.BaseSignal, optional
        The classified spectra, for ``cross_check=True``.
    scalebar : bool
        Draw a scale bar on maps with a length calibration.

    Returns
    -------
    matplotlib.figure.Figure
    """
    prob, axes = result_arrays(p)
    axes = readable_axes(axes)
    kind = _kind(p, kind)
    std = _mean_valence_std(p) if kind == "fractions" else None
    if std is not None:  # a single spectrum's is (1,)
        std = std.reshape(prob.shape[1:]) if std.size == prob[0].size else None
    cross = _cross_check_maps(cross_check, signal, p, prob.shape[1:])
    if title is None and not isinstance(p, np.ndarray):
        title = p.metadata.get_item("General.title", None)
    # a map or stack one pixel wide is a line scan; a stack of one map is a map
    squeeze = [i for i, a in enumerate(axes) if a["coords"].size == 1 and len(axes) > 1]
    if squeeze:
        keep = [i for i in range(len(axes)) if i not in squeeze]
        prob = prob.reshape((3,) + tuple(prob.shape[1 + i] for i in keep))
        std = None if std is None else std.reshape(prob.shape[1:])
        if cross is not None:
            cross = {k: None if v is None else v.reshape(prob.shape[1:]) for k, v in cross.items()}
        axes = [axes[i] for i in keep]
    ndim = len(axes)
    if image is not None and ndim != 2:
        raise ValueError("image= (an ADF/HAADF overlay) needs a 2D map result.")
    if ndim == 0:
        fig = _bar_chart(prob, fig, kind, std)
    elif ndim == 1:
        fig = _profiles(prob, axes[0], fig, kind, std, cross)
    elif ndim == 2:
        fig = _maps(prob, axes, fig, kind, std, cross, image, scalebar)
    elif ndim == 3:
        fig = _stack(prob, axes, fig, kind, std, cross, scalebar)
    else:
        raise ValueError(
            f"Cannot plot a result with {ndim} spatial dimensions; slice it to a stack of "
            "maps, a map, a line or a single pixel first (e.g. p.isig[:, :, k])."
        )
    if title:
        fig.suptitle(title)
    return fig


#: Labels of the three values and of the mean, per kind of result.
_KIND_LABELS = {
    "probabilities": {
        "value": "Probability",
        "panel": "P({})",
        "mean": "Mean valence",
        "label": "Most likely valence",
    },
    "fractions": {
        "value": "Fraction",
        "panel": "{} fraction",
        "mean": "Mean oxidation state",
        "label": "Majority valence",
    },
}


def _bar_chart(prob: np.ndarray, fig: Figure | None, kind: str, std: np.ndarray | None) -> Figure:
    from ..maps import expected_valence

    labels = _KIND_LABELS[kind]
    fig = new_figure(fig, (4.0, 3.2))
    ax = fig.add_subplot()
    vals = np.asarray(prob, dtype=float).reshape(3)
    if np.all(np.isfinite(vals)):
        ax.bar(VALENCE_LABELS, vals, color=VALENCE_COLORS, edgecolor="black")
        spread = "" if std is None else f" ± {float(np.ravel(std)[0]):.2f}"
        mean = float(expected_valence(vals, VALENCES))
        extra = ""
        if kind == "probabilities":
            extra = f", uncertainty {float(normalised_entropy(vals[:, None])[0]):.2f}"
        ax.set_title(f"{labels['mean'].lower()} {mean:.2f}{spread}{extra}")
    else:
        ax.bar(VALENCE_LABELS, [0, 0, 0], color=VALENCE_COLORS)
        ax.set_title("no Mn L2,3 edge")
    ax.set_ylim(0, 1)
    ax.set_ylabel(labels["value"])
    return fig


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the True runs of a 1D boolean array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(int))
    return list(zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0], strict=True))


def _shade_no_edge(ax, coords: np.ndarray, bad: np.ndarray) -> None:
    """Shade the pixels without a Mn edge over their full width (patches, no lines)."""
    if coords.size == 1:
        lo_edges = hi_edges = np.array(pixel_edges(coords))
        lo_edges, hi_edges = lo_edges[:1], hi_edges[1:]
    else:
        mid = (coords[1:] + coords[:-1]) / 2
        e0, e1 = pixel_edges(coords)
        lo_edges = np.concatenate([[e0], mid])
        hi_edges = np.concatenate([mid, [e1]])
    for a, b in _runs(bad):
        ax.axvspan(lo_edges[a], hi_edges[b - 1], color=NAN_COLOR, lw=0, zorder=0)


def _profiles(
    prob: np.ndarray,
    axis: dict,
    fig: Figure | None,
    kind: str,
    std: np.ndarray | None,
    cross: dict | None,
) -> Figure:
    labels = _KIND_LABELS[kind]
    x = axis["coords"]
    bad = ~np.all(np.isfinite(prob), axis=0)
    n = 2 + (kind == "probabilities") + (0 if cross is None else 1 + (cross["l3"] is not None))
    fig = new_figure(fig, (7.5, 1.2 + 1.9 * n))
    axs = list(np.atleast_1d(fig.subplots(n, 1, sharex=True)))
    ax1, ax2 = axs[0], axs[1]
    for k in range(3):
        ax1.plot(x, prob[k], color=VALENCE_COLORS[k], label=VALENCE_LABELS[k], lw=1.5)
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel(labels["value"])
    mean, _ = mean_and_label(prob)
    if std is not None:
        ax2.fill_between(
            x, mean - std, mean + std, color="0.75", lw=0, label="± uncertainty (spread)"
        )
        ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax2.plot(x, mean, color="black", lw=1.5)
    ax2.set_ylim(1.9, 4.1)
    ax2.set_yticks([2, 3, 4])
    ax2.set_ylabel(labels["mean"])
    i = 2
    if kind == "probabilities":
        axs[i].plot(x, normalised_entropy(prob), color="black", lw=1.5)
        axs[i].set_ylim(-0.02, 1.02)
        axs[i].set_ylabel("Uncertainty\n(normalised entropy)")
        i += 1
    if cross is not None:
        axs[i].plot(x, cross["ratio"], color="black", lw=1.5, marker=".", ms=3)
        axs[i].set_ylabel("L3/L2 ratio\n(white lines)")
        i += 1
        if cross["l3"] is not None:
            axs[i].plot(x, cross["l3"], color="black", lw=1.5, marker=".", ms=3)
            axs[i].set_ylabel("L3 position (eV)")
    for a in axs:
        _shade_no_edge(a, x, bad)
    handles = [Line2D([], [], color=c, lw=1.5) for c in VALENCE_COLORS]
    names = list(VALENCE_LABELS)
    if bad.any():
        handles.append(no_edge_handle())
        names.append(NO_EDGE_LABEL)
    ax1.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    axs[-1].set_xlim(*pixel_edges(x))  # the whole scan, whatever is NaN at its ends
    axs[-1].set_xlabel(axis_label(axis))
    return fig


@dataclass
class _Panel:
    """One image panel of a map figure."""

    title: str
    data: np.ndarray  # 2D values, or (H, W, 3) RGB
    cmap: str | mcolors.Colormap | None = None
    clim: tuple[float, float] | None = None
    cbar: str | None = None  # colour bar label; None: no colour bar
    ticks: Sequence[float] | None = None
    underlay: tuple[np.ndarray, list[float]] | None = None  # grey image and its extent


def _label_rgba(label: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """RGBA of a 0/1/2 label map in the valence colours; NaN transparent."""
    cols = np.array([mcolors.to_rgba(c, alpha) for c in VALENCE_COLORS])
    ok = np.isfinite(label)
    out = np.zeros(label.shape + (4,))
    out[ok] = cols[label[ok].astype(int)]
    return out


def _map_panels(
    prob: np.ndarray, kind: str, std: np.ndarray | None, cross: dict | None, full: bool = True
) -> list[_Panel]:
    labels = _KIND_LABELS[kind]
    mean, label = mean_and_label(prob)
    panels = []
    if full:
        for k in range(3):
            panels.append(
                _Panel(
                    labels["panel"].format(VALENCE_LABELS[k]),
                    prob[k],
                    PROB_CMAP,
                    (0.0, 1.0),
                    labels["value"],
                )
            )
    panels.append(_Panel("RGB composite", composite_rgb(prob)))
    label_cmap = mcolors.ListedColormap(list(VALENCE_COLORS))
    label_panel = _Panel(labels["label"], label, label_cmap, (-0.5, 2.5))
    mean_panel = _Panel(
        labels["mean"], mean, VALENCE_CMAP, (2.0, 4.0), "Valence", (2, 2.5, 3, 3.5, 4)
    )
    if kind == "fractions" and std is not None:
        finite = std[np.isfinite(std)]
        top = float(np.percentile(finite, 99)) if finite.size else 1.0  # not set by outliers
        top = top if top > 0 else float(finite.max(initial=1.0))
        panels += [
            mean_panel,
            _Panel("Uncertainty (ensemble spread)", std, UNCERTAINTY_CMAP, (0.0, top), "Valence"),
        ]
    elif kind == "fractions":
        panels += [label_panel, mean_panel]
    else:
        unc = _Panel(
            "Uncertainty (normalised entropy)",
            normalised_entropy(prob),
            UNCERTAINTY_CMAP,
            (0.0, 1.0),
            "0 certain … 1 undecided",
        )
        panels += [label_panel, mean_panel, unc]
    if cross is not None:
        r = cross["ratio"]
        finite = r[np.isfinite(r)]
        lim = (
            (float(np.percentile(finite, 1)), float(np.percentile(finite, 99)))
            if finite.size
            else (0.0, 1.0)
        )
        lim = lim if lim[1] > lim[0] else (lim[0] - 0.5, lim[0] + 0.5)
        panels.append(_Panel("L3/L2 white-line ratio", r, RATIO_CMAP, lim, "L3/L2"))
        if cross["l3"] is not None:
            e = cross["l3"]
            fe = e[np.isfinite(e)]
            elim = (float(fe.min()), float(fe.max())) if fe.size else (0.0, 1.0)
            elim = elim if elim[1] > elim[0] else (elim[0] - 0.5, elim[0] + 0.5)
            panels.append(_Panel("L3 position (white line)", e, L3_CMAP, elim, "eV"))
    return panels


def _image_underlay(image, shape: tuple[int, int], extent: list[float], axes: list[dict]):
    """The grey image to draw under the map, and its extent."""
    data, img_axes = _signal_array(image, "image")
    if data.ndim != 2:
        raise ValueError(f"image must be 2D (an ADF/HAADF image), got shape {data.shape}.")
    if img_axes is None:
        if data.shape != tuple(shape):
            raise ValueError(
                f"The image has shape {data.shape} but the map {tuple(shape)}: pass a "
                "calibrated signal (placed by its axes) or an array of the map's shape."
            )
        return data, extent
    iy, ix = readable_axes(img_axes)
    if {ix["units"], iy["units"]} != {axes[1]["units"], axes[0]["units"]}:
        _logger.info("image axes in %s, map in %s", ix["units"], axes[1]["units"])
    return data, image_extent(ix, iy)


def _grid_shape(n: int, aspect: float) -> tuple[int, int, float, float]:
    """Columns, rows, panel width and height (inches) for ``n`` panels of ``aspect``."""
    if aspect >= 6.0:
        ncols, width = 1, 7.5
    elif aspect >= 2.5:
        ncols, width = 2, 5.0
    elif aspect <= 0.25:
        ncols = min(n, 8)
        height = 4.5
        return ncols, math.ceil(n / ncols), max(height * aspect, 0.35), height
    else:
        ncols, width = (4, 2.9) if n >= 7 else (3, 3.2)
    height = float(np.clip(width / aspect, 0.45, 6.0))
    return ncols, math.ceil(n / ncols), width, height


def _draw_panel(fig, ax, panel: _Panel, extent: list[float], ax_x: dict, ax_y: dict):
    kw = {"extent": extent, "interpolation": "nearest", "aspect": "equal"}
    if panel.underlay is not None:
        grey, ext = panel.underlay
        ax.imshow(grey, cmap="gray", extent=ext, interpolation="nearest", aspect="equal")
        ax.imshow(_label_rgba(panel.data, 0.55), **kw)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        im = None
    elif panel.cmap is None:
        im = ax.imshow(panel.data, **kw)
    else:
        cmap = colormaps[panel.cmap] if isinstance(panel.cmap, str) else panel.cmap
        cmap = cmap.with_extremes(bad=NAN_COLOR)
        lo, hi = panel.clim if panel.clim is not None else (None, None)
        im = ax.imshow(np.ma.masked_invalid(panel.data), cmap=cmap, vmin=lo, vmax=hi, **kw)
    ax.set_title(panel.title, fontsize="medium")
    ax.set_xlabel(axis_label(ax_x))
    ax.set_ylabel(axis_label(ax_y))
    return im


def _maps(
    prob: np.ndarray,
    axes: list[dict],
    fig: Figure | None,
    kind: str,
    std: np.ndarray | None,
    cross: dict | None,
    image,
    scalebar: bool,
) -> Figure:
    ay, ax_ = axes  # numpy order: rows, columns
    ext = image_extent(ax_, ay)
    panels = _map_panels(prob, kind, std, cross)
    if image is not None:
        _, label = mean_and_label(prob)
        name = image.metadata.get_item("General.title", "") if hasattr(image, "metadata") else ""
        panels.append(
            _Panel(
                f"{_KIND_LABELS[kind]['label']} on {name or 'the image'}",
                label,
                underlay=_image_underlay(image, prob.shape[1:], ext, axes),
            )
        )
    aspect = abs(ext[1] - ext[0]) / abs(ext[2] - ext[3])
    ncols, nrows, pw, ph = _grid_shape(len(panels), aspect)
    size = (ncols * (pw + 1.5) + 0.3, nrows * (ph + 1.0) + 1.2)
    fig = new_figure(fig, size)
    gs = fig.add_gridspec(nrows, ncols)
    thin = min(prob.shape[1:]) < 8
    made = []
    for i, panel in enumerate(panels):
        a = fig.add_subplot(gs[i // ncols, i % ncols])
        made.append((a, _draw_panel(fig, a, panel, ext, ax_, ay), panel))
    for a, im, panel in made:  # colour bars after the panels: fig.axes[:n] are panels
        if im is not None and panel.cbar is not None:
            orient = "horizontal" if aspect <= 0.25 else "vertical"
            cb = fig.colorbar(im, ax=a, shrink=0.9, label=panel.cbar, orientation=orient)
            if panel.ticks is not None:
                cb.set_ticks(panel.ticks)
        if scalebar:
            add_scalebar(a, ax_, inside=not thin)
    fig.legend(
        handles=valence_handles(),
        loc="outside lower center",
        ncols=4,
        fontsize="small",
        title=f"{_KIND_LABELS[kind]['label']} / composite colours",
        title_fontsize="small",
    )
    return fig


def _stack(
    prob: np.ndarray,
    axes: list[dict],
    fig: Figure | None,
    kind: str,
    std: np.ndarray | None,
    cross: dict | None,
    scalebar: bool,
) -> Figure:
    az, ay, ax_ = axes
    n = prob.shape[1]
    rows = np.unique(np.linspace(0, n - 1, min(n, _MAX_STACK_ROWS)).round().astype(int))
    ext = image_extent(ax_, ay)
    aspect = abs(ext[1] - ext[0]) / abs(ext[2] - ext[3])
    per_row = [
        _map_panels(
            prob[:, j],
            kind,
            None if std is None else std[j],
            None if cross is None else {k: None if v is None else v[j] for k, v in cross.items()},
            full=False,
        )
        for j in rows
    ]
    ncols = len(per_row[0])
    pw = float(np.clip(2.8 * min(aspect, 2.5), 0.8, 7.0))
    ph = float(np.clip(pw / aspect, 0.45, 4.0))
    fig = new_figure(fig, (ncols * (pw + 0.5) + 0.8, len(rows) * (ph + 0.7) + 2.2))
    grid = np.array(fig.subplots(len(rows), ncols, squeeze=False))
    thin = min(prob.shape[2:]) < 8
    ims = {}
    for r, (j, panels) in enumerate(zip(rows, per_row, strict=True)):
        for c, panel in enumerate(panels):
            a = grid[r, c]
            ims[c] = (_draw_panel(fig, a, panel, ext, ax_, ay), panel)
            if r:
                a.set_title("")
            if c == 0:
                where = f"{az['coords'][j]:g} {az['units']}".strip()
                a.set_ylabel(f"{az['name']} {where}\n{axis_label(ay)}")
            if scalebar:
                add_scalebar(a, ax_, inside=not thin)
    for c, (im, panel) in ims.items():
        if im is not None and panel.cbar is not None:
            cb = fig.colorbar(im, ax=list(grid[:, c]), location="bottom", label=panel.cbar)
            if panel.ticks is not None:
                cb.set_ticks(panel.ticks)
    if len(rows) < n:
        fig.text(0.01, 0.99, f"{len(rows)} of {n} maps shown", va="top", fontsize="small")
    fig.legend(
        handles=valence_handles(),
        loc="outside lower center",
        ncols=4,
        fontsize="small",
    )
    return fig
