"""The held-out suite from a shipped ensemble alone: each Titan recording is read by the
member (fold model) that held its spectrum out."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")


def test_each_spectrum_is_read_by_its_held_out_member(real_data):
    from hyperspy_mnvalence.classification import classify_spectra
    from hyperspy_mnvalence.preprocessing import preprocess
    from hyperspy_mnvalence.training.acquisitions import titan_training_set
    from hyperspy_mnvalence.training.cv import cv_splits
    from hyperspy_mnvalence.training.predictors import member_session, onnx_fold_predictor
    from hyperspy_mnvalence.training.suite import BASE, _record

    spectra, energy, labels = titan_training_set()
    predict = onnx_fold_predictor("acquisition", labels)
    src, acq = _record(spectra, energy, dict(BASE), seed=3, copies=1)
    src, raw = src[:60], acq.spectra[:60]
    p = predict(raw, acq.energy, src)
    owner = np.empty(len(labels), int)
    for k, (_, held) in enumerate(cv_splits(labels, None, 5, 0)):
        owner[held] = k
    sess, name = member_session("acquisition")
    pre = preprocess(raw, acq.energy)
    members = sess.run([name], {"spectra": pre.x})[0]  # (60, 5, 3)
    ok = pre.valid
    assert ok.sum() > 50
    np.testing.assert_allclose(p[ok], members[ok, owner[src[ok]]], atol=1e-6)
    assert np.isnan(p[~ok]).all()
    # the ensemble the package ships is the members' mean, which the held-out read is not
    ens = classify_spectra(raw, acq.energy, model="acquisition")[:, :3]
    np.testing.assert_allclose(ens[ok], members[ok].mean(1), atol=1e-5)
    assert np.abs(p[ok] - ens[ok]).max() > 1e-3


def test_suite_command_line_needs_model_or_model_weak_threshold(tmp_path, real_data, capsys):
    from hyperspy_mnvalence.training.suite import main

    with pytest.raises(SystemExit):
        main(["--onnx-folds", "r=acquisition,weak", "--out", str(tmp_path), "--negatives", "0"])
    assert "NAME=MODEL,WEAK,THRESHOLD" in capsys.readouterr().err


def test_spectra_of_no_titan_source_are_read_by_the_first_fold(real_data):
    from hyperspy_mnvalence.simulations import simulate_acquisition
    from hyperspy_mnvalence.training.acquisitions import titan_training_set
    from hyperspy_mnvalence.training.predictors import onnx_fold_predictor, onnx_predictor

    _, _, labels = titan_training_set()
    acq = simulate_acquisition(valence=[2, 3, 4] * 4, l3_over_background=0.25, rng=5)
    p = onnx_fold_predictor("acquisition", labels)(acq.spectra, acq.energy, None)
    fast = onnx_predictor("fast")(acq.spectra, acq.energy)  # the fold-1 network alone
    np.testing.assert_allclose(p, fast, atol=1e-5)


def test_card_cv_figures_are_those_of_the_shipped_members(real_data):
    """The default's card quotes the held-out accuracy its members give now (refreshed
    with the edge decision, acquisition_export --refresh)."""
    import hyperspy_mnvalence as mnv
    from hyperspy_mnvalence.training.acquisitions import titan_training_set
    from hyperspy_mnvalence.training.predictors import fold_clean_accuracy

    spectra, energy, labels = titan_training_set()
    acc = fold_clean_accuracy("acquisition", spectra, energy, labels)
    card = mnv.model_card("acquisition")["metrics"]
    np.testing.assert_allclose(acc, card["cv_fold_accuracy"], atol=1e-12)
    assert card["acquisition"]["clean"] == pytest.approx(np.average(acc, weights=[316] * 4 + [315]))
