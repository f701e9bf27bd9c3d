"""Broken models made from a shipped ONNX graph, for checking that the tests catch them.

Each mutant keeps the graph's input and output names and its ``hyperspy_mnvalence``
metadata, so the package loads and runs it like the original. The mutations touch only
the graph's interface (its input and outputs) or its ``Conv`` weights, so they work on
any retrained model with the same contract, whatever its inner layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hyperspy_mnvalence.model import stamp_model

#: The kinds of mutant :func:`make_mutant` builds.
MUTANTS = ("constant", "swapped", "shifted", "zeroed_layer")
#: Channels the ``shifted`` mutant moves the network's input by (0.1 eV each: 10 eV, which
#: puts the L3 peak on the first channel; the networks shrug off shifts of ~6 eV).
SHIFT_CHANNELS = 100
_OUTPUTS = ("probabilities", "probability_std")


def _rename_everywhere(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a tensor in every node's inputs and outputs (not in the graph's I/O)."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new


def _wrap_outputs(graph: onnx.GraphProto, make_nodes) -> None:
    """Route each graph output through ``make_nodes(original_name, output_name)``."""
    for out in _OUTPUTS:
        _rename_everywhere(graph, out, f"{out}__orig")
        graph.node.extend(make_nodes(f"{out}__orig", out))


def _constant(graph: onnx.GraphProto) -> None:
    # probabilities 1/3 each and zero spread, still computed from the input
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.zeros((1, 1), np.float32), "mut_zero"),
            numpy_helper.from_array(np.full((1, 1), 1 / 3, np.float32), "mut_third"),
        ]
    )

    def nodes(src: str, dst: str) -> list:
        zeroed = f"{dst}__zeroed"
        if dst == "probabilities":
            return [
                helper.make_node("Mul", [src, "mut_zero"], [zeroed]),
                helper.make_node("Add", [zeroed, "mut_third"], [dst]),
            ]
        return [helper.make_node("Mul", [src, "mut_zero"], [dst])]

    _wrap_outputs(graph, nodes)


def _swapped(graph: onnx.GraphProto) -> None:
    # the Mn2+ and Mn4+ columns exchanged
    graph.initializer.append(numpy_helper.from_array(np.array([2, 1, 0], np.int64), "mut_swap"))
    _wrap_outputs(
        graph, lambda src, dst: [helper.make_node("Gather", [src, "mut_swap"], [dst], axis=1)]
    )


def _shifted(graph: onnx.GraphProto, channels: int | None = None) -> None:
    # channels > 0: the network sees x[i + channels], the spectrum moved towards lower
    # channels and the last channel repeated at the end; channels < 0: moved towards
    # higher channels, the first channel repeated at the start (same input length)
    channels = SHIFT_CHANNELS if channels is None else int(channels)
    name = graph.input[0].name
    inner = f"{name}__shifted"
    _rename_everywhere(graph, name, inner)
    big = np.iinfo(np.int64).max
    start, end = (channels, big) if channels > 0 else (0, channels)
    pads = [0, 0, 0, channels] if channels > 0 else [0, -channels, 0, 0]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([start], np.int64), "mut_start"),
            numpy_helper.from_array(np.array([end], np.int64), "mut_end"),
            numpy_helper.from_array(np.array([1], np.int64), "mut_axis"),
            numpy_helper.from_array(np.array(pads, np.int64), "mut_pads"),
        ]
    )
    head = [
        helper.make_node("Slice", [name, "mut_start", "mut_end", "mut_axis"], ["mut_cut"]),
        helper.make_node("Pad", ["mut_cut", "mut_pads"], [inner], mode="edge"),
    ]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(head + nodes)


def _zeroed_layer(graph: onnx.GraphProto) -> None:
    # the weights of the middle convolution set to zero (its bias kept)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if not convs:
        raise ValueError("the graph has no Conv node to zero")
    weight = convs[len(convs) // 2].input[1]
    for k, init in enumerate(graph.initializer):
        if init.name == weight:
            w = numpy_helper.to_array(init)
            graph.initializer[k].CopyFrom(numpy_helper.from_array(np.zeros_like(w), weight))
            return
    raise ValueError(f"the weight {weight!r} is not an initializer")


_BUILDERS = {
    "constant": _constant,
    "swapped": _swapped,
    "shifted": _shifted,
    "zeroed_layer": _zeroed_layer,
}


def make_mutant(source: str | Path, kind: str, out: str | Path) -> Path:
    """Write a broken copy of the ONNX model ``source`` to ``out``.

    Parameters
    ----------
    source : str or path-like
        A hyperspy_mnvalence ONNX model (classifier or fraction model).
    kind : str
        One of :data:`MUTANTS`.
    out : str or path-like
        Where to write the mutant.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    model = onnx.load(str(source))
    outputs = {o.name for o in model.graph.output}
    if not set(_OUTPUTS) <= outputs:
        raise ValueError(f"{source} lacks the outputs {_OUTPUTS}: {sorted(outputs)}")
    _BUILDERS[kind](model.graph)
    if kind in ("constant", "swapped", "shifted"):
        # the added nodes need opset 13 at most; keep the model's own if newer
        opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        assert opset >= 13, opset
    onnx.checker.check_model(model)
    out = Path(out)
    onnx.save(model, str(out))
    # a broken model as an export would write it: its own hashes recorded (the checks
    # under test are those of a model that passes the integrity check)
    stamp_model(out)
    return out


__all__ = ["MUTANTS", "SHIFT_CHANNELS", "make_mutant"]
