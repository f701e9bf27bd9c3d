"""Refreshing a model card with a new suite run: the figures, the card's name, the model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnx")
from hyperspy_mnvalence.classification import classify_spectra  # noqa: E402
from hyperspy_mnvalence.model import default_model_path, load_model  # noqa: E402
from hyperspy_mnvalence.training.acquisition_export import refresh  # noqa: E402
from hyperspy_mnvalence.training.export import read_metadata  # noqa: E402


def _suite(score: float) -> dict:
    conds = {
        "l3bg_3": {"accuracy": 0.25, "no_edge": 0.5},
        "t_1.5": {"accuracy": 0.75, "no_edge": 0.0},
    }
    return {
        "clean": 0.9,
        "worst": 0.25,
        "mean": 0.5,
        "score": score,
        "conditions": conds,
        "false_mn": {"background": {"white": 0.0, "correlated": 0.01}},
    }


@pytest.mark.usefixtures("real_data")
def test_refresh_writes_the_named_card_and_keeps_the_model(tmp_path):
    model = tmp_path / "single.onnx"
    shutil.copy(default_model_path("mn_valence_fcn_fast.onnx"), model)
    before = read_metadata(model)
    suite = tmp_path / "suite_x.json"
    suite.write_text(json.dumps(_suite(0.123)))
    reports = tmp_path / "reports"
    acq = refresh(model, suite, reports, card="single_card.json")
    assert acq["score"] == 0.123 and acq["conditions"] == {"l3bg_3": 0.25, "t_1.5": 0.75}
    assert acq["no_edge"]["l3bg_3"] == 0.5
    assert "error_by_uncertainty_quartile" not in acq  # one network: no spread
    # a second model's card: its own file, the default's suite.json untouched
    assert sorted(p.name for p in reports.iterdir()) == ["single_card.json"]
    card = json.loads((reports / "single_card.json").read_text())
    assert card["metrics"]["acquisition"]["score"] == 0.123
    after = read_metadata(model)
    assert after["metrics"]["acquisition"]["score"] == 0.123
    assert {k: v for k, v in after.items() if k != "metrics"} == {
        k: v for k, v in before.items() if k != "metrics"
    }
    # the refreshed file still loads and classifies as the original
    rng = np.random.default_rng(0)
    from hyperspy_mnvalence.simulations import simulate_acquisition

    acq_sim = simulate_acquisition(16, valence=rng.integers(2, 5, 16), rng=rng)
    a = classify_spectra(acq_sim.spectra, acq_sim.energy, model=str(model))
    b = classify_spectra(acq_sim.spectra, acq_sim.energy, model="fast")
    np.testing.assert_array_equal(a, b)
    assert load_model(str(model)).n_members == 1


def test_suite_metrics_of_a_run_without_negatives():
    from hyperspy_mnvalence.training.acquisition_export import suite_metrics

    at_2ev = _suite(0.5)
    del at_2ev["false_mn"]  # a suite recorded at one resolution, --negatives 0
    m = suite_metrics(at_2ev)
    assert "false_mn" not in m
    assert m["score"] == 0.5 and m["conditions"]["t_1.5"] == 0.75
    assert suite_metrics(_suite(0.5))["false_mn"] == {
        "background": {"white": 0.0, "correlated": 0.01}
    }


@pytest.mark.usefixtures("real_data")
def test_refresh_replaces_a_suite_recorded_at_one_value(tmp_path):
    # a specialist's card quotes the suite recorded where it is used (metrics[KEY]);
    # after an edge-decision change that figure is refreshed with the main one
    model = tmp_path / "single.onnx"
    shutil.copy(default_model_path("mn_valence_fcn_fast.onnx"), model)
    main_suite, at_1ev = tmp_path / "suite_x.json", tmp_path / "suite_at1.json"
    main_suite.write_text(json.dumps(_suite(0.123)))
    other = _suite(0.456)
    del other["false_mn"]
    other["clean_at_dispersion"] = {"accuracy": 0.875, "no_edge": 0.0}
    at_1ev.write_text(json.dumps(other))
    refresh(model, main_suite, tmp_path / "r", card="c.json", also={"acquisition_at_1eV": at_1ev})
    m = read_metadata(model)["metrics"]
    assert m["acquisition"]["score"] == 0.123
    assert m["acquisition_at_1eV"]["score"] == 0.456
    assert m["acquisition_at_1eV"]["clean_at_dispersion"] == 0.875
    assert "false_mn" not in m["acquisition_at_1eV"]
