"""Access to the labelled Mn L2,3 spectra used for training and evaluation.

The files are not part of the package: they are found in the folder named by the
environment variable ``MNVALENCE_DATA`` (default ``../shared/data``, relative to the
current working directory), laid out as ``train/`` and ``test/``. ``test/`` is for
evaluation only: nothing in this project trains, tunes or selects a model on it.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np

__all__ = [
    "DATA_ENV",
    "DataNotFoundError",
    "data_dir",
    "evaluation_records",
    "file_sha256",
    "load_digitized_references",
    "load_pca_noise",
    "load_titan_mn2_wide",
    "load_titan_valence",
]

DATA_ENV = "MNVALENCE_DATA"
_DEFAULT = "../shared/data"


class DataNotFoundError(FileNotFoundError):
    """The labelled data folder (or one of its files) is missing."""


def data_dir() -> Path:
    """Folder of the labelled data (``$MNVALENCE_DATA``, default ``../shared/data``).

    Returns
    -------
    pathlib.Path
    """
    return Path(os.environ.get(DATA_ENV, _DEFAULT)).expanduser()


def _path(*parts: str) -> Path:
    p = data_dir().joinpath(*parts)
    if not p.is_file():
        raise DataNotFoundError(
            f"{p} not found. Set the environment variable {DATA_ENV} to the folder that "
            "holds train/ and test/ (default ../shared/data)."
        )
    return p


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_titan_valence() -> dict:
    """The 1579 labelled Titan spectra (``train/titan_mn_valence.npz``).

    Returns
    -------
    dict
        ``spectra`` (1579, 300) float32, ``valence`` (1579,) int in {2, 3, 4},
        ``energy`` (300,) eV, ``path`` and ``sha256``.
    """
    p = _path("train", "titan_mn_valence.npz")
    with np.load(p) as d:
        return {
            "spectra": d["spectra"].astype(np.float32),
            "valence": d["valence"].astype(int),
            "energy": d["energy_eV"].astype(np.float64),
            "path": p,
            "sha256": file_sha256(p),
        }


def load_titan_mn2_wide() -> dict:
    """The 659 wide-window Titan Mn2+ spectra (``train/titan_mn2_wide.npz``).

    Returns
    -------
    dict
        ``spectra`` (659, 700), ``energy`` (700,), ``thinnest`` (659,) bool, ``path``,
        ``sha256``.
    """
    p = _path("train", "titan_mn2_wide.npz")
    with np.load(p) as d:
        return {
            "spectra": d["spectra"].astype(np.float32),
            "energy": d["energy_eV"].astype(np.float64),
            "thinnest": d["thinnest"].astype(bool),
            "path": p,
            "sha256": file_sha256(p),
        }


def load_pca_noise() -> dict:
    """The Titan low-variance PCA noise samples (``train/titan_pca_noise.npz``).

    Returns
    -------
    dict
        ``low_variance_pc_values``, ``positive_values``, ``path``, ``sha256``.
    """
    p = _path("train", "titan_pca_noise.npz")
    with np.load(p) as d:
        return {
            "low_variance_pc_values": d["low_variance_pc_values"].astype(np.float64),
            "positive_values": d["positive_values"].astype(np.float64),
            "path": p,
            "sha256": file_sha256(p),
        }


def load_digitized_references() -> list[dict]:
    """The 31 digitized literature spectra (``test/digitized_references.csv``).

    For evaluation only. Digitized curves step back in energy on steep edges; each
    spectrum's points are sorted by energy and points at the same energy averaged,
    giving the monotonic (non-uniform) axis a spectrum needs.

    Returns
    -------
    list of dict
        One per spectrum, ordered by id: ``id``, ``valence``, ``source``, ``energy``,
        ``intensity``.
    """
    p = _path("test", "digitized_references.csv")
    rows: dict[int, dict] = {}
    with open(p, newline="") as f:
        for r in csv.DictReader(f):
            sid = int(r["spectrum_id"])
            d = rows.setdefault(
                sid, {"id": sid, "valence": int(r["valence"]), "source": r["source"], "pts": []}
            )
            d["pts"].append((float(r["energy_eV"]), float(r["intensity"])))
    out = []
    for sid in sorted(rows):
        d = rows[sid]
        pts = np.array(d.pop("pts"))
        e, inv = np.unique(pts[:, 0], return_inverse=True)
        inten = np.bincount(inv, weights=pts[:, 1]) / np.bincount(inv)
        d["energy"], d["intensity"] = e, inten
        out.append(d)
    return out


#: Files used only to evaluate a trained model (never to train or choose it).
EVALUATION_FILES = {
    "test/digitized_references.csv": "evaluation only: 31 digitized literature spectra",
    "train/titan_mn2_wide.npz": "evaluation only: wide-window Mn2+ spectra",
}


def evaluation_records() -> list[dict]:
    """File name, SHA-256 and use of each evaluation file that is present.

    Returns
    -------
    list of dict
        ``file``, ``sha256``, ``use`` per file of :data:`EVALUATION_FILES` found in
        :func:`data_dir` (absent files are left out).
    """
    out = []
    for rel, use in EVALUATION_FILES.items():
        p = data_dir() / rel
        if p.is_file():
            out.append({"file": rel, "sha256": file_sha256(p), "use": use})
    return out
