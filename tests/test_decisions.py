"""The calibrated edge decision (issue 14), measured on the acquisition simulator.

The full calibration (400 spectra per cell, every dose) is ``benchmarks/edge_decision.py``;
these tests repeat it on fewer spectra, with thresholds that allow for the smaller samples.
"""

import itertools

import numpy as np
import pytest

from hyperspy_mnvalence.decisions import EDGE_MIN_SNR, edge_features, flank_test, noise_lag
from hyperspy_mnvalence.preprocessing import (
    preprocess,
    subtract_background,
    to_uniform_grid,
)
from hyperspy_mnvalence.simulations import (
    NEGATIVE_FAMILIES,
    edge_negatives,
    edge_positives,
    simulate_acquisition,
)
from hyperspy_mnvalence.simulations.conditions import DETECTORS

DISPERSION = 0.25


@pytest.mark.parametrize("family", NEGATIVE_FAMILIES)
def test_false_mn_per_negative_family(family):
    # 8 cells (white/correlated, 50 and 1e5 electrons per channel, with/without a spike)
    # of 100 spectra: the benchmark measures <= 0.5 % on 400 per cell; allow 1 %
    called = total = 0
    for k, (det, dose, spikes) in enumerate(
        (d, q, s) for d in DETECTORS for q in (50.0, 1e5) for s in (0.0, 1.0)
    ):
        acq = edge_negatives(
            family, 100, detector=det, dose_per_channel=dose, spikes=spikes,
            rng=100 * k + len(family),
        )  # fmt: skip
        called += int(preprocess(acq.spectra, acq.energy).valid.sum())
        total += acq.spectra.shape[0]
    assert called / total <= 0.01, f"{family}: {called}/{total} called Mn"


@pytest.mark.parametrize("detector", ["white", "correlated"])
def test_detection_against_l3_over_background(detector):
    rates = {}
    for ratio in (0.03, 0.06):
        acq = edge_positives(
            300, l3_over_background=ratio, detector=detector, rng=int(ratio * 1000)
        )
        rates[ratio] = preprocess(acq.spectra, acq.energy).valid.mean()
    # targets: >= 98 % at 6 %, >= 80 % at 3 % (benchmark: 98.2 % and 84.9 %)
    assert rates[0.06] >= 0.965, rates
    assert rates[0.03] >= 0.75, rates


@pytest.mark.parametrize("detector", ["white", "correlated"])
def test_noise_is_measured_at_the_tested_scale(detector):
    """The noise the decision uses equals the scatter of the 0.3 eV-smoothed spectrum
    across spectra, for white and for correlated detector noise; the old estimate (from
    channel-to-channel differences, white noise assumed) is about half of it for the
    correlated detector."""
    from hyperspy_mnvalence.preprocessing import gaussian_smooth, smoothed_noise

    acq = simulate_acquisition(
        400, valence=3, l3_over_background=0.0, dose=2e4, rng=5, **DETECTORS[detector]
    )
    y, grid = to_uniform_grid(acq.spectra, acq.energy, 0.1, (595.0, 700.0))
    peak = np.full(len(y), int(np.searchsorted(grid, 641.0)))  # the same channel in all
    sub = subtract_background(y.astype(np.float64), grid, peak)
    f = edge_features(sub, grid, peak, lag_eV=noise_lag(acq.truth["dispersion_eV"]))
    smoothed = gaussian_smooth(y.astype(np.float64), 3.0)
    true = np.mean([np.std(smoothed[:, peak[0] + k]) for k in (-120, -60, 0)])
    ratio = np.median(f["noise"]) / true
    assert 0.9 < ratio < 1.1, ratio
    old = np.median(smoothed_noise(acq.spectra, acq.energy)) / true
    if detector == "correlated":
        assert old < 0.7, old
    else:
        assert 0.85 < old < 1.15, old


@pytest.mark.parametrize("factor", [1e-30, 1e17])
def test_extreme_intensity_scales_decide_the_same(factor):
    acq = simulate_acquisition(
        150,
        valence=np.tile([2, 3, 4], 50),
        l3_over_background=np.linspace(0.0, 0.15, 150),
        dose=8e4,
        spikes_per_spectrum=0.5,
        rng=1,
        **DETECTORS["correlated"],
    )
    base = preprocess(acq.spectra, acq.energy)
    scaled = (acq.spectra * np.float32(factor)).astype(np.float32)
    assert np.all(np.isfinite(scaled))
    out = preprocess(scaled, acq.energy)
    np.testing.assert_array_equal(out.valid, base.valid)
    np.testing.assert_array_equal(out.n_spikes, base.n_spikes)
    np.testing.assert_allclose(out.x, base.x, atol=2e-5)
    assert 0 < base.valid.sum() < 150


def test_default_threshold_is_the_calibrated_one():
    import inspect

    assert inspect.signature(preprocess).parameters["min_snr"].default == EDGE_MIN_SNR
    # stricter thresholds only remove spectra
    acq = simulate_acquisition(200, valence=2, l3_over_background=0.04, dose=8e4, rng=2)
    a = preprocess(acq.spectra, acq.energy)
    b = preprocess(acq.spectra, acq.energy, min_snr=EDGE_MIN_SNR + 4)
    assert np.all(a.valid >= b.valid) and b.valid.sum() < a.valid.sum()
    np.testing.assert_array_equal(a.valid, a.valid & (a.edge_snr > EDGE_MIN_SNR))


@pytest.mark.parametrize(("dispersion", "factor"), [(0.25, 1.0), (0.5, 1.0), (1.0, 8 / 7)])
def test_threshold_rises_at_coarse_dispersion(dispersion, factor):
    from hyperspy_mnvalence.decisions import snr_threshold

    assert snr_threshold(7.0, dispersion) == pytest.approx(7.0 * factor)
    assert snr_threshold(7.0, 0.625) == pytest.approx(7.5)  # linear between
    # weak edges, many near the threshold: preprocess decides at the scaled threshold
    acq = simulate_acquisition(
        400, valence=2, l3_over_background=0.03, dose=8e4, dispersion_eV=dispersion, rng=4
    )
    a = preprocess(acq.spectra, acq.energy, min_snr=0.0)
    b = preprocess(acq.spectra, acq.energy, min_snr=7.0)
    np.testing.assert_array_equal(b.valid, a.valid & (a.edge_snr > 7.0 * factor))
    # spectra between 7 and the scaled threshold exist at 1 eV per channel only
    between = a.valid & (a.edge_snr > 7.0) & (a.edge_snr <= 7.0 * factor)
    assert between.any() == (factor > 1)


@pytest.mark.parametrize("dispersion", [0.05, 0.25, 0.5, 1.0])
def test_aligned_rows_give_the_features_of_the_smoothed_spectrum(dispersion):
    # rows sharing one peak channel are read by one matrix product; rows with their own
    # peaks by smoothing each row's segment. Both must give the same features: here the
    # same 40 noisy rows, once alone (aligned) and once beside a row whose peak differs
    rng = np.random.default_rng(3)
    grid = 600.0 + 0.1 * np.arange(900)
    peak = 400
    bump = np.exp(-0.5 * ((grid - grid[peak]) / 0.8) ** 2)
    y = 50 * bump + rng.normal(0, 1.0, (40, grid.size)) + np.linspace(0, 5, grid.size)
    y[5, 150:600] = 7.0  # a constant stretch: its noise is exactly zero either way
    y[6] = 3.0
    lag = noise_lag(dispersion)
    kw = dict(lag_eV=lag, dispersion=dispersion)  # the flanks' distance follows it
    aligned = edge_features(y, grid, np.full(40, peak), **kw)
    other = np.vstack([y, y[:1]])
    general = edge_features(other, grid, np.r_[np.full(40, peak), peak + 7], **kw)
    for k, v in aligned.items():
        np.testing.assert_allclose(v, general[k][:40], rtol=1e-12, atol=1e-12, err_msg=k)
    assert aligned["noise"][6] == 0.0 and general["noise"][6] == 0.0
    assert 0.2 < np.median(aligned["noise"]) < 1.0  # smoothed unit noise, not zero


def test_flank_test_reads_farther_and_higher_at_coarse_dispersion():
    # up to 0.25 eV per channel: the 0.6 eV test; coarser, farther and at least as high
    assert flank_test() == flank_test(0.05) == flank_test(0.25) == (0.6, 0.4)
    tests = [flank_test(d) for d in (0.25, 0.4, 0.5, 0.75, 1.0, 1.5, 3.0)]
    assert all(b[0] >= a[0] and b[1] >= a[1] for a, b in itertools.pairwise(tests))
    assert flank_test(1.0) == (1.0, 0.55) and flank_test(3.0) == flank_test(1.5)


@pytest.mark.parametrize("dispersion", [0.5, 0.75, 1.0])
def test_false_mn_of_spikes_at_coarse_dispersion(dispersion):
    # one spike per Mn-free spectrum, too small for the spike finder, is one or two
    # channels, 0.5-2 eV wide, at these dispersions: read 0.6 eV either side its flanks
    # passed as an L3 line's (2.7-6.7 % of a cell "Mn" before the dispersion-aware flank
    # test; benchmarks/edge_decision.py: <= 0.5 % now). The worst cells: white detector,
    # 50 and 500 electrons per channel, 100 spectra each; allow 1 %
    called = total = 0
    for k, family in enumerate(NEGATIVE_FAMILIES):
        for dose in (50.0, 500.0):
            acq = edge_negatives(
                family, 100, detector="white", dose_per_channel=dose, spikes=1.0,
                dispersion_eV=dispersion, rng=7 * k + int(dose),
            )  # fmt: skip
            called += int(preprocess(acq.spectra, acq.energy).valid.sum())
            total += acq.spectra.shape[0]
    assert called / total <= 0.01, f"{called}/{total} called Mn at {dispersion} eV/channel"


@pytest.mark.parametrize("dispersion", [0.5, 1.0])
def test_detection_at_coarse_dispersion(dispersion):
    # the farther, higher flank test keeps real white lines (L3 6 % above the background)
    acq = edge_positives(
        300, l3_over_background=0.06, detector="white", dispersion_eV=dispersion, rng=61
    )
    assert preprocess(acq.spectra, acq.energy).valid.mean() >= 0.965


def test_measured_l3_over_background_follows_the_recorded_contrast(clean_titan_like):
    # Preprocessed.l3_over_background: the edge test's height over the background fitted
    # under the L3 peak reads the simulator's L3/background within a few per cent at any
    # level, is inf where no background is left, and NaN where no edge is found
    from hyperspy_mnvalence.simulations.edge_cases import edge_positives

    for ratio in (0.03, 0.06, 0.12, 0.25):
        acq = edge_positives(300, l3_over_background=ratio, rng=11)
        pre = preprocess(acq.spectra, acq.energy)
        got = np.median(pre.l3_over_background[pre.valid])
        assert abs(got / ratio - 1.0) < 0.08, (ratio, got)
        assert np.all(np.isnan(pre.l3_over_background[~pre.valid]))
    # background-free edges (the Titan spectra as given): nothing under the peak
    spectra, _, e = clean_titan_like
    none = preprocess(spectra, e, background="none")
    assert none.valid.all() and np.all(np.isinf(none.l3_over_background))
    auto = preprocess(spectra, e)
    assert auto.valid.all() and np.all(auto.l3_over_background > 1.0)


@pytest.mark.parametrize(("dispersion", "applied"), [(0.25, 7.0), (1.0, 8.0)])
def test_result_records_the_threshold_applied(dispersion, applied):
    import hyperspy_mnvalence as mnv

    acq = simulate_acquisition(16, valence=3, dose=8e4, dispersion_eV=dispersion, rng=5)
    p = mnv.classify_mn_valence(acq.to_signal((4, 4)), model="lite", show_progressbar=False)
    par = p.metadata.MnValence.parameters
    assert par.min_snr == EDGE_MIN_SNR == 7.0
    assert par.edge_snr_threshold == pytest.approx(applied)
