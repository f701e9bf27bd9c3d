"""Labelled raw spectra for training: the Titan set, a user's ``.npz`` or a folder of
labelled EELS files, checked and with spectra without a Mn edge dropped."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.preprocessing import (
    DEFAULT_PREPROCESSING,
    overlaps_search_range,
    preprocess,
)

__all__ = ["CLASSES", "load_training_data"]

#: The classes, in the order of the networks' outputs.
CLASSES = (2, 3, 4)


def load_training_data(
    data: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None
) -> dict:
    """Labelled raw spectra for training.

    Parameters
    ----------
    data : path-like, optional
        A user's ``.npz`` with ``spectra`` (n, C), ``labels`` (valence 2/3/4) and
        ``energy_eV`` (C,), and optionally ``groups`` (n,): any integer or string id
        per spectrum, e.g. the acquisition (spectrum image) it comes from, so that
        cross-validation keeps each group whole (see :func:`cv_splits`). Default:
        ``train/titan_mn_valence.npz`` from the data folder (no groups).
    data_dir : path-like, optional
        Instead of ``data``: a folder of labelled EELS files (``.hspy``, ``.msa``,
        ``.dm3``/``.dm4``, ...), put on one common energy grid; see
        :func:`.userdata.load_labelled_folder` for the label conventions. Every file is
        one group.

    Returns
    -------
    dict
        ``spectra``, ``y`` (class index 0..2), ``energy``, ``training_data`` (list of
        file records with name, sha256 and count), ``noise_values`` (Titan PCA noise,
        or ``None`` if unavailable), ``groups`` (``(n,)`` int, 0..G-1: with ``data_dir``
        the index of each spectrum's file in ``training_data``, with an ``.npz`` its
        ``groups`` renumbered; ``None`` without groups) and ``group_by`` (what a group
        is, ``"file"`` or ``"npz groups"``; ``None`` without groups).
    """
    from hyperspy_mnvalence import datasets

    if data is not None and data_dir is not None:
        raise ValueError("give either data (an .npz) or data_dir (a folder), not both")
    noise_values = None
    noise_record = None
    groups, group_by = None, None
    try:
        nz = datasets.load_pca_noise()
        noise_values = nz["low_variance_pc_values"]
        noise_record = {
            "file": "train/titan_pca_noise.npz",
            "sha256": nz["sha256"],
            "n_spectra": 0,
            "use": "noise model for augmentation and the noise test",
        }
    except datasets.DataNotFoundError:
        pass
    if data_dir is not None:
        from .userdata import load_labelled_folder

        d = load_labelled_folder(data_dir)
        spectra, labels, energy = d["spectra"], d["valence"], d["energy"]
        records = d["training_data"]
        groups, group_by = np.asarray(d["files"], dtype=int), "file"
    elif data is None:
        d = datasets.load_titan_valence()
        spectra, labels, energy = d["spectra"], d["valence"], d["energy"]
        records = [
            {
                "file": "train/titan_mn_valence.npz",
                "sha256": d["sha256"],
                "n_spectra": int(len(labels)),
            }
        ]
    else:
        p = Path(data)
        if p.suffix.lower() != ".npz" or not p.is_file():
            raise ValueError(
                f"{p}: give an .npz file (arrays spectra, labels, energy_eV) with --data, or "
                "a folder of labelled EELS files with --data-dir"
            )
        with np.load(p) as z:
            # "valence", as in the Titan files, is accepted for "labels"
            label_key = "labels" if "labels" in z.files or "valence" not in z.files else "valence"
            missing = {"spectra", label_key, "energy_eV"} - set(z.files)
            if missing:
                raise ValueError(f"{p} lacks the arrays {sorted(missing)}")
            spectra = z["spectra"].astype(np.float32)
            labels = _valence_labels(z[label_key], p.name)
            energy = z["energy_eV"].astype(np.float64)
            _check_user_arrays(p.name, spectra, labels, energy)
            if "groups" in z.files:
                raw = np.asarray(z["groups"])
                if raw.ndim != 1 or raw.size != labels.size:
                    raise ValueError(
                        f"{p}: groups must be one id per spectrum, shape ({labels.size},), "
                        f"not {raw.shape}"
                    )
                groups = np.unique(raw, return_inverse=True)[1].astype(int)
                group_by = "npz groups"
        records = [{"file": p.name, "sha256": datasets.file_sha256(p), "n_spectra": len(labels)}]
    bad = ~np.isin(labels, CLASSES)
    if np.any(bad):
        raise ValueError(f"labels must be valences 2, 3 or 4; found {np.unique(labels[bad])}")
    # (shapes: the folder and Titan loaders build them consistent, _check_user_arrays
    # checks an .npz)
    if data is not None or data_dir is not None:
        spectra, labels, groups = _drop_without_edge(spectra, labels, energy, groups, records)
    absent = [f"Mn{c}+" for c in CLASSES if not np.any(labels == c)]
    if absent:
        raise ValueError(
            f"the model has one output per valence (Mn2+, Mn3+, Mn4+) and needs training "
            f"spectra of each; none of {', '.join(absent)}"
        )
    if noise_record is not None:
        records.append(noise_record)
    return {
        "spectra": spectra,
        "y": np.searchsorted(CLASSES, labels),
        "energy": energy,
        "training_data": records,
        "noise_values": noise_values,
        "groups": groups,
        "group_by": group_by,
    }


def _drop_without_edge(spectra, labels, energy, groups, records):
    """A user's spectra without a Mn L2,3 edge, dropped with a warning and counted.

    Background-only pixels of a labelled spectrum image (vacuum, another phase) would
    otherwise be learnt as that label; the classifier calls them "no Mn edge" anyway.
    The count goes into each file's record (``n_without_edge``) in the model card.
    """
    keep = preprocess(spectra, energy).valid
    if keep.all():
        return spectra, labels, groups
    # a record per file (folder: the group is the file) or one for the .npz
    owner = groups if groups is not None and len(records) > 1 else np.zeros(len(labels), int)
    dropped = np.bincount(owner[~keep], minlength=len(records))
    for rec, n in zip(records, dropped, strict=False):
        if n:
            rec["n_without_edge"] = int(n)
    where = ", ".join(f"{r['file']}: {int(n)}" for r, n in zip(records, dropped, strict=False) if n)
    warnings.warn(
        f"{int((~keep).sum())} of {keep.size} training spectra show no Mn L2,3 edge and are "
        f"left out ({where})",
        stacklevel=3,
    )
    return spectra[keep], labels[keep], None if groups is None else groups[keep]


def _valence_labels(raw: np.ndarray, name: str) -> np.ndarray:
    """Labels of an .npz as valences: 2, 3, 4, 3.0, "3", "3+" or "Mn3+"; else an error."""
    from .userdata import as_valence

    raw = np.asarray(raw).ravel()
    out = np.array([as_valence(v) for v in raw], dtype=object)
    bad = np.array([v is None for v in out], dtype=bool)
    if bad.any():
        shown = ", ".join(repr(str(v)) for v in np.unique(raw[bad].astype(str))[:5])
        raise ValueError(
            f"{name}: labels must be Mn valences 2, 3 or 4 (also '3+' or 'Mn3+'); found {shown}"
        )
    return out.astype(int)


def _check_user_arrays(name: str, spectra, labels, energy) -> None:
    """Shapes, finiteness and the energy range of a user's arrays, with clear errors."""
    if spectra.ndim != 2 or spectra.shape[1] != energy.size:
        raise ValueError(
            f"{name}: spectra must be (n, C) with energy_eV of length C; got spectra "
            f"{spectra.shape} and energy_eV ({energy.size},)"
        )
    if labels.size != spectra.shape[0]:
        raise ValueError(
            f"{name}: {labels.size} labels for {spectra.shape[0]} spectra; give one label "
            "per spectrum"
        )
    lo, hi = DEFAULT_PREPROCESSING["search_range_eV"]
    e0, e1 = float(np.min(energy)), float(np.max(energy))
    if not overlaps_search_range(energy, (lo, hi)):
        raise ValueError(
            f"{name}: energy_eV runs {e0:.1f}-{e1:.1f}, which does not contain the Mn L2,3 "
            f"edge (looked for between {lo:.0f} and {hi:.0f} eV); energies must be in eV "
            "and cover about 620-670 eV"
        )
    if not np.all(np.isfinite(spectra)):
        rows = np.nonzero(~np.all(np.isfinite(spectra), axis=1))[0]
        raise ValueError(
            f"{name}: {rows.size} spectra contain NaN or Inf (first: index {rows[0]}); "
            "remove or fix them"
        )
