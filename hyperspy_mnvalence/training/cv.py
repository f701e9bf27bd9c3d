"""Training and stratified k-fold cross-validation (grouped by file) of the classifier.

The data come from :mod:`.data` and the scores from :mod:`.evaluation`; their names stay
importable from here.

TensorFlow/Keras are imported lazily inside the functions that need them.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from hyperspy_mnvalence.preprocessing import (
    DEFAULT_PREPROCESSING,
    preprocess,
)

from .augment import augment_and_preprocess
from .data import CLASSES, load_training_data
from .evaluation import (
    digitized_inputs,
    evaluate_digitized,
    evaluate_mn2_wide,
    evaluate_noise,
    evaluate_robust,
    evaluate_shift,
    predict,
    unit_range,
)

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
    "train_model",
    "unit_range",
]


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
