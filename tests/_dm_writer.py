"""A minimal writer of Gatan DigitalMicrograph files (.dm3 and .dm4), for the tests.

RosettaSciIO reads DigitalMicrograph files but cannot write them, so the tests write
their own from the package's simulator. Written from the public description of the
tag-file format; only what a spectrum image needs is supported.

The format
----------
Header (big-endian): the version (uint32: 3 or 4), the length of the rest of the file
(uint32 in DM3, uint64 in DM4) and the byte order of the tag values (uint32: 1 for
little-endian, used here). Then the root tag group: "sorted" and "open" flags (one byte
each) and the number of tags (uint32/uint64). Each tag is

* its kind (one byte: 20 a group, 21 a value), the length of its label (uint16) and
  the label (empty for the entries of a list, e.g. the images of ``ImageList``);
* in DM4 only, the number of bytes of the rest of the tag (uint64);
* a group: the two flags and the number of tags, then the tags;
* a value: the delimiter ``%%%%``, the length of its type description and the
  description (uint32 words in DM3, uint64 in DM4; big-endian), then the value in the
  header's byte order. A simple value is described by one word, its type code (2
  int16, 3 int32, 4 uint16, 5 uint32, 6 float32, 7 float64, 8 bool, 9 int8, 10 uint8,
  11 int64, 12 uint64); an array of simple values by three: 20, the element type, the
  number of elements. Text is an array of uint16 characters.

The file ends with eight zero bytes. An image is a group of ``ImageList`` holding
``ImageData`` (``Data``: the values as one array; ``DataType``: 2 for float32;
``Dimensions``: the size of each dimension, the fastest-varying first;
``Calibrations``: ``Dimension`` with ``Origin``, ``Scale`` and ``Units`` per dimension,
in the same order, where ``value = (index - Origin) * Scale``, and ``Brightness``),
``ImageTags`` (``Meta Data``: ``Signal`` "EELS", ``Format`` "Spectrum image" or
"Spectrum") and its ``Name``. A spectrum image is stored energy-slowest (one plane per
energy channel), as DigitalMicrograph records it; a line scan energy-fastest.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

#: Type codes of simple values.
_SIMPLE = {
    np.dtype(np.int16): 2,
    np.dtype(np.int32): 3,
    np.dtype(np.uint16): 4,
    np.dtype(np.uint32): 5,
    np.dtype(np.float32): 6,
    np.dtype(np.float64): 7,
    np.dtype(np.bool_): 8,
    np.dtype(np.int8): 9,
    np.dtype(np.uint8): 10,
    np.dtype(np.int64): 11,
    np.dtype(np.uint64): 12,
}
_ARRAY = 20
_GROUP, _VALUE = 20, 21
#: DigitalMicrograph's image data type of float32 values.
_DM_FLOAT32 = 2


class _Writer:
    def __init__(self, version: int) -> None:
        if version not in (3, 4):
            raise ValueError(f"DigitalMicrograph version 3 or 4, not {version}")
        self.version = version
        self.word = ">I" if version == 3 else ">Q"  # counts and type descriptions

    def words(self, *values: int) -> bytes:
        return b"".join(struct.pack(self.word, v) for v in values)

    def value(self, v) -> bytes:
        """Type description and little-endian bytes of one value."""
        if isinstance(v, str):
            v = np.frombuffer(v.encode("utf-16-le"), dtype="<u2")
        if isinstance(v, bool):
            v = np.bool_(v)
        elif isinstance(v, int):
            v = np.int32(v)
        elif isinstance(v, float):
            v = np.float64(v)
        a = np.asarray(v)
        code = _SIMPLE[a.dtype]
        payload = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        if a.ndim == 0:
            info = (code,)
        elif a.ndim == 1:
            info = (_ARRAY, code, a.size)
        else:
            raise ValueError("only scalars and 1D arrays are written")
        return b"%%%%" + self.words(len(info), *info) + payload

    def group_body(self, entries: dict | list) -> bytes:
        items = list(entries.items()) if isinstance(entries, dict) else [("", e) for e in entries]
        body = b"".join(self.tag(name, v) for name, v in items)
        return struct.pack(">BB", 0, 1) + self.words(len(items)) + body

    def tag(self, name: str, v) -> bytes:
        label = name.encode("latin-1")
        if isinstance(v, dict | list):
            kind, rest = _GROUP, self.group_body(v)
        else:
            kind, rest = _VALUE, self.value(v)
        head = struct.pack(">BH", kind, len(label)) + label
        if self.version == 4:
            head += struct.pack(">Q", len(rest))
        return head + rest

    def file(self, root: dict) -> bytes:
        rest = self.group_body(root) + bytes(8)
        head = struct.pack(">I", self.version) + struct.pack(self.word, len(rest))
        return head + struct.pack(">I", 1) + rest


def _image(data: np.ndarray, axes: list[dict], title: str, fmt: str) -> dict:
    """The ``ImageList`` entry of ``data`` (numpy order, its ``axes`` alike: dicts of
    ``offset``, ``scale``, ``units``); the last axis is the energy axis."""
    # DigitalMicrograph order: a spectrum image (ny, nx, nE) as (nE, ny, nx) in memory,
    # dimensions listed fastest first (x, y, E); a line scan (n, nE) and a spectrum (nE,)
    # as they are (energy fastest)
    if data.ndim == 3:
        data = np.moveaxis(data, -1, 0)
        axes = [axes[-1], *axes[:-1]]
    dims = list(zip(data.shape[::-1], axes[::-1], strict=True))
    return {
        "ImageData": {
            "Calibrations": {
                "Brightness": {
                    "Origin": np.float32(0.0),
                    "Scale": np.float32(1.0),
                    "Units": "Counts",
                },
                "Dimension": [
                    {
                        "Origin": np.float32(-ax["offset"] / ax["scale"]),
                        "Scale": np.float32(ax["scale"]),
                        "Units": ax["units"],
                    }
                    for _, ax in dims
                ],
                "DisplayCalibratedUnits": True,
            },
            "Data": np.ascontiguousarray(data, dtype=np.float32).ravel(),
            "DataType": np.int32(_DM_FLOAT32),
            "Dimensions": [np.uint32(n) for n, _ in dims],
            "PixelDepth": np.int32(4),
        },
        "ImageTags": {"Meta Data": {"Format": fmt, "Signal": "EELS"}},
        "Name": title,
    }


def write_dm(path: str | Path, signals, version: int | None = None) -> Path:
    """Write EELS spectra or spectrum images to a DigitalMicrograph file.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.dm3`` or ``.dm4`` (the version follows the suffix unless given).
    signals : hyperspy.signal.BaseSignal or list of them
        Signals with one energy signal axis and up to two navigation axes; each is one
        image of the file's ``ImageList`` (titles become the images' names).
    version : {3, 4}, optional

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if version is None:
        version = int(path.suffix[-1])
    images = []
    for s in signals if isinstance(signals, list | tuple) else [signals]:
        am = s.axes_manager
        if am.signal_dimension != 1 or am.navigation_dimension > 2:
            raise ValueError("spectra with at most two navigation axes only")
        # numpy order: navigation axes (y, x) then the energy axis
        ordered = sorted((*am.navigation_axes, *am.signal_axes), key=lambda a: a.index_in_array)
        axes = [
            {
                "offset": float(a.offset),
                "scale": float(a.scale),
                "units": a.units if isinstance(a.units, str) and a.units != "<undefined>" else "",
            }
            for a in ordered
        ]
        fmt = "Spectrum image" if am.navigation_dimension else "Spectrum"
        images.append(_image(np.asarray(s.data), axes, str(s.metadata.General.title), fmt))
    root = {"ImageList": images}
    path.write_bytes(_Writer(version).file(root))
    return path
