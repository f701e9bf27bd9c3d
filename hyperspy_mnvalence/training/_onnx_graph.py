"""ONNX graphs built directly from the weights of trained Keras models (any backend).

A Keras model of :mod:`.architectures` is read layer by layer into a short list of
numpy operations (convolution, dense, per-channel affine map, ReLU, average pooling,
global average pooling, flatten, softmax); batch normalisations, which are per-channel
affine maps at inference, are folded into the neighbouring convolution or dense layer
(exact: the convolutions are unpadded, and pooling and flattening commute with a
per-channel affine map); dropout is the identity at inference. The operations are then
written as an ONNX graph with :mod:`onnx.helper`. Members of an ensemble with the same
fully convolutional layer shapes run side by side as grouped convolutions (one
convolution per layer, ``group`` = number of members); other ensembles run member by
member. Only the weights are read (``keras.ops.convert_to_numpy``), so the export
works the same with the TensorFlow, JAX and PyTorch backends and needs neither
TensorFlow nor tf2onnx.

The graph: input ``spectra`` float32 ``(batch, length)``; outputs ``probabilities``
(mean of the members' softmax) and ``probability_std`` (population standard
deviation across members), both ``(batch, 3)``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

_logger = logging.getLogger(__name__)

#: ONNX operator set of the exported graphs.
OPSET = 17
#: IR version written with :data:`OPSET` (readable by onnxruntime >= 1.10).
IR_VERSION = 8

# An operation is a tuple whose first item is its kind:
# ("conv", w (O, I, K), b (O,)), ("dense", w (F, O), b (O,)), ("affine", a (C,), c (C,)),
# ("relu",), ("pool", k), ("gap",), ("flatten",), ("softmax",).
Op = tuple


def _array(v) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(v), np.float64)


def _activation(layer) -> list[Op]:
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name == "linear":
        return []
    if name in ("relu", "softmax"):
        return [(name,)]
    raise NotImplementedError(f"layer {layer.name!r}: activation {name!r} cannot be exported")


def _batchnorm(layer) -> Op:
    if layer.axis not in (-1, len(layer.input.shape) - 1):
        raise NotImplementedError(f"layer {layer.name!r}: batch norm over axis {layer.axis}")
    a = 1.0 / np.sqrt(_array(layer.moving_variance) + layer.epsilon)
    if layer.scale:
        a = a * _array(layer.gamma)
    c = -_array(layer.moving_mean) * a
    if layer.center:
        c = c + _array(layer.beta)
    return ("affine", a, c)


def keras_ops(model) -> list[Op]:
    """The inference operations of a Keras model, in order, with numpy weights.

    Parameters
    ----------
    model : keras.Model
        A chain of layers taking ``(batch, length, 1)``: ``Conv1D`` (valid padding,
        stride and dilation 1), ``Dense``, ``BatchNormalization``,
        ``AveragePooling1D`` (valid), ``GlobalAveragePooling1D``, ``Flatten``,
        ``Dropout`` and ``Activation`` (ReLU, softmax, linear).

    Returns
    -------
    list of tuple

    Raises
    ------
    NotImplementedError
        For any other layer or setting.
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NotImplementedError("only models with one input and one output can be exported")
    ops: list[Op] = []
    channels = 1  # channels of the current (batch, length, channels) tensor
    flat_from = None  # channels before a Flatten, while the next Dense has not come
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout"):
            continue
        if kind == "Conv1D":
            if (
                layer.padding != "valid"
                or tuple(layer.strides) != (1,)
                or tuple(layer.dilation_rate) != (1,)
                or layer.groups != 1
                or layer.data_format != "channels_last"
            ):
                raise NotImplementedError(
                    f"layer {layer.name!r}: only unpadded, unstrided, undilated, ungrouped "
                    "channels-last Conv1D layers can be exported"
                )
            w = _array(layer.kernel).transpose(2, 1, 0)  # (K, I, O) -> (O, I, K)
            b = _array(layer.bias) if layer.use_bias else np.zeros(w.shape[0])
            ops.append(("conv", w, b))
            ops += _activation(layer)
            channels = w.shape[0]
        elif kind == "Dense":
            w = _array(layer.kernel)
            if flat_from is not None:
                # Keras flattens (length, channels) as l * C + c, the graph's
                # (channels, 1, length) as c * L + l: reorder the rows
                n_len = w.shape[0] // flat_from
                w = w.reshape(n_len, flat_from, -1).transpose(1, 0, 2).reshape(w.shape[0], -1)
                flat_from = None
            b = _array(layer.bias) if layer.use_bias else np.zeros(w.shape[1])
            ops.append(("dense", w, b))
            ops += _activation(layer)
            channels = w.shape[1]
        elif kind == "BatchNormalization":
            ops.append(_batchnorm(layer))
        elif kind == "AveragePooling1D":
            k = tuple(layer.pool_size)
            if layer.padding != "valid" or tuple(layer.strides) != k:
                raise NotImplementedError(
                    f"layer {layer.name!r}: only valid, non-overlapping pooling can be exported"
                )
            ops.append(("pool", int(k[0])))
        elif kind == "GlobalAveragePooling1D":
            if getattr(layer, "keepdims", False):
                raise NotImplementedError(f"layer {layer.name!r}: keepdims=True")
            ops.append(("gap",))
        elif kind == "Flatten":
            ops.append(("flatten",))
            flat_from = channels
        elif kind == "Activation":
            ops += _activation(layer)
        else:
            raise NotImplementedError(f"layer {layer.name!r} of type {kind} cannot be exported")
    if not ops or ops[-1][0] != "softmax":
        raise NotImplementedError("the model must end with a softmax")
    return ops


def fold_affine(ops: list[Op]) -> list[Op]:
    """Fold the per-channel affine maps into the convolutions and dense layers.

    An affine map right after a convolution or dense layer scales its weights and
    bias; any other one is carried forward through pooling, global pooling and
    flatten (which commute with it) into the input side of the next convolution or
    dense layer. Only an affine map that meets a ReLU or softmax first is kept.

    Parameters
    ----------
    ops : list of tuple
        From :func:`keras_ops`.

    Returns
    -------
    list of tuple
    """
    out: list[Op] = []
    pending = None  # (a, c) still to be applied to the current tensor
    for op in ops:
        kind = op[0]
        if kind == "affine":
            a, c = op[1], op[2]
            if pending is None and out and out[-1][0] in ("conv", "dense"):
                prev = out.pop()
                w = prev[1] * (a[:, None, None] if prev[0] == "conv" else a[None, :])
                out.append((prev[0], w, prev[2] * a + c))
            else:
                pending = (a, c) if pending is None else (pending[0] * a, pending[1] * a + c)
        elif kind in ("conv", "dense") and pending is not None:
            a, c = pending
            w, b = op[1], op[2]
            if kind == "conv":
                b = b + np.einsum("oik,i->o", w, c)
                w = w * a[None, :, None]
            else:  # after Flatten the rows are channel-major: repeat per position
                rep = w.shape[0] // a.size
                a, c = np.repeat(a, rep), np.repeat(c, rep)
                b = b + c @ w
                w = w * a[:, None]
            out.append((kind, w, b))
            pending = None
        elif kind in ("relu", "softmax") and pending is not None:
            out += [("affine", *pending), op]
            pending = None
        else:
            out.append(op)
    if pending is not None:
        out.append(("affine", *pending))
    return out


def _kinds(ops: list[Op]) -> tuple:
    return tuple((op[0], *(np.shape(x) for x in op[1:])) for op in ops)


def _groupable(members: list[list[Op]]) -> bool:
    """Same-shaped fully convolutional members: one grouped convolution per layer."""
    shapes = {_kinds(m) for m in members}
    if len(shapes) != 1:
        return False
    ops = members[0]
    kinds = [op[0] for op in ops]
    return (
        kinds[0] == "conv"
        and ops[0][1].shape[1] == 1
        and set(kinds) <= {"conv", "relu", "pool", "affine", "gap", "softmax"}
        and kinds[-2:] == ["gap", "softmax"]
    )


class _Builder:
    """Nodes and initializers of one graph, with unique names."""

    def __init__(self):
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, stem: str, arr: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, output: str | None = None, **kw):
        from onnx import helper

        out = output or self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], **kw))
        return out


def _chain(g: _Builder, x: str, ops: list[Op], group: int) -> str:
    """Write ``ops`` (without their final softmax) on ``x`` (batch, C, 1, L); the logits."""
    flat = False
    f32 = np.float32
    for i, op in enumerate(ops):
        kind = op[0]
        if kind == "conv":
            w, b = op[1], op[2]
            g4 = 1 if i == 0 else group
            x = g.node(
                "Conv",
                [x, g.const("w", w[:, :, None, :].astype(f32)), g.const("b", b.astype(f32))],
                "conv",
                kernel_shape=[1, int(w.shape[-1])],
                group=g4,
            )
        elif kind == "dense":
            w, b = op[1], op[2]
            x = g.node("Gemm", [x, g.const("w", w.astype(f32)), g.const("b", b.astype(f32))], "fc")
        elif kind == "affine":
            shape = (-1,) if flat else (-1, 1, 1)
            x = g.node("Mul", [x, g.const("scale", op[1].astype(f32).reshape(shape))], "scaled")
            x = g.node("Add", [x, g.const("shift", op[2].astype(f32).reshape(shape))], "shifted")
        elif kind == "relu":
            x = g.node("Relu", [x], "relu")
        elif kind == "pool":
            k = [1, op[1]]
            x = g.node("AveragePool", [x], "pool", kernel_shape=k, strides=k)
        elif kind == "gap":
            x = g.node("GlobalAveragePool", [x], "gap")
        elif kind == "flatten":
            x = g.node("Flatten", [x], "flat", axis=1)
            flat = True
        elif kind == "softmax":
            if i != len(ops) - 1:
                raise NotImplementedError("softmax is only exported as the last operation")
        else:  # pragma: no cover - keras_ops makes no other kinds
            raise ValueError(kind)
    return x


def build_graph(models, *, name: str = "mn_valence") -> tuple[Any, bool]:
    """An ONNX model of one Keras model or the mean of an ensemble.

    Parameters
    ----------
    models : keras.Model or list of keras.Model
        Models taking ``(batch, length, 1)`` and ending with a 3-class softmax.
    name : str
        Graph name.

    Returns
    -------
    proto : onnx.ModelProto
        Opset :data:`OPSET`, dynamic batch and length, no metadata.
    grouped : bool
        Whether the members run as grouped convolutions.
    """
    import onnx
    from onnx import TensorProto, helper

    if not isinstance(models, list | tuple):
        models = [models]
    members = [fold_affine(keras_ops(m)) for m in models]
    n = len(members)
    g = _Builder()
    x4 = g.node("Unsqueeze", ["spectra", g.const("axes", np.array([1, 2], np.int64))], "x4d")
    grouped = n > 1 and _groupable(members)
    member_shape = g.const("member_shape", np.array([0, n, 3], np.int64))
    if n == 1 or grouped:
        stacked = []
        for layer in zip(*members, strict=True):  # weights side by side along channels
            if layer[0][0] in ("conv", "affine"):
                arrays = [np.concatenate([op[j] for op in layer]) for j in (1, 2)]
                stacked.append((layer[0][0], *arrays))
            else:
                stacked.append(layer[0])
        x = _chain(g, x4, stacked, n)
        logits = g.node("Reshape", [x, member_shape], "logits")
    else:
        one = g.const("one_member", np.array([0, 1, 3], np.int64))
        outs = [g.node("Reshape", [_chain(g, x4, ops, 1), one], "member_logits") for ops in members]
        logits = outs[0] if n == 1 else g.node("Concat", outs, "logits", axis=1)
    probs = g.node("Softmax", [logits], "member_probabilities", axis=2)
    g.node("ReduceMean", [probs], "", "probabilities", axes=[1], keepdims=0)
    mean = g.node("Unsqueeze", ["probabilities", g.const("axes", np.array([1], np.int64))], "m")
    dev = g.node("Sub", [probs, mean], "deviation")
    var = g.node("ReduceMean", [g.node("Mul", [dev, dev], "square")], "var", axes=[1], keepdims=0)
    g.node("Sqrt", [var], "", "probability_std")
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("spectra", TensorProto.FLOAT, ["batch", "length"])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("probability_std", TensorProto.FLOAT, ["batch", 3]),
        ],
        g.inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto)
    _logger.debug("built %d nodes for %d member(s), grouped=%s", len(g.nodes), n, grouped)
    return proto, grouped
