"""The install users get: what importing and classifying loads, and model loading without
the ``onnx`` package (a plain ``pip install hyperspy_mnvalence`` does not install it).

Each check runs in a fresh interpreter, so nothing imported by other tests counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.model import SHIPPED_MODELS

#: Training frameworks and heavy libraries inference must never import.
TRAINING = ("tensorflow", "keras", "torch", "jax", "sklearn", "tf2onnx")

_CLASSIFY = """
import hyperspy_mnvalence as mnv
s = mnv.make_demo_spectrum_image(shape=(8, 10), seed=4)
p = mnv.classify_mn_valence(s, show_progressbar=False)
f = mnv.decompose_mn_valence(s, show_progressbar=False)
mnv.valence_maps(p)
mnv.mean_oxidation_state(f)
"""


def _run(code: str, block_onnx: bool = False) -> dict:
    """Run ``code`` in a fresh interpreter; it leaves its answer in ``out`` (JSON)."""
    guard = "import sys\nsys.modules['onnx'] = None  # as if onnx were not installed\n"
    script = (guard if block_onnx else "") + textwrap.dedent(code)
    script += "\nimport json, sys\nprint('@@' + json.dumps(out))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("@@")]
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(line[-1][2:])


def _loaded(names) -> str:
    return f"""
import sys
out = sorted(
    m for m in sys.modules
    if m.split('.')[0] in {tuple(names)!r} and sys.modules[m] is not None
)
"""


def test_import_loads_no_training_framework():
    out = _run("import hyperspy_mnvalence\n" + _loaded(TRAINING + ("onnx", "onnxruntime")))
    assert out == [], f"importing hyperspy_mnvalence loaded {out}"


def test_classifying_loads_no_training_framework():
    out = _run(_CLASSIFY + _loaded(TRAINING))
    assert out == [], f"classifying the demo loaded {out}"


def test_classifying_does_not_need_onnx_even_when_installed():
    pytest.importorskip("onnx")
    out = _run(_CLASSIFY + _loaded(("onnx",)))
    assert out == [], f"classifying the demo loaded {out}"


# -- without the onnx package ------------------------------------------------------------


def test_shipped_models_load_and_classify_without_onnx():
    code = (
        """
import numpy as np
import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.model import SHIPPED_MODELS, load_model
s = mnv.make_demo_spectrum_image(shape=(8, 10), seed=4)
out = {"cards": {}, "p": {}}
for name in SHIPPED_MODELS:
    m = load_model(name)
    out["cards"][name] = [m.task, m.classes, m.n_members, sorted(m.metadata)]
p = mnv.classify_mn_valence(s, show_progressbar=False)
out["p"]["ensemble"] = np.nan_to_num(p.data, nan=-1).tolist()
f = mnv.decompose_mn_valence(s, show_progressbar=False)
out["p"]["fractions"] = np.nan_to_num(f.data, nan=-1).tolist()
out["card"] = mnv.model_card()["classes"]
"""
        + "\nout['onnx'] = "
        + "sorted(m for m in sys.modules if m.split('.')[0] == 'onnx' and sys.modules[m])"
    )
    out = _run("import sys\n" + code, block_onnx=True)
    assert out["onnx"] == []
    # the same model cards and the same answers as with onnx installed (this process)
    from hyperspy_mnvalence.model import load_model

    for name in SHIPPED_MODELS:
        m = load_model(name)
        assert out["cards"][name] == [m.task, m.classes, m.n_members, sorted(m.metadata)]
    assert out["card"] == [2, 3, 4]
    s = mnv.make_demo_spectrum_image(shape=(8, 10), seed=4)
    p = mnv.classify_mn_valence(s, show_progressbar=False)
    f = mnv.decompose_mn_valence(s, show_progressbar=False)
    np.testing.assert_allclose(out["p"]["ensemble"], np.nan_to_num(p.data, nan=-1), atol=1e-6)
    np.testing.assert_allclose(out["p"]["fractions"], np.nan_to_num(f.data, nan=-1), atol=1e-6)
    # and they are right: the grains of this small demo, interfaces included (measured 0.81)
    region = np.asarray(s.metadata.Sample.region_truth)
    ml = np.asarray(out["p"]["ensemble"]).argmax(0) + 2
    assert np.mean(ml[region >= 2] == region[region >= 2]) >= 0.7


def _missing_or_broken_code(path: str) -> str:
    return f"""
from hyperspy_mnvalence.model import ModelError, MnValenceModel
try:
    MnValenceModel({path!r})
    out = None
except ModelError as exc:
    out = str(exc)
"""


def test_missing_model_without_onnx_is_a_clear_error(tmp_path):
    msg = _run(_missing_or_broken_code(str(tmp_path / "nope.onnx")), block_onnx=True)
    assert msg is not None and "does not exist" in msg


def test_broken_model_without_onnx_is_a_model_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    msg = _run(_missing_or_broken_code(str(bad)), block_onnx=True)
    assert msg is not None, "a broken model file loaded without error"
    assert str(bad) in msg


def test_broken_model_without_onnx_gets_the_same_advice(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    msg = _run(_missing_or_broken_code(str(bad)), block_onnx=True)
    assert "could not be read as an ONNX model" in msg, msg
    assert "ONNXRuntimeError" not in msg, msg


def test_foreign_onnx_model_without_onnx_is_rejected(tmp_path):
    onnx = pytest.importorskip("onnx")  # to write the file; the reader runs without it
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "foreign", [x], [y])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "foreign.onnx"))
    msg = _run(_missing_or_broken_code(str(tmp_path / "foreign.onnx")), block_onnx=True)
    assert msg is not None and "not a hyperspy_mnvalence model" in msg
