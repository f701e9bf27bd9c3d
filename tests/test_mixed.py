"""Tests of the mixed-valence decomposition (fractions of Mn2+, Mn3+, Mn4+)."""

from __future__ import annotations

import numpy as np
import pytest
from mutants import checks

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.mixed import (
    decompose_mn_valence,
)
from hyperspy_mnvalence.model import FRACTIONS_MODEL, default_model_path, load_model
from hyperspy_mnvalence.synthetic import synthetic_spectra

VALENCES = np.array([2.0, 3.0, 4.0])

# Tolerances (in mutants/checks.py, shared with the mutant test), set from what the shipped
# model measured (in brackets) plus a margin: synthetic mixtures on a 0.25 simplex grid,
# Poisson noise: mean-valence MAE [0.167], largest error [0.522]; noise-free mixtures,
# change of the mean valence for offsets of -15 ... +15 eV [0.014] and for dispersions
# 0.05 ... 0.5 eV/channel [0.039], and the MAE to the truth at each [< 0.2]; digitized
# references within 0.35 of the truth [31/31] (target 29). The previous model (3,000
# instead of 10,000 mixtures per epoch) measured 0.161, 0.473, 0.011, 0.031 and 30/31
# here, and 0.174 against 0.155 on held-out mixtures of real spectra (the model is
# chosen on those, by training/reports/selection_fractions_nmix10000_rule.json).


def _eels(data, energy=None, offset=625.0, scale=0.1, lazy=False):
    """An EELS signal on a uniform axis (offset, scale) or on the given energies."""
    import exspy

    data = np.asarray(data, dtype=np.float32)
    if energy is None:
        energy = offset + scale * np.arange(data.shape[-1])
    nav = [{"size": n, "navigate": True} for n in data.shape[:-1]]
    axes = nav + [{"axis": np.asarray(energy), "name": "Energy loss", "units": "eV"}]
    s = exspy.signals.EELSSpectrum(data, axes=axes)
    return s.as_lazy() if lazy else s


@pytest.fixture(scope="module")
def demo():
    return mnv.make_demo_spectrum_image(shape=(8, 10), seed=1)


def test_model_card_contract(fraction_model):
    m = fraction_model
    assert m.task == "fractions"
    assert m.classes == [2, 3, 4]
    assert list(m.metadata["outputs"]) == ["probabilities", "probability_std"]
    files = {d["file"]: d for d in m.metadata["training_data"]}
    assert "train/titan_mn_valence.npz" in files
    assert len(files["train/titan_mn_valence.npz"]["sha256"]) == 64
    met = m.metadata["metrics"]
    for key in (
        "mixture_mae_mean_valence",
        "mixture_mae_fractions",
        "digitized_mean_valence_within_0.35",
        "invariance_offset_max_abs_change_mean_valence",
        "invariance_dispersion_max_abs_change_mean_valence",
    ):
        assert key in met
    assert set(met["mixture_mae_fractions"]) == {"Mn2+", "Mn3+", "Mn4+", "overall"}
    # the card's own numbers are consistent with the tolerances tested here
    assert met["digitized_mean_valence_within_0.35"] >= checks.DIGITIZED_MIN_WITHIN


def test_layout_and_metadata(demo, fraction_model):
    f = decompose_mn_valence(demo)
    assert f.data.shape == (3,) + demo.data.shape[:-1]
    assert f.metadata.General.title == "Mn valence fractions"
    assert f.metadata.MnValence.task == "fractions"
    ax = f.axes_manager.navigation_axes[0]
    assert ax.name == "Mn valence" and ax.offset == 2.0 and ax.size == 3
    for src, dst in zip(demo.axes_manager.navigation_axes, f.axes_manager.signal_axes, strict=True):
        assert (src.name, src.scale, src.offset) == (dst.name, dst.scale, dst.offset)
    mv = f.metadata.MnValence.mean_valence
    unc = f.metadata.MnValence.mean_valence_std
    assert mv.data.shape == unc.data.shape == demo.data.shape[:-1]
    # the values are checked against the fractions in test_fractions_are_a_distribution
    # and against the demo's truth in test_demo_mean_oxidation_state


def test_fractions_are_a_distribution(demo, fraction_model):
    f = decompose_mn_valence(demo)
    d = f.data
    ok = np.isfinite(d[0])
    assert ok.sum() > 0.5 * ok.size
    assert np.all(d[:, ok] >= 0)
    np.testing.assert_allclose(d[:, ok].sum(0), 1.0, atol=1e-5)
    mv = f.metadata.MnValence.mean_valence.data
    np.testing.assert_allclose(mv[ok], (d[:, ok] * VALENCES[:, None]).sum(0), atol=1e-5)
    assert np.all((mv[ok] >= 2) & (mv[ok] <= 4))
    # the uncertainty is the Minkowski bound std(f2) + std(f4) of the ensemble spread
    sd = f.metadata.MnValence.probability_std.data
    unc = f.metadata.MnValence.mean_valence_std.data
    np.testing.assert_allclose(unc[ok], sd[0, ok] + sd[2, ok], atol=1e-6)
    if fraction_model.n_members > 1:
        assert np.all(unc[ok] >= 0) and np.any(unc[ok] > 0)


def test_nan_where_no_edge(fraction_model):
    e = np.arange(600.0, 680.0, 0.1)
    rng = np.random.default_rng(0)
    background = rng.poisson(2e3 * (e / 600.0) ** -3, (2, e.size)).astype(float)
    edge = synthetic_spectra(e, fractions=(0.5, 0.5, 0.0), rng=1)
    data = np.stack([background[0], np.zeros(e.size), edge])
    f = decompose_mn_valence(_eels(data, offset=600.0))
    assert np.all(np.isnan(f.data[:, :2]))
    assert np.all(np.isnan(f.metadata.MnValence.mean_valence.data[:2]))
    assert np.all(np.isnan(f.metadata.MnValence.mean_valence_std.data[:2]))
    assert np.all(np.isfinite(f.data[:, 2]))
    reason = np.asarray(f.metadata.MnValence.reason.data)
    assert np.all(reason[:2] != 0), reason  # each no-edge pixel has its reason
    assert reason[2] == 0
    # the half-and-half Mn2+/Mn3+ mixture: mean valence near its true 2.5
    assert abs(float(f.metadata.MnValence.mean_valence.data[2]) - 2.5) <= 0.35


def test_lazy_equals_eager(demo, fraction_model):
    f = decompose_mn_valence(demo)
    fl = decompose_mn_valence(demo.as_lazy())
    assert fl._lazy and fl.metadata.MnValence.mean_valence._lazy
    fl.compute()
    np.testing.assert_allclose(fl.data, f.data, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(
        np.asarray(fl.metadata.MnValence.mean_valence.data),
        f.metadata.MnValence.mean_valence.data,
        atol=1e-6,
        equal_nan=True,
    )
    # eager in, lazy out on request
    assert decompose_mn_valence(demo, lazy_output=True)._lazy


def test_uncertainty_of_a_sliced_result_is_the_slice(demo, fraction_model):
    f = decompose_mn_valence(demo, model=fraction_model)
    full = mnv.mean_valence_uncertainty(f).data
    crop = f.isig[2:8, 1:6]
    np.testing.assert_array_equal(
        mnv.mean_valence_uncertainty(crop).data, full[1:6, 2:8], strict=True
    )
    # a row cut with an integer index: the ensemble spread is cut with it (by index)
    np.testing.assert_array_equal(mnv.mean_valence_uncertainty(f.isig[:, 3]).data, full[3])


def test_method_equals_function(demo, fraction_model):
    s = demo.deepcopy()
    s.set_signal_type("EELS_MnValence")
    np.testing.assert_array_equal(s.decompose_mn_valence().data, decompose_mn_valence(demo).data)
    assert mnv.decompose_mn_valence is decompose_mn_valence


def test_single_spectrum(fraction_model):
    # shape, sum and the right answer: one pure spectrum per valence
    fractions = checks.check_pure_fractions()
    assert fractions.shape == (3, 3)


def test_rejects_a_classification_model(demo):
    with pytest.raises(ValueError, match="not a 'fractions' model"):
        decompose_mn_valence(demo, model=default_model_path())


def test_synthetic_mixtures_mean_valence(fraction_model):
    # Mixtures on a 0.25 grid over the simplex from the parametric edge model (fitted to
    # the Titan class means), with a power-law background and Poisson noise, at the
    # calibrated literature positions (tolerances: see the top of this file).
    checks.check_synthetic_mixtures()


def test_invariant_to_energy_offset(fraction_model):
    # noise-free spectra, so only the calibration changes; against the truth first
    checks.check_fraction_offset_invariance()


def test_invariant_to_dispersion(fraction_model):
    checks.check_fraction_dispersion_invariance()


def test_demo_mean_oxidation_state(demo_small, fraction_model):
    checks.check_demo_fractions(demo_small)


def test_cli_decompose_maps_the_demo(demo_small, tmp_path, fraction_model):
    checks.check_cli_decompose(demo_small, tmp_path)


@pytest.mark.realdata
def test_digitized_references_mean_valence(fraction_model, digitized_references):
    # Evaluation only: 31 literature spectra from other instruments, each on its own
    # non-uniform grid. The model was never trained or selected on them.
    checks.check_digitized_fractions(digitized_references)


# --------------------------------------------------------------------------------------
# training smoke test
# --------------------------------------------------------------------------------------


@pytest.mark.training
def test_fraction_training_smoke(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("sklearn")
    ort = pytest.importorskip("onnxruntime")
    from hyperspy_mnvalence.preprocessing import preprocess
    from hyperspy_mnvalence.training.data import load_training_data
    from hyperspy_mnvalence.training.fraction_config import FractionConfig
    from hyperspy_mnvalence.training.fractions import run
    from hyperspy_mnvalence.training.mixtures import make_mixtures

    # tiny labelled set from the parametric edge model, on the Titan's axis
    e = np.round(np.arange(635.0, 665.0, 0.1), 2)
    rng = np.random.default_rng(0)
    spectra, labels = [], []
    for v in (2, 3, 4):
        for k in range(8):
            y = synthetic_spectra(
                e,
                valence=v,
                background_ratio=0.0,
                offset_eV=5.0 + rng.normal(0, 0.1),
                counts=300.0,
                rng=100 * v + k,
            )
            spectra.append(y / y.max())
            labels.append(v)
    path = tmp_path / "tiny.npz"
    np.savez(path, spectra=np.array(spectra, np.float32), labels=labels, energy_eV=e)
    data = load_training_data(path)

    # mixtures: weights on the simplex, the target of pure picks is one-hot
    w, ww = make_mixtures(data["spectra"], data["y"], 50, FractionConfig(), rng)
    assert w.shape == (50, e.size) and np.allclose(ww.sum(1), 1.0)
    assert np.all(ww >= 0)

    out = tmp_path / "frac.onnx"
    cfg = FractionConfig(arch="fcn", epochs=1, n_mixtures=64, batch_size=32)
    rep = run(
        cfg,
        folds=2,
        members=1,
        out=out,
        report_dir=tmp_path,
        data=data,
        n_eval=32,
        digitized=False,
        verbose=False,
    )
    assert out.is_file() and (tmp_path / "fractions_report.json").is_file()
    meta = load_model(out).metadata
    assert meta["task"] == "fractions" and meta["n_members"] == 1
    assert "mixture_mae_mean_valence" in meta["metrics"]

    x = preprocess(data["spectra"][:10], e, check_edge=False).x
    keras_out = np.asarray(rep["models"][0].predict(x[..., None], verbose=0))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    onnx_out, onnx_std = sess.run(["probabilities", "probability_std"], {"spectra": x})
    np.testing.assert_allclose(onnx_out, keras_out, atol=1e-5)
    np.testing.assert_allclose(onnx_std, 0.0, atol=1e-6)

    # the exported model runs through decompose_mn_valence
    f = decompose_mn_valence(_eels(data["spectra"][:3], offset=635.0), model=out)
    assert f.data.shape == (3, 3)


@pytest.mark.training
def test_fraction_l1_loss_is_the_scored_error():
    pytest.importorskip("tensorflow")
    from hyperspy_mnvalence.training.fractions import fraction_l1

    true = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.5, 0.5]], np.float32)
    pred = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.3, 0.0, 0.7]], np.float32)
    loss = np.asarray(fraction_l1(true, pred))
    # |fraction errors| summed, plus |mean-valence error| (valences 2, 3, 4)
    mv_err = np.abs(pred @ [2, 3, 4] - true @ [2, 3, 4])
    np.testing.assert_allclose(loss, np.abs(pred - true).sum(1) + mv_err, atol=1e-6)
    np.testing.assert_allclose(loss, [1.5, 0.0, 1.1], atol=1e-6)


def test_uncertainty_ranks_the_error_on_the_demo(fraction_model):
    # the ensemble spread is no error bar (3-4x smaller than the error, see
    # mean_valence_uncertainty), but pixels it marks as uncertain must be worse
    s = mnv.make_demo_spectrum_image()
    f = mnv.decompose_mn_valence(s, model=fraction_model)
    truth = np.tensordot([2, 3, 4], s.metadata.Sample.mn_fractions_truth, axes=1)
    err = np.abs(mnv.mean_oxidation_state(f).data - truth)
    unc = mnv.mean_valence_uncertainty(f).data
    ok = (s.metadata.Sample.region_truth >= 2) & np.isfinite(unc)
    lo, hi = np.quantile(unc[ok], [0.25, 0.75])
    # measured with the shipped model: 0.075 in the lowest quartile, 0.246 in the highest
    assert err[ok & (unc >= hi)].mean() > 1.5 * err[ok & (unc <= lo)].mean()
    assert np.mean(err[ok]) < 0.25  # measured 0.156


def test_fraction_cli_protects_the_shipped_model(capsys):
    # argument checks run before any training framework is imported: no TensorFlow needed
    from hyperspy_mnvalence.training.fractions import main

    shipped = default_model_path(FRACTIONS_MODEL)
    before = shipped.stat().st_mtime_ns
    for argv, message in [
        (["--smoke", "--out", str(shipped)], "would replace the shipped model"),
        (["--arch", "fcnwide"], "invalid choice: 'fcnwide'"),
        (["--folds", "0", "--no-export"], "--folds must be at least 1"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
    assert shipped.stat().st_mtime_ns == before


@pytest.mark.training
def test_fraction_ceiling_scores_clean_mixtures_of_both_sets(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("sklearn")
    from hyperspy_mnvalence.training.data import load_training_data
    from hyperspy_mnvalence.training.fraction_ceiling import ceiling

    e = np.round(np.arange(635.0, 665.0, 0.1), 2)
    spectra, labels = [], []
    for v in (2, 3, 4):
        for k in range(10):
            y = synthetic_spectra(e, valence=v, background_ratio=0.0, offset_eV=5.0,
                                  counts=300.0, rng=100 * v + k)  # fmt: skip
            spectra.append(y / y.max())
            labels.append(v)
    path = tmp_path / "tiny.npz"
    np.savez(path, spectra=np.array(spectra, np.float32), labels=labels, energy_eV=e)
    res = ceiling(load_training_data(path), arch="fcn", epochs=2, n_mixtures=64, n_eval=200,
                  verbose=False)  # fmt: skip
    assert res["config"]["augmentation"]["translation"] == {"enabled": False}
    for name in ("held_out", "in_sample"):
        r = res[name]
        assert r["n"] == 200
        # mean valence lies in [2, 4]: its error is at most 2, and the pure share
        # (20 % of the draws) has its own figure
        assert 0.0 < r["mae_mean_valence"] < 2.0
        assert r["mae_mean_valence_pure"] is not None and r["mae_mean_valence_mixed"] is not None


def test_fraction_control_options_are_checked():
    pytest.importorskip("sklearn")
    from hyperspy_mnvalence.training.acquisition_fractions import main

    with pytest.raises(SystemExit) as exc:
        main(["--out", "x", "--one-knob"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--out", "x", "--control", "l3bg_12", "--range", "dose", "1e4", "1e4"])
    assert exc.value.code == 2
