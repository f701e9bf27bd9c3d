"""The classical cross-check: L3/L2 white-line ratio and L3 position (issue 18)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hyperspy_mnvalence as mnv  # noqa: E402
from hyperspy_mnvalence import plotting as pl  # noqa: E402
from hyperspy_mnvalence.preprocessing import preprocess  # noqa: E402
from hyperspy_mnvalence.white_line import (  # noqa: E402
    WHITE_LINE_PARAMETERS,
    white_line_ratio_spectra,
)


def _double_step_spectra(areas3, areas2, l3=640.0, split=11.0, counts=1.0):
    """Two Gaussian white lines with known areas on the documented double-step
    continuum (2:1 arctan steps at the maxima) and a power-law background."""
    e = np.arange(600.0, 690.0, 0.2)
    w = WHITE_LINE_PARAMETERS["step_width_eV"]
    step = lambda x: 0.5 + np.arctan(x / w) / np.pi  # noqa: E731
    gauss = lambda c, s: np.exp(-0.5 * ((e - c) / s) ** 2) / (s * np.sqrt(2 * np.pi))  # noqa: E731
    out = []
    for a3, a2 in zip(areas3, areas2, strict=True):
        edge = a3 * gauss(l3, 0.8) + a2 * gauss(l3 + split, 1.0)
        edge += (2 * step(e - l3) + step(e - l3 - split)) / 3
        out.append(counts * (edge + 8.0 * (e / 600.0) ** -3))
    return np.array(out), e


def test_ratio_of_known_white_lines_on_the_documented_continuum():
    a3 = np.array([6.0, 5.0, 4.0, 3.0])
    a2 = np.array([1.5, 2.0, 2.0, 2.0])
    y, e = _double_step_spectra(a3, a2)
    # without a background: the areas within the small shift of the L2 maximum off the
    # Gaussian's centre (the rising step), 1-3 %
    bare = white_line_ratio_spectra(y - 8.0 * (e / 600.0) ** -3, e, background="none")
    np.testing.assert_allclose(bare["l3_area"], a3, rtol=0.02)
    np.testing.assert_allclose(bare["ratio"], a3 / a2, rtol=0.035)
    # with the power-law background fitted on the pre-edge (which here holds the long
    # arctan tail of the steps): within 5 %, in the right order
    r = white_line_ratio_spectra(y, e)
    assert r["valid"].all()
    np.testing.assert_allclose(r["ratio"], a3 / a2, rtol=0.05)
    assert np.all(np.diff(r["ratio"]) < 0)
    np.testing.assert_allclose(r["l3_eV"], 640.0, atol=0.11)
    np.testing.assert_allclose(r["l2_eV"], 651.0, atol=0.31)
    # the ratio does not depend on the energy calibration; the L3 position does
    shifted = white_line_ratio_spectra(y, e + 7.3)
    np.testing.assert_allclose(shifted["ratio"], r["ratio"], rtol=0.01)
    np.testing.assert_allclose(shifted["l3_eV"], r["l3_eV"] + 7.3, atol=0.11)


def test_nan_where_the_package_finds_no_edge_or_no_post_edge():
    y, e = _double_step_spectra([5.0, 5.0], [2.0, 2.0])
    y[1] = 8.0 * (e / 600.0) ** -3  # background only: no Mn edge
    r = white_line_ratio_spectra(y, e)
    valid = preprocess(y, e).valid
    np.testing.assert_array_equal(r["valid"], valid)
    assert valid.tolist() == [True, False]
    assert np.isfinite(r["ratio"][0]) and np.isnan(r["ratio"][1]) and np.isnan(r["l3_eV"][1])
    # the data stop before the post-edge window (15-18 eV above L3): no ratio
    short = e <= 653.0
    r = white_line_ratio_spectra(y[:1, short], e[short])
    assert r["valid"][0] and np.isnan(r["ratio"][0])


def test_map_follows_the_valence_and_the_network(demo_small):
    s = demo_small
    r = mnv.white_line_ratio(s)
    assert r.data.shape == s.data.shape[:-1]
    assert r.axes_manager.signal_axes[0].units == s.axes_manager.navigation_axes[0].units
    truth = s.metadata.Sample.mn_valence_truth
    p = s.classify_mn_valence(model="fast", show_progressbar=False)
    no_edge = np.isnan(p.data[0])
    # NaN exactly where the network has no edge (the same edge decision), plus pixels
    # without a post-edge window: none in the demo
    np.testing.assert_array_equal(np.isnan(r.data), no_edge)
    med = [np.nanmedian(r.data[truth == v]) for v in (2, 3, 4)]
    assert med[0] > med[1] > med[2]
    l3 = r.metadata.WhiteLine.l3_position_eV.data
    np.testing.assert_allclose(l3, p.metadata.MnValence.l3_peak_eV.data, atol=0.11, equal_nan=True)
    # the signal method and a lazy signal give the same map
    s2 = s.deepcopy()
    s2.set_signal_type("EELS_MnValence")
    np.testing.assert_array_equal(s2.white_line_ratio().data, r.data)
    np.testing.assert_array_equal(mnv.white_line_ratio(s.as_lazy()).data, r.data)
    # beside the network's maps
    fig = pl.plot_valence_maps(p, cross_check=True, signal=s)
    panels = {a.get_title(): a for a in fig.axes}
    shown = panels["L3/L2 white-line ratio"].get_images()[0].get_array().filled(np.nan)
    np.testing.assert_allclose(shown, r.data, equal_nan=True)
    assert "L3 position (white line)" in panels
    fig = pl.plot_valence_maps(p.isig[:, 5], cross_check=r.isig[:, 5])
    assert fig.axes[3].get_ylabel().startswith("L3/L2 ratio")
    with pytest.raises(ValueError, match="signal=s"):
        pl.plot_valence_maps(p, cross_check=True)


def test_digitized_references_order_by_valence(digitized_references):
    """Evaluation only: the ratio falls with the valence on the 31 literature spectra."""
    from scipy.stats import spearmanr

    ratio, val = [], []
    for ref in digitized_references:
        r = white_line_ratio_spectra(ref["intensity"], ref["energy"])
        ratio.append(r["ratio"][0])
        val.append(ref["valence"])
    ratio, val = np.array(ratio), np.array(val)
    assert np.isfinite(ratio).all()
    means = [ratio[val == v].mean() for v in (2, 3, 4)]
    assert means[0] > means[1] > means[2]
    assert spearmanr(ratio, val).statistic < -0.9
