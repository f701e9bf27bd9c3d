"""Control networks see in training exactly the recordings the suite scores them on."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.simulations import mn_l23_edge

pytest.importorskip("matplotlib")
from hyperspy_mnvalence.training.acquisitions import record  # noqa: E402
from hyperspy_mnvalence.training.controls import control_conditions  # noqa: E402
from hyperspy_mnvalence.training.suite import SUITE, _record  # noqa: E402


def _edges(n=300):
    e = np.arange(600.0, 700.0, 0.1)
    valence = np.arange(n) % 3 + 2
    return np.stack([mn_l23_edge(e, int(v)) for v in valence]), e


def _summary(raw, energy):
    pre = preprocess(raw, energy)
    # scale-free statistics of the recordings: relative noise of the pre-edge and the
    # edge decision's signal-to-noise
    pre_edge = raw[:, :40]
    noise = np.median(np.std(np.diff(pre_edge, axis=1), axis=1) / pre_edge.mean(1))
    return noise, np.median(pre.edge_snr), pre.valid.mean()


@pytest.mark.parametrize("name", ["l3bg_3", "l3bg_12", "white_l3bg_6"])
def test_control_recordings_match_the_suite_condition(name):
    edges, e = _edges()
    cond = dict(next(c for c in SUITE if c[0] == name)[2])
    _, acq = _record(edges, e, cond, seed=1, copies=1)
    groups = record(edges, e, np.random.default_rng(2), control_conditions(name))
    assert len(groups) <= 2  # one dispersion and detector (split only by spike groups)
    raw = np.concatenate([g[1] for g in groups])
    steps = {round(float(np.diff(g[2]).mean()), 6) for g in groups}
    assert steps == {round(float(np.diff(acq.energy).mean()), 6)}
    a, b = _summary(acq.spectra, acq.energy), _summary(raw, groups[0][2])
    assert a[0] == pytest.approx(b[0], rel=0.1)  # the same detector noise
    assert a[1] == pytest.approx(b[1], rel=0.15)  # the same edge strength
    assert a[2] == pytest.approx(b[2], abs=0.08)


def test_control_conditions_differ_between_levels():
    lo, hi = control_conditions("l3bg_3"), control_conditions("l3bg_25")
    assert lo["ranges"]["l3_over_background"] == [0.03, 0.03]
    assert hi["ranges"]["l3_over_background"] == [0.25, 0.25]
    assert lo["clean"] == 0.0 and lo["as_given"] == 0.0
    with pytest.raises(ValueError, match="Unknown suite condition"):
        control_conditions("l3bg_4")


def test_one_knob_controls_fix_only_what_the_condition_changes():
    from hyperspy_mnvalence.training.acquisitions import TRAINING_CONDITIONS

    c = control_conditions("l3bg_3", one_knob=True)
    assert c["ranges"]["l3_over_background"] == [0.03, 0.03]
    for knob in ("t_over_lambda", "resolution_eV", "dose", "offset_eV"):  # still spread
        assert c["ranges"][knob] == TRAINING_CONDITIONS["ranges"][knob]
    assert c["dispersion_bins"] == TRAINING_CONDITIONS["dispersion_bins"]
    assert c["correlated"] == TRAINING_CONDITIONS["correlated"]
    assert c["clean"] == 0.0 and c["as_given"] == 0.0
    w = control_conditions("white_l3bg_6", one_knob=True)
    assert w["correlated"] == 0.0 and w["ranges"]["l3_over_background"] == [0.06, 0.06]
    d = control_conditions("disp_1.0", one_knob=True)
    assert d["dispersion_bins"] == [1.0] and d["ranges"]["l3_over_background"] == [0.02, 0.5]
    # the recordings really spread: several dispersions and detectors
    edges, e = _edges(120)
    groups = record(edges, e, np.random.default_rng(2), c)
    assert len({round(float(np.diff(g[2]).mean()), 3) for g in groups}) >= 3
