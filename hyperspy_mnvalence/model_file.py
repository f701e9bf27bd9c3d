"""The model file: its metadata read without the ``onnx`` package, its content hashes.

The ONNX file is read as protobuf wire format (so a plain ``pip install .`` verifies
models too). :func:`stamp_model` writes the SHA-256 of the weights and of the graph into
the file's ``metadata_props``; :func:`verify_model_file` recomputes them before a model
is used, and :func:`check_metadata` names any metadata value that would break the
pipeline later.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "GRAPH_KEY",
    "METADATA_KEY",
    "WEIGHTS_KEY",
    "ModelError",
    "check_metadata",
    "read_onnx",
    "stamp_model",
    "verify_model_file",
]

_logger = logging.getLogger(__name__)

#: Key of the model card (JSON) in the ONNX ``metadata_props``.
METADATA_KEY = "hyperspy_mnvalence"


class ModelError(ValueError):
    """A model file is missing, unreadable, altered or not a hyperspy_mnvalence model."""


# ---------------------------------------------------------------------------------------
# integrity: SHA-256 of the weights and of the graph, kept in the file's metadata_props
# ---------------------------------------------------------------------------------------
#
# The ONNX file is read as protobuf wire format here (no ``onnx`` package needed, so a
# plain ``pip install .`` verifies too). A ModelProto's fields: 7 graph, 14
# metadata_props (key 1, value 2); a GraphProto's 5 initializer and 15 sparse_initializer;
# a TensorProto's 8 name and 4, 5, 6, 7, 9 (raw_data), 10, 11 its values. Every byte of
# the file outside metadata_props is covered by one of the two hashes.

#: metadata_props keys of the two hashes (beside METADATA_KEY's model card).
WEIGHTS_KEY = "weights_sha256"
GRAPH_KEY = "graph_sha256"
_HASH_KEYS = (WEIGHTS_KEY, GRAPH_KEY)
_TENSOR_DATA_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})


class _Malformed(Exception):
    """Not protobuf wire format."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise _Malformed("truncated or overlong varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple]:
    """``(field, wire_type, tag_start, value_start, value_end)`` of each field."""
    end = len(buf) if end is None else end
    i = start
    while i < end:
        tag_start = i
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            _, j = _varint(buf, i)
        elif wire == 1:
            j = i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            j = i + n
        elif wire == 5:
            j = i + 4
        else:
            raise _Malformed(f"wire type {wire}")
        if j > end:
            raise _Malformed("field runs past its message")
        yield field, wire, tag_start, i, j
        i = j


def _string_entry(buf: bytes, start: int, end: int) -> tuple[str, str]:
    key = value = ""
    for f, w, _, a, b in _fields(buf, start, end):
        if w == 2 and f in (1, 2):
            text = buf[a:b].decode("utf-8", errors="strict")
            key, value = (text, value) if f == 1 else (key, text)
    return key, value


def read_onnx(buf: bytes) -> tuple[dict, str, str]:
    """The metadata_props, the weights' and the graph's SHA-256 of a serialized model."""
    props: dict[str, str] = {}
    weights: list[tuple[bytes, bytes]] = []
    graph_hash = hashlib.sha256()
    n_graphs = 0
    for f, w, t0, a, b in _fields(buf):
        if f == 14 and w == 2:
            k, v = _string_entry(buf, a, b)
            props[k] = v
            continue
        if not (f == 7 and w == 2):
            graph_hash.update(buf[t0:b])
            continue
        n_graphs += 1
        graph_hash.update(b"graph")
        for g, gw, g0, ga, gb in _fields(buf, a, b):
            if gw == 2 and g == 5:  # an initializer: its data to the weights
                name, data = b"", []
                graph_hash.update(b"initializer")
                for h, hw, h0, ha, hb in _fields(buf, ga, gb):
                    if h in _TENSOR_DATA_FIELDS:
                        data.append(buf[h0:hb])
                    else:
                        if h == 8 and hw == 2:
                            name = buf[ha:hb]
                        if h == 14 and hw == 0 and _varint(buf, ha)[0] == 1:
                            raise _Malformed("weights in external data files")
                        graph_hash.update(buf[h0:hb])
                weights.append((name, b"".join(data)))
            elif gw == 2 and g == 15:  # a sparse initializer: whole, to the weights
                weights.append((b"sparse", buf[g0:gb]))
            else:
                graph_hash.update(buf[g0:gb])
    if n_graphs != 1:
        raise _Malformed("no graph" if not n_graphs else "several graphs")
    weights_hash = hashlib.sha256()
    for name, data in sorted(weights):
        for part in (name, data):
            weights_hash.update(len(part).to_bytes(8, "little"))
            weights_hash.update(part)
    return props, weights_hash.hexdigest(), graph_hash.hexdigest()


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _metadata_entry(key: str, value: str) -> bytes:
    entry = b""
    for field, text in ((1, key), (2, value)):
        raw = text.encode("utf-8")
        entry += bytes([(field << 3) | 2]) + _encode_varint(len(raw)) + raw
    return bytes([(14 << 3) | 2]) + _encode_varint(len(entry)) + entry


def stamp_model(path: str | os.PathLike) -> dict:
    """Record the SHA-256 of a model file's weights and graph in its metadata.

    The hashes go to the ONNX ``metadata_props`` under ``weights_sha256`` and
    ``graph_sha256`` (earlier values replaced); every other byte of the file is kept.
    :class:`MnValenceModel` recomputes them at load and refuses a file whose weights or
    graph no longer match. The training export stamps every model it writes; stamp a
    file yourself only after changing it on purpose.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file, rewritten in place (through a temporary file).

    Returns
    -------
    dict
        ``{"weights_sha256": ..., "graph_sha256": ...}``.

    Raises
    ------
    ModelError
        If the file is not an ONNX model.
    """
    path = Path(path)
    buf = path.read_bytes()
    try:
        _, weights, graph = read_onnx(buf)
        kept = [
            buf[t0:b]
            for f, w, t0, a, b in _fields(buf)
            if not (f == 14 and w == 2 and _string_entry(buf, a, b)[0] in _HASH_KEYS)
        ]
    except (_Malformed, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} could not be read as an ONNX model ({exc})") from exc
    stamp = {WEIGHTS_KEY: weights, GRAPH_KEY: graph}
    new = b"".join(kept) + b"".join(_metadata_entry(k, v) for k, v in stamp.items())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.stamp")
    try:
        tmp.write_bytes(new)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _logger.info("stamped %s: weights %s, graph %s", path, weights[:12], graph[:12])
    return stamp


def verify_model_file(path: str | os.PathLike) -> dict:
    """Read a model file's metadata_props and check its recorded hashes.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        The metadata_props (strings).

    Raises
    ------
    ModelError
        If the file is not ONNX, or its weights or graph do not match the SHA-256
        recorded in it. A file without recorded hashes is read with a warning.
    """
    path = Path(path)
    try:
        props, weights, graph = read_onnx(path.read_bytes())
    except (_Malformed, UnicodeDecodeError) as exc:
        raise ModelError(
            f"{path} could not be read as an ONNX model ({exc}). The file is broken or not "
            "ONNX; re-export it or reinstall hyperspy_mnvalence."
        ) from exc
    if METADATA_KEY not in props:
        return props  # a foreign model: refused by the caller with its own message
    if not all(k in props for k in _HASH_KEYS):
        warnings.warn(
            f"{path} records no SHA-256 of its weights ({WEIGHTS_KEY}), so it cannot be "
            "checked for alteration or corruption; if you trust the file, record them "
            "with hyperspy_mnvalence.model.stamp_model(path).",
            stacklevel=4,
        )
        return props
    for key, got in ((WEIGHTS_KEY, weights), (GRAPH_KEY, graph)):
        if props[key] != got:
            what = "weights" if key == WEIGHTS_KEY else "graph"
            raise ModelError(
                f"{path}: its {what} do not match the SHA-256 recorded in the file ({key} "
                f"{props[key][:16]}..., computed {got[:16]}...): the file was altered or "
                "corrupted. Reinstall hyperspy_mnvalence for a shipped model, or re-export "
                "a retrained one; stamp_model(path) records new hashes for a file you "
                "changed on purpose."
            )
    return props


def check_metadata(path: Path, md: dict) -> None:
    """Named errors for metadata values that would break the pipeline later."""

    def bad(key: str, why: str) -> ModelError:
        return ModelError(f"{path}: metadata {key} {why}; re-export the model.")

    def number(x) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

    classes = md["classes"]
    if not isinstance(classes, list) or len(classes) != 3:
        raise ModelError(
            f"{path} predicts {len(classes) if isinstance(classes, list) else classes!r} "
            "classes; hyperspy_mnvalence needs the three Mn valences 2, 3, 4."
        )
    if not all(number(c) for c in classes) or len(set(classes)) != 3:
        raise bad("classes", f"must be three different valences, got {classes!r}")
    pre = md["preprocessing"]
    if not isinstance(pre, dict):
        raise bad("preprocessing", f"must be a mapping, got {type(pre).__name__}")
    for where, step in (("energy_step_eV", md["energy_step_eV"]),
                        ("preprocessing.energy_step_eV", pre.get("energy_step_eV", 0.1))):  # fmt: skip
        if not number(step) or step <= 0:
            raise bad(where, f"must be a positive number of eV, got {step!r}")
    for key in ("window_eV", "search_range_eV"):
        if key not in pre:
            continue
        v = pre[key]
        if not (isinstance(v, list | tuple) and len(v) == 2 and all(number(x) for x in v)):
            raise bad(f"preprocessing.{key}", f"must be a pair of numbers (lo, hi), got {v!r}")
        if not v[0] < v[1]:
            raise bad(f"preprocessing.{key}", f"must have lo < hi, got {list(v)!r}")
    for key in ("background_width_eV", "onset_before_peak_eV", "background_gap_eV"):
        if key in pre and (not number(pre[key]) or pre[key] < 0):
            raise bad(f"preprocessing.{key}", f"must be a number >= 0, got {pre[key]!r}")
    if not isinstance(md["input_name"], str) or not md["input_name"]:
        raise bad("input_name", f"must be the name of the graph's input, got {md['input_name']!r}")
    outs = md["outputs"]
    if not (isinstance(outs, list | tuple) and 1 <= len(outs) <= 2):
        raise bad("outputs", f"must list one or two output names, got {outs!r}")
    n = md.get("n_members", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise bad("n_members", f"must be a whole number >= 1, got {n!r}")
