"""Labelled training spectra from a folder of the user's own EELS files.

``python -m hyperspy_mnvalence.training --data-dir FOLDER`` trains on every spectrum
file in ``FOLDER`` (not its sub-folders) whose name ends in one of
:data:`SPECTRUM_SUFFIXES`. Each file is read with :func:`hyperspy.api.load`
(RosettaSciIO: ``.hspy``, ``.msa``, ``.dm3``/``.dm4``, ...) and must hold EELS spectra
(signal dimension 1) covering the Mn L2,3 edge; of a file holding several signals
(``.emd``, ``.dm4`` with a survey image) only the EELS spectra are used. A spectrum image
or line scan contributes every navigation pixel, all with the file's label.

The label of a file (its Mn valence, 2, 3 or 4) comes from, in this order:

1. ``labels.csv`` in the folder, columns ``file,valence`` (``file`` is the file name,
   without folder). When it exists it is the only source: every spectrum file must be
   listed and every listed file must exist.
2. Otherwise ``metadata.Sample.mn_valence`` of the loaded signal, and
3. otherwise the file name: ``mn`` followed by the valence digit, as its own word
   (case-insensitive, an optional ``+`` after the digit): ``MnO_mn2.hspy``,
   ``LMO_Mn3+_area1.msa``, ``mn4-pyrolusite.dm4``. ``mn23`` or ``Mn2O3`` do not match.

   If both 2 and 3 are given, they must agree. A file with no label is an error that
   names it.

Different files may have different energy axes (offset, dispersion, length, units):
every spectrum is resampled with :func:`hyperspy_mnvalence.preprocessing.to_uniform_grid`
onto one common uniform grid at the model's step, over the energy range that all files
share (limited to the Mn search range +-30 eV).
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.datasets import file_sha256
from hyperspy_mnvalence.preprocessing import (
    DEFAULT_PREPROCESSING,
    overlaps_search_range,
    preprocess,
    read_range,
    to_uniform_grid,
)
from hyperspy_mnvalence.signal_checks import EELS_TYPES, energy_axis

#: A shared energy range narrower than this (eV) is warned about: preprocessing reads from
#: the pre-edge fit before the L3 peak to past the window after it (``read_range``),
#: about 41 eV around a peak that can itself lie anywhere in a few eV.
_WARN_SHARED_EV = 50.0

__all__ = [
    "LABELS_FILE",
    "RANGE_MARGIN_EV",
    "SPECTRUM_SUFFIXES",
    "VALENCES",
    "label_from_name",
    "load_labelled_folder",
]

#: Name of the optional label table in the folder (columns ``file,valence``).
LABELS_FILE = "labels.csv"
#: File name endings read as spectra (case-insensitive); anything else is ignored.
SPECTRUM_SUFFIXES = (".hspy", ".hdf5", ".msa", ".ems", ".mas", ".emsa", ".dm3", ".dm4", ".emd")
#: Valences a label may take.
VALENCES = (2, 3, 4)
_NAME_LABEL = re.compile(r"(?<![a-z0-9])mn([234])\+?(?![a-z0-9])", re.IGNORECASE)
#: Margin (eV) kept on either side of the Mn search range on the common grid.
RANGE_MARGIN_EV = 30.0


def label_from_name(name: str) -> int | None:
    """Valence encoded in a file name, or ``None``.

    The convention is ``mn`` followed by the valence digit (2, 3 or 4), as its own word:
    not preceded by a letter or digit, optionally followed by ``+``, and then not by a
    letter or digit. Case-insensitive.

    Parameters
    ----------
    name : str
        File name (the suffix is ignored).

    Returns
    -------
    int or None
        The valence, or ``None`` when the name carries none.

    Raises
    ------
    ValueError
        If the name carries two different valences.
    """
    stem = Path(name).name
    for suffix in SPECTRUM_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    found = {int(m.group(1)) for m in _NAME_LABEL.finditer(stem)}
    if len(found) > 1:
        raise ValueError(f"{name}: the file name gives several valences {sorted(found)}")
    return found.pop() if found else None


def as_valence(value) -> int | None:
    """``value`` (``3``, ``3.0``, ``"3"``, ``"3+"``, ``"Mn3+"``) as a valence 2/3/4, else
    ``None``: the same forms for an .npz, a labels.csv and ``metadata.Sample.mn_valence``."""
    text = str(value).strip()
    if text[:2].lower() == "mn":
        text = text[2:].strip()
    try:
        v = float(text.rstrip("+"))
    except ValueError:
        return None
    return int(v) if v in VALENCES else None


def _read_labels_csv(path: Path) -> dict[str, int]:
    """``{file name: valence}`` from a ``file,valence`` table (errors name the line)."""
    labels: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = {c.strip().lower() for c in reader.fieldnames or []}
        if not {"file", "valence"} <= cols:
            raise ValueError(
                f"{path} must have the columns file,valence (found {reader.fieldnames})"
            )
        for i, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            name = row["file"]
            if not name:
                continue
            valence = as_valence(row.get("valence", ""))
            if valence is None:
                raise ValueError(
                    f"{path}, line {i}: the valence of {name} must be 2, 3 or 4 (or '3+', 'Mn3+'), "
                    f"not {row.get('valence')!r}"
                )
            if name in labels and labels[name] != valence:
                raise ValueError(f"{path}: {name} is listed with two different valences")
            labels[name] = valence
    return labels


def _metadata_label(signal, name: str) -> int | None:
    """Valence in ``metadata.Sample.mn_valence``, ``None`` if absent, error if invalid."""
    value = signal.metadata.get_item("Sample.mn_valence", None)
    if value is None:
        return None
    valence = as_valence(value)
    if valence is None or isinstance(value, bool):
        raise ValueError(
            f"{name}: metadata.Sample.mn_valence must be 2, 3 or 4 (or '3+', 'Mn3+'), not {value!r}"
        )
    return valence


def _eels_signals(path: Path) -> list:
    """The EELS spectrum (image) signals of a file; an error if it holds none."""
    import hyperspy.api as hs

    try:
        loaded = hs.load(str(path))
    except Exception as exc:  # rosettasciio raises many types for unreadable files
        raise ValueError(f"{path.name} could not be read by HyperSpy ({exc})") from exc
    signals = loaded if isinstance(loaded, list) else [loaded]
    out = [
        s
        for s in signals
        if s.axes_manager.signal_dimension == 1
        and s.metadata.get_item("Signal.signal_type", "") in EELS_TYPES
    ]
    if not out:
        kinds = ", ".join(
            f"a {s.axes_manager.signal_dimension}D signal of signal_type "
            f"{s.metadata.get_item('Signal.signal_type', '') or '(none)'!r}"
            for s in signals
        )
        raise ValueError(
            f"{path.name}: holds {kinds or 'no signal'}, not EELS spectra. Training needs "
            "EELS spectra (signal dimension 1, s.set_signal_type('EELS')) with an "
            "energy-loss signal axis."
        )
    return out


def _check_mn(name: str, spectra: np.ndarray, energy: np.ndarray, search: Sequence[float]) -> None:
    """Error unless the range holds the Mn edge, the data are finite and the mean has it."""
    e0, e1 = float(np.min(energy)), float(np.max(energy))
    if not overlaps_search_range(energy, search):
        raise ValueError(
            f"{name}: its energy range {e0:.1f}-{e1:.1f} eV does not contain the Mn L2,3 "
            f"edge (looked for between {search[0]:.0f} and {search[1]:.0f} eV); training "
            "needs core-loss spectra covering about 620-670 eV"
        )
    if not np.all(np.isfinite(spectra)):
        raise ValueError(f"{name}: contains NaN or Inf values; remove or fix those pixels")
    if not preprocess(spectra.mean(0), energy).valid[0]:
        raise ValueError(
            f"{name}: no Mn L2,3 edge found in its mean spectrum between {search[0]:.0f} "
            f"and {search[1]:.0f} eV"
        )


def load_labelled_folder(
    folder: str | os.PathLike,
    *,
    step: float | None = None,
    energy_range: Sequence[float] | None = None,
) -> dict:
    """Load a folder of labelled EELS files onto one common energy grid.

    See the module documentation for the file and label conventions.

    Parameters
    ----------
    folder : path-like
        Folder holding the spectrum files (and optionally ``labels.csv``).
    step : float, optional
        Step of the common grid in eV; default the model's (``energy_step_eV`` of
        :data:`~hyperspy_mnvalence.preprocessing.DEFAULT_PREPROCESSING`).
    energy_range : sequence of 2 float, optional
        Limit the common grid to this range (eV); default the Mn search range of the
        preprocessing widened by 30 eV on each side. The grid is further limited to the
        range every file covers.

    Returns
    -------
    dict
        ``spectra`` ``(n, C)`` float32 (every pixel of every file, files in name order),
        ``valence`` ``(n,)`` int, ``energy`` ``(C,)`` eV, ``files`` ``(n,)`` index into
        ``training_data`` of each spectrum's file, ``training_data`` (one record per
        file: ``file``, ``sha256``, ``n_spectra``, ``valence``, ``label_source``; and
        one for ``labels.csv`` if used).

    Raises
    ------
    FileNotFoundError
        If the folder does not exist or holds no spectrum file.
    ValueError
        If a file is unreadable, is not EELS spectra, misses the Mn edge or its label,
        or if the files share too little of their energy ranges, or ``step`` is not a
        positive number.
    """
    if step is not None:
        try:
            ok = float(step) > 0 and np.isfinite(float(step))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"step must be a positive number of eV (or None), got {step!r}")
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    files = sorted(
        p for p in root.iterdir() if p.is_file() and p.name.lower().endswith(SPECTRUM_SUFFIXES)
    )
    if not files:
        raise FileNotFoundError(
            f"{root} holds no spectrum file (names ending in {', '.join(SPECTRUM_SUFFIXES)})"
        )
    csv_path = root / LABELS_FILE
    table = _read_labels_csv(csv_path) if csv_path.is_file() else None
    if table is not None:
        unknown = sorted(set(table) - {p.name for p in files})
        if unknown:
            raise ValueError(f"{csv_path} lists files that are not in {root}: {unknown}")
    params = DEFAULT_PREPROCESSING
    step = float(params["energy_step_eV"] if step is None else step)
    search = tuple(params["search_range_eV"])
    if energy_range is None:
        energy_range = (search[0] - RANGE_MARGIN_EV, search[1] + RANGE_MARGIN_EV)
    lo, hi = float(energy_range[0]), float(energy_range[1])

    loaded = []  # (path, valence, label source, spectra (n, C), energy (C,))
    for path in files:
        name = path.name
        signals = _eels_signals(path)
        if table is not None:
            if name not in table:
                raise ValueError(f"{name}: no label; add a line '{name},VALENCE' to {csv_path}")
            valence, source = table[name], LABELS_FILE
        else:
            from_meta = {_metadata_label(s, name) for s in signals} - {None}
            from_name = label_from_name(name)
            if len(from_meta) > 1:
                raise ValueError(f"{name}: its signals have different metadata valences")
            if from_meta and from_name is not None and from_meta != {from_name}:
                raise ValueError(
                    f"{name}: metadata.Sample.mn_valence ({from_meta.pop()}) and the file "
                    f"name (Mn{from_name}) disagree"
                )
            if from_meta:
                valence, source = from_meta.pop(), "metadata.Sample.mn_valence"
            elif from_name is not None:
                valence, source = from_name, "file name"
            else:
                raise ValueError(
                    f"{name}: no label. Give its valence in {csv_path} (columns "
                    "file,valence), in metadata.Sample.mn_valence, or in the file name "
                    "(e.g. sample_mn3.hspy)"
                )
        for s in signals:
            energy = energy_axis(s)  # eV, as classification reads it
            data = np.asarray(s.data, dtype=np.float64).reshape(-1, energy.size)
            _check_mn(name, data, energy, search)
            loaded.append((path, valence, source, data, energy))
            lo = max(lo, float(energy.min()))
            hi = min(hi, float(energy.max()))

    if hi - lo < _WARN_SHARED_EV:
        first = max(loaded, key=lambda t: float(t[4].min()))[0].name
        last = min(loaded, key=lambda t: float(t[4].max()))[0].name
        before, after = read_range(params, (0.0, 0.0))  # relative to the L3 peak
        warnings.warn(
            f"the files share only {lo:.1f}-{hi:.1f} eV (from {first} to {last}), and every "
            f"file is cut to it; the model reads about {-before:g} eV before to {after:g} eV "
            "after the L3 peak, so leave out the files with the narrowest ranges if that is "
            "too short",
            stacklevel=2,
        )
    spectra, grids = [], []
    for path, _, _, data, energy in loaded:
        try:
            y, grid = to_uniform_grid(data, energy, step, (lo, hi))
        except ValueError:
            y = None
        if y is None or not preprocess(y.mean(0), grid).valid[0]:
            ranges = ", ".join(
                f"{p.name} {e.min():.1f}-{e.max():.1f} eV" for p, _, _, _, e in loaded
            )
            raise ValueError(
                f"{path.name}: the energy range all files share ({lo:.1f}-{hi:.1f} eV) cuts "
                f"off its Mn L2,3 edge; train on files with overlapping ranges ({ranges})"
            )
        spectra.append(y.astype(np.float32))
        grids.append(grid)
    energy = grids[0]
    for g in grids[1:]:  # same (lo, hi) and step for all: same grid, up to round-off
        if g.size != energy.size or not np.allclose(g, energy, atol=1e-6 * step):
            raise RuntimeError("the resampled energy grids differ")  # pragma: no cover

    records: list[dict] = []
    index: dict[Path, int] = {}
    file_of = []
    for path, valence, source, data, _ in loaded:
        if path not in index:
            index[path] = len(records)
            records.append(
                {
                    "file": path.name,
                    "sha256": file_sha256(path),
                    "n_spectra": 0,
                    "valence": int(valence),
                    "label_source": source,
                }
            )
        records[index[path]]["n_spectra"] += int(data.shape[0])
        file_of.append(np.full(data.shape[0], index[path]))
    if table is not None:
        records.append(
            {
                "file": LABELS_FILE,
                "sha256": file_sha256(csv_path),
                "n_spectra": 0,
                "use": "labels",
            }
        )
    return {
        "spectra": np.concatenate(spectra),
        "valence": np.concatenate([np.full(d.shape[0], v, dtype=int) for _, v, _, d, _ in loaded]),
        "energy": energy,
        "files": np.concatenate(file_of),
        "training_data": records,
    }
