"""Export of Mn valence results and maps to TIFF and CSV, for papers and other tools.

Layout of :func:`export_result` (``path`` is a stem: ``"out/si"`` writes
``out/si_<map>.tif`` and ``out/si.csv``):

* **TIFF**: one file per map, written by RosettaSciIO's TIFF writer (``tifffile``) with
  the spatial calibration (scale, offset and units, read back by ``hs.load``). A map
  is a single 32-bit float image; a stack of maps a multi-page TIFF (one page per map);
  a line scan, which RosettaSciIO cannot write as TIFF, an image one pixel high
  (``1 x n``); one spectrum a ``1 x 1`` image. NaN (no Mn edge) stays NaN; the
  no-edge mask is written as 8-bit 0/1.
* **CSV**: one table, one row per pixel in HyperSpy order (the first navigation
  axis fastest), comma-separated with one header line: an integer index column per
  spatial axis (``index_<axis>``), the calibrated position per axis
  (``<axis> (<units>)``) and one column per map; NaN written as ``nan``.

The maps of a classification result: ``p_mn2``, ``p_mn3``, ``p_mn4`` (fractions:
``fraction_mn2`` ...), ``most_likely_valence`` (fractions: ``majority_valence``),
``mean_valence`` (fractions: ``mean_oxidation_state``), ``confidence``,
``uncertainty``, ``no_edge``, and from its metadata where present ``spread_mn2``,
``spread_mn3``, ``spread_mn4`` (ensemble spread), ``mean_valence_std``,
``l3_peak_eV``, ``reason`` (codes in ``metadata.MnValence.reason_codes``),
``range_flags`` (out-of-range bits, in ``metadata.MnValence.range_flag_codes``) and,
after a low-loss deconvolution, ``t_over_lambda``; with
``white_line=`` also ``white_line_ratio`` and ``white_line_l3_eV``. Any other map
signal (e.g. ``mnv.most_likely_valence(p)``) is written alone under its title.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["EXPORT_FORMATS", "export_result"]

_logger = logging.getLogger(__name__)

#: Formats :func:`export_result` writes.
EXPORT_FORMATS = ("tiff", "csv")

_SUFFIX = {2: "mn2", 3: "mn3", 4: "mn4"}


def _spatial_axes(sig) -> list[dict]:
    """The spatial axes of a result or map (numpy order): name, units, scale, offset."""
    am = sig.axes_manager
    axes = [a for a in (*am.navigation_axes, *am.signal_axes)]
    axes = sorted(axes, key=lambda a: a.index_in_array)
    out = []
    for a in axes:
        uniform = getattr(a, "is_uniform", True)
        out.append(
            {
                "name": a.name if isinstance(a.name, str) else f"axis{a.index_in_array}",
                "units": a.units if isinstance(a.units, str) and a.units != "<undefined>" else "",
                "scale": float(a.scale) if uniform else 1.0,
                "offset": float(a.offset) if uniform else 0.0,
                "coords": np.asarray(a.axis, dtype=float),
            }
        )
    return out


def _array(x) -> np.ndarray:
    data = x.data if hasattr(x, "data") else x
    if hasattr(data, "compute"):
        data = data.compute()
    return np.asarray(data)


def _slug(text: str) -> str:
    s = re.sub(r"[^0-9a-zA-Z]+", "_", text.strip()).strip("_").lower()
    return s or "map"


def _result_maps(p, white_line) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The maps to write, by name, and the spatial axes they share."""
    from .maps import (
        VALENCE_AXIS,
        compute_result,
        confidence,
        metadata_map,
        most_likely_valence,
        no_edge_mask,
        result_data,
        uncertainty,
    )
    from .maps import mean_valence as _mean_valence

    try:
        result_data(p)
    except ValueError:  # a map of its own
        axes = _spatial_axes(p)
        title = p.metadata.get_item("General.title", "") or "map"
        return {_slug(title): _array(p)}, axes
    if getattr(p, "_lazy", False):
        _logger.info("computing the lazy result before export")
        compute_result(p, show_progressbar=False)
    axes = [a for a in _spatial_axes(p) if a["name"] != VALENCE_AXIS["name"]]
    fractions = p.metadata.get_item("MnValence.task") == "fractions"
    classes = [int(c) for c in p.metadata.get_item("MnValence.classes", [2, 3, 4])]
    values = _array(p)
    prefix = "fraction" if fractions else "p"
    maps = {f"{prefix}_{_SUFFIX.get(c, c)}": values[k] for k, c in enumerate(classes)}
    maps["majority_valence" if fractions else "most_likely_valence"] = _array(
        most_likely_valence(p)
    )
    mos = metadata_map(p, "mean_valence") if fractions else None
    maps["mean_oxidation_state" if fractions else "mean_valence"] = (
        _array(mos) if mos is not None else _array(_mean_valence(p))
    )
    maps["confidence"] = _array(confidence(p))
    maps["uncertainty"] = _array(uncertainty(p))
    maps["no_edge"] = _array(no_edge_mask(p)).astype(np.uint8)
    spread = metadata_map(p, "probability_std")
    if spread is not None:
        sp = _array(spread)
        for k, c in enumerate(classes):
            maps[f"spread_{_SUFFIX.get(c, c)}"] = sp[k]
    for key in ("mean_valence_std", "l3_peak_eV", "reason", "range_flags", "t_over_lambda"):
        m = metadata_map(p, key)
        if m is not None:
            maps[key] = _array(m)
    if white_line is not None:
        ratio = _array(white_line)
        if ratio.size != values[0].size:
            raise ValueError(
                f"white_line has {ratio.size} pixels but the result {values[0].size}: pass "
                "the white-line ratio of the spectra that were classified."
            )
        maps["white_line_ratio"] = ratio.reshape(values.shape[1:])
        l3 = white_line.metadata.get_item("WhiteLine.l3_position_eV")
        if l3 is not None and _array(l3).size == ratio.size:
            maps["white_line_l3_eV"] = _array(l3).reshape(values.shape[1:])
    shape = values.shape[1:]
    return {k: np.asarray(v).reshape(shape) for k, v in maps.items()}, axes


def _tiff_signal(data: np.ndarray, axes: list[dict], title: str):
    """A Signal2D RosettaSciIO can write as TIFF: maps as they are, lines as 1 x n."""
    import hyperspy.api as hs

    if data.dtype == bool:
        data = data.astype(np.uint8)
    elif data.dtype.kind == "f":
        data = data.astype(np.float32)
    axes = list(axes)
    while data.ndim < 2:  # a line scan or one spectrum: an image one pixel high
        data = data[None]
        axes = [{"name": "row", "units": "", "scale": 1.0, "offset": 0.0}] + axes
    sig = hs.signals.Signal2D(data)
    for dst, a in zip(sig.axes_manager._axes, axes, strict=True):  # numpy order
        dst.name, dst.units, dst.scale, dst.offset = a["name"], a["units"], a["scale"], a["offset"]
    sig.metadata.General.title = title
    return sig


def _csv_table(maps: dict[str, np.ndarray], axes: list[dict]) -> tuple[list[str], np.ndarray]:
    shape = next(iter(maps.values())).shape
    n = int(np.prod(shape)) if shape else 1
    # HyperSpy order: the last numpy axis (first navigation axis) fastest
    idx = np.indices(shape).reshape(len(shape), n) if shape else np.zeros((0, 1), int)
    cols, names = [], []
    for a, i in zip(axes[::-1], idx[::-1], strict=True):
        names.append(f"index_{_slug(a['name'])}")
        cols.append(i.astype(float))
    for a, i in zip(axes[::-1], idx[::-1], strict=True):
        names.append(f"{a['name']} ({a['units']})" if a["units"] else a["name"])
        cols.append(a["coords"][i])
    for k, v in maps.items():
        names.append(k)
        cols.append(np.asarray(v, dtype=float).reshape(n))
    return names, np.column_stack(cols) if cols else np.zeros((n, 0))


def _refuse_spectra(sig) -> None:
    """A ValueError for spectra (an EELS signal, or an energy axis): export writes maps."""
    from .signal_checks import EELS_TYPES, is_energy_unit

    am = getattr(sig, "axes_manager", None)
    if am is None:
        return
    energy = any(is_energy_unit(a.units) for a in am.signal_axes)
    if sig.metadata.get_item("Signal.signal_type", "") in EELS_TYPES or energy:
        raise ValueError(
            f"{sig!r} holds spectra (an energy axis), not a Mn valence result or a map: "
            "pass the result of classify_mn_valence or decompose_mn_valence, or a map "
            "derived from it (e.g. mnv.most_likely_valence(p))."
        )


def export_result(
    result,
    path: str | os.PathLike,
    formats: tuple[str, ...] | list[str] = EXPORT_FORMATS,
    *,
    white_line=None,
    overwrite: bool = False,
) -> list[Path]:
    """Write a result and every map derived from it to TIFF and/or CSV.

    See the module notes for the file layout.

    Parameters
    ----------
    result : hyperspy.signal.BaseSignal
        A result of :func:`~hyperspy_mnvalence.classify_mn_valence` or
        :func:`~hyperspy_mnvalence.decompose_mn_valence` (a lazy one is computed
        first, in place, with :func:`~hyperspy_mnvalence.compute_result`), or any map
        (e.g. ``mnv.most_likely_valence(p)``, ``mnv.white_line_ratio(s)``).
    path : str or path-like
        Stem of the files: ``"out/si"`` writes ``out/si_<map>.tif`` and
        ``out/si.csv`` (the folder is created).
    formats : sequence of {"tiff", "csv"}
        What to write.
    white_line : hyperspy.signal.BaseSignal, optional
        The :func:`~hyperspy_mnvalence.white_line_ratio` of the same spectra, written
        with the result (ratio and L3 position).
    overwrite : bool
        Replace existing files; otherwise an existing file is an error, before anything
        is written.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import hyperspy_mnvalence as mnv
    >>> p = mnv.classify_mn_valence(mnv.make_demo_spectrum_image((8, 12)))
    >>> files = mnv.export_result(p, "out/demo", formats=("tiff", "csv"))
    >>> [f.name for f in files][:2], files[-1].name
    (['demo_p_mn2.tif', 'demo_p_mn3.tif'], 'demo.csv')
    """
    formats = tuple(formats) if not isinstance(formats, str) else (formats,)
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad or not formats:
        raise ValueError(
            f"formats must name one or more of {', '.join(map(repr, EXPORT_FORMATS))}, "
            f"got {formats!r}"
        )
    _refuse_spectra(result)
    stem = Path(path)
    if stem.suffix.lower() in (".tif", ".tiff", ".csv"):
        stem = stem.with_suffix("")
    maps, axes = _result_maps(result, white_line)
    targets = []
    if "tiff" in formats:
        targets += [(stem.parent / f"{stem.name}_{k}.tif", k) for k in maps]
    if "csv" in formats:
        targets.append((stem.parent / f"{stem.name}.csv", None))
    existing = [str(t) for t, _ in targets if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{len(existing)} file(s) exist, e.g. {existing[0]}; pass overwrite=True "
            "or choose another path."
        )
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for target, key in targets:
        if key is not None:
            sig = _tiff_signal(maps[key], axes, key)
            sig.save(target, overwrite=True)
        else:
            names, table = _csv_table(maps, axes)
            n_idx = len(axes)
            fmt = ["%d"] * n_idx + ["%.9g"] * (table.shape[1] - n_idx)
            np.savetxt(target, table, delimiter=",", header=",".join(names), comments="", fmt=fmt)
        written.append(target)
        _logger.info("wrote %s", target)
    return written
