"""Model integrity (issue 15, defect 3): SHA-256 of the weights and graph recorded in the
file and checked at load (without the onnx package too); outputs checked on the first
batch; metadata values checked with named errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperspy_mnvalence.model import (
    SHIPPED_MODELS,
    MnValenceModel,
    ModelError,
    default_model_path,
    stamp_model,
)
from hyperspy_mnvalence.model_file import GRAPH_KEY, WEIGHTS_KEY, _fields, read_onnx

LITE = default_model_path(SHIPPED_MODELS["lite"])


def _graph_range(buf: bytes) -> tuple[int, int]:
    (a, b) = next((a, b) for f, w, _, a, b in _fields(buf) if f == 7)
    return a, b


def _initializer_data(buf: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the initializers' values in a serialized model."""
    g0, g1 = _graph_range(buf)
    out = []
    for g, _, _, a, b in _fields(buf, g0, g1):
        if g == 5:
            out += [(x, y) for h, _, _, x, y in _fields(buf, a, b) if h in (4, 9)]
    return out


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_models_are_stamped_and_verified(name):
    path = default_model_path(SHIPPED_MODELS[name])
    props, weights, graph = read_onnx(path.read_bytes())
    assert props[WEIGHTS_KEY] == weights and props[GRAPH_KEY] == graph
    MnValenceModel(path)  # no error, no warning


def _copy(tmp_path: Path, data: bytes, name="m.onnx") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_changed_weight_zeroed_weights_and_changed_node_refused(tmp_path):
    buf = bytearray(LITE.read_bytes())
    a, b = max(_initializer_data(bytes(buf)), key=lambda r: r[1] - r[0])
    one = bytearray(buf)
    one[(a + b) // 2] ^= 0x01  # one bit of one weight
    with pytest.raises(ModelError, match=r"m\.onnx: its weights do not match"):
        MnValenceModel(_copy(tmp_path, bytes(one)))
    zero = bytearray(buf)
    for x, y in _initializer_data(bytes(buf)):
        zero[x:y] = bytes(y - x)
    with pytest.raises(ModelError, match="weights do not match"):
        MnValenceModel(_copy(tmp_path, bytes(zero), "z.onnx"))
    node = bytes(buf).replace(b"Relu", b"Tanh", 1)
    assert node != bytes(buf)
    with pytest.raises(ModelError, match="graph do not match"):
        MnValenceModel(_copy(tmp_path, node, "n.onnx"))


@settings(max_examples=60, deadline=None)
@given(where=st.floats(0.0, 1.0, exclude_max=True), bit=st.integers(0, 7))
def test_any_changed_byte_of_the_graph_is_refused(tmp_path_factory, where, bit):
    buf = bytearray(LITE.read_bytes())
    g0, g1 = _graph_range(bytes(buf))
    k = g0 + int(where * (g1 - g0))
    buf[k] ^= 1 << bit
    path = _copy(tmp_path_factory.mktemp("flip"), bytes(buf))
    with pytest.raises(ModelError):
        MnValenceModel(path)


def test_check_works_without_the_onnx_package(tmp_path, monkeypatch):
    buf = bytearray(LITE.read_bytes())
    a, b = _initializer_data(bytes(buf))[0]
    buf[a] ^= 0x80
    path = _copy(tmp_path, bytes(buf))
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails
    with pytest.raises(ModelError, match="weights do not match"):
        MnValenceModel(path)
    MnValenceModel(LITE)


# --- hand-made models: outputs and metadata ------------------------------------------------


def _tiny(path: Path, logits=(0.0, 2.0, 0.0), softmax=True, stamp=True, **meta) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("spectra", TensorProto.FLOAT, ["N", "L"])
    p = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])
    nodes = [
        helper.make_node("ReduceMean", ["spectra"], ["m"], keepdims=1, axes=[1]),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "logits"], ["l"]),
        helper.make_node(
            "Softmax" if softmax else "Identity",
            ["l"],
            ["probabilities"],
            **({"axis": 1} if softmax else {}),
        ),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.FLOAT, [1, 1], [0.0]),
        helper.make_tensor("logits", TensorProto.FLOAT, [1, 3], list(logits)),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [p], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    md = {
        "classes": [2, 3, 4],
        "energy_step_eV": 0.1,
        "preprocessing": {"window_eV": [-10.0, 20.0], "search_range_eV": [618.0, 672.0]},
        "input_name": "spectra",
        "outputs": ["probabilities"],
        **meta,
    }
    entry = m.metadata_props.add()
    entry.key, entry.value = "hyperspy_mnvalence", json.dumps(md)
    onnx.save(m, str(path))
    if stamp:
        stamp_model(path)
    return path


def test_nan_and_non_probability_outputs_refused_on_the_first_batch(tmp_path):
    x = np.zeros((4, 300), np.float32)
    ok = MnValenceModel(_tiny(tmp_path / "ok.onnx"))
    np.testing.assert_allclose(ok.predict(x)[0].sum(axis=1), 1.0, atol=1e-6)
    nan = MnValenceModel(_tiny(tmp_path / "nan.onnx", logits=(np.nan, 0.0, 0.0)))
    with pytest.raises(ModelError, match=r"nan\.onnx gives outputs that are not probabilities"):
        nan.predict(x)
    raw = MnValenceModel(_tiny(tmp_path / "raw.onnx", logits=(1.0, 2.0, 3.0), softmax=False))
    with pytest.raises(ModelError, match="not probabilities"):
        raw.predict(x)


def test_unstamped_model_loads_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="stamp_model"):
        MnValenceModel(_tiny(tmp_path / "plain.onnx", stamp=False))


@pytest.mark.parametrize(
    ("meta", "named"),
    [
        ({"energy_step_eV": 0}, "energy_step_eV"),
        ({"energy_step_eV": -0.1}, "energy_step_eV"),
        ({"energy_step_eV": "x"}, "energy_step_eV"),
        ({"preprocessing": {"window_eV": [20.0, -10.0]}}, "window_eV"),
        ({"preprocessing": {"search_range_eV": [672.0]}}, "search_range_eV"),
        ({"preprocessing": {"energy_step_eV": 0.0}}, "preprocessing.energy_step_eV"),
        ({"classes": [2, 2, 4]}, "classes"),
        ({"outputs": []}, "outputs"),
        ({"n_members": 0}, "n_members"),
    ],
)
def test_malformed_metadata_named(tmp_path, meta, named):
    with pytest.raises(ModelError, match=named):
        MnValenceModel(_tiny(tmp_path / "bad.onnx", **meta))


def test_wrong_input_or_output_name_named(tmp_path):
    m = MnValenceModel(_tiny(tmp_path / "in.onnx", input_name="x"))
    with pytest.raises(ModelError, match="input_name 'x' is not an input"):
        m.predict(np.zeros((2, 300), np.float32))
    m = MnValenceModel(_tiny(tmp_path / "out.onnx", outputs=["probs"]))
    with pytest.raises(ModelError, match=r"outputs \['probs'\] are not outputs"):
        m.predict(np.zeros((2, 300), np.float32))


def test_stamp_is_idempotent_and_keeps_everything_else(tmp_path):
    path = _copy(tmp_path, LITE.read_bytes())
    before = path.read_bytes()
    first = stamp_model(path)
    assert path.read_bytes() == before  # already stamped: the same bytes
    assert first == {WEIGHTS_KEY: read_onnx(before)[1], GRAPH_KEY: read_onnx(before)[2]}
