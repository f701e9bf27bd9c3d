"""Training inputs are recorded acquisitions passed through the inference preprocessing."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.training.acquisitions import TRAINING_CONDITIONS, acquisition_epoch, record


def test_epoch_is_what_preprocess_makes_of_the_recordings(clean_titan_like):
    s, labels, e = clean_titan_like
    targets = np.eye(3, dtype=np.float32)[labels]
    x, y = acquisition_epoch(s, e, targets, np.random.default_rng(3), copies=2)
    # the same draws, recorded and preprocessed by hand, give the same inputs
    rng = np.random.default_rng(3)
    xs = []
    for _ in range(2):
        for _idx, raw, energy in record(s, e, rng):
            pre = preprocess(raw, energy)
            xs.append(pre.x[pre.valid])
    np.testing.assert_array_equal(x, np.concatenate(xs))
    assert x.shape[1] == 300 and y.shape == (x.shape[0], 3)
    # flagged spectra are left out, but most strong enough edges stay
    assert 0.5 * 2 * len(labels) < x.shape[0] <= 2 * len(labels)
    assert set(np.unique(y.argmax(1))) == {0, 1, 2}


def test_conditions_cover_the_documented_ranges(clean_titan_like):
    s, labels, e = clean_titan_like
    groups = record(np.repeat(s, 10, axis=0), e, np.random.default_rng(0))
    steps = sorted({round(float(np.median(np.diff(energy))), 3) for _, _, energy in groups})
    assert steps[0] >= 0.05 and steps[-1] <= 1.0 and len(steps) >= 4
    assert sum(idx.size for idx, _, _ in groups) == 600


def test_as_given_share_passes_spectra_unrecorded(clean_titan_like):
    s, labels, e = clean_titan_like
    c = copy.deepcopy(TRAINING_CONDITIONS)
    c["as_given"] = 1.0
    groups = record(s, e, np.random.default_rng(1), c)
    for idx, raw, energy in groups:
        np.testing.assert_array_equal(raw, s[idx].astype(np.float32))
        assert energy.size == e.size and abs(np.diff(energy).mean() - 0.1) < 1e-9


def test_training_conditions_copies_with_the_two_shares():
    from hyperspy_mnvalence.training.acquisitions import TRAINING_CONDITIONS, training_conditions

    c = training_conditions(0.3, 0.15)
    assert (c["clean"], c["as_given"]) == (0.3, 0.15)
    assert (TRAINING_CONDITIONS["clean"], TRAINING_CONDITIONS["as_given"]) == (0.2, 0.0)
    c["ranges"]["t_over_lambda"][1] = 9.0  # a deep copy: the defaults stay
    assert TRAINING_CONDITIONS["ranges"]["t_over_lambda"] == [0.0, 1.5]
    assert training_conditions() == TRAINING_CONDITIONS


def test_training_conditions_ranges_from_the_command_line():
    import argparse

    from hyperspy_mnvalence.training.acquisitions import (
        add_condition_arguments,
        conditions_from_arguments,
        training_conditions,
    )

    ap = argparse.ArgumentParser()
    add_condition_arguments(ap)
    args = ap.parse_args(
        "--clean 0.3 --range resolution_eV 0.2 3 --range t_over_lambda 0 0".split()
    )
    c = conditions_from_arguments(args)
    assert c["clean"] == 0.3 and c["as_given"] == TRAINING_CONDITIONS["as_given"]
    assert c["ranges"]["resolution_eV"] == [0.2, 3.0]
    assert c["ranges"]["t_over_lambda"] == [0.0, 0.0]
    assert TRAINING_CONDITIONS["ranges"]["resolution_eV"] == [0.2, 2.0]
    assert conditions_from_arguments(ap.parse_args([])) == TRAINING_CONDITIONS
    with pytest.raises(ValueError, match="min <= max"):
        training_conditions(ranges={"resolution_eV": (2.0, 1.0)})
    with pytest.raises(ValueError, match="Unknown knob"):
        training_conditions(ranges={"resolution": (0.2, 1.0)})


def _inputs(s, e, conditions, seed=5):
    """Preprocessed recordings per spectrum (NaN rows where flagged)."""
    x = np.full((s.shape[0], 300), np.nan, np.float32)
    for idx, raw, energy in record(s, e, np.random.default_rng(seed), conditions):
        pre = preprocess(raw, energy)
        x[idx[pre.valid]] = pre.x[pre.valid]
    return x


def test_deconvolved_recordings_undo_the_thickness(clean_titan_like):
    pytest.importorskip("exspy")
    from hyperspy_mnvalence.training.acquisitions import training_conditions

    s, _, e = clean_titan_like

    def conditions(t, deconvolve):
        c = training_conditions(1.0, 0.0, {"t_over_lambda": (t, t)}, deconvolve)
        c["spikes_per_spectrum"] = 0.0
        return c

    thin = _inputs(s, e, conditions(0.0, True))
    deconvolved = _inputs(s, e, conditions(1.5, True))
    raw = _inputs(s, e, conditions(1.5, False))  # thick, read as it is

    def rms(x):
        return float(np.sqrt(np.nanmean((x - thin) ** 2)))

    for x in (thin, deconvolved, raw):
        assert np.isfinite(x).all(axis=1).mean() > 0.9
    # the network's input of a deconvolved thick recording is close to a thin one's
    assert rms(deconvolved) < 0.5 * rms(raw), (rms(deconvolved), rms(raw))


def test_deconvolved_epoch_keeps_each_input_with_its_target(clean_titan_like):
    pytest.importorskip("exspy")
    from hyperspy_mnvalence.training.acquisitions import training_conditions

    s, labels, e = clean_titan_like
    c = training_conditions(1.0, 0.0, {"t_over_lambda": (1.0, 1.0)}, True)
    targets = np.eye(3, dtype=np.float32)[labels]
    x, y = acquisition_epoch(s, e, targets, np.random.default_rng(2), copies=2, conditions=c)
    # all copies recorded at once, each input with its own spectrum's target
    reps = np.tile(np.arange(len(labels)), 2)
    xs, ys = [], []
    for idx, raw, energy in record(s[reps], e, np.random.default_rng(2), c):
        pre = preprocess(raw, energy)
        xs.append(pre.x[pre.valid])
        ys.append(labels[reps[idx]][pre.valid])
    np.testing.assert_array_equal(x, np.concatenate(xs))
    np.testing.assert_array_equal(y.argmax(1), np.concatenate(ys))
    assert x.shape[0] > 0.9 * reps.size


def test_a_dispersion_range_is_drawn_log_uniformly_between_its_ends(clean_titan_like):
    from hyperspy_mnvalence.training.acquisitions import training_conditions

    spectra, _, energy = clean_titan_like
    spectra = np.tile(spectra, (8, 1))[:400]
    c = training_conditions(as_given=0.0, ranges={"dispersion_eV": (0.6, 1.0)})
    groups = record(spectra, energy, np.random.default_rng(2), c)
    disp = np.concatenate([np.full(g[0].size, np.median(np.diff(g[2]))) for g in groups])
    assert disp.size == spectra.shape[0]
    assert disp.min() >= 0.6 - 1e-9 and disp.max() <= 1.0 + 1e-9
    # spread over the range (four log-spaced bins, each log-uniform), not piled at an end
    assert disp.max() - disp.min() > 0.25
    assert 0.7 < np.median(disp) < 0.9
    # the default is unchanged: its last bin is exactly 1 eV per channel
    assert TRAINING_CONDITIONS["dispersion_bins"][-1] == 1.0 and "dispersion_end" not in (
        TRAINING_CONDITIONS
    )
    with pytest.raises(ValueError, match="dispersion range"):
        training_conditions(ranges={"dispersion_eV": (1.0, 0.6)})
