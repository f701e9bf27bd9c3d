"""Tests of the result figures (headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hyperspy_mnvalence import plotting as pl  # noqa: E402
from hyperspy_mnvalence.plotting._common import mean_and_label  # noqa: E402
from hyperspy_mnvalence.synthetic import make_demo_spectrum_image  # noqa: E402


def _result(prob: np.ndarray, nav_axes: list) -> hs.signals.BaseSignal:
    """A result signal in the documented layout: 'Mn valence' + calibrated axes."""
    nav_dim = prob.ndim - 1
    if nav_dim == 2:
        p = hs.signals.Signal2D(prob)
    else:
        p = hs.signals.Signal1D(prob)
    sig_axes = p.axes_manager.signal_axes if nav_dim else []
    for dst, (name, units, scale, offset) in zip(sig_axes, nav_axes, strict=True):
        dst.name, dst.units, dst.scale, dst.offset = name, units, scale, offset
    v = p.axes_manager.navigation_axes[0] if nav_dim else p.axes_manager.signal_axes[0]
    v.name, v.scale, v.offset = "Mn valence", 1.0, 2.0
    p.metadata.General.title = "Mn valence probability"
    return p


@pytest.fixture(scope="module")
def map_result():
    rng = np.random.default_rng(0)
    prob = rng.dirichlet((1, 1, 1), size=(12, 16)).transpose(2, 0, 1)
    prob[:, :2, :3] = np.nan
    return _result(prob, [("x", "nm", 0.5, 1.0), ("y", "nm", 0.5, -2.0)])


def test_composite_pure_valences_give_exact_colours():
    eye = np.eye(3)
    rgb = pl.composite_rgb(eye)  # column k: pure valence k
    for k, c in enumerate(pl.VALENCE_COLORS):
        np.testing.assert_array_equal(rgb[k], np.array(mcolors.to_rgb(c)))
    assert mcolors.to_hex(pl.composite_rgb(np.array([1.0, 0, 0]))) == "#004488"


def test_composite_mixture_nan_and_shape():
    p = np.zeros((3, 4, 5))
    p[0], p[1] = 0.5, 0.5
    p[:, 0, 0] = np.nan
    rgb = pl.composite_rgb(p)
    assert rgb.shape == (4, 5, 3)
    half = 0.5 * (np.array(mcolors.to_rgb("#004488")) + np.array(mcolors.to_rgb("#DDAA33")))
    np.testing.assert_allclose(rgb[1, 1], half)
    np.testing.assert_array_equal(rgb[0, 0], pl.NAN_COLOR)
    assert rgb.min() >= 0 and rgb.max() <= 1
    with pytest.raises(ValueError, match=r"\(3, \.\.\.\)"):
        pl.composite_rgb(np.zeros((2, 4)))


def test_valence_maps_2d(map_result):
    fig = pl.plot_valence_maps(map_result)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 12  # 7 panels (uncertainty included) + 5 colourbars
    panel = fig.axes[0]
    # extent from the calibration: x from 1.0 - 0.25 to 1.0 + 16*0.5 - 0.25
    x0, x1 = panel.get_xlim()
    assert x0 == pytest.approx(0.75) and x1 == pytest.approx(8.75)
    assert "nm" in panel.get_xlabel() and panel.get_xlabel().startswith("x")
    assert panel.get_ylabel().startswith("y")
    # the composite panel shows the composite of the data
    comp = [a for a in fig.axes if a.get_title() == "RGB composite"][0]
    shown = comp.get_images()[0].get_array()
    np.testing.assert_allclose(shown, pl.composite_rgb(map_result.data))
    # mean valence colour scale 2-4
    mean_ax = [a for a in fig.axes if a.get_title() == "Mean valence"][0]
    assert mean_ax.get_images()[0].get_clim() == (2.0, 4.0)
    fig.canvas.draw()  # renders without error


def test_valence_maps_reuses_figure_and_title(map_result):
    fig = Figure()
    out = pl.plot_valence_maps(map_result, fig=fig, title="my map")
    assert out is fig
    assert fig._suptitle.get_text() == "my map"


def test_valence_maps_line_scan():
    prob = np.stack([np.linspace(1, 0, 20), np.zeros(20), np.linspace(0, 1, 20)])
    prob[:, 5] = np.nan
    p = _result(prob, [("x", "nm", 0.2, 0.0)])
    fig = pl.plot_valence_maps(p)
    assert len(fig.axes) == 3  # values, mean valence, uncertainty
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    np.testing.assert_allclose(lines[0].get_xdata(), 0.2 * np.arange(20))
    mean = fig.axes[1].get_lines()[0].get_ydata()
    assert mean[0] == pytest.approx(2.0) and mean[-1] == pytest.approx(4.0)
    assert np.isnan(mean[5])
    assert "nm" in fig.axes[-1].get_xlabel()


def test_valence_maps_single_spectrum():
    p = _result(np.array([0.1, 0.7, 0.2]), [])
    fig = pl.plot_valence_maps(p)
    assert len(fig.axes) == 1
    heights = [b.get_height() for b in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [0.1, 0.7, 0.2])
    assert "3.10" in fig.axes[0].get_title()


def test_valence_maps_numpy_input_and_errors():
    fig = pl.plot_valence_maps(np.full((3, 4, 5), 1 / 3))
    assert len(fig.axes) == 12
    with pytest.raises(ValueError, match="spatial dimensions"):
        pl.plot_valence_maps(np.full((3, 2, 2, 2, 2), 1 / 3))


def _fraction_result(prob: np.ndarray, nav_axes: list, std: np.ndarray | None):
    """A decompose_mn_valence-like result: task 'fractions', optional uncertainty map."""
    f = _result(prob, nav_axes)
    f.metadata.General.title = "Mn valence fractions"
    f.metadata.set_item("MnValence.task", "fractions")
    if std is not None:
        f.metadata.set_item("MnValence.mean_valence_std", hs.signals.BaseSignal(std))
    return f


def test_fraction_maps_show_mean_oxidation_state_and_uncertainty():
    rng = np.random.default_rng(1)
    prob = rng.dirichlet((1, 1, 1), size=(6, 8)).transpose(2, 0, 1)
    prob[:, 0, 0] = np.nan
    std = np.linspace(0.0, 0.2, 48).reshape(6, 8)
    std[0, 0] = np.nan
    f = _fraction_result(prob, [("x", "nm", 1.0, 0.0), ("y", "nm", 1.0, 0.0)], std)
    fig = pl.plot_valence_maps(f)
    titles = [a.get_title() for a in fig.axes]
    assert titles[:3] == ["Mn2+ fraction", "Mn3+ fraction", "Mn4+ fraction"]
    assert "Mean oxidation state" in titles and "Uncertainty (ensemble spread)" in titles
    assert len(fig.axes) == 11  # 6 panels, 5 colourbars
    panel = {a.get_title(): a for a in fig.axes}
    shown = panel["Uncertainty (ensemble spread)"].get_images()[0].get_array()
    np.testing.assert_allclose(shown.filled(np.nan), std)
    mean = panel["Mean oxidation state"].get_images()[0].get_array()
    np.testing.assert_allclose(mean[1:, 1:], np.tensordot([2, 3, 4], prob, axes=1)[1:, 1:])
    # a single network (no spread) or a numpy array: the majority valence instead
    flat = _fraction_result(prob, [("x", "nm", 1.0, 0.0), ("y", "nm", 1.0, 0.0)], 0 * std)
    assert "Majority valence" in [a.get_title() for a in pl.plot_valence_maps(flat).axes]
    titles = [a.get_title() for a in pl.plot_valence_maps(prob, kind="fractions").axes]
    assert "Mn3+ fraction" in titles and "Majority valence" in titles
    with pytest.raises(ValueError, match="kind must be"):
        pl.plot_valence_maps(prob, kind="percent")
    with pytest.raises(ValueError, match=r"not one valence's map \(p.inav\[k\]\)"):
        pl.plot_valence_maps(f.inav[1])


def test_fraction_line_scan_has_an_uncertainty_band():
    prob = np.stack([np.linspace(1, 0, 10), np.zeros(10), np.linspace(0, 1, 10)])
    std = np.full(10, 0.1)
    fig = pl.plot_valence_maps(_fraction_result(prob, [("x", "nm", 1.0, 0.0)], std))
    assert fig.axes[0].get_ylabel() == "Fraction"
    assert fig.axes[1].get_ylabel() == "Mean oxidation state"
    band = fig.axes[1].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(1.9) and band.max() == pytest.approx(4.1)
    # a slice of a result keeps the whole map's metadata: no band rather than a wrong one
    fig = pl.plot_valence_maps(_fraction_result(prob, [("x", "nm", 1.0, 0.0)], np.ones(4)))
    assert not fig.axes[1].collections


def test_fraction_single_spectrum_title_has_the_uncertainty():
    f = _fraction_result(np.array([0.2, 0.5, 0.3]), [], np.array([0.04]))
    ax = pl.plot_valence_maps(f).axes[0]
    assert ax.get_title() == "mean oxidation state 3.10 ± 0.04"
    assert ax.get_ylabel() == "Fraction"


def test_pixel_spectra():
    s = make_demo_spectrum_image((12, 16), seed=1)
    truth = s.metadata.Sample
    prob = truth.mn_fractions_truth.copy()
    prob[:, np.isnan(truth.mn_valence_truth)] = np.nan
    p = _result(prob, [("x", "nm", 0.5, 0.0), ("y", "nm", 0.5, 0.0)])
    pixels = [(0, 3), (4, 6), (8, 6), (12, 6)]
    fig = pl.plot_pixel_spectra(s, p, pixels)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 4
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), s.data[6, 4])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "no Mn edge" in labels[0]  # vacuum column
    assert "Mn2+" in labels[1] and "(4, 6)" in labels[1]
    assert "eV" in ax.get_xlabel()
    with pytest.raises(ValueError, match="indices"):
        pl.plot_pixel_spectra(s, p, [(1,)])


def test_class_spectra_are_aligned_means_per_valence():
    from hyperspy_mnvalence import classify_mn_valence

    s = make_demo_spectrum_image((12, 16), seed=1)
    p = classify_mn_valence(s, show_progressbar=False)
    ml = np.asarray(mean_and_label(p.data)[1])
    fig = pl.plot_class_spectra(s, p, max_per_class=25)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 3 and len(ax.collections) == 3  # a mean and a band per valence
    for k, line in enumerate(lines):
        n = int(line.get_label().split("n=")[1].rstrip(")"))
        assert 0 < n <= min(25, int(np.sum(ml == k)))
        x, y = line.get_xdata(), line.get_ydata()
        assert x[0] == pytest.approx(-10.0) and x.size == 300
        assert abs(x[np.argmax(y)]) <= 0.5  # aligned on each spectrum's own L3 peak
    # the Mn4+ mean rises earlier than the Mn2+ one (a chemical shift the alignment keeps
    # as a shape: its L3 onset is broader on the low-energy side)
    onset = [x[np.argmax(line.get_ydata() > 0.2)] for line in lines]
    assert onset[2] < onset[0]
    with pytest.raises(ValueError, match="does not match the signal's pixels"):
        pl.plot_class_spectra(s.inav[:4, :4], p)


def test_pixel_and_class_spectra_arguments_are_checked():
    from hyperspy_mnvalence import classify_mn_valence

    s = make_demo_spectrum_image((8, 12), seed=1)
    p = classify_mn_valence(s, show_progressbar=False)
    with pytest.raises(ValueError, match="pixels is empty"):
        pl.plot_pixel_spectra(s, p, [])
    with pytest.raises(ValueError, match=r"outside the navigation shape \(12, 8\).*x first"):
        pl.plot_pixel_spectra(s, p, [(30, 3)])
    fig = pl.plot_pixel_spectra(s, p, [(-1, 0), (11, 7)])  # negative indices count back
    assert len(fig.axes[0].lines) >= 2
    with pytest.raises(ValueError, match="max_per_class must be a whole number >= 1"):
        pl.plot_class_spectra(s, p, max_per_class=0)


def test_maps_of_a_plain_array_say_so_in_one_line():
    import hyperspy_mnvalence as mnv

    for f in (mnv.mean_oxidation_state, mnv.uncertainty):
        with pytest.raises(ValueError) as err:
            f(np.ones((3, 4)))
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith("ndarray of shape (3, 4) is not a Mn valence")
