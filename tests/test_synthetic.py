"""Tests of the parametric Mn L2,3 edge model and the synthetic spectrum image."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence import synthetic as sy
from hyperspy_mnvalence.preprocessing import preprocess

FINE = np.arange(625.0, 675.0, 0.01)


def _l3_max(energy: np.ndarray, y: np.ndarray) -> float:
    return float(energy[np.argmax(np.where(energy < 648.0, y, -np.inf))])


def _r2(y: np.ndarray, model: np.ndarray) -> float:
    """R^2 after the best linear scale and offset of ``model``."""
    a = np.column_stack([model, np.ones_like(model)])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    res = y - a @ coef
    return 1.0 - np.sum(res**2) / np.sum((y - y.mean()) ** 2)


@pytest.fixture(scope="module")
def demo():
    return sy.make_demo_spectrum_image((48, 64), seed=3)


@pytest.fixture(scope="module")
def demo_preprocessed(demo):
    energy = demo.axes_manager.signal_axes[0].axis
    return preprocess(demo.data.reshape(-1, energy.size), energy)


# --- the edge model ---------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("valence", [2, 3, 4])
def test_edge_reproduces_titan_class_mean(real_data, valence):
    from hyperspy_mnvalence.datasets import load_titan_valence

    d = load_titan_valence()
    mean = d["spectra"][d["valence"] == valence].mean(0).astype(float)
    e = d["energy"]
    l3 = sy.EDGE_PARAMETERS[valence]["titan_l3_eV"]
    model = sy.mn_l23_edge(e, valence, l3_eV=l3, resolution_eV=sy.REFERENCE_RESOLUTION_EV)
    assert _r2(mean, model) > 0.9
    # the other valences' shapes, aligned on their own L3 maximum, fit worse
    for other in set(sy.VALENCES) - {valence}:
        wrong = sy.mn_l23_edge(e, other, l3_eV=l3, resolution_eV=sy.REFERENCE_RESOLUTION_EV)
        assert _r2(mean, wrong) < _r2(mean, model)


@pytest.mark.realdata
def test_refit_matches_stored_table(real_data):
    params, quality = sy.fit_edge_parameters()
    for v in sy.VALENCES:
        assert quality[v] > 0.99
        assert quality[v] == pytest.approx(sy.FIT_QUALITY[v], abs=1e-3)
        assert params[v]["titan_l3_eV"] == pytest.approx(
            sy.EDGE_PARAMETERS[v]["titan_l3_eV"], abs=0.05
        )


@pytest.mark.realdata
def test_mn2_edge_matches_wide_window_mean(real_data):
    """Sanity check on data not used in the fit: the wide Mn2+ set."""
    from hyperspy_mnvalence.datasets import load_titan_mn2_wide

    d = load_titan_mn2_wide()
    e = d["energy"]
    mean = d["spectra"].mean(0).astype(float)
    sel = (e > 635.0) & (e < 665.0)
    l3 = _l3_max(e, np.where(e > 630, mean, -np.inf))
    best = max(
        _r2(mean[sel], sy.mn_l23_edge(e[sel], 2, l3_eV=l3 + dx, resolution_eV=0.2))
        for dx in np.arange(-0.5, 0.51, 0.1)
    )
    assert best > 0.9


@pytest.mark.parametrize("valence", [2, 3, 4])
@pytest.mark.parametrize("resolution", [0.1, 0.3, 1.0])
def test_l3_peak_at_requested_position(valence, resolution):
    y = sy.mn_l23_edge(FINE, valence, l3_eV=641.23, resolution_eV=resolution)
    assert abs(_l3_max(FINE, y) - 641.23) < 0.2
    # default: the calibrated literature position, moved by the calibration offset
    y = sy.mn_l23_edge(FINE, valence, offset_eV=-2.5, resolution_eV=resolution)
    assert abs(_l3_max(FINE, y) - (sy.L3_POSITIONS_EV[valence] - 2.5)) < 0.2


def test_chemical_shift_and_white_line_ratio_are_physical():
    peaks, ratios = {}, {}
    for v in sy.VALENCES:
        y = sy.mn_l23_edge(FINE, v)
        peaks[v] = _l3_max(FINE, y)
        l3 = y.max()
        l2 = np.max(np.where((FINE > peaks[v] + 8) & (FINE < peaks[v] + 15), y, 0))
        ratios[v] = l3 / l2
        # background-free: nothing before the edge, continuum step of 1 after it
        assert abs(y[FINE < peaks[v] - 8]).max() < 0.05
        assert y[-1] == pytest.approx(1.0, abs=0.05)
    assert peaks[2] < peaks[3] < peaks[4]
    assert ratios[2] > ratios[3] > ratios[4]


def test_mixture_is_linear_combination():
    f = (0.2, 0.5, 0.3)
    mix = sy.mn_l23_edge(FINE, fractions=f)
    parts = sum(fk * sy.mn_l23_edge(FINE, v) for fk, v in zip(f, sy.VALENCES, strict=True))
    np.testing.assert_allclose(mix, parts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        sy.mn_l23_edge(FINE, fractions=(0, 0, 2)), sy.mn_l23_edge(FINE, 4), rtol=1e-12
    )


def test_resolution_broadens_and_peak_normalisation():
    sharp = sy.mn_l23_edge(FINE, 2, resolution_eV=0.1, normalization="peak")
    broad = sy.mn_l23_edge(FINE, 2, resolution_eV=2.0, normalization="peak")
    assert sharp.max() == pytest.approx(1.0, abs=1e-3)
    assert broad.max() == pytest.approx(1.0, abs=1e-3)
    # wider L3: more channels above half maximum
    assert np.sum(broad[FINE < 648] > 0.5) > np.sum(sharp[FINE < 648] > 0.5)


def test_edge_input_errors():
    with pytest.raises(ValueError, match="2, 3 or 4"):
        sy.mn_l23_edge(FINE, 5)
    with pytest.raises(ValueError, match="either"):
        sy.mn_l23_edge(FINE)
    with pytest.raises(ValueError, match="three"):
        sy.mn_l23_edge(FINE, fractions=(1, 1))
    with pytest.raises(ValueError, match="three positions"):
        sy.mn_l23_edge(FINE, fractions=(0.5, 0.5, 0), l3_eV=640.0)


# --- synthetic spectra ------------------------------------------------------------------


def test_poisson_noise_statistics():
    e = np.arange(600.0, 700.0, 0.5)
    expected = sy.synthetic_spectra(e, 3, counts=50.0, noise=False)
    draws = sy.synthetic_spectra(e, 3, counts=np.full(4000, 50.0), noise=True, rng=7)
    assert draws.shape == (4000, e.size)
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    mean, var = draws.mean(0), draws.var(0, ddof=1)
    # mean and variance both match the expected counts (Poisson), within a few %
    np.testing.assert_allclose(mean, expected, rtol=0.03)
    np.testing.assert_allclose(var, expected, rtol=0.12)


def test_background_power_law_and_ratio():
    e = np.arange(580.0, 720.0, 0.25)
    bg_only = sy.synthetic_spectra(e, 2, counts=1e-9, background_ratio=0, noise=False)
    assert np.abs(bg_only).max() < 1e-6
    with_bg = sy.synthetic_spectra(e, 2, counts=100.0, background_exponent=3.5, noise=False)
    edge = sy.synthetic_spectra(e, 2, counts=100.0, background_ratio=0.0, noise=False)
    bg = with_bg - edge
    # a power law with the requested exponent
    slope = np.polyfit(np.log(e), np.log(bg), 1)[0]
    assert slope == pytest.approx(-3.5, abs=1e-6)
    # background under the L3 maximum = ratio x the L3 maximum of the edge
    i = np.argmax(edge)
    assert bg[i] / edge[i] == pytest.approx(2.0, rel=0.01)


def test_synthetic_spectra_offsets_and_shapes():
    e = np.arange(600.0, 690.0, 0.1)
    off = np.array([-3.0, 0.0, 4.0])
    y = sy.synthetic_spectra(e, 4, offset_eV=off, background_ratio=0.0, noise=False)
    assert y.shape == (3, e.size)
    peaks = [_l3_max(e, row) for row in y]
    np.testing.assert_allclose(peaks, sy.L3_POSITIONS_EV[4] + off, atol=0.1)
    single = sy.synthetic_spectra(e, fractions=(0.3, 0.3, 0.4), noise=False)
    assert single.shape == (e.size,)


@pytest.mark.parametrize("valence", [2, 3, 4])
def test_preprocess_locates_l3_of_synthetic_spectra(valence):
    e = 580.0 + 0.25 * np.arange(560)
    off = np.linspace(-4.0, 6.0, 21)
    truth = sy.L3_POSITIONS_EV[valence] + off
    clean = sy.synthetic_spectra(e, valence, offset_eV=off, noise=False)
    pre = preprocess(clean, e)
    assert pre.valid.all()
    assert np.abs(pre.peak_eV - truth).max() < 0.3
    noisy = sy.synthetic_spectra(e, valence, counts=3000.0, offset_eV=off, rng=valence)
    pre = preprocess(noisy, e)
    assert pre.valid.all()
    assert np.median(np.abs(pre.peak_eV - truth)) < 0.3


# --- demo spectrum image ----------------------------------------------------------------


def test_demo_shape_axes_and_metadata(demo):
    assert demo.data.shape == (48, 64, 560)
    assert demo.metadata.Signal.signal_type == "EELS_MnValence"
    ax_x, ax_y = demo.axes_manager.navigation_axes
    ax_e = demo.axes_manager.signal_axes[0]
    assert (ax_x.name, ax_x.units, ax_x.size) == ("x", "nm", 64)
    assert (ax_y.name, ax_y.units, ax_y.size) == ("y", "nm", 48)
    assert ax_e.units == "eV" and ax_e.scale == pytest.approx(0.25)
    assert ax_e.offset == pytest.approx(580.0)
    assert ax_e.axis[-1] == pytest.approx(719.75)
    assert demo.metadata.Acquisition_instrument.TEM.beam_energy > 0
    assert np.all(demo.data >= 0) and np.all(demo.data == np.round(demo.data))


def test_demo_is_an_mn_valence_signal(demo):
    from hyperspy_mnvalence.signals import MnValenceEELSSpectrum

    assert type(demo) is MnValenceEELSSpectrum


def test_demo_ground_truth_regions(demo):
    val = np.asarray(demo.metadata.Sample.mn_valence_truth)
    region = np.asarray(demo.metadata.Sample.region_truth)
    assert set(np.unique(region)) == {0, 1, 2, 3, 4}
    assert np.all(np.isnan(val[region <= 1]))
    for v in (2, 3, 4):
        inside = val[region == v]
        assert inside.size > 0.1 * val.size
        assert np.all(np.abs(inside - v) < 0.5)
        # most of the grain is pure
        assert np.mean(np.isclose(inside, v, atol=1e-3)) > 0.8
    frac = np.asarray(demo.metadata.Sample.mn_fractions_truth)
    mn = np.isfinite(val)
    np.testing.assert_array_equal(mn, region >= 2)
    np.testing.assert_allclose(frac[:, mn].sum(0), 1.0)
    # the valence truth is the fraction-weighted mean of the fraction truth
    np.testing.assert_allclose(val[mn], np.tensordot([2.0, 3.0, 4.0], frac, axes=1)[mn])
    # each grain spans all rows, so it sees most of the calibration drift (whether the
    # data carry that drift is measured in test_preprocess_l3_on_demo)
    off = np.asarray(demo.metadata.Sample.calibration_offset_eV)
    assert np.ptp(off) >= 8.0
    for v in (2, 3, 4):
        assert np.ptp(off[region == v]) > 8.0


def test_demo_reproducible():
    a = sy.make_demo_spectrum_image((16, 16), seed=5)
    b = sy.make_demo_spectrum_image((16, 16), seed=5)
    c = sy.make_demo_spectrum_image((16, 16), seed=6)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    s = sy.make_demo_spectrum_image((64, 64))
    assert s.data.shape == (64, 64, 560)


def test_demo_lazy():
    s = sy.make_demo_spectrum_image((8, 10), lazy=True)
    assert s._lazy
    assert s.data.shape == (8, 10, 560)


def test_preprocess_flags_vacuum_and_substrate(demo, demo_preprocessed):
    region = demo.metadata.Sample.region_truth.ravel()
    valid = demo_preprocessed.valid
    # vacuum holds ~2 counts per channel; the edge test's noise estimate (MAD of
    # channel differences) is low for such sparse integer counts, so allow 1 %
    assert valid[region == 0].mean() <= 0.01, "vacuum pixels must be flagged as no-edge"
    assert not valid[region == 1].any(), "substrate pixels must be flagged as no-edge"
    assert valid[region >= 2].mean() > 0.95


def test_preprocess_l3_on_demo(demo, demo_preprocessed):
    truth = demo.metadata.Sample
    region = truth.region_truth.ravel()
    frac = truth.mn_fractions_truth.reshape(3, -1)
    pure = (region >= 2) & (frac.max(0) > 0.999) & demo_preprocessed.valid
    l3 = np.array([sy.L3_POSITIONS_EV[v] for v in sy.VALENCES])[np.argmax(frac, 0)]
    err = demo_preprocessed.peak_eV - (l3 + truth.calibration_offset_eV.ravel())
    assert np.median(np.abs(err[pure])) < 0.3
