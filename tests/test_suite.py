"""The robustness suite scores what it claims: accuracy counts flagged spectra as wrong."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence.preprocessing import preprocess

pytest.importorskip("matplotlib")
from hyperspy_mnvalence.training.suite import SUITE, run_suite, suite_figure  # noqa: E402


def _oracle(labels):
    def predict(raw, energy, source):
        pre = preprocess(raw, energy)
        out = np.full((raw.shape[0], 3), np.nan)
        src = np.arange(len(labels)) if source is None else source
        out[pre.valid] = np.eye(3)[labels[src[pre.valid]]]
        return out

    return predict


def test_oracle_accuracy_is_one_minus_the_no_edge_rate(clean_titan_like):
    spectra, labels, e = clean_titan_like
    conds = [c for c in SUITE if c[0] in ("l3bg_3", "l3bg_25", "spikes_1")]
    res = run_suite(spectra, labels, e, _oracle(labels), copies=2, conditions=conds)
    for c in res["conditions"].values():
        assert c["n"] == 2 * len(labels)
        assert c["accuracy"] == pytest.approx(1.0 - c["no_edge"])
        assert c["accuracy_classified"] in (None, 1.0)
    # a strong edge is found; a 3 % edge is lost more often than a 25 % one
    assert res["conditions"]["l3bg_25"]["no_edge"] <= res["conditions"]["l3bg_3"]["no_edge"]
    assert res["clean"] == 1.0
    assert res["worst"] == min(c["accuracy"] for c in res["conditions"].values())


def test_constant_model_scores_its_class_share(clean_titan_like, tmp_path):
    spectra, labels, e = clean_titan_like

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


def test_the_suite_at_one_dispersion_records_every_condition_there(clean_titan_like):
    from hyperspy_mnvalence.training.suite import clean_at_dispersion, conditions_at_dispersion

    spectra, labels, e = clean_titan_like
    rows = conditions_at_dispersion(1.0)
    # every Mn condition outside the dispersion group, then the base condition at 1 eV
    assert len(rows) == sum(g != "dispersion_eV" for _, g, _ in SUITE) + 1
    assert all(c["dispersion_eV"] == 1.0 for _, _, c in rows)
    assert rows[-1] == ("disp_1", "dispersion_eV", {"dispersion_eV": 1.0})
    seen = {}

    def spy(raw, energy, source):
        seen.setdefault("steps", []).append(float(np.median(np.diff(energy))))
        return _oracle(labels)(raw, energy, source)

    conds = [r for r in rows if r[0] in ("l3bg_25@1", "t_1.5@1")] + clean_at_dispersion(1.0)
    res = run_suite(spectra, labels, e, spy, copies=1, conditions=conds)
    assert seen["steps"][:3] == pytest.approx([1.0, 1.0, 1.0])
    # noise-free at 1 eV per channel: every edge found
    assert res["conditions"]["clean@1"]["no_edge"] == 0.0


def test_the_suite_at_one_resolution_records_every_condition_there(clean_titan_like):
    from hyperspy_mnvalence.training.suite import clean_at, conditions_at

    spectra, labels, e = clean_titan_like
    rows = conditions_at("resolution_eV", 2.0)
    # every Mn condition outside the resolution group (dispersions included), then the
    # base condition at 2 eV
    assert len(rows) == sum(g != "resolution_eV" for _, g, _ in SUITE) + 1
    assert all(c["resolution_eV"] == 2.0 for _, _, c in rows)
    assert rows[-1] == ("res_2", "resolution_eV", {"resolution_eV": 2.0})
    assert ("disp_1.0@2", "dispersion_eV", {"dispersion_eV": 1.0, "resolution_eV": 2.0}) in rows
    with pytest.raises(ValueError, match="knob must be one of"):
        conditions_at("t_over_lambda", 1.0)
    # a noise-free row at 2 eV is broader than one at 0.3 eV, and every edge is found
    contrast = {}
    for fwhm in (2.0, 0.3):
        got = []

        def spy(raw, energy, source, got=got):
            if raw.shape[1] != spectra.shape[1]:  # the recordings, not the clean spectra
                got.append(np.asarray(raw, float))
            return _oracle(labels)(raw, energy, source)

        res = run_suite(
            spectra, labels, e, spy, copies=1, conditions=clean_at("resolution_eV", fwhm)
        )
        assert res["conditions"][f"clean@{fwhm:g}"]["no_edge"] == 0.0
        # the sharpest curvature of the raw spectra (the L3 peak): blur lowers it
        contrast[fwhm] = np.median(np.abs(np.diff(np.vstack(got), 2, axis=1)).max(1))
    assert contrast[2.0] < 0.7 * contrast[0.3]


def test_a_mean_of_predictors_averages_and_keeps_the_flags(clean_titan_like):
    # NAME=DIR1+DIR2: two fold ensembles read as one; the mean of an oracle and a constant
    # model is right wherever the oracle is (its probability 0.5-1 is the largest)
    from hyperspy_mnvalence.training.predictors import mean_predictor

    spectra, labels, e = clean_titan_like
    oracle = _oracle(labels)

    def uniform(raw, energy, source):
        out = oracle(raw, energy, source)
        out[np.isfinite(out).all(1)] = 1.0 / 3.0
        return out

    both = mean_predictor([oracle, uniform])
    p = both(spectra, e, None)
    ok = np.isfinite(p).all(1)
    np.testing.assert_array_equal(ok, preprocess(spectra, e).valid)
    np.testing.assert_allclose(p[ok].sum(1), 1.0)
    np.testing.assert_array_equal(p[ok].argmax(1), labels[ok])
    np.testing.assert_allclose(p[ok].max(1), 2.0 / 3.0)


def _fold_folder(path, held_out, seed):
    """A folder like acquisition_cv's: an untrained fcn_lite per fold and folds.json."""
    import json

    from hyperspy_mnvalence.training.architectures import build_model
    from hyperspy_mnvalence.training.loop import seed_everything

    path.mkdir()
    for k in held_out:
        seed_everything(seed + k)
        build_model("fcn_lite").save(path / f"fold{k}.keras")
    folds = {str(k): {"held_out": [int(i) for i in v]} for k, v in held_out.items()}
    (path / "folds.json").write_text(json.dumps({"folds": folds}))


@pytest.mark.training
def test_fold_predictor_of_two_folders_is_the_mean_of_each(clean_titan_like, tmp_path):
    # --folds NAME=DIR1+DIR2: one predictor, one preprocessing, the same numbers as the
    # mean of the two folders' predictors; folders of other folds are refused
    pytest.importorskip("keras")
    from hyperspy_mnvalence.training.predictors import keras_fold_predictor, mean_predictor

    spectra, labels, e = clean_titan_like
    held = {1: np.arange(0, 60, 2), 2: np.arange(1, 60, 2)}
    _fold_folder(tmp_path / "a", held, 10)
    _fold_folder(tmp_path / "b", held, 20)
    source = np.arange(60)
    a = keras_fold_predictor(tmp_path / "a", 60)(spectra, e, source)
    b = keras_fold_predictor(tmp_path / "b", 60)(spectra, e, source)
    both = keras_fold_predictor([tmp_path / "a", tmp_path / "b"], 60)(spectra, e, source)
    assert np.abs(a - b)[np.isfinite(a)].max() > 1e-4  # the two folders differ
    np.testing.assert_allclose(both, (a + b) / 2, rtol=1e-6, atol=1e-7)
    single = [keras_fold_predictor(tmp_path / d, 60) for d in "ab"]
    np.testing.assert_allclose(mean_predictor(single)(spectra, e, source), both, atol=1e-7)
    _fold_folder(tmp_path / "c", {1: np.arange(30), 2: np.arange(30, 60)}, 30)
    with pytest.raises(ValueError, match="same spectra per fold"):
        keras_fold_predictor([tmp_path / "a", tmp_path / "c"], 60)
    with pytest.raises(ValueError, match="10 spectra have no held-out fold model"):
        keras_fold_predictor(tmp_path / "a", 70)


@pytest.mark.training
def test_routed_predictor_reads_weak_edges_with_the_weak_recipe(clean_titan_like, tmp_path):
    # spectra whose edge statistic is below the threshold are read by the weak folder's
    # fold model, the others by the general folder's; flagged spectra stay NaN
    pytest.importorskip("keras")
    from hyperspy_mnvalence.training.predictors import keras_fold_predictor, routed_fold_predictor

    spectra, labels, e = clean_titan_like
    rng = np.random.default_rng(3)
    raw = 1.0 + spectra * rng.uniform(0.02, 0.4, (60, 1))  # edges of many heights
    raw = rng.poisson(raw * 3e3) / 3e3
    held = {1: np.arange(0, 60, 2), 2: np.arange(1, 60, 2)}
    _fold_folder(tmp_path / "g", held, 10)
    _fold_folder(tmp_path / "w", held, 20)
    source = np.arange(60)
    snr = preprocess(raw, e).edge_snr
    t = float(np.nanmedian(snr))
    g = keras_fold_predictor(tmp_path / "g", 60)(raw, e, source)
    w = keras_fold_predictor(tmp_path / "w", 60)(raw, e, source)
    got = routed_fold_predictor(tmp_path / "g", tmp_path / "w", t, 60)(raw, e, source)
    low, high = snr < t, snr >= t
    assert low.sum() >= 10 and high.sum() >= 10
    np.testing.assert_allclose(got[low], w[low], atol=1e-7)
    np.testing.assert_allclose(got[high], g[high], atol=1e-7)
    np.testing.assert_array_equal(np.isnan(got).any(1), np.isnan(g).any(1))
    # routed by the measured edge contrast instead
    pre = preprocess(raw, e)
    tc = float(np.nanmedian(pre.l3_over_background))
    got = routed_fold_predictor(tmp_path / "g", tmp_path / "w", tc, 60, "l3_over_background")(
        raw, e, source
    )
    low = pre.l3_over_background < tc
    assert 10 <= low.sum() <= 50
    np.testing.assert_allclose(got[low], w[low], atol=1e-7)
    np.testing.assert_allclose(got[~low & pre.valid], g[~low & pre.valid], atol=1e-7)
    _fold_folder(tmp_path / "c", {1: np.arange(30), 2: np.arange(30, 60)}, 30)
    with pytest.raises(ValueError, match="same spectra per fold"):
        routed_fold_predictor(tmp_path / "g", tmp_path / "c", t, 60)
    with pytest.raises(ValueError, match="statistic must be"):
        routed_fold_predictor(tmp_path / "g", tmp_path / "w", t, 60, "dose")
