"""The robustness suite scores what it claims: accuracy counts flagged spectra as wrong."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.simulations import mn_l23_edge

pytest.importorskip("matplotlib")
from hyperspy_mnvalence.training.suite import SUITE, run_suite, suite_figure  # noqa: E402


@pytest.fixture(scope="module")
def clean_set():
    e = np.arange(635.0, 665.0, 0.1)
    labels = np.repeat([0, 1, 2], 4)
    spectra = np.stack([mn_l23_edge(e, int(v) + 2, l3_eV=645.0, resolution_eV=0.2) for v in labels])
    spectra = (spectra - spectra.min(1, keepdims=True)) / np.ptp(spectra, axis=1, keepdims=True)
    return spectra, labels, e


def _oracle(labels):
    def predict(raw, energy, source):
        pre = preprocess(raw, energy)
        out = np.full((raw.shape[0], 3), np.nan)
        src = np.arange(len(labels)) if source is None else source
        out[pre.valid] = np.eye(3)[labels[src[pre.valid]]]
        return out

    return predict


def test_oracle_accuracy_is_one_minus_the_no_edge_rate(clean_set):
    spectra, labels, e = clean_set
    conds = [c for c in SUITE if c[0] in ("l3bg_3", "l3bg_25", "spikes_1")]
    res = run_suite(spectra, labels, e, _oracle(labels), copies=2, conditions=conds)
    for c in res["conditions"].values():
        assert c["n"] == 24
        assert c["accuracy"] == pytest.approx(1.0 - c["no_edge"])
        assert c["accuracy_classified"] in (None, 1.0)
    # a strong edge is found; a 3 % edge is lost more often than a 25 % one
    assert res["conditions"]["l3bg_25"]["no_edge"] <= res["conditions"]["l3bg_3"]["no_edge"]
    assert res["clean"] == 1.0
    assert res["worst"] == min(c["accuracy"] for c in res["conditions"].values())


def test_constant_model_scores_its_class_share(clean_set, tmp_path):
    spectra, labels, e = clean_set

    def always_mn2(raw, energy, source):
        pre = preprocess(raw, energy)
        out = np.tile([1.0, 0.0, 0.0], (raw.shape[0], 1))
        out[~pre.valid] = np.nan
        return out

    conds = [c for c in SUITE if c[0] == "l3bg_25"]
    res = run_suite(spectra, labels, e, always_mn2, copies=3, conditions=conds)
    c = res["conditions"]["l3bg_25"]
    assert c["accuracy_classified"] == pytest.approx(1 / 3, abs=0.15)
    suite_figure(
        {"constant": {**res, "conditions": {k: c for k in _all_names()}}}, tmp_path / "s.png"
    )
    assert (tmp_path / "s.png").stat().st_size > 10_000


def _all_names():
    return [name for name, _, _ in SUITE]
