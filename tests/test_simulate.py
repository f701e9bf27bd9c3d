"""The acquisition simulator: each physical stage does what it says, measured."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence.simulations import (
    NEGATIVE_FAMILIES,
    draw_conditions,
    simulate_acquisition,
    simulate_negatives,
)
from hyperspy_mnvalence.simulations.conditions import CONDITION_RANGES, DETECTORS


def _expected(**kw):
    return simulate_acquisition(poisson=False, rng=0, **kw)


def test_l3_over_background_is_what_was_asked():
    for ratio in (0.03, 0.12, 0.5):
        acq = _expected(valence=[2, 3, 4], l3_over_background=ratio, dispersion_eV=0.1)
        e, y = acq.energy, acq.spectra.astype(float)
        for i in range(3):
            l3 = acq.truth["l3_eV"][i]
            r = acq.truth["background_exponent"][i]
            # background under the peak from a power law fitted before the edge
            pre = (e > l3 - 25) & (e < l3 - 6)
            c = np.polyfit(np.log(e[pre]), np.log(y[i, pre]), 1)
            assert abs(-c[0] - r) < 0.1
            j = np.argmin(abs(e - l3))
            bg = np.exp(np.polyval(c, np.log(e[j])))
            assert abs((y[i, j] - bg) / bg - ratio) < 0.1 * ratio + 0.003


def test_offset_moves_the_l3_peak_and_dispersion_sets_the_axis():
    acq = _expected(valence=[3, 3], offset_eV=[-12.0, 9.0], dispersion_eV=0.05,
                    l3_over_background=0.5)  # fmt: skip
    assert np.allclose(np.diff(acq.energy), 0.05)
    e, y = acq.energy, acq.spectra
    sel = (e > 620) & (e < 660)
    peaks = e[sel][np.argmax(y[:, sel] - y[:, sel].min(1, keepdims=True), axis=1)]
    assert abs(peaks[1] - peaks[0] - 21.0) < 0.3
    assert np.allclose(acq.truth["l3_eV"], acq.truth["l3_true_eV"] + [-12.0, 9.0])


def test_counts_per_channel_follow_dose_and_dispersion():
    # background electrons per eV at the L3 maximum = dose, so a channel holds dose * d
    for d in (0.1, 0.5):
        acq = _expected(valence=2, l3_over_background=0.0, dose=1e4, dispersion_eV=d)
        j = np.argmin(abs(acq.energy - acq.truth["l3_eV"][0]))
        assert acq.spectra[0, j] == pytest.approx(1e4 * d, rel=0.02)


def test_poisson_statistics_and_gain():
    acq = simulate_acquisition(4000, valence=3, l3_over_background=0.0, dose=400.0,
                               dispersion_eV=0.25, gain=3.0, rng=1)  # fmt: skip
    y = acq.spectra[:, 100:140].astype(float)
    # counts = gain * electrons: variance / mean = gain
    assert np.mean(y.var(0) / y.mean(0)) == pytest.approx(3.0, rel=0.05)


def test_correlated_detector_matches_measured_real_statistics():
    """Lag-1 0.51-0.58, lag-2 0.11-0.17 and variance/mean ~4.4 on real CCD images."""
    acq = simulate_acquisition(2000, valence=3, l3_over_background=0.0, dose=8e4,
                               dispersion_eV=0.25, rng=2, **DETECTORS["correlated"])  # fmt: skip
    y = acq.spectra[:, 20:220].astype(float)
    x = np.arange(y.shape[1])
    resid = y - np.polynomial.polynomial.polyval(x, np.polynomial.polynomial.polyfit(x, y.T, 3))
    resid -= resid.mean(1, keepdims=True)
    den = (resid * resid).sum()
    lag1 = (resid[:, 1:] * resid[:, :-1]).sum() / den
    lag2 = (resid[:, 2:] * resid[:, :-2]).sum() / den
    assert 0.5 < lag1 < 0.65
    assert 0.08 < lag2 < 0.2
    vm = np.mean(y.var(0) / y.mean(0))
    assert 3.5 < vm < 5.5
    white = simulate_acquisition(2000, valence=3, l3_over_background=0.0, dose=8e4,
                                 dispersion_eV=0.25, rng=2, **DETECTORS["white"])  # fmt: skip
    w = white.spectra[:, 20:220].astype(float)
    wr = w - np.polynomial.polynomial.polyval(x, np.polynomial.polynomial.polyfit(x, w.T, 3))
    assert abs((wr[:, 1:] * wr[:, :-1]).sum() / (wr * wr).sum()) < 0.05


def test_plural_scattering_keeps_area_and_moves_intensity_up():
    thin = _expected(valence=4, t_over_lambda=0.0, l3_over_background=0.3)
    thick = _expected(valence=4, t_over_lambda=1.5, l3_over_background=0.3)
    # the L3 height is fixed by l3_over_background: thickness shows as a raised
    # post-edge relative to the L3 maximum (intensity moved up by plasmon orders)
    e = thin.energy
    post = (e > 665) & (e < 690)
    top = (e > 635) & (e < 650)
    rel = [
        (a.spectra[0, post] - a.spectra[0].min()).mean()
        / (a.spectra[0, top].max() - a.spectra[0].min())
        for a in (thin, thick)
    ]
    assert rel[1] > rel[0] + 0.02


def test_resolution_broadens_the_white_line():
    # the steepest rise of the L3 line, relative to its height, falls as the resolution
    # worsens (0.3 -> 1 -> 2 eV FWHM)
    rise = []
    for res in (0.3, 1.0, 2.0):
        a = _expected(valence=2, resolution_eV=res, l3_over_background=0.5, dispersion_eV=0.05)
        e, y = a.energy, a.spectra[0].astype(float)
        sel = (e > 630) & (e < 650)
        rise.append(np.max(np.diff(y[sel])) / np.ptp(y[sel]))
    assert rise[0] > 1.1 * rise[1] > 1.2 * rise[2]


def test_spikes_and_hot_channels_are_recorded_where_they_are():
    a = simulate_acquisition(50, valence=3, spikes_per_spectrum=1.0, hot_channels=2, rng=3)
    b = simulate_acquisition(50, valence=3, rng=3)
    assert a.truth["n_spikes"].sum() == sum(len(c) for c in a.truth["spike_channels"])
    assert len(a.truth["hot_channels"]) == 2
    diff = a.spectra - b.spectra
    for ch in a.truth["hot_channels"]:
        assert np.all(diff[:, ch] > 0)


def test_seeded_and_recorded():
    kw = dict(valence=[2, 3, 4, 3], t_over_lambda=0.5, psf_sigma_channels=0.7, gain=5.0,
              read_noise=2.0, gain_pattern=0.01, spikes_per_spectrum=0.5)  # fmt: skip
    a = simulate_acquisition(rng=11, **kw)
    b = simulate_acquisition(rng=11, **kw)
    c = simulate_acquisition(rng=12, **kw)
    assert np.array_equal(a.spectra, b.spectra)
    assert not np.array_equal(a.spectra, c.spectra)
    assert np.array_equal(a.truth["gain_pattern"], b.truth["gain_pattern"])
    assert a.truth["valence"].tolist() == [2, 3, 4, 3]


def test_titan_like_edges_are_recorded_from_given_spectra():
    from hyperspy_mnvalence.simulations import mn_l23_edge

    e = np.arange(635.0, 665.0, 0.1)
    clean = np.stack([mn_l23_edge(e, v, l3_eV=645.0, resolution_eV=0.2) for v in (2, 4)])
    clean = (clean - clean.min(1, keepdims=True)) / np.ptp(clean, axis=1, keepdims=True)
    a = simulate_acquisition(edges=clean, edge_energy=e, valence=[2, 4], offset_eV=[-5.0, 5.0],
                             poisson=False, l3_over_background=0.3)  # fmt: skip
    assert np.allclose(a.truth["l3_true_eV"], 645.0, atol=0.3)
    assert np.allclose(a.truth["l3_eV"], [640.0, 650.0], atol=0.3)


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="t_over_lambda"):
        simulate_acquisition(valence=2, t_over_lambda=-1)
    with pytest.raises(ValueError, match="dispersion_eV"):
        simulate_acquisition(valence=2, dispersion_eV=0)
    with pytest.raises(ValueError, match="valence"):
        simulate_acquisition(valence=5)
    with pytest.raises(ValueError, match="dose"):
        simulate_acquisition(valence=2, dose=0)
    with pytest.raises(ValueError, match="family"):
        simulate_negatives("nothing", 3)


@pytest.mark.parametrize("family", NEGATIVE_FAMILIES)
def test_negatives_have_no_mn_edge_in_truth(family):
    a = simulate_negatives(family, 20, rng=0, psf_sigma_channels=0.7, gain=4.0)
    assert a.spectra.shape[0] == 20 and np.isfinite(a.spectra).all()
    assert not a.truth["has_edge"].any()
    assert a.truth["family"] == family


def test_draw_conditions_stay_in_their_ranges():
    rng = np.random.default_rng(0)
    c = draw_conditions(5000, rng, {"offset_eV": (-5, 5)})
    for k, v in c.items():
        lo, hi = (-5, 5) if k == "offset_eV" else CONDITION_RANGES[k]
        assert v.min() >= lo and v.max() <= hi
    # log-uniform: the median of the dose is the geometric mean of its range
    lo, hi = CONDITION_RANGES["dose"]
    assert np.median(c["dose"]) == pytest.approx(np.sqrt(lo * hi), rel=0.15)


def test_signal_carries_truth_and_calibration():
    a = simulate_acquisition(12, valence=np.repeat([2, 3, 4], 4), dispersion_eV=0.3, rng=0)
    s = a.to_signal((3, 4))
    assert s.data.shape == (3, 4, a.energy.size)
    assert s.metadata.Signal.signal_type == "EELS_MnValence"
    ax = s.axes_manager.signal_axes[0]
    assert ax.scale == pytest.approx(0.3) and ax.units == "eV"
    assert s.metadata.Sample.mn_valence_truth.shape == (3, 4)
    assert s.metadata.Sample.simulation.t_over_lambda.shape == (3, 4)


def test_lazy_map_is_reproducible_and_classified_by_its_truth():
    import hyperspy_mnvalence as mnv
    from hyperspy_mnvalence.simulations import simulate_lazy_map

    v = np.repeat(np.array([[0, 2, 3, 4]]), 12, axis=0).repeat(4, axis=1)
    s = simulate_lazy_map(v, chunks=8, dispersion_eV=0.25, l3_over_background=0.3)
    assert s._lazy and s.data.shape[:2] == (12, 16)
    again = simulate_lazy_map(v, chunks=8, dispersion_eV=0.25, l3_over_background=0.3)
    np.testing.assert_array_equal(s.inav[:6, :6].data.compute(), again.inav[:6, :6].data.compute())
    p = s.classify_mn_valence(show_progressbar=False)
    ml = mnv.most_likely_valence(mnv.compute_result(p)).data
    assert np.isnan(ml[v == 0]).all()
    assert np.mean(ml[v > 0] == v[v > 0]) > 0.95
