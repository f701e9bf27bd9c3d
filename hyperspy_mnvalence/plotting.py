"""Matplotlib figures of Mn valence classification results.

The result ``p`` of a classification holds the probabilities of Mn2+, Mn3+ and Mn4+
with shape ``(3,) + navigation shape of the input`` (numpy order): one axis named
"Mn valence" (size 3) and the input's navigation axes, with their calibration. NaN
marks pixels without a Mn L2,3 edge. Plain numpy arrays of that layout are accepted
too (uncalibrated, in pixels).

Colours: the probability maps use ``cividis``, the mean valence ``viridis``, the
uncertainty ``magma`` and the white-line ratio ``viridis_r`` (high ratio, Mn2+-like, in
the colour of a low mean valence); valences use Paul Tol's colour-blind safe
high-contrast triad (Mn2+ blue ``#004488``, Mn3+ yellow ``#DDAA33``, Mn4+ red
``#BB5566``). Pixels without a Mn edge are drawn in :data:`NAN_COLOR`, a light cyan
(``#99DDFF``) that none of those colour maps nor any mixture of the valence colours
comes near (at least 0.47 apart in RGB, on a 0-1 scale), and every figure names it in
its legend. Legends and colour bars sit outside the data; spatial axes are shown in a
length unit that keeps the numbers readable (nm rather than 0.0025 µm) and maps carry
a scale bar. Nothing here calls ``plt.show``; the functions return figures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import offset_copy

__all__ = [
    "NAN_COLOR",
    "NO_EDGE_LABEL",
    "VALENCE_COLORS",
    "VALENCE_LABELS",
    "composite_rgb",
    "plot_class_spectra",
    "plot_pixel_spectra",
    "plot_valence_maps",
]

_logger = logging.getLogger(__name__)

VALENCE_LABELS: tuple[str, str, str] = ("Mn2+", "Mn3+", "Mn4+")
#: Paul Tol's high-contrast scheme, one colour per valence (Mn2+, Mn3+, Mn4+).
VALENCE_COLORS: tuple[str, str, str] = ("#004488", "#DDAA33", "#BB5566")
#: RGB of pixels without a Mn edge (NaN values) in every map and line-scan shading:
#: light cyan ``#99DDFF``, far from every colour map used here and from any mixture of
#: the valence colours.
NAN_COLOR: tuple[float, float, float] = mcolors.to_rgb("#99DDFF")
#: Legend entry of the no-edge colour.
NO_EDGE_LABEL = "no Mn edge"

_VALENCES = np.array([2.0, 3.0, 4.0])
_PROB_CMAP = "cividis"
_VALENCE_CMAP = "viridis"
_UNCERTAINTY_CMAP = "magma"
_RATIO_CMAP = "viridis_r"
_L3_CMAP = "cividis"
#: Colour maps of this module; :data:`NAN_COLOR` is chosen away from all of them.
COLOR_MAPS = (_PROB_CMAP, _VALENCE_CMAP, _UNCERTAINTY_CMAP, _RATIO_CMAP, _L3_CMAP)
#: At most this many maps of a stack are drawn (evenly chosen).
_MAX_STACK_ROWS = 8


def composite_rgb(
    probabilities: np.ndarray,
    nan_color: Sequence[float] = NAN_COLOR,
) -> np.ndarray:
    """RGB composite of the three probabilities in the valence colours.

    ``rgb = sum_k p_k * colour_k``, clipped to [0, 1]; a pure valence gets exactly its
    colour, mixtures blend. Pixels where any probability is NaN get ``nan_color``.

    Parameters
    ----------
    probabilities : numpy.ndarray
        Shape ``(3, ...)``: Mn2+, Mn3+, Mn4+ probabilities.
    nan_color : sequence of 3 float
        RGB (0-1) of pixels without a result.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(..., 3)``.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim < 1 or p.shape[0] != 3:
        raise ValueError(
            f"probabilities must have shape (3, ...) (Mn2+, Mn3+, Mn4+ first), got {p.shape}."
        )
    cols = np.array([mcolors.to_rgb(c) for c in VALENCE_COLORS])  # (3, 3)
    pm = np.moveaxis(p, 0, -1)  # (..., 3)
    bad = ~np.all(np.isfinite(pm), axis=-1)
    rgb = np.clip(np.where(bad[..., None], 0.0, pm) @ cols, 0.0, 1.0)
    rgb[bad] = np.asarray(nan_color, dtype=np.float64)
    return rgb


# ---------------------------------------------------------------------------------------
# axes: calibration, readable units, scale bar
# ---------------------------------------------------------------------------------------

#: Length units understood on spatial axes, in nm.
_LENGTH_NM = {
    "m": 1e9,
    "mm": 1e6,
    "µm": 1e3,
    "μm": 1e3,
    "um": 1e3,
    "micron": 1e3,
    "nm": 1.0,
    "pm": 1e-3,
    "Å": 0.1,
    "angstrom": 0.1,
}
#: Units a length axis is shown in, smallest first, with their size in nm.
_DISPLAY_UNITS = (("pm", 1e-3), ("nm", 1.0), ("µm", 1e3), ("mm", 1e6))


def _result_arrays(p) -> tuple[np.ndarray, list[dict]]:
    """Values as ``(3, *spatial)`` numpy array, and the spatial axes (numpy order).

    Each axis is a dict with ``name``, ``units`` and ``coords`` (the pixel centres).
    """
    if isinstance(p, np.ndarray):
        data = np.asarray(p, dtype=np.float64)
        if data.ndim < 1 or data.shape[0] != 3:
            raise ValueError(f"Expected probabilities of shape (3, ...), got {data.shape}.")
        axes = [
            {"name": f"axis {i}", "units": "px", "coords": np.arange(n, dtype=float)}
            for i, n in enumerate(data.shape[1:])
        ]
        return data, axes
    from .maps import result_data

    data = result_data(p)  # the valence axis first
    if getattr(p, "_lazy", False):
        data = data.compute()
    data = np.asarray(data, dtype=np.float64)
    am = p.axes_manager
    others = sorted(
        (a for a in (*am.navigation_axes, *am.signal_axes) if a.index_in_array != 0),
        key=lambda a: a.index_in_array,
    )
    return data, [_axis_dict(a) for a in others]


def _axis_dict(a) -> dict:
    name = a.name if isinstance(a.name, str) else "position"
    units = a.units if isinstance(a.units, str) and a.units != "<undefined>" else ""
    return {"name": name, "units": units, "coords": np.asarray(a.axis, dtype=float)}


def _span(coords: np.ndarray) -> float:
    step = abs(coords[1] - coords[0]) if coords.size > 1 else 1.0
    return float(abs(coords[-1] - coords[0]) + step)


def _readable_axes(axes: list[dict]) -> list[dict]:
    """The axes with length units converted to one unit that keeps numbers readable.

    The unit is the largest of pm, nm, µm and mm in which the widest field of view is
    at least 1 (52.5 nm rather than 0.0525 µm). Other axes are left as they are.
    """
    lengths = [a for a in axes if a["units"] in _LENGTH_NM]
    if not lengths:
        return axes
    fov = max(_span(a["coords"]) * _LENGTH_NM[a["units"]] for a in lengths)
    unit, size = _DISPLAY_UNITS[0]
    for u, nm in _DISPLAY_UNITS:
        if fov / nm >= 1.0:
            unit, size = u, nm
    out = []
    for a in axes:
        if a["units"] in _LENGTH_NM:
            a = {**a, "units": unit, "coords": a["coords"] * (_LENGTH_NM[a["units"]] / size)}
        out.append(a)
    return out


def _label(ax: dict) -> str:
    return f"{ax['name']} ({ax['units']})" if ax["units"] else ax["name"]


def _edges(c: np.ndarray) -> tuple[float, float]:
    if c.size == 1:
        return c[0] - 0.5, c[0] + 0.5
    h0, h1 = (c[1] - c[0]) / 2, (c[-1] - c[-2]) / 2
    return c[0] - h0, c[-1] + h1


def _extent(ax_x: dict, ax_y: dict) -> list[float]:
    x0, x1 = _edges(ax_x["coords"])
    y0, y1 = _edges(ax_y["coords"])
    return [x0, x1, y1, y0]  # origin upper: first row at the top


def _nice_length(span: float) -> float:
    """The largest 1, 2 or 5 times a power of ten that is at most a quarter of ``span``."""
    target = span / 4.0
    k = 10.0 ** math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * k <= target:
            return m * k
    return k


def _add_scalebar(ax, x_axis: dict, inside: bool) -> None:
    """A scale bar along x: inside the lower left of a map, or above the right end of a
    map too thin to hold one (fewer than 8 pixels across)."""
    if x_axis["units"] not in _LENGTH_NM:
        return  # uncalibrated (pixels): the axes say it all
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = _nice_length(_span(x_axis["coords"]))
    label = f"{length:g} {x_axis['units']}"
    kw = {"pad": 0.25, "sep": 2, "size_vertical": 0, "fontproperties": {"size": "x-small"}}
    if inside:
        bar = AnchoredSizeBar(
            ax.transData, length, label, "lower left", borderpad=0.3, frameon=True, **kw
        )
        bar.patch.set_alpha(0.75)
    else:
        bar = AnchoredSizeBar(
            ax.transData,
            length,
            label,
            "lower right",
            borderpad=0.0,
            frameon=False,
            bbox_to_anchor=(1.0, 1.0),
            bbox_transform=ax.transAxes,
            **kw,
        )
    bar.set_gid(f"scalebar {label}")
    ax.add_artist(bar)


def _new_figure(fig: Figure | None, size: tuple[float, float]) -> Figure:
    if fig is None:
        return Figure(figsize=size, layout="constrained")
    fig.clear()
    return fig


# ---------------------------------------------------------------------------------------
# derived values
# ---------------------------------------------------------------------------------------


def _mean_and_label(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .maps import expected_valence, valid_argmax

    idx, valid = valid_argmax(prob)
    return expected_valence(prob, _VALENCES), np.where(valid, idx.astype(float), np.nan)


def _entropy(prob: np.ndarray) -> np.ndarray:
    """Normalised entropy along axis 0 (as :func:`~hyperspy_mnvalence.uncertainty`)."""
    q = np.clip(prob, 1e-12, 1.0)
    h = -(q * np.log(q)).sum(axis=0) / np.log(3.0)
    return np.where(np.all(np.isfinite(prob), axis=0), h, np.nan)


def _valence_handles(no_edge: bool = True) -> list[Patch]:
    handles = [
        Patch(facecolor=c, edgecolor="black", lw=0.5, label=lab)
        for c, lab in zip(VALENCE_COLORS, VALENCE_LABELS, strict=True)
    ]
    if no_edge:
        handles.append(_no_edge_handle())
    return handles


def _no_edge_handle() -> Patch:
    return Patch(facecolor=NAN_COLOR, edgecolor="black", lw=0.5, label=NO_EDGE_LABEL)


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
    from .maps import metadata_map

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
    return np.asarray(data, dtype=float), [_axis_dict(a) for a in axes]


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
        from .white_line import white_line_ratio

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


# ---------------------------------------------------------------------------------------
# plot_valence_maps
# ---------------------------------------------------------------------------------------


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
    prob, axes = _result_arrays(p)
    axes = _readable_axes(axes)
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
    from .maps import expected_valence

    labels = _KIND_LABELS[kind]
    fig = _new_figure(fig, (4.0, 3.2))
    ax = fig.add_subplot()
    vals = np.asarray(prob, dtype=float).reshape(3)
    if np.all(np.isfinite(vals)):
        ax.bar(VALENCE_LABELS, vals, color=VALENCE_COLORS, edgecolor="black")
        spread = "" if std is None else f" ± {float(np.ravel(std)[0]):.2f}"
        mean = float(expected_valence(vals, _VALENCES))
        extra = ""
        if kind == "probabilities":
            extra = f", uncertainty {float(_entropy(vals[:, None])[0]):.2f}"
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
        lo_edges = hi_edges = np.array(_edges(coords))
        lo_edges, hi_edges = lo_edges[:1], hi_edges[1:]
    else:
        mid = (coords[1:] + coords[:-1]) / 2
        e0, e1 = _edges(coords)
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
    fig = _new_figure(fig, (7.5, 1.2 + 1.9 * n))
    axs = list(np.atleast_1d(fig.subplots(n, 1, sharex=True)))
    ax1, ax2 = axs[0], axs[1]
    for k in range(3):
        ax1.plot(x, prob[k], color=VALENCE_COLORS[k], label=VALENCE_LABELS[k], lw=1.5)
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel(labels["value"])
    mean, _ = _mean_and_label(prob)
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
        axs[i].plot(x, _entropy(prob), color="black", lw=1.5)
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
        handles.append(_no_edge_handle())
        names.append(NO_EDGE_LABEL)
    ax1.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    axs[-1].set_xlim(*_edges(x))  # the whole scan, whatever is NaN at its ends
    axs[-1].set_xlabel(_label(axis))
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
    mean, label = _mean_and_label(prob)
    panels = []
    if full:
        for k in range(3):
            panels.append(
                _Panel(
                    labels["panel"].format(VALENCE_LABELS[k]),
                    prob[k],
                    _PROB_CMAP,
                    (0.0, 1.0),
                    labels["value"],
                )
            )
    panels.append(_Panel("RGB composite", composite_rgb(prob)))
    label_cmap = mcolors.ListedColormap(list(VALENCE_COLORS))
    label_panel = _Panel(labels["label"], label, label_cmap, (-0.5, 2.5))
    mean_panel = _Panel(
        labels["mean"], mean, _VALENCE_CMAP, (2.0, 4.0), "Valence", (2, 2.5, 3, 3.5, 4)
    )
    if kind == "fractions" and std is not None:
        finite = std[np.isfinite(std)]
        top = float(np.percentile(finite, 99)) if finite.size else 1.0  # not set by outliers
        top = top if top > 0 else float(finite.max(initial=1.0))
        panels += [
            mean_panel,
            _Panel("Uncertainty (ensemble spread)", std, _UNCERTAINTY_CMAP, (0.0, top), "Valence"),
        ]
    elif kind == "fractions":
        panels += [label_panel, mean_panel]
    else:
        unc = _Panel(
            "Uncertainty (normalised entropy)",
            _entropy(prob),
            _UNCERTAINTY_CMAP,
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
        panels.append(_Panel("L3/L2 white-line ratio", r, _RATIO_CMAP, lim, "L3/L2"))
        if cross["l3"] is not None:
            e = cross["l3"]
            fe = e[np.isfinite(e)]
            elim = (float(fe.min()), float(fe.max())) if fe.size else (0.0, 1.0)
            elim = elim if elim[1] > elim[0] else (elim[0] - 0.5, elim[0] + 0.5)
            panels.append(_Panel("L3 position (white line)", e, _L3_CMAP, elim, "eV"))
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
    iy, ix = _readable_axes(img_axes)
    if {ix["units"], iy["units"]} != {axes[1]["units"], axes[0]["units"]}:
        _logger.info("image axes in %s, map in %s", ix["units"], axes[1]["units"])
    return data, _extent(ix, iy)


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
    ax.set_xlabel(_label(ax_x))
    ax.set_ylabel(_label(ax_y))
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
    ext = _extent(ax_, ay)
    panels = _map_panels(prob, kind, std, cross)
    if image is not None:
        _, label = _mean_and_label(prob)
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
    fig = _new_figure(fig, size)
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
            _add_scalebar(a, ax_, inside=not thin)
    fig.legend(
        handles=_valence_handles(),
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
    ext = _extent(ax_, ay)
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
    fig = _new_figure(fig, (ncols * (pw + 0.5) + 0.8, len(rows) * (ph + 0.7) + 2.2))
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
                a.set_ylabel(f"{az['name']} {where}\n{_label(ay)}")
            if scalebar:
                _add_scalebar(a, ax_, inside=not thin)
    for c, (im, panel) in ims.items():
        if im is not None and panel.cbar is not None:
            cb = fig.colorbar(im, ax=list(grid[:, c]), location="bottom", label=panel.cbar)
            if panel.ticks is not None:
                cb.set_ticks(panel.ticks)
    if len(rows) < n:
        fig.text(0.01, 0.99, f"{len(rows)} of {n} maps shown", va="top", fontsize="small")
    fig.legend(
        handles=_valence_handles(),
        loc="outside lower center",
        ncols=4,
        fontsize="small",
    )
    return fig


# ---------------------------------------------------------------------------------------
# spectra
# ---------------------------------------------------------------------------------------


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
    from .preprocessing import DEFAULT_PREPROCESSING, subtract_background, to_uniform_grid

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
    from .preprocessing import preprocess
    from .signal_checks import energy_axis

    prob, axes = _result_arrays(p)
    axes = _readable_axes(axes)
    nav_dim = s.axes_manager.navigation_dimension
    if prob.ndim - 1 != nav_dim:
        raise ValueError(
            f"The result has {prob.ndim - 1} spatial dimensions but the signal has "
            f"{nav_dim} navigation dimensions; pass the result of this signal."
        )
    e_ax = s.axes_manager.signal_axes[0]
    energy = energy_axis(s)  # eV whatever the axis' units
    pixels = list(pixels) if nav_dim else [()]
    idxs, spectra = [], []
    for pix in pixels:
        idx = (pix,) if np.ndim(pix) == 0 and nav_dim else tuple(pix)
        if len(idx) != nav_dim:
            raise ValueError(f"Pixel {pix!r} needs {nav_dim} indices (HyperSpy order).")
        sub = s.inav[idx] if nav_dim else s
        y = sub.data.compute() if getattr(sub, "_lazy", False) else sub.data
        idxs.append(idx)
        spectra.append(np.asarray(y, dtype=float))
    spectra = np.array(spectra)
    params = _result_parameters(p)
    pre_kw = {k: v for k, v in params.items() if k != "min_snr"}
    try:
        pre = preprocess(spectra, energy, min_snr=params.get("min_snr", 8.0), **pre_kw)
        peaks = np.asarray(pre.peak_eV, dtype=float)
    except ValueError as err:  # the range holds no edge: draw the spectra alone
        _logger.info("no L3 peaks for the figure: %s", err)
        peaks = np.full(len(spectra), np.nan)
    fits = _background_fits(spectra, energy, peaks, params) if background else [None] * len(peaks)
    fig = _new_figure(fig, (10.5, 4.8))
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
    from .preprocessing import DEFAULT_PREPROCESSING, preprocess
    from .signal_checks import energy_axis

    prob, _ = _result_arrays(p)
    label = _mean_and_label(prob)[1].ravel()  # NaN where no Mn edge
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
    fig = _new_figure(fig, (8.5, 4.5))
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
