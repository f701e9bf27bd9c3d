"""The ONNX model file: loading, metadata, errors, pickling, custom models."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from hyperspy_mnvalence import model_card  # noqa: E402
from hyperspy_mnvalence.datasets import file_sha256  # noqa: E402
from hyperspy_mnvalence.model import METADATA_KEY, MnValenceModel, ModelError, load_model  # noqa: E402
from hyperspy_mnvalence.preprocessing import DEFAULT_PREPROCESSING  # noqa: E402


def _tiny_model(path, logits=(0.0, 2.0, 0.0), metadata: dict | None = None, classes=(2, 3, 4)):
    """A valid ONNX graph: probabilities = softmax(mean(x) * 0 + logits)."""
    k = len(classes)
    x = helper.make_tensor_value_info("spectra", TensorProto.FLOAT, ["N", "L"])
    p = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k])
    s = helper.make_tensor_value_info("probability_std", TensorProto.FLOAT, ["N", k])
    nodes = [
        helper.make_node("ReduceMean", ["spectra"], ["m"], keepdims=1, axes=[1]),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "logits"], ["l"]),
        helper.make_node("Softmax", ["l"], ["probabilities"], axis=1),
        helper.make_node("Mul", ["probabilities", "zero"], ["probability_std"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.FLOAT, [1, 1], [0.0]),
        helper.make_tensor("logits", TensorProto.FLOAT, [1, k], list(logits)),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [p, s], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    if metadata is not False:
        meta = {
            "format_version": 1,
            "task": "classification",
            "classes": list(classes),
            "energy_step_eV": 0.1,
            "preprocessing": DEFAULT_PREPROCESSING,
            "input_name": "spectra",
            "outputs": ["probabilities", "probability_std"],
            "n_members": 1,
        }
        meta.update(metadata or {})
        e = m.metadata_props.add()
        e.key, e.value = METADATA_KEY, json.dumps(meta)
    onnx.save(m, str(path))
    return path


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope.onnx")


def test_broken_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match="could not be read as an ONNX model"):
        MnValenceModel(bad)


def test_foreign_onnx_model_is_rejected(tmp_path):
    path = _tiny_model(tmp_path / "foreign.onnx", metadata=False)
    with pytest.raises(ModelError, match="not a hyperspy_mnvalence model"):
        MnValenceModel(path)


def test_incompatible_metadata_is_rejected(tmp_path):
    path = _tiny_model(tmp_path / "four.onnx", classes=(1, 2, 3, 4), logits=(0, 0, 0, 0))
    with pytest.raises(ModelError, match="three Mn valences"):
        MnValenceModel(path)
    m = onnx.load(str(path))
    m.metadata_props[0].value = json.dumps({"classes": [2, 3, 4]})
    onnx.save(m, str(tmp_path / "old.onnx"))
    with pytest.raises(ModelError, match="incompatible"):
        MnValenceModel(tmp_path / "old.onnx")


def test_custom_model_runs_and_pickles(tmp_path):
    m = load_model(_tiny_model(tmp_path / "tiny.onnx"))
    x = np.zeros((5, 300), np.float32)
    p, s = m.predict(x, batch_size=2)
    expected = np.exp([0, 2, 0]) / np.exp([0, 2, 0]).sum()
    np.testing.assert_allclose(p, np.tile(expected, (5, 1)), rtol=1e-6)
    assert np.all(s == 0)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_allclose(m2.predict(x)[0], p)
    assert "CPUExecutionProvider" in m2.providers


def test_load_model_is_cached(tmp_path):
    path = _tiny_model(tmp_path / "tiny.onnx")
    assert load_model(path) is load_model(str(path))


def test_shipped_model_card(shipped_model, real_data):
    card = model_card()
    assert card["classes"] == [2, 3, 4]
    assert card["energy_step_eV"] == pytest.approx(0.1)
    metrics = card["metrics"]
    # the default: held-out clean accuracy, the robustness suite that chose it, and the
    # evaluation-only digitized references at every offset and dispersion
    for key in ("cv_accuracy", "acquisition", "digitized_pipeline", "mn2_wide_line"):
        assert key in metrics
    assert 0.94 <= metrics["cv_accuracy"] <= 1.0  # the selection rule's floor
    suite = metrics["acquisition"]
    assert suite["score"] == pytest.approx(0.5 * suite["worst"] + 0.5 * suite["mean"])
    assert {"l3bg_3", "l3bg_25", "t_1.5", "res_2.0", "disp_1.0"} <= set(suite["conditions"])
    assert {"-15", "+0", "+15"} <= set(metrics["digitized_pipeline"]["offsets"])
    # the clean-trained ensemble keeps its own card with the original protocol's figures
    ens = model_card("ensemble")["metrics"]
    for key in ("cv_accuracy", "digitized_accuracy", "shift_accuracy", "noise_accuracy"):
        assert key in ens
    assert {-5.0, 0.0, 5.0} <= {float(k) for k in ens["shift_accuracy"]}
    assert {0.0, 5.0} <= {float(k) for k in ens["noise_accuracy"]}
    # the recorded training data are the files we have, byte for byte
    files = {d["file"]: d["sha256"] for d in card["training_data"]}
    assert files, "the model card lists no training data"
    for name, sha in files.items():
        assert not name.startswith("test/"), "the test set must never be training data"
        assert file_sha256(real_data / name) == sha


def _network_input(model, per_class: int = 4, seed: int = 0):
    """Preprocessed noisy synthetic spectra of known valence: (x, truth)."""
    from hyperspy_mnvalence.preprocessing import preprocess
    from hyperspy_mnvalence.synthetic import synthetic_spectra

    rng = np.random.default_rng(seed)
    e = np.arange(590.0, 700.0, 0.1)
    truth = np.repeat([2, 3, 4], per_class)
    y = np.concatenate(
        [
            synthetic_spectra(
                e, v, counts=np.full(per_class, 500.0), offset_eV=rng.uniform(-5, 5, per_class)
            )
            for v in (2, 3, 4)
        ]
    )
    pre = preprocess(y, e, params=model.preprocessing)
    assert pre.valid.all()
    return pre.x.astype(np.float32), truth


def test_shipped_model_predicts_probabilities(shipped_model):
    # spectra of known valence through the documented input contract: any softmax graph
    # gives probabilities, only a working classifier gives the simulated valences
    x, truth = _network_input(shipped_model)
    p, s = shipped_model.predict(x)
    assert p.shape == s.shape == (truth.size, 3)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert np.all(s >= 0)
    np.testing.assert_array_equal(np.asarray(shipped_model.classes)[p.argmax(1)], truth)
    assert p.max(1).min() > 0.5
    if shipped_model.n_members > 1:
        assert np.any(s > 0)  # members of an ensemble disagree somewhere


def test_predict_in_threads_equals_one_call(shipped_model):
    # predict spreads its batches over threads; every row must come back where it went
    rng = np.random.default_rng(1)
    x = rng.normal(size=(37, 300)).astype(np.float32)
    x[::5] *= 3.0  # distinct rows, so a misplaced batch would show
    p1, s1 = shipped_model.predict(x, batch_size=37, n_threads=1)
    p3, s3 = shipped_model.predict(x, batch_size=4, n_threads=3)
    np.testing.assert_allclose(p3, p1, atol=1e-6)
    np.testing.assert_allclose(s3, s1, atol=1e-6)
    assert np.ptp(p1[:, 0]) > 0.01


def test_shipped_models_by_name(shipped_model):
    fast = load_model("fast")
    assert fast.n_members == 1
    assert shipped_model.n_members > 1
    # one preprocessing contract for both: same classes, step and window
    assert fast.classes == shipped_model.classes
    assert fast.preprocessing == shipped_model.preprocessing
    assert load_model("acquisition") is shipped_model  # the default, by name
    assert load_model("ensemble").n_members == 10
    assert load_model("ensemble").preprocessing == shipped_model.preprocessing
    assert load_model("fractions").task == "fractions"
    assert model_card("fast")["n_members"] == 1
    lite = load_model("lite")
    assert lite.n_members == 1 and model_card("lite")["architecture"] == "fcn_lite"
    assert lite.preprocessing == shipped_model.preprocessing


@pytest.mark.parametrize("name", ["fast", "lite"])
def test_single_network_agrees_with_ensemble_on_the_demo(name):
    """The single networks and the ensemble give the same answer almost everywhere."""
    from hyperspy_mnvalence import classify_mn_valence, make_demo_spectrum_image

    s = make_demo_spectrum_image(shape=(24, 24), seed=3)
    a = classify_mn_valence(s, show_progressbar=False).data
    b = classify_mn_valence(s, model=name, show_progressbar=False).data
    valid = np.isfinite(a[0])
    np.testing.assert_array_equal(valid, np.isfinite(b[0]))  # same edge test
    agree = np.mean(a[:, valid].argmax(0) == b[:, valid].argmax(0))
    assert agree >= 0.95, agree
    frac = np.asarray(s.metadata.Sample.mn_fractions_truth)
    pure = valid & (np.nan_to_num(frac).max(0) >= 0.99)
    assert pure.sum() > 100
    acc = np.mean(b[:, pure].argmax(0) == frac[:, pure].argmax(0))
    assert acc >= 0.9, acc
