"""Figure elements a microscopist relies on (issue 18): the no-edge colour and its
legend entry, legends outside the data, readable calibrated axes and a scale bar,
layouts for thin maps, line scans (no pixel dropped) and stacks, the uncertainty
panel, the image overlay and the zoomed pixel spectra."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

import hyperspy_mnvalence as mnv  # noqa: E402
from hyperspy_mnvalence import plotting as pl  # noqa: E402


def _result(prob: np.ndarray, axes: list[tuple[str, str, float, float]]):
    """A result in the documented layout: 'Mn valence' first, then calibrated axes
    (given in numpy order)."""
    p = hs.signals.BaseSignal(prob).transpose(signal_axes=prob.ndim - 1)
    for dst, (name, units, scale, offset) in zip(
        p.axes_manager.signal_axes[::-1], axes, strict=True
    ):
        dst.name, dst.units, dst.scale, dst.offset = name, units, scale, offset
    v = p.axes_manager.navigation_axes[0]
    v.name, v.scale, v.offset = "Mn valence", 1.0, 2.0
    p.metadata.General.title = "Mn valence probability"
    return p


def _probabilities(shape, seed=0, nan_cols=(0, 1)):
    rng = np.random.default_rng(seed)
    prob = rng.dirichlet((0.5, 0.5, 0.5), size=shape)
    prob = np.moveaxis(prob, -1, 0)
    prob[(slice(None),) + (Ellipsis,) + (list(nan_cols),)] = np.nan
    return prob


def _panels(fig):
    return [a for a in fig.axes if a.get_images() and a.get_label() != "<colorbar>"]


def test_no_edge_colour_is_far_from_every_colour_map_and_mixture():
    nan = np.array(pl.NAN_COLOR)
    for name in pl.COLOR_MAPS:
        samples = colormaps[name](np.linspace(0, 1, 512))[:, :3]
        assert np.min(np.linalg.norm(samples - nan, axis=1)) > 0.4, name
    # any mixture of the valence colours (the composite) stays away from it too
    w = np.random.default_rng(0).dirichlet((1, 1, 1), 20000)
    mix = w @ np.array([mcolors.to_rgb(c) for c in pl.VALENCE_COLORS])
    assert np.min(np.linalg.norm(mix - nan, axis=1)) > 0.4
    # the old grey was about the middle of cividis (p ~ 0.5), three times closer
    grey = np.array([0.6, 0.6, 0.6])
    cividis = colormaps["cividis"](np.linspace(0, 1, 512))[:, :3]
    assert np.min(np.linalg.norm(cividis - grey, axis=1)) < 0.15


def test_map_no_edge_pixels_legend_and_colour_bars_outside():
    prob = _probabilities((12, 16))
    p = _result(prob, [("y", "nm", 0.5, 0.0), ("x", "nm", 0.5, 0.0)])
    fig = pl.plot_valence_maps(p)
    panels = _panels(fig)
    assert len(panels) == 7
    # every value panel paints NaN in the no-edge colour; the composite holds it
    for a in panels:
        im = a.get_images()[0]
        if im.get_array().ndim == 2:
            assert mcolors.to_rgb(im.cmap.get_bad()) == pytest.approx(pl.NAN_COLOR)
        else:
            np.testing.assert_allclose(im.get_array()[:, 0], np.tile(pl.NAN_COLOR, (12, 1)))
        assert a.get_legend() is None  # no legend over the data
    # one figure legend, outside the panels, naming the no-edge colour
    (leg,) = fig.legends
    texts = [t.get_text() for t in leg.get_texts()]
    assert texts == ["Mn2+", "Mn3+", "Mn4+", pl.NO_EDGE_LABEL]
    no_edge = leg.legend_handles[3]
    assert mcolors.to_rgb(no_edge.get_facecolor()) == pytest.approx(pl.NAN_COLOR)
    fig.canvas.draw()
    leg_box = leg.get_window_extent()
    for a in panels:
        assert not leg_box.overlaps(a.get_window_extent())
    # colour bars are axes of their own beside the panels, not on them
    cbars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert len(cbars) == 5
    for cb in cbars:
        for a in panels:
            assert not cb.get_window_extent().overlaps(a.get_window_extent())


def test_uncertainty_panel_is_the_normalised_entropy():
    prob = _probabilities((6, 9), seed=2)
    p = _result(prob, [("y", "nm", 1.0, 0.0), ("x", "nm", 1.0, 0.0)])
    fig = pl.plot_valence_maps(p)
    panel = {a.get_title(): a for a in _panels(fig)}["Uncertainty (normalised entropy)"]
    shown = panel.get_images()[0].get_array().filled(np.nan)
    np.testing.assert_allclose(shown, mnv.uncertainty(p).data, rtol=1e-5, equal_nan=True)
    assert panel.get_images()[0].get_clim() == (0.0, 1.0)


def test_axes_in_readable_units_with_a_scale_bar():
    # 21 x 2 pixels of 0.0025 um: shown in nm (52.5 nm wide), not 0.0025 um
    prob = _probabilities((2, 21), nan_cols=(0, 20))
    p = _result(prob, [("y", "µm", 0.0025, 0.0), ("x", "µm", 0.0025, 0.0)])
    fig = pl.plot_valence_maps(p)
    panels = _panels(fig)
    for a in panels:
        assert a.get_xlabel() == "x (nm)" and a.get_ylabel() == "y (nm)"
        x0, x1 = a.get_xlim()
        assert x0 == pytest.approx(-1.25) and x1 == pytest.approx(51.25)
        bars = [c for c in a.get_children() if str(c.get_gid()).startswith("scalebar")]
        assert [b.get_gid() for b in bars] == ["scalebar 10 nm"]
    # a map larger than 1 um in mm? no: in um
    p2 = _result(_probabilities((10, 10)), [("y", "nm", 300.0, 0.0), ("x", "nm", 300.0, 0.0)])
    a = _panels(pl.plot_valence_maps(p2))[0]
    assert a.get_xlabel() == "x (µm)" and a.get_xlim()[1] == pytest.approx(2.85)


def test_thin_map_is_laid_out_in_one_column_of_readable_panels():
    prob = _probabilities((2, 21), nan_cols=(0, 20))
    p = _result(prob, [("y", "nm", 2.5, 0.0), ("x", "nm", 2.5, 0.0)])
    fig = pl.plot_valence_maps(p)
    fig.canvas.draw()
    dpi = fig.dpi
    boxes = [a.get_window_extent() for a in _panels(fig)]
    lefts = {round(b.x0) for b in boxes}
    assert len(lefts) == 1  # one column
    for b in boxes:
        assert b.width / dpi > 4.0  # inches: wide panels, not strips in empty space
        assert b.height / dpi > 0.35
    # a tall thin map goes in one row instead
    q = _result(np.moveaxis(prob, 1, 2), [("y", "nm", 2.5, 0.0), ("x", "nm", 2.5, 0.0)])
    fig = pl.plot_valence_maps(q)
    fig.canvas.draw()
    tops = {round(a.get_window_extent().y1) for a in _panels(fig)}
    assert len(tops) == 1


def test_line_scan_keeps_every_pixel_and_shades_the_no_edge_ends():
    n = 40
    prob = np.full((3, n), np.nan)
    prob[:, 5:33] = np.random.default_rng(3).dirichlet((1, 1, 1), 28).T
    p = _result(prob, [("x", "nm", 0.5, 10.0)])
    fig = pl.plot_valence_maps(p)
    x_expected = 10.0 + 0.5 * np.arange(n)
    for a in fig.axes:
        # the axis spans the whole scan, the NaN ends included
        assert a.get_xlim() == pytest.approx((10.0 - 0.25, x_expected[-1] + 0.25))
        for line in a.get_lines():
            np.testing.assert_allclose(line.get_xdata(), x_expected)
        shaded = [
            r for r in a.patches if mcolors.to_rgb(r.get_facecolor()) == pytest.approx(pl.NAN_COLOR)
        ]
        spans = sorted((r.get_x(), r.get_x() + r.get_width()) for r in shaded)
        assert np.ravel(spans) == pytest.approx([9.75, 12.25, 26.25, 29.75])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["Mn2+", "Mn3+", "Mn4+", pl.NO_EDGE_LABEL]
    fig.canvas.draw()  # the legend sits right of the data
    assert fig.axes[0].get_legend().get_window_extent().x0 >= fig.axes[0].bbox.x1
    assert fig.axes[-1].get_xlabel() == "x (nm)"
    # a map one pixel high is a line scan too, not a 1-pixel strip
    strip = _result(prob[:, None, :], [("y", "nm", 0.5, 0.0), ("x", "nm", 0.5, 10.0)])
    fig = pl.plot_valence_maps(strip)
    assert not _panels(fig) and len(fig.axes[0].get_lines()) == 3


def test_stack_of_three_maps_has_a_row_per_map():
    prob = _probabilities((3, 10, 12))
    p = _result(prob, [("map", "", 1.0, 0.0), ("y", "nm", 1.0, 0.0), ("x", "nm", 1.0, 0.0)])
    fig = pl.plot_valence_maps(p)
    panels = _panels(fig)
    assert len(panels) == 12  # 3 maps x (composite, most likely, mean, uncertainty)
    firsts = [a for a in panels if a.get_ylabel().startswith("map")]
    assert [a.get_ylabel().split("\n")[0] for a in firsts] == ["map 0", "map 1", "map 2"]
    comp = [a for a in panels if a.get_title() == "RGB composite"][0]
    np.testing.assert_allclose(comp.get_images()[0].get_array(), pl.composite_rgb(prob[:, 0]))
    assert [t.get_text() for t in fig.legends[0].get_texts()][-1] == pl.NO_EDGE_LABEL


def test_overlay_on_an_adf_image():
    prob = _probabilities((12, 16))
    p = _result(prob, [("y", "nm", 0.5, 0.0), ("x", "nm", 0.5, 0.0)])
    adf = hs.signals.Signal2D(np.arange(12 * 16, dtype=float).reshape(12, 16))
    adf.metadata.General.title = "HAADF"
    for a in adf.axes_manager.signal_axes:
        a.units, a.scale = "nm", 0.5
    fig = pl.plot_valence_maps(p, image=adf)
    panel = {a.get_title(): a for a in _panels(fig)}["Most likely valence on HAADF"]
    grey, colours = panel.get_images()
    np.testing.assert_array_equal(grey.get_array(), adf.data)
    rgba = colours.get_array()
    assert np.all(rgba[:, :2, 3] == 0)  # no-edge pixels: the image alone
    assert np.all(rgba[:, 2:, 3] == pytest.approx(0.55))
    with pytest.raises(ValueError, match="shape"):
        pl.plot_valence_maps(p, image=np.zeros((5, 5)))


@pytest.fixture(scope="module")
def demo_line():
    s = mnv.make_demo_spectrum_image((8, 40), seed=4).inav[:, 4]
    return s, s.classify_mn_valence(model="fast", show_progressbar=False)


def test_pixel_spectra_zoomed_with_background_and_l3_marker(demo_line):
    s, p = demo_line
    peaks = p.metadata.MnValence.l3_peak_eV.data
    pixels = [0, 12, 20]
    fig = pl.plot_pixel_spectra(s, p, pixels)
    ax = fig.axes[0]
    found = peaks[pixels][np.isfinite(peaks[pixels])]
    assert found.size == 2 and np.isnan(peaks[0])
    assert ax.get_xlim() == pytest.approx((found.min() - 25, found.max() + 35))
    # the L3 markers sit at the peaks the classifier located
    (marks,) = ax.collections[1:]
    np.testing.assert_allclose(np.sort(marks.get_offsets()[:, 0]), np.sort(found))
    # one background curve per pixel with an edge, below the spectrum before the edge
    (bg,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segs = bg.get_segments()
    assert len(segs) == 2
    for seg, i in zip(segs, pixels[1:], strict=True):
        e, b = seg[:, 0], seg[:, 1]
        assert e[0] == pytest.approx(peaks[i] - 19, abs=0.15) and e[-1] <= peaks[i] + 35
        pre = (e > peaks[i] - 18) & (e < peaks[i] - 5)
        y = np.interp(e[pre], s.axes_manager[-1].axis, s.inav[i].data)
        assert abs(np.median(y - b[pre])) < 0.05 * np.median(b[pre])  # a fit of the pre-edge
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("x = 0") and "nm (0)" in labels[0] and "no Mn edge" in labels[0]
    assert "nm (12)" in labels[1] and "Mn2+" in labels[1]
    assert labels[-2:] == ["background fit (pre-edge)", "L3 peak (as located)"]
    assert ax.get_xlabel().endswith("(eV)")
