"""Data loading, training and stratified k-fold cross-validation (grouped by file).

TensorFlow/Keras are imported lazily inside the functions that need them.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.preprocessing import (
    DEFAULT_PREPROCESSING,
    overlaps_search_range,
    preprocess,
)

from .augment import NO_AUGMENTATION, add_pca_noise, augment_and_preprocess, augment_raw

__all__ = [
    "CLASSES",
    "TrainConfig",
    "cross_validate",
    "cv_splits",
    "evaluate_digitized",
    "evaluate_mn2_wide",
    "evaluate_noise",
    "evaluate_robust",
    "evaluate_shift",
    "load_training_data",
    "predict",
    "set_seeds",
    "train_model",
    "unit_range",
]

CLASSES = (2, 3, 4)
SHIFTS_EV = tuple(float(s) for s in np.arange(-5.0, 5.01, 1.0))
NOISE_MULTIPLES = (0, 1, 2, 3, 4, 5)

#: Simulated other-instrument conditions of the robustness CV: the held-out Titan fold is
#: perturbed with the pipeline's own raw-spectrum augmentations (every spectrum, ``p=1``),
#: drawn with a fixed seed, so every model/configuration sees the same perturbed spectra.
#: ``noise5`` is the Titan PCA noise at 5x (the noise test's convention).
_ROBUST_BROADENING = {"broadening": {"enabled": True, "p": 1.0, "fwhm_eV": [0.6, 1.2]}}
_ROBUST_DISPERSION = {
    "dispersion": {"enabled": True, "p": 1.0, "step_eV": [0.3, 0.5], "n_groups": 5}
}
_ROBUST_TRUNCATION = {
    "truncation": {
        "enabled": True,
        "p": 1.0,
        "pre_edge_eV": [3.0, 5.0],
        "post_edge_eV": [15.0, 19.0],
    }
}
ROBUST_CONDITIONS: dict = {
    "broadening": _ROBUST_BROADENING,
    "dispersion": _ROBUST_DISPERSION,
    "truncation": _ROBUST_TRUNCATION,
    # the three at once
    "combined": {**_ROBUST_BROADENING, **_ROBUST_TRUNCATION, **_ROBUST_DISPERSION},
    "noise5": None,
}
ROBUST_SEED = 4321


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run.

    Attributes
    ----------
    arch : str
        Architecture name (see :mod:`.architectures`).
    epochs : int
        Passes over the (augmented) training set.
    aug_factor : int
        Fresh augmented copies of the training set per epoch.
    batch_size : int
    learning_rate : float
        Initial Adam learning rate (cosine decay to 1 % over the run).
    label_smoothing : float
    val_fraction : float
        Fraction of the training folds held out for early stopping (best epoch by
        validation loss); 0 trains for the full ``epochs``.
    augmentation : dict
        Augmentation configuration (see :data:`.augment.DEFAULT_AUGMENTATION`).
    seed : int
    """

    arch: str = "fcn_wide"
    epochs: int = 30
    aug_factor: int = 3
    batch_size: int = 64
    learning_rate: float = 3e-3
    label_smoothing: float = 0.05
    val_fraction: float = 0.1
    augmentation: dict = field(default_factory=dict)
    seed: int = 0


def set_seeds(seed: int) -> None:
    """Fix Python, numpy and TensorFlow seeds and request deterministic TF ops.

    Parameters
    ----------
    seed : int
    """
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras

    keras.utils.set_random_seed(seed)
    try:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


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
    out = np.array([as_valence(str(v).strip().removeprefix("Mn")) for v in raw], dtype=object)
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


def cv_splits(
    y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, validation) index pairs of the classifier's cross-validation.

    Without groups: ``StratifiedKFold(folds, shuffle=True, random_state=seed)`` over the
    spectra (the splits of the shipped models). With groups (e.g. the file each spectrum
    comes from): ``StratifiedGroupKFold`` with the same arguments, so all spectra of one
    group are in the same fold, never in both the training and the validation part.

    Parameters
    ----------
    y : numpy.ndarray
        ``(n,)`` class indices.
    groups : numpy.ndarray or None
        ``(n,)`` group id per spectrum, or ``None``.
    folds : int
        Number of folds.
    seed : int
        ``random_state`` of the splitter.

    Returns
    -------
    list of tuple of numpy.ndarray
        ``folds`` pairs ``(train indices, validation indices)``.

    Raises
    ------
    ValueError
        If ``groups`` has the wrong length, fewer distinct groups than ``folds``, or
        the grouped splitter leaves a fold without validation spectra.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    x = np.zeros((y.size, 1))  # the splitters read only the number of samples from X
    if groups is None:
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(skf.split(x, y))
    groups = np.asarray(groups)
    if groups.shape != y.shape:
        raise ValueError(f"groups must have one entry per spectrum ({y.size}), not {groups.shape}")
    n_groups = np.unique(groups).size
    if n_groups < folds:
        fix = (
            f"pass --folds N with 2 <= N <= {n_groups}, or add more files"
            if n_groups >= 2
            else "add more files, or pass --folds 1 to train one model without CV"
        )
        raise ValueError(
            "cross-validation is grouped by file (all spectra of a file in the same fold) "
            f"and needs at least as many files (groups) as folds: the data have {n_groups} "
            f"file(s)/group(s) but {folds} folds were asked for; {fix}"
        )
    sgkf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # its warning counts spectra per class, not groups
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        splits = list(sgkf.split(x, y, groups))
    if any(te.size == 0 for _, te in splits):
        raise ValueError(
            f"cross-validation grouped by file left a fold without validation spectra "
            f"({n_groups} files/groups, {folds} folds); pass a smaller --folds N"
        )
    return splits


def split_for_early_stopping(
    y: np.ndarray, groups: np.ndarray | None, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Training and early-stopping indices, and how they were split.

    Without groups a stratified ``train_test_split`` over the spectra. With groups the
    first fold of ``StratifiedGroupKFold(round(1 / val_fraction))`` (whole groups held
    out) when there are enough groups and every class keeps a group for training;
    otherwise the split over the spectra (not stratified if a class is too small).
    """
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    idx = np.arange(len(y))
    if val_fraction <= 0:
        return idx, idx[:0], "none"
    if groups is not None:
        k = max(2, int(round(1.0 / val_fraction)))
        if np.unique(groups).size >= k:
            sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            tr, va = next(sgkf.split(idx[:, None], y, groups))
            if va.size and np.array_equal(np.unique(y[tr]), np.unique(y)):
                return tr, va, "by group"
    try:
        tr, va = train_test_split(idx, test_size=val_fraction, stratify=y, random_state=seed)
    except ValueError:
        if groups is None:
            raise
        # a class with one spectrum (e.g. a single-spectrum file): not stratified
        tr, va = train_test_split(idx, test_size=val_fraction, random_state=seed)
    return tr, va, "by spectrum" if groups is None else "by spectrum (too few groups)"


def predict(models, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Mean softmax of one model or a list of models on preprocessed input.

    Parameters
    ----------
    models : keras.Model or list of keras.Model
    x : numpy.ndarray
        ``(n, L)`` float32.
    batch_size : int

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` probabilities.
    """
    if not isinstance(models, list | tuple):
        models = [models]
    xs = np.asarray(x, np.float32)[..., None]
    out = [np.asarray(m.predict(xs, batch_size=batch_size, verbose=0)) for m in models]
    return np.mean(out, axis=0)


def train_model(
    cfg: TrainConfig,
    spectra: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    noise_values: np.ndarray | None = None,
    verbose: bool = True,
    label: str = "",
    groups: np.ndarray | None = None,
):
    """Train one model with a fresh augmented copy of the data every epoch.

    Parameters
    ----------
    cfg : TrainConfig
    spectra : numpy.ndarray
        Raw training spectra ``(n, C)``.
    y : numpy.ndarray
        Class indices 0..2.
    energy : numpy.ndarray
        ``(C,)``.
    noise_values : numpy.ndarray, optional
        PCA noise samples for the ``pca_noise`` augmentation.
    verbose : bool
    label : str
        Prefix of progress lines.
    groups : numpy.ndarray, optional
        ``(n,)`` group (file) of each spectrum: the early-stopping split then holds out
        whole groups, about ``val_fraction`` of the spectra, when there are at least
        ``round(1 / val_fraction)`` groups and every class keeps one for training;
        otherwise, and without groups, it is a stratified split over the spectra.

    Returns
    -------
    model : keras.Model
    info : dict
        ``best_epoch``, ``val_accuracy``, ``seconds``, ``early_stopping_split``
        (``"by spectrum"``, ``"by group"``, ``"by spectrum (too few groups)"`` or
        ``"none"``).
    """
    import keras

    from .loop import train_loop

    t0 = time.time()
    tr, va, split_kind = split_for_early_stopping(y, groups, cfg.val_fraction, cfg.seed)
    peak = preprocess(spectra, energy, check_edge=False).peak_eV
    x_val = preprocess(spectra[va], energy, check_edge=False).x if va.size else None
    y_tr = np.tile(np.eye(3, dtype=np.float32)[y[tr]], (cfg.aug_factor, 1))

    def make_epoch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        xa = np.concatenate(
            [
                augment_and_preprocess(
                    spectra[tr], energy, cfg.augmentation, rng, noise_values, peak[tr]
                )
                for _ in range(cfg.aug_factor)
            ]
        )
        return xa, y_tr

    def validate(model) -> tuple[float, str]:
        p = predict(model, x_val)
        loss = float(-np.mean(np.log(p[np.arange(va.size), y[va]] + 1e-7)))
        acc = float(np.mean(p.argmax(1) == y[va]))
        return loss, f" val_acc {acc:.4f}"

    model, fit = train_loop(
        cfg,
        samples_per_epoch=cfg.aug_factor * tr.size,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"],
        make_epoch=make_epoch,
        validate=validate if x_val is not None else None,
        note=" val_acc nan",
        verbose=verbose,
        label=label,
        t0=t0,
    )
    info = {
        "best_epoch": fit["best_epoch"],
        "seconds": time.time() - t0,
        "early_stopping_split": split_kind,
    }
    if x_val is not None:
        info["val_accuracy"] = float(np.mean(predict(model, x_val).argmax(1) == y[va]))
    return model, info


def evaluate_shift(
    models, spectra: np.ndarray, y: np.ndarray, energy: np.ndarray, shifts=SHIFTS_EV
) -> dict:
    """Accuracy when the window is cut ``shift`` eV off the detected L3 peak.

    Parameters
    ----------
    models : keras.Model or list
    spectra, y, energy : numpy.ndarray
        Raw validation spectra, class indices, energy axis.
    shifts : sequence of float

    Returns
    -------
    dict
        ``{"-5.0": acc, ...}``.
    """
    out = {}
    for s in shifts:
        x = preprocess(spectra, energy, check_edge=False, center_offset_eV=float(s)).x
        out[f"{float(s):.1f}"] = float(np.mean(predict(models, x).argmax(1) == y))
    return out


def unit_range(spectra: np.ndarray) -> np.ndarray:
    """Each spectrum min-max scaled to [0, 1] (float64): the noise test's convention.

    Parameters
    ----------
    spectra : numpy.ndarray
        ``(n, C)``.

    Returns
    -------
    numpy.ndarray
    """
    s = np.asarray(spectra, np.float64)
    mn = s.min(1, keepdims=True)
    return (s - mn) / np.maximum(s.max(1, keepdims=True) - mn, 1e-12)


def evaluate_noise(
    models,
    spectra: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    noise_values: np.ndarray,
    multiples=NOISE_MULTIPLES,
    seed: int = 1234,
) -> dict:
    """Accuracy with the Titan PCA noise, times ``multiple``, added to [0, 1] spectra.

    Parameters
    ----------
    models : keras.Model or list
    spectra, y, energy : numpy.ndarray
    noise_values : numpy.ndarray
    multiples : sequence of float
    seed : int

    Returns
    -------
    dict
        ``{"0": acc, ...}``.
    """
    out = {}
    s01 = unit_range(spectra)
    for m in multiples:
        rng = np.random.default_rng(seed)
        noisy = add_pca_noise(s01, noise_values, float(m), rng)
        x = preprocess(noisy, energy, check_edge=False).x
        out[f"{m:g}"] = float(np.mean(predict(models, x).argmax(1) == y))
    return out


def evaluate_robust(
    models,
    spectra: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    noise_values: np.ndarray | None,
    seed: int = ROBUST_SEED,
) -> dict:
    """Accuracy under simulated other-instrument conditions (robustness CV).

    Each condition of :data:`ROBUST_CONDITIONS` perturbs every (held-out) spectrum with
    the pipeline's own augmentations, parameters drawn from a generator seeded with
    ``seed`` (the same perturbation for every model scored on the same spectra), then
    applies the inference preprocessing (no translation). ``noise5`` adds the Titan PCA
    noise at 5x as in :func:`evaluate_noise`.

    Parameters
    ----------
    models : keras.Model or list
    spectra, y, energy : numpy.ndarray
        Raw held-out spectra, class indices, energy axis.
    noise_values : numpy.ndarray or None
        Titan PCA noise (``noise5`` is skipped without it).
    seed : int

    Returns
    -------
    dict
        Accuracy per condition and ``robust_accuracy`` (their mean).
    """
    import copy

    out: dict = {}
    peak = preprocess(spectra, energy, check_edge=False).peak_eV
    for name, over in ROBUST_CONDITIONS.items():
        if over is None:
            if noise_values is not None:
                out[name] = evaluate_noise(models, spectra, y, energy, noise_values, (5,), seed)[
                    "5"
                ]
            continue
        cfg = copy.deepcopy(NO_AUGMENTATION)
        for k, v in over.items():
            cfg[k].update(v)
        rng = np.random.default_rng(seed)
        x = None
        for ii, yy, ee in augment_raw(spectra, energy, peak, cfg, rng):
            px = preprocess(yy, ee, check_edge=False).x
            if x is None:
                x = np.zeros((len(y), px.shape[1]), np.float32)
            x[ii] = px
        out[name] = float(np.mean(predict(models, x).argmax(1) == y))
    out["robust_accuracy"] = float(np.mean(list(out.values())))
    return out


def digitized_inputs(dispersion: float | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The digitized references through the package preprocessing (evaluation only).

    Parameters
    ----------
    dispersion : float, optional
        Resample each reference (linear interpolation) to this many eV per channel
        first, as the real-data dispersion test does.

    Returns
    -------
    x : numpy.ndarray
        ``(31, 300)`` model input.
    y : numpy.ndarray
        Class indices.
    refs : list of dict
    """
    from hyperspy_mnvalence.datasets import load_digitized_references

    refs = load_digitized_references()
    xs = []
    for d in refs:
        e, inten = np.asarray(d["energy"], float), np.asarray(d["intensity"], float)
        if dispersion is not None:
            eu = np.arange(e[0], e[-1], dispersion)
            e, inten = eu, np.interp(eu, e, inten)
        xs.append(preprocess(inten, e).x)
    x = np.concatenate(xs)
    y = np.searchsorted(CLASSES, [d["valence"] for d in refs])
    return x, y, refs


def evaluate_digitized(models, inputs=None) -> dict:
    """Score on the 31 digitized literature references (evaluation only).

    Parameters
    ----------
    models : keras.Model or list
    inputs : tuple, optional
        Output of :func:`digitized_inputs` (computed if omitted).

    Returns
    -------
    dict
        ``correct``, ``total``, ``accuracy``, ``predicted`` (valence per spectrum),
        ``wrong_ids``.
    """
    x, y, refs = inputs if inputs is not None else digitized_inputs()
    pred = predict(models, x).argmax(1)
    ok = pred == y
    return {
        "correct": int(ok.sum()),
        "total": int(y.size),
        "accuracy": float(ok.mean()),
        "predicted": [int(CLASSES[i]) for i in pred],
        "wrong_ids": [int(refs[i]["id"]) for i in np.nonzero(~ok)[0]],
    }


def evaluate_mn2_wide(models) -> dict:
    """Fraction of the 659 wide-window Titan Mn2+ spectra classified Mn2+.

    They are preprocessed on their own 615-685 eV axis (calibration-independent
    alignment), then classified.

    Parameters
    ----------
    models : keras.Model or list

    Returns
    -------
    dict
        ``fraction_mn2``, ``n``, ``fraction_mn2_thinnest``.
    """
    from hyperspy_mnvalence.datasets import load_titan_mn2_wide

    d = load_titan_mn2_wide()
    x = preprocess(d["spectra"], d["energy"], check_edge=False).x
    pred = predict(models, x).argmax(1)
    return {
        "fraction_mn2": float(np.mean(pred == 0)),
        "n": int(pred.size),
        "fraction_mn2_thinnest": float(np.mean(pred[d["thinnest"]] == 0)),
    }


def cross_validate(
    cfg: TrainConfig,
    data: dict,
    folds: int = 10,
    verbose: bool = True,
    digitized: bool = True,
    keep_models: bool = True,
    extra_eval: bool = True,
    robust: bool = True,
) -> dict:
    """Stratified k-fold cross-validation, grouped when the data have groups.

    The folds are those of :func:`cv_splits`: ``StratifiedKFold`` over the spectra, or,
    when ``data["groups"]`` is not ``None`` (a folder of files, or an ``.npz`` with
    ``groups``), ``StratifiedGroupKFold`` so that no file (group) is in both the training
    and the validation part of a fold; the groups are passed on to the early-stopping
    split of :func:`train_model` too.

    Parameters
    ----------
    cfg : TrainConfig
    data : dict
        From :func:`load_training_data`.
    folds : int
    verbose : bool
    digitized : bool
        Score every fold model on the digitized references (evaluation only; never
        used for any choice).
    keep_models : bool
        Return the fold models (the ensemble members).
    extra_eval : bool
        Shift and noise tests on each validation fold.
    robust : bool
        Robustness CV (:func:`evaluate_robust`) on each validation fold.

    Returns
    -------
    dict
        ``fold_accuracy``, ``cv_accuracy``, ``cv_accuracy_std``, out-of-fold
        ``oof_proba``, per-fold shift/noise accuracies and digitized scores, ``models``,
        ``cv_splitter`` (``"StratifiedKFold"`` or ``"StratifiedGroupKFold by ..."``) and
        ``cv_groups`` (number of distinct groups, ``None`` without groups).

    Raises
    ------
    ValueError
        If the data have fewer groups than ``folds``.
    """
    s, y, e = data["spectra"], data["y"], data["energy"]
    nv = data.get("noise_values")
    groups = data.get("groups")
    splits = cv_splits(y, groups, folds, cfg.seed)
    dig_in = digitized_inputs() if digitized else None
    res: dict = {
        "fold_accuracy": [],
        "fold_digitized_correct": [],
        "fold_shift": [],
        "fold_noise": [],
        "fold_robust": [],
        "fold_info": [],
        "oof_proba": np.zeros((len(y), 3)),
        "models": [],
    }
    if groups is None:
        res["cv_splitter"], res["cv_groups"] = "StratifiedKFold", None
    else:
        res["cv_splitter"] = f"StratifiedGroupKFold by {data.get('group_by') or 'group'}"
        res["cv_groups"] = int(np.unique(groups).size)
    t0 = time.time()
    for k, (tr, te) in enumerate(splits):
        unseen = np.setdiff1d(y[te], y[tr])
        if unseen.size:
            warnings.warn(
                f"fold {k + 1}: no training spectrum of Mn"
                f"{', Mn'.join(f'{CLASSES[c]}+' for c in unseen)} (all its files are in "
                "this fold's validation part), so the fold cannot classify it; give every "
                "valence files in several folds",
                UserWarning,
                stacklevel=2,
            )
        fcfg = TrainConfig(**{**cfg.__dict__, "seed": cfg.seed + 1000 * (k + 1)})
        model, info = train_model(
            fcfg,
            s[tr],
            y[tr],
            e,
            nv,
            verbose,
            label=f"[fold {k + 1}]",
            groups=None if groups is None else groups[tr],
        )
        x_te = preprocess(s[te], e, check_edge=False).x
        p = predict(model, x_te)
        res["oof_proba"][te] = p
        acc = float(np.mean(p.argmax(1) == y[te]))
        res["fold_accuracy"].append(acc)
        res["fold_info"].append(info)
        msg = f"fold {k + 1}/{folds}: accuracy {acc:.4f}"
        if extra_eval:
            res["fold_shift"].append(evaluate_shift(model, s[te], y[te], e))
            if nv is not None:
                res["fold_noise"].append(evaluate_noise(model, s[te], y[te], e, nv))
        if robust:
            rb = evaluate_robust(model, s[te], y[te], e, nv)
            res["fold_robust"].append(rb)
            msg += f", robust {rb['robust_accuracy']:.4f}"
        if dig_in is not None:
            dg = evaluate_digitized(model, dig_in)
            res["fold_digitized_correct"].append(dg["correct"])
            msg += f", digitized {dg['correct']}/{dg['total']}"
        if verbose:
            print(f"{msg} ({time.time() - t0:.0f} s elapsed)", flush=True)
        if keep_models:
            res["models"].append(model)
    res["cv_accuracy"] = float(np.mean(res["fold_accuracy"]))
    res["cv_accuracy_std"] = float(np.std(res["fold_accuracy"]))
    res["oof_accuracy"] = float(np.mean(res["oof_proba"].argmax(1) == y))
    res["seconds"] = time.time() - t0
    if res["fold_shift"]:
        res["shift_accuracy"] = {
            k: float(np.mean([f[k] for f in res["fold_shift"]])) for k in res["fold_shift"][0]
        }
    if res["fold_noise"]:
        res["noise_accuracy"] = {
            k: float(np.mean([f[k] for f in res["fold_noise"]])) for k in res["fold_noise"][0]
        }
    if res["fold_robust"]:
        res["robust"] = {
            k: float(np.mean([f[k] for f in res["fold_robust"]])) for k in res["fold_robust"][0]
        }
        res["robust_accuracy"] = res["robust"]["robust_accuracy"]
    res["preprocessing"] = dict(DEFAULT_PREPROCESSING)
    return res
