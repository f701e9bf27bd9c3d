"""The ONNX export from weights equals Keras' predictions on every Keras backend.

Each backend runs in its own Python process (``KERAS_BACKEND`` is read when Keras is
first imported): trained members, exported by ``export_onnx``, against
``model.predict``. A backend that is not installed is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.training

pytest.importorskip("keras")
pytest.importorskip("onnx")

# Trains (one short epoch, so the batch-norm statistics are not trivial) a single
# fcn_wide, a 3-member fcn_lite ensemble, and the fixed-length dense and conv_dense
# networks; exports each; prints the largest differences to Keras as JSON.
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    import onnx
    import onnxruntime as ort
    from hyperspy_mnvalence.training.architectures import build_model
    from hyperspy_mnvalence.training.export import export_onnx, read_metadata
    from hyperspy_mnvalence.training.loop import seed_everything

    out_dir, names = sys.argv[1], sys.argv[2].split(",")
    seed_everything(0)
    rng = np.random.default_rng(0)
    # smooth random "spectra" with a class-dependent peak, so the fit moves the weights
    t = np.linspace(0, 1, 300)
    y = rng.integers(0, 3, 96)
    x = (np.exp(-0.5 * ((t[None] - 0.3 - 0.1 * y[:, None]) / 0.03) ** 2)
         + rng.normal(0, 0.05, (96, 300))).astype(np.float32)

    def trained(arch):
        m = build_model(arch)
        m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
        m.fit(x[..., None], y, batch_size=32, epochs=1, verbose=0)
        return m

    cases = {
        "single": ["fcn_wide"],
        "ensemble3": ["fcn_lite"] * 3,
        "mixed2": ["fcn", "fcn_small"],
        "dense": ["dense"],
        "conv_dense": ["conv_dense"],
    }
    res = {"backend": keras.config.backend()}
    for name in names:
        members = [trained(arch) for arch in cases[name]]
        path = export_onnx(members, f"{out_dir}/{name}.onnx", {"task": "classification"})
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        lengths = (300,) if name in ("dense", "conv_dense") else (300, 421)
        diff, spread = 0.0, 0.0
        for length in lengths:
            xs = np.random.default_rng(length).normal(0, 0.3, (200, length)).astype(np.float32)
            if length == 300:
                xs[:96] = x
            p, sd = sess.run(None, {"spectra": xs})
            kp = np.stack([m.predict(xs[..., None], verbose=0) for m in members])
            diff = max(diff, float(np.abs(p - kp.mean(0)).max()),
                       float(np.abs(sd - kp.std(0)).max()))
            spread = max(spread, float(sd.max()))
        graph = onnx.load(str(path)).graph
        groups = [next((a.i for a in n.attribute if a.name == "group"), 1)
                  for n in graph.node if n.op_type == "Conv"]
        res[name] = {"max_abs_diff": diff, "max_std": spread, "groups": groups,
                     "ops": sorted({n.op_type for n in graph.node}),
                     "opset": onnx.load(str(path)).opset_import[0].version,
                     "meta": read_metadata(path)}
    print("RESULT " + json.dumps(res))
    """
)


ALL = ("single", "ensemble3", "mixed2", "dense", "conv_dense")
#: enough for the other backends: one model, a grouped ensemble, flatten + dense
SHORT = ("single", "ensemble3", "conv_dense")


def _run(backend: str, tmp_path, cases) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path), ",".join(cases)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def _check(res: dict, backend: str, cases) -> None:
    assert res["backend"] == backend
    for name in cases:
        r = res[name]
        assert r["max_abs_diff"] <= 1e-5, (name, r["max_abs_diff"])
        assert r["opset"] == 17, name
        meta = r["meta"]
        assert meta["task"] == "classification" and "built from the Keras weights" in meta["graph"]
    # members that differ give a spread; a single model none
    assert res["ensemble3"]["max_std"] > 1e-4
    assert res["single"]["max_std"] == 0.0 and "grouped" not in res["single"]["meta"]["graph"]
    # same-shaped fully convolutional members: one grouped convolution per layer
    assert res["ensemble3"]["groups"] == [1, 3, 3, 3, 3, 3]
    assert "grouped" in res["ensemble3"]["meta"]["graph"]
    # batch norms folded away, dropout left out: no element-wise affine pass remains
    for name in ("single", "ensemble3"):
        assert "Add" not in res[name]["ops"] and "BatchNormalization" not in res[name]["ops"]
    if "mixed2" in cases:  # members of different shapes run one after the other
        assert res["mixed2"]["max_std"] > 1e-4 and res["mixed2"]["groups"] == [1] * 12
        assert "grouped" not in res["mixed2"]["meta"]["graph"]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(not _installed("tensorflow"), reason="TensorFlow is not installed")
def test_export_equals_keras_tensorflow(tmp_path):
    _check(_run("tensorflow", tmp_path, ALL), "tensorflow", ALL)


@pytest.mark.skipif(not _installed("jax"), reason="JAX is not installed")
def test_export_equals_keras_jax(tmp_path):
    _check(_run("jax", tmp_path, SHORT), "jax", SHORT)


@pytest.mark.skipif(not _installed("torch"), reason="PyTorch is not installed")
def test_export_equals_keras_torch(tmp_path):
    _check(_run("torch", tmp_path, SHORT), "torch", SHORT)


def test_unsupported_layer_is_refused(tmp_path):
    """A layer the exporter does not know is refused by name, nothing is written."""
    import keras

    from hyperspy_mnvalence.training.export import export_onnx

    inp = keras.Input(shape=(None, 1))
    x = keras.layers.Conv1D(3, 3, padding="same")(inp)
    out = keras.layers.Activation("softmax")(keras.layers.GlobalMaxPooling1D()(x))
    with pytest.raises(NotImplementedError, match="Conv1D"):
        export_onnx(keras.Model(inp, out), tmp_path / "x.onnx", {})
    inp = keras.Input(shape=(None, 1))
    x = keras.layers.Conv1D(3, 3)(inp)
    out = keras.layers.Activation("softmax")(keras.layers.GlobalMaxPooling1D(name="gmp")(x))
    with pytest.raises(NotImplementedError, match="gmp"):
        export_onnx(keras.Model(inp, out), tmp_path / "x.onnx", {})
    assert not (tmp_path / "x.onnx").exists()
