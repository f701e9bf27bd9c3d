"""What the figures share: colours, axes in readable units, scale bars, legends."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = [
    "COLOR_MAPS",
    "L3_CMAP",
    "NAN_COLOR",
    "NO_EDGE_LABEL",
    "PROB_CMAP",
    "RATIO_CMAP",
    "UNCERTAINTY_CMAP",
    "VALENCES",
    "VALENCE_CMAP",
    "VALENCE_COLORS",
    "VALENCE_LABELS",
    "add_scalebar",
    "axis_dict",
    "axis_label",
    "composite_rgb",
    "image_extent",
    "mean_and_label",
    "new_figure",
    "no_edge_handle",
    "pixel_edges",
    "readable_axes",
    "result_arrays",
    "valence_handles",
]

_logger = logging.getLogger(__name__)


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

VALENCES = np.array([2.0, 3.0, 4.0])

PROB_CMAP = "cividis"

VALENCE_CMAP = "viridis"

UNCERTAINTY_CMAP = "magma"

RATIO_CMAP = "viridis_r"

L3_CMAP = "cividis"

#: Colour maps of this module; :data:`NAN_COLOR` is chosen away from all of them.
COLOR_MAPS = (PROB_CMAP, VALENCE_CMAP, UNCERTAINTY_CMAP, RATIO_CMAP, L3_CMAP)


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


def result_arrays(p) -> tuple[np.ndarray, list[dict]]:
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
    from ..maps import result_data

    data = result_data(p)  # the valence axis first
    if getattr(p, "_lazy", False):
        data = data.compute()
    data = np.asarray(data, dtype=np.float64)
    am = p.axes_manager
    others = sorted(
        (a for a in (*am.navigation_axes, *am.signal_axes) if a.index_in_array != 0),
        key=lambda a: a.index_in_array,
    )
    return data, [axis_dict(a) for a in others]


def axis_dict(a) -> dict:
    name = a.name if isinstance(a.name, str) else "position"
    units = a.units if isinstance(a.units, str) and a.units != "<undefined>" else ""
    return {"name": name, "units": units, "coords": np.asarray(a.axis, dtype=float)}


def _span(coords: np.ndarray) -> float:
    step = abs(coords[1] - coords[0]) if coords.size > 1 else 1.0
    return float(abs(coords[-1] - coords[0]) + step)


def readable_axes(axes: list[dict]) -> list[dict]:
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


def axis_label(ax: dict) -> str:
    return f"{ax['name']} ({ax['units']})" if ax["units"] else ax["name"]


def pixel_edges(c: np.ndarray) -> tuple[float, float]:
    if c.size == 1:
        return c[0] - 0.5, c[0] + 0.5
    h0, h1 = (c[1] - c[0]) / 2, (c[-1] - c[-2]) / 2
    return c[0] - h0, c[-1] + h1


def image_extent(ax_x: dict, ax_y: dict) -> list[float]:
    x0, x1 = pixel_edges(ax_x["coords"])
    y0, y1 = pixel_edges(ax_y["coords"])
    return [x0, x1, y1, y0]  # origin upper: first row at the top


def _nice_length(span: float) -> float:
    """The largest 1, 2 or 5 times a power of ten that is at most a quarter of ``span``."""
    target = span / 4.0
    k = 10.0 ** math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * k <= target:
            return m * k
    return k


def add_scalebar(ax, x_axis: dict, inside: bool) -> None:
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


def new_figure(fig: Figure | None, size: tuple[float, float]) -> Figure:
    if fig is None:
        return Figure(figsize=size, layout="constrained")
    fig.clear()
    return fig


def mean_and_label(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from ..maps import expected_valence, valid_argmax

    idx, valid = valid_argmax(prob)
    return expected_valence(prob, VALENCES), np.where(valid, idx.astype(float), np.nan)


def valence_handles(no_edge: bool = True) -> list[Patch]:
    handles = [
        Patch(facecolor=c, edgecolor="black", lw=0.5, label=lab)
        for c, lab in zip(VALENCE_COLORS, VALENCE_LABELS, strict=True)
    ]
    if no_edge:
        handles.append(no_edge_handle())
    return handles


def no_edge_handle() -> Patch:
    return Patch(facecolor=NAN_COLOR, edgecolor="black", lw=0.5, label=NO_EDGE_LABEL)
