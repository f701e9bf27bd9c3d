"""Matplotlib figures of Mn valence classification results.

The result ``p`` of a classification holds the probabilities of Mn2+, Mn3+ and Mn4+
with shape ``(3,) + navigation shape of the input`` (numpy order): one axis named
"Mn valence" (size 3) and the input's navigation axes, with their calibration. NaN
marks pixels without a Mn L2,3 edge. Plain numpy arrays of that layout are accepted
too (uncalibrated, in pixels).

Colours: the probability maps use ``cividis``; valences use Paul Tol's colour-blind
safe high-contrast triad (Mn2+ blue ``#004488``, Mn3+ yellow ``#DDAA33``, Mn4+ red
``#BB5566``). Nothing here calls ``plt.show``; the functions return figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = [
    "NAN_COLOR",
    "VALENCE_COLORS",
    "VALENCE_LABELS",
    "composite_rgb",
    "plot_class_spectra",
    "plot_pixel_spectra",
    "plot_valence_maps",
]

VALENCE_LABELS: tuple[str, str, str] = ("Mn2+", "Mn3+", "Mn4+")
#: Paul Tol's high-contrast scheme, one colour per valence (Mn2+, Mn3+, Mn4+).
VALENCE_COLORS: tuple[str, str, str] = ("#004488", "#DDAA33", "#BB5566")
#: RGB of pixels without a Mn edge (NaN probabilities) in composites and label maps.
NAN_COLOR: tuple[float, float, float] = (0.6, 0.6, 0.6)

_VALENCES = np.array([2.0, 3.0, 4.0])
_PROB_CMAP = "cividis"
_VALENCE_CMAP = "viridis"


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


def _result_arrays(p) -> tuple[np.ndarray, list[dict]]:
    """Probabilities as ``(3, *spatial)`` numpy array, and the spatial axes (numpy order).

    Each axis is a dict with ``name``, ``units`` and ``coords`` (the pixel centres).
    """
    if isinstance(p, np.ndarray):
        data = np.asarray(p, dtype=np.float64)
        axes = [
            {"name": f"axis {i}", "units": "px", "coords": np.arange(n, dtype=float)}
            for i, n in enumerate(data.shape[1:])
        ]
        if data.shape[0] != 3:
            raise ValueError(f"Expected probabilities of shape (3, ...), got {data.shape}.")
        return data, axes
    from .maps import _result_data

    data = _result_data(p)  # the valence axis first
    if getattr(p, "_lazy", False):
        data = data.compute()
    data = np.asarray(data, dtype=np.float64)
    am = p.axes_manager
    others = sorted(
        (a for a in (*am.navigation_axes, *am.signal_axes) if a.index_in_array != 0),
        key=lambda a: a.index_in_array,
    )
    axes = []
    for a in others:
        name = a.name if isinstance(a.name, str) else "position"
        units = a.units if isinstance(a.units, str) else ""
        axes.append({"name": name, "units": units, "coords": np.asarray(a.axis, dtype=float)})
    return data, axes


def _label(ax: dict) -> str:
    return f"{ax['name']} ({ax['units']})" if ax["units"] else ax["name"]


def _extent(ax_x: dict, ax_y: dict) -> list[float]:
    def edges(c):
        if c.size == 1:
            return c[0] - 0.5, c[0] + 0.5
        h0, h1 = (c[1] - c[0]) / 2, (c[-1] - c[-2]) / 2
        return c[0] - h0, c[-1] + h1

    x0, x1 = edges(ax_x["coords"])
    y0, y1 = edges(ax_y["coords"])
    return [x0, x1, y1, y0]  # origin upper: first row at the top


def _new_figure(fig: Figure | None, size: tuple[float, float]) -> Figure:
    if fig is None:
        return Figure(figsize=size, layout="constrained")
    fig.clear()
    return fig


def _mean_and_label(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .maps import _expected_valence, _valid_argmax

    idx, valid = _valid_argmax(prob)
    return _expected_valence(prob, _VALENCES), np.where(valid, idx.astype(float), np.nan)


def _valence_handles() -> list[Patch]:
    return [
        Patch(color=c, label=lab) for c, lab in zip(VALENCE_COLORS, VALENCE_LABELS, strict=True)
    ]


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
    from .maps import _metadata_map

    std = _metadata_map(p, "mean_valence_std")
    if std is None:
        return None
    data = std.data.compute() if getattr(std, "_lazy", False) else std.data
    data = np.asarray(data, dtype=np.float64)
    # a single network has no spread: nothing to show
    return data if np.any(data[np.isfinite(data)] > 0) else None


def plot_valence_maps(
    p,
    *,
    fig: Figure | None = None,
    title: str | None = None,
    kind: str | None = None,
) -> Figure:
    """Figure of a Mn valence result: class probabilities or mixed-valence fractions.

    * 2D navigation (a map): six panels - the three probability (or fraction) maps
      (cividis, 0-1, each with a colourbar), the RGB composite in the valence colours
      (grey: no Mn edge; legend of the three colours), the most likely valence (same
      colours), and the mean valence ``sum_k p_k v_k`` (colourbar 2-4). For fractions
      (:func:`~hyperspy_mnvalence.decompose_mn_valence`) the mean oxidation state and,
      where the result holds it, the map of its uncertainty (the ensemble members'
      disagreement, ``metadata.MnValence.mean_valence_std``) take the last two panels.
      Extents and axis labels come from the spatial calibration. 10 or 11 axes in all
      (6 panels, 4 or 5 colourbars).
    * 1D navigation (a line scan): two panels - the profiles of the three values
      against position, and the mean valence profile (for fractions with a band of
      +- its uncertainty where the result holds it).
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

    Returns
    -------
    matplotlib.figure.Figure
    """
    prob, axes = _result_arrays(p)
    kind = _kind(p, kind)
    std = _mean_valence_std(p) if kind == "fractions" else None
    if std is not None:  # a single spectrum's is (1,)
        std = std.reshape(prob.shape[1:]) if std.size == prob[0].size else None
    if title is None and not isinstance(p, np.ndarray):
        title = p.metadata.get_item("General.title", None)
    ndim = len(axes)
    if ndim == 0:
        fig = _bar_chart(prob, fig, kind, std)
    elif ndim == 1:
        fig = _profiles(prob, axes[0], fig, kind, std)
    elif ndim == 2:
        fig = _maps(prob, axes, fig, kind, std)
    else:
        raise ValueError(
            f"Cannot plot a result with {ndim} spatial dimensions; slice it to a map, a "
            "line or a single pixel first (e.g. p.isig[:, :, k])."
        )
    if title:
        fig.suptitle(title)
    return fig


#: Labels of the three values and of the mean, per kind of result.
_KIND_LABELS = {
    "probabilities": {"value": "Probability", "panel": "P({})", "mean": "Mean valence"},
    "fractions": {"value": "Fraction", "panel": "{} fraction", "mean": "Mean oxidation state"},
}


def _bar_chart(prob: np.ndarray, fig: Figure | None, kind: str, std: np.ndarray | None) -> Figure:
    from .maps import _expected_valence

    labels = _KIND_LABELS[kind]
    fig = _new_figure(fig, (4.0, 3.2))
    ax = fig.add_subplot()
    vals = np.asarray(prob, dtype=float).reshape(3)
    if np.all(np.isfinite(vals)):
        ax.bar(VALENCE_LABELS, vals, color=VALENCE_COLORS, edgecolor="black")
        spread = "" if std is None else f" ± {float(np.ravel(std)[0]):.2f}"
        mean = float(_expected_valence(vals, _VALENCES))
        ax.set_title(f"{labels['mean'].lower()} {mean:.2f}{spread}")
    else:
        ax.bar(VALENCE_LABELS, [0, 0, 0], color=VALENCE_COLORS)
        ax.set_title("no Mn L2,3 edge")
    ax.set_ylim(0, 1)
    ax.set_ylabel(labels["value"])
    return fig


def _profiles(
    prob: np.ndarray, axis: dict, fig: Figure | None, kind: str, std: np.ndarray | None
) -> Figure:
    labels = _KIND_LABELS[kind]
    fig = _new_figure(fig, (6.0, 5.0))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    x = axis["coords"]
    for k in range(3):
        ax1.plot(x, prob[k], color=VALENCE_COLORS[k], label=VALENCE_LABELS[k], lw=1.5)
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel(labels["value"])
    ax1.legend(loc="best", fontsize="small")
    mean, _ = _mean_and_label(prob)
    if std is not None:
        ax2.fill_between(
            x, mean - std, mean + std, color="0.75", lw=0, label="± uncertainty (spread)"
        )
        ax2.legend(loc="best", fontsize="small")
    ax2.plot(x, mean, color="black", lw=1.5)
    ax2.set_ylim(1.9, 4.1)
    ax2.set_yticks([2, 3, 4])
    ax2.set_ylabel(labels["mean"])
    ax2.set_xlabel(_label(axis))
    return fig


def _maps(
    prob: np.ndarray, axes: list[dict], fig: Figure | None, kind: str, std: np.ndarray | None
) -> Figure:
    labels = _KIND_LABELS[kind]
    fig = _new_figure(fig, (12.0, 7.0))
    grid = fig.subplots(2, 3)
    ay, ax_ = axes  # numpy order: rows, columns
    ext = _extent(ax_, ay)
    kw = {"extent": ext, "interpolation": "nearest", "aspect": "equal"}
    pcmap = colormaps[_PROB_CMAP].with_extremes(bad=NAN_COLOR)
    for k in range(3):
        a = grid[0, k]
        im = a.imshow(np.ma.masked_invalid(prob[k]), cmap=pcmap, vmin=0.0, vmax=1.0, **kw)
        a.set_title(labels["panel"].format(VALENCE_LABELS[k]))
        fig.colorbar(im, ax=a, shrink=0.8, label=labels["value"])
    mean, label = _mean_and_label(prob)
    a = grid[1, 0]
    a.imshow(composite_rgb(prob), **kw)
    a.set_title("RGB composite")
    a.legend(handles=_valence_handles(), loc="upper right", fontsize="x-small", framealpha=0.8)
    vcmap = colormaps[_VALENCE_CMAP].with_extremes(bad=NAN_COLOR)
    # fractions: the mean oxidation state, then its uncertainty where there is one
    a_mean, a_last = (grid[1, 1], grid[1, 2]) if std is not None else (grid[1, 2], grid[1, 1])
    im = a_mean.imshow(np.ma.masked_invalid(mean), cmap=vcmap, vmin=2.0, vmax=4.0, **kw)
    a_mean.set_title(labels["mean"])
    fig.colorbar(im, ax=a_mean, shrink=0.8, label="Valence", ticks=[2, 2.5, 3, 3.5, 4])
    if std is None:
        cmap = mcolors.ListedColormap(list(VALENCE_COLORS)).with_extremes(bad=NAN_COLOR)
        a_last.imshow(np.ma.masked_invalid(label), cmap=cmap, vmin=-0.5, vmax=2.5, **kw)
        a_last.set_title("Most likely valence" if kind == "probabilities" else "Majority valence")
        legend_kw = {"loc": "upper right", "fontsize": "x-small", "framealpha": 0.8}
        a_last.legend(handles=_valence_handles(), **legend_kw)
    else:
        finite = std[np.isfinite(std)]
        top = float(np.percentile(finite, 99))  # not set by a few outliers
        top = top if top > 0 else float(finite.max())
        ucmap = colormaps["magma"].with_extremes(bad=NAN_COLOR)
        im = a_last.imshow(np.ma.masked_invalid(std), cmap=ucmap, vmin=0.0, vmax=top, **kw)
        a_last.set_title("Uncertainty (ensemble spread)")
        fig.colorbar(im, ax=a_last, shrink=0.8, label="Valence")
    for a in grid.ravel():
        a.set_xlabel(_label(ax_))
        a.set_ylabel(_label(ay))
    return fig


def plot_pixel_spectra(
    s,
    p,
    pixels: Sequence[int | Sequence[int]],
    *,
    fig: Figure | None = None,
    normalize: bool = False,
    title: str | None = None,
) -> Figure:
    """Spectra of chosen pixels, with their valence probabilities in the legend.

    Parameters
    ----------
    s : hyperspy.signal.BaseSignal
        The EELS spectrum image (signal dimension 1, the energy axis).
    p : hyperspy.signal.BaseSignal or numpy.ndarray
        Its classification result (see the module notes).
    pixels : sequence
        Navigation indices in HyperSpy order (``(x, y)`` for a map, an int for a line
        scan), as used by ``s.inav``.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (cleared first).
    normalize : bool
        Scale each spectrum to its maximum (to compare shapes).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    prob, _ = _result_arrays(p)
    nav_dim = s.axes_manager.navigation_dimension
    if prob.ndim - 1 != nav_dim:
        raise ValueError(
            f"The result has {prob.ndim - 1} spatial dimensions but the signal has "
            f"{nav_dim} navigation dimensions; pass the result of this signal."
        )
    e_ax = s.axes_manager.signal_axes[0]
    energy = np.asarray(e_ax.axis, dtype=float)
    fig = _new_figure(fig, (7.0, 4.5))
    ax = fig.add_subplot()
    pixels = list(pixels) if nav_dim else [()]
    style_colors = ["black", "#0077BB", "#EE7733", "#009988", "#CC3311", "#33BBEE", "#EE3377"]
    for i, pix in enumerate(pixels):
        idx = (pix,) if np.ndim(pix) == 0 and nav_dim else tuple(pix)
        if len(idx) != nav_dim:
            raise ValueError(f"Pixel {pix!r} needs {nav_dim} indices (HyperSpy order).")
        sub = s.inav[idx] if nav_dim else s
        y = sub.data
        if getattr(sub, "_lazy", False):
            y = y.compute()
        y = np.asarray(y, dtype=float)
        pk = prob[(slice(None),) + tuple(idx[::-1])]
        if normalize and np.nanmax(np.abs(y)) > 0:
            y = y / np.nanmax(np.abs(y))
        if np.all(np.isfinite(pk)):
            probs = ", ".join(f"{lab} {v:.2f}" for lab, v in zip(VALENCE_LABELS, pk, strict=True))
        else:
            probs = "no Mn edge"
        where = f"{tuple(int(j) for j in idx)}" if nav_dim else "spectrum"
        ax.plot(
            energy, y, lw=1.0, color=style_colors[i % len(style_colors)], label=f"{where}: {probs}"
        )
    xl = e_ax.name if isinstance(e_ax.name, str) else "Energy loss"
    ax.set_xlabel(f"{xl} ({e_ax.units})" if isinstance(e_ax.units, str) and e_ax.units else xl)
    ax.set_ylabel("Intensity (normalised)" if normalize else "Intensity")
    ax.legend(fontsize="small", loc="best")
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
    from .classification import _energy_axis
    from .preprocessing import DEFAULT_PREPROCESSING, preprocess

    prob, _ = _result_arrays(p)
    label = _mean_and_label(prob)[1].ravel()  # NaN where no Mn edge
    n_ch = s.axes_manager.signal_shape[0]
    if label.size != int(np.prod(s.axes_manager.navigation_shape or (1,))):
        raise ValueError("The result does not match the signal's pixels; pass the result of s.")
    energy = _energy_axis(s)
    flat = s.data.reshape(-1, n_ch)
    params = p.metadata.get_item("MnValence.parameters")
    params = params.as_dictionary() if params is not None else {}
    kw = {
        "background": params.get("background", "auto"),
        "background_window": params.get("background_window"),
        "energy_window": params.get("energy_window"),
    }
    w0, w1 = DEFAULT_PREPROCESSING["window_eV"]
    step = float(DEFAULT_PREPROCESSING["energy_step_eV"])
    fig = _new_figure(fig, (7.0, 4.5))
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
    ax.legend(fontsize="small", loc="best", title="most likely valence")
    ax.set_title(title or "Mean preprocessed spectrum per valence (± 1 s.d.)")
    return fig
