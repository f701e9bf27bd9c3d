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
