"""Rewrites of model files written by earlier versions (tf2onnx graphs), in place and checked.

Graphs exported by :func:`.export.export_onnx` are built from the weights with batch
normalisations folded and members grouped already (:mod:`._onnx_graph`); model files
written by earlier versions (with tf2onnx) are brought to the same form here:
:func:`fold_batchnorm` folds the batch normalisations and biases into the
convolutions, :func:`group_ensemble` runs the members of an ensemble side by side as
grouped convolutions. The ``*_file`` functions rewrite a file in place only if its
outputs stay within a tolerance, and record the rewrite in its model card.
"""

from __future__ import annotations

import os
from pathlib import Path

from hyperspy_mnvalence.model import stamp_model

from ._onnx_graph import OPSET
from .export import GROUPED_NOTE, read_metadata, set_metadata

__all__ = ["fold_batchnorm", "fold_batchnorm_file", "group_ensemble", "group_ensemble_file"]

#: The ``graph`` entry of the metadata of a graph folded by :func:`fold_batchnorm_file`.
FOLDED_NOTE = (
    "batch normalisations and biases folded into the convolutions "
    "(hyperspy_mnvalence.training.graph_rewrites.fold_batchnorm)"
)


def _member_chains(graph) -> list[list[tuple]] | None:
    """The (weight, bias) of each convolution of each member of a folded FCN graph.

    Each member must be the folded fully convolutional chain ``Conv -> Squeeze -> Relu
    -> Unsqueeze -> AveragePool -> ... -> Conv -> Squeeze -> GlobalAveragePool`` (what
    :func:`fold_batchnorm` leaves of :mod:`.architectures`' ``fcn*`` networks), all
    members reading one 4D view ``(N, 1, 1, L)`` of the input with the same layer
    shapes. ``None`` for anything else.
    """
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    producer = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
        for o in n.output:
            producer[o] = n
    firsts = [
        n
        for n in graph.node
        if n.op_type == "Conv"
        and getattr(producer.get(n.input[0]), "op_type", None) != "AveragePool"
    ]
    if not firsts or len({n.input[0] for n in firsts}) != 1:
        return None
    chains = []
    for conv in firsts:
        chain = []
        while True:
            attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
            if (
                attrs.get("group", 1) != 1
                or list(attrs.get("strides", [1, 1])) != [1, 1]
                or list(attrs.get("dilations", [1, 1])) != [1, 1]
                or any(attrs.get("pads", [0]))
                or len(conv.input) != 3
                or not {conv.input[1], conv.input[2]} <= set(inits)
            ):
                return None
            w = numpy_helper.to_array(inits[conv.input[1]])
            b = numpy_helper.to_array(inits[conv.input[2]])
            if w.ndim != 4 or w.shape[2] != 1:
                return None
            chain.append((w, b))
            ops, node = [], conv
            while True:
                nxt = consumers.get(node.output[0], [])
                if len(nxt) != 1:
                    return None
                node = nxt[0]
                ops.append(node.op_type)
                if node.op_type in ("Conv", "GlobalAveragePool") or len(ops) > 5:
                    break
            if ops == ["Squeeze", "GlobalAveragePool"]:
                break
            if ops != ["Squeeze", "Relu", "Unsqueeze", "AveragePool", "Conv"]:
                return None
            pool = {
                a.name: helper.get_attribute_value(a) for a in producer[node.input[0]].attribute
            }
            if any(tuple(pool.get(k, ())) != (1, 2) for k in ("kernel_shape", "strides")):
                return None
            conv = node
        chains.append(chain)
    shapes = {tuple(w.shape for w, _ in c) for c in chains}
    if len(shapes) != 1 or chains[0][0][0].shape[1] != 1 or chains[0][-1][0].shape[0] != 3:
        return None
    return chains


def group_ensemble(proto):
    """Rewrite a folded FCN ensemble as one grouped convolution per layer.

    The members' first convolutions become one convolution with all their filters, and
    every later layer one convolution with ``group`` = the number of members, so
    onnxruntime runs one wide operation per layer instead of one small one per member
    (and none of the Squeeze/Unsqueeze pairs of the Keras export). The mean and the
    population standard deviation over the members are computed as before. Graphs that
    are not such an ensemble (other architectures, members of different shapes) are
    returned unchanged.

    Parameters
    ----------
    proto : onnx.ModelProto
        A graph written by :func:`export_onnx` (batch norms folded).

    Returns
    -------
    onnx.ModelProto
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    chains = _member_chains(proto.graph)
    if chains is None:
        return proto
    n_members, n_layers = len(chains), len(chains[0])
    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))

    const("axes_12", np.array([1, 2], np.int64))
    nodes.append(helper.make_node("Unsqueeze", ["spectra", "axes_12"], ["x_4d"]))
    x = "x_4d"
    for i in range(n_layers):
        w = np.concatenate([c[i][0] for c in chains]).astype(np.float32)
        b = np.concatenate([c[i][1] for c in chains]).astype(np.float32)
        const(f"grouped_w{i}", w)
        const(f"grouped_b{i}", b)
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"grouped_w{i}", f"grouped_b{i}"],
                [f"conv{i}"],
                kernel_shape=[1, int(w.shape[-1])],
                group=1 if i == 0 else n_members,
            )
        )
        if i < n_layers - 1:
            nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
            nodes.append(
                helper.make_node(
                    "AveragePool", [f"relu{i}"], [f"pool{i}"], kernel_shape=[1, 2], strides=[1, 2]
                )
            )
            x = f"pool{i}"
    const("member_shape", np.array([0, n_members, 3], np.int64))
    const("axes_1", np.array([1], np.int64))
    nodes += [
        helper.make_node("GlobalAveragePool", [f"conv{n_layers - 1}"], ["features"]),
        helper.make_node("Reshape", ["features", "member_shape"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["member_probabilities"], axis=2),
        helper.make_node(
            "ReduceMean", ["member_probabilities"], ["probabilities"], axes=[1], keepdims=0
        ),
        helper.make_node("Unsqueeze", ["probabilities", "axes_1"], ["mean_1"]),
        helper.make_node("Sub", ["member_probabilities", "mean_1"], ["deviation"]),
        helper.make_node("Mul", ["deviation", "deviation"], ["square"]),
        helper.make_node("ReduceMean", ["square"], ["variance"], axes=[1], keepdims=0),
        helper.make_node("Sqrt", ["variance"], ["probability_std"]),
    ]
    graph = helper.make_graph(
        nodes,
        proto.graph.name or "mn_valence",
        [helper.make_tensor_value_info("spectra", TensorProto.FLOAT, ["batch", "length"])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("probability_std", TensorProto.FLOAT, ["batch", 3]),
        ],
        inits,
    )
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    out.ir_version = proto.ir_version
    out.producer_name = proto.producer_name
    out.metadata_props.extend(proto.metadata_props)
    onnx.checker.check_model(out)
    return out


def group_ensemble_file(path: str | os.PathLike, atol: float = 1e-5) -> dict:
    """Apply :func:`group_ensemble` to an exported model file, in place, checked.

    The grouped graph must give the same outputs as the file's graph (within ``atol``)
    on 2048 random spectra of 300 and of 421 channels, or the file is left unchanged
    and a ``ValueError`` raised. The metadata records the rewrite.

    Parameters
    ----------
    path : path-like
    atol : float

    Returns
    -------
    dict
        ``nodes_before``, ``nodes_after``, ``max_abs_difference`` (``None`` if the graph
        was not an ensemble that can be grouped, and the file is untouched).
    """
    return _rewrite_file(
        path,
        group_ensemble,
        lambda meta, diff: (
            f"{meta.get('graph', FOLDED_NOTE)}; {GROUPED_NOTE}, outputs within {diff:.1e}"
        ),
        "grouping",
        atol,
    )


def _rewrite_file(path, rewrite, note, what: str, atol: float) -> dict:
    """Rewrite a model file's graph in place if the outputs stay within ``atol``.

    ``rewrite(proto)`` returns the new graph (the same object when there is nothing to
    do: the file is then left alone); ``note(metadata, difference)`` gives the new
    ``graph`` entry of the metadata.
    """
    import onnx

    path = Path(path)
    proto = onnx.load(str(path))
    new = rewrite(proto)
    if new is proto:
        return {
            "nodes_before": len(proto.graph.node),
            "nodes_after": None,
            "max_abs_difference": None,
        }
    diff = _max_output_difference(proto, new)
    if diff > atol:
        raise ValueError(f"{what} changed the outputs of {path} by {diff:.2e} (> {atol})")
    meta = read_metadata(path)
    meta["graph"] = note(meta, diff)
    set_metadata(new, meta)
    onnx.save(new, str(path))
    stamp_model(path)  # issue 15: record the SHA-256 of the weights and graph (checked at load)
    return {
        "nodes_before": len(proto.graph.node),
        "nodes_after": len(new.graph.node),
        "max_abs_difference": diff,
    }


def _max_output_difference(a, b) -> float:
    """Largest output difference of two graphs on random spectra of two lengths."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    sessions = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        for m in (a, b)
    ]
    diff = 0.0
    for length in (300, 421):
        x = rng.normal(0.0, 0.3, (2048, length)).astype(np.float32)
        outs = [s.run(None, {"spectra": x}) for s in sessions]
        diff = max(diff, *(float(np.abs(u - v).max()) for u, v in zip(*outs, strict=True)))
    return diff


def fold_batchnorm(proto):
    """Fold the networks' batch normalisations and biases into their convolutions.

    In the graphs tf2onnx writes for the fully convolutional networks, each block is
    ``Conv -> Squeeze -> Add(bias) -> Relu -> Mul(a) -> Add(c) -> Unsqueeze ->
    AveragePool`` and the last one ``Conv -> Squeeze -> Add(bias) -> Mul(a) -> Add(c)
    -> GlobalAveragePool``. A per-channel affine map commutes with the average
    pooling, so each ``Mul/Add`` pair after a ReLU is folded into the next
    convolution's weights and bias (exact: the convolutions are unpadded), the last
    pair into its own convolution, and every bias into its ``Conv`` node. Three
    element-wise passes per block go (about 13 % of the inference time of
    ``fcn_wide`` and 25 % of ``fcn_lite`` on 2 cores at 512 spectra per call); the
    outputs are the same up to float32 rounding. Nodes that do not match these
    patterns exactly are left alone.

    Parameters
    ----------
    proto : onnx.ModelProto

    Returns
    -------
    onnx.ModelProto
        A new model (the input is not modified).
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    counter = [0]

    def consumers(t):
        return [nd for nd in graph.node if t in nd.input]

    def only_consumer(t, op):
        cs = consumers(t)
        is_output = any(o.name == t for o in graph.output)
        return cs[0] if len(cs) == 1 and cs[0].op_type == op and not is_output else None

    def const_of(node, shape_ok):
        # the constant operand of a binary node, if the other one is computed
        a, b = node.input
        name = b if b in consts else a if a in consts else None
        if name is None or (a in consts and b in consts) or not shape_ok(consts[name].shape):
            return None
        return consts[name]

    def new_const(arr):
        counter[0] += 1
        name = f"mnvalence_folded_{counter[0]}"
        graph.initializer.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        consts[name] = np.asarray(arr, np.float32)
        return name

    def replace_const(node, arr):
        # the constant operand of a binary node becomes a new initializer holding arr
        k = next(i for i, name in enumerate(node.input) if name in consts)
        node.input[k] = new_const(arr)

    def per_channel(c):
        return lambda shp: len(shp) == 3 and shp[0] == 1 and shp[1] == c and shp[2] == 1

    def conv_bias_add(conv):
        # Conv (no bias) -> Squeeze -> Add(const (1, O, 1)): return (squeeze, add, bias)
        if conv.op_type != "Conv" or len(conv.input) != 2 or conv.input[1] not in consts:
            return None
        sq = only_consumer(conv.output[0], "Squeeze")
        add = sq and only_consumer(sq.output[0], "Add")
        w = consts[conv.input[1]]
        if add is None or w.ndim != 4:
            return None
        bias = const_of(add, per_channel(w.shape[0]))
        return None if bias is None else (sq, add, bias)

    def affine_after(t, c):
        # t -> Mul(const a) -> Add(const c): return (mul, add, a, c)
        mul = only_consumer(t, "Mul")
        add = mul and only_consumer(mul.output[0], "Add")
        if add is None:
            return None
        a, b = const_of(mul, per_channel(c)), const_of(add, per_channel(c))
        return None if a is None or b is None else (mul, add, a.ravel(), b.ravel())

    def rewire(old, new):
        for nd in graph.node:
            for i, name in enumerate(nd.input):
                if name == old:
                    nd.input[i] = new

    removed = []
    for conv in [nd for nd in graph.node if nd.op_type == "Conv"]:
        found = conv_bias_add(conv)
        if found is None:
            continue
        sq, badd, bias = found
        w = consts[conv.input[1]]
        n_out = w.shape[0]
        relu = only_consumer(badd.output[0], "Relu")
        if relu is None:
            # last block: Add(bias) -> Mul -> Add -> GlobalAveragePool
            aff = affine_after(badd.output[0], n_out)
            if aff is None or only_consumer(aff[1].output[0], "GlobalAveragePool") is None:
                continue
            mul, add, a, c = aff
            conv.input[1] = new_const(w * a[:, None, None, None])
            replace_const(badd, (bias.ravel() * a + c)[None, :, None])
            rewire(add.output[0], badd.output[0])
            removed += [mul, add]
            continue
        # block: Relu -> Mul -> Add -> Unsqueeze -> AveragePool -> Conv (next)
        aff = affine_after(relu.output[0], n_out)
        if aff is None:
            continue
        mul, add, a, c = aff
        unsq = only_consumer(add.output[0], "Unsqueeze")
        pool = unsq and only_consumer(unsq.output[0], "AveragePool")
        nxt = pool and only_consumer(pool.output[0], "Conv")
        found_next = nxt and conv_bias_add(nxt)
        if not found_next or [p for p in pool.attribute if p.name == "pads" and any(p.ints)]:
            continue
        _, nadd, nbias = found_next
        wn = consts[nxt.input[1]]
        nxt.input[1] = new_const(wn * a[None, :, None, None])
        shift = np.einsum("oihk,i->o", wn, c)
        replace_const(nadd, nbias + shift[None, :, None])
        rewire(add.output[0], relu.output[0])
        removed += [mul, add]
    # biases into the Conv nodes: Conv(X, W, B) -> Squeeze, no Add
    for conv in [nd for nd in graph.node if nd.op_type == "Conv"]:
        found = conv_bias_add(conv)
        if found is None:
            continue
        sq, badd, bias = found
        conv.input.append(new_const(bias.ravel()))
        rewire(badd.output[0], sq.output[0])
        removed.append(badd)
    for nd in removed:
        graph.node.remove(nd)
    used = {i for nd in graph.node for i in nd.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    return model


def fold_batchnorm_file(path: str | os.PathLike, atol: float = 1e-5) -> dict:
    """Apply :func:`fold_batchnorm` to an exported model file, in place, checked.

    The folded graph must give the same outputs as the file's graph (within ``atol``)
    on 4096 random spectra of 300 and 421 channels, or the file is left unchanged and
    a ``ValueError`` raised. The metadata records the folding.

    Parameters
    ----------
    path : path-like
    atol : float

    Returns
    -------
    dict
        ``nodes_before``, ``nodes_after``, ``max_abs_difference``.
    """
    return _rewrite_file(
        path,
        fold_batchnorm,
        lambda meta, diff: f"{FOLDED_NOTE}; outputs within {diff:.1e} of the unfolded graph",
        "folding",
        atol,
    )
