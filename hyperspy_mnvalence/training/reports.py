"""Report figures and JSON for the training pipeline (``training/reports/``).

* ``shift_*``: accuracy vs validation shift (-5..+5 eV) per architecture and
  augmentation factor (Chatzidakis & Botton Fig. 3), plus the full-pipeline shift
  test on windows of the wide-window Mn2+ spectra;
* ``noise_*``: accuracy vs Titan PCA-noise multiple with and without noise
  augmentation (Fig. 4);
* ``architectures.json``: every architecture on the 31 digitized references per fold
  (Table 1);
* ``shipped_*``: the shipped ensemble: confusion matrix (out-of-fold), digitized
  references, t-SNE of the input space vs the learned feature space (Fig. 5).

Run ``python -m hyperspy_mnvalence.training.reports --help``. The comparison studies
use fewer folds and epochs than the shipped model (recorded in each JSON).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.preprocessing import preprocess

from .augment import augmentation_config
from .cv import TrainConfig, cross_validate
from .data import CLASSES, load_training_data
from .evaluation import SHIFTS_EV, digitized_inputs, evaluate_digitized, predict
from .report_io import REPORT_DIR, dump_json, pyplot
from .robustness_study import robustness_study

__all__ = [
    "REPORT_DIR",
    "architecture_study",
    "confusion",
    "ensemble_study",
    "noise_study",
    "pipeline_shift",
    "shipped_report",
]

NAMES = ["Mn2+", "Mn3+", "Mn4+"]


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> list[list[int]]:
    """3x3 confusion matrix (rows true, columns predicted).

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray
        Class indices.

    Returns
    -------
    list of list of int
    """
    m = np.zeros((3, 3), int)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m.tolist()


def pipeline_shift(models, shifts=SHIFTS_EV) -> dict:
    """Translation through the full pipeline on the wide-window Mn2+ spectra.

    For each shift ``s`` a 300-channel window starting ``s`` eV after 635 eV is cut
    from the 615-685 eV spectra, given its own (shifted) energy axis, preprocessed
    (L3 located, background, window) and classified; the accuracy is the fraction
    called Mn2+.

    Parameters
    ----------
    models : keras.Model or list
    shifts : sequence of float

    Returns
    -------
    dict
        ``{"-5.0": fraction Mn2+, ...}``.
    """
    from hyperspy_mnvalence.datasets import load_titan_mn2_wide

    d = load_titan_mn2_wide()
    e = d["energy"]
    out = {}
    for s in shifts:
        i0 = int(np.searchsorted(e, 635.0 + s - 1e-6))
        win = d["spectra"][:, i0 : i0 + 300]
        x = preprocess(win, e[i0 : i0 + 300], check_edge=False).x
        out[f"{float(s):.1f}"] = float(np.mean(predict(models, x).argmax(1) == 0))
    return out


def architecture_study(
    data: dict,
    archs=("fcn", "fcn_wide", "dense", "conv_dense"),
    factors=(1, 5, 10),
    folds: int = 3,
    epochs: int = 10,
    out_dir: Path = REPORT_DIR,
    seed: int = 0,
) -> dict:
    """Shift robustness and digitized score of each architecture and augmentation factor.

    Parameters
    ----------
    data : dict
        From :func:`.cv.load_training_data`.
    archs : sequence of str
    factors : sequence of int
        Augmented copies of the training set per epoch.
    folds, epochs : int
        Reduced protocol (recorded in the JSON).
    out_dir : pathlib.Path
    seed : int

    Returns
    -------
    dict
    """
    res: dict = {
        "protocol": (
            f"{folds}-fold stratified CV, {epochs} epochs, default augmentation; "
            "shift = center_offset_eV of the validation spectra (window cut off the "
            "detected L3 peak); pipeline_shift = wide-window Mn2+ spectra cropped at "
            "shifted energy axes through the whole preprocessing. Reduced protocol: fewer "
            "folds/epochs than the shipped model."
        ),
        "runs": [],
    }
    dig_in = digitized_inputs()
    for arch in archs:
        for f in factors:
            t0 = time.time()
            cfg = TrainConfig(
                arch=arch,
                epochs=epochs,
                aug_factor=f,
                augmentation=augmentation_config(),
                seed=seed,
            )
            r = cross_validate(cfg, data, folds=folds, verbose=False, digitized=False)
            run = {
                "arch": arch,
                "aug_factor": f,
                "cv_accuracy": r["cv_accuracy"],
                "cv_accuracy_std": r["cv_accuracy_std"],
                "shift_accuracy": r["shift_accuracy"],
                "noise_accuracy": r.get("noise_accuracy"),
                "fold_digitized_correct": [
                    evaluate_digitized(m, dig_in)["correct"] for m in r["models"]
                ],
                "ensemble_digitized_correct": evaluate_digitized(r["models"], dig_in)["correct"],
                "seconds": time.time() - t0,
            }
            if arch in ("fcn", "fcn_wide"):
                run["pipeline_shift"] = pipeline_shift(r["models"])
            res["runs"].append(run)
            print(
                f"{arch} x{f}: cv {run['cv_accuracy']:.4f}, digitized per fold "
                f"{run['fold_digitized_correct']} ({run['seconds']:.0f} s)",
                flush=True,
            )
            dump_json(res, out_dir / "architectures.json")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(archs), figsize=(4 * len(archs), 3.4), sharey=True)
    for ax, arch in zip(np.atleast_1d(axes), archs, strict=True):
        for run in res["runs"]:
            if run["arch"] != arch:
                continue
            sa = run["shift_accuracy"]
            ax.plot([float(k) for k in sa], list(sa.values()), "o-", label=f"{run['aug_factor']}x")
        ax.set_title(arch)
        ax.set_xlabel("validation shift (eV)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("accuracy")
    np.atleast_1d(axes)[0].legend(title="augmentation")
    fig.suptitle(f"Accuracy vs shift ({folds}-fold CV, {epochs} epochs)")
    fig.tight_layout()
    fig.savefig(out_dir / "shift_architectures.png", dpi=90)
    plt.close(fig)
    return res


def noise_study(
    data: dict, folds: int = 3, epochs: int = 15, out_dir: Path = REPORT_DIR, seed: int = 0
) -> dict:
    """Accuracy vs PCA-noise multiple with and without noise augmentation.

    Parameters
    ----------
    data : dict
    folds, epochs : int
    out_dir : pathlib.Path
    seed : int

    Returns
    -------
    dict
    """
    res: dict = {
        "protocol": (
            f"fcn_wide, {folds}-fold stratified CV, {epochs} epochs; noise = Titan "
            "low-variance PCA residual samples times the multiple added to the [0, 1] "
            "validation spectra before preprocessing. 'without' switches off the "
            "pca_noise, poisson_noise and gaussian_noise augmentations."
        ),
        "runs": {},
    }
    for name, dis in (("with", []), ("without", ["pca_noise", "poisson_noise", "gaussian_noise"])):
        cfg = TrainConfig(
            arch="fcn_wide", epochs=epochs, augmentation=augmentation_config(disable=dis), seed=seed
        )
        r = cross_validate(cfg, data, folds=folds, verbose=False, digitized=False)
        res["runs"][name] = {"cv_accuracy": r["cv_accuracy"], "noise_accuracy": r["noise_accuracy"]}
        print(f"noise augmentation {name}: {r['noise_accuracy']}", flush=True)
    dump_json(res, out_dir / "noise.json")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for name, run in res["runs"].items():
        na = run["noise_accuracy"]
        ax.plot([float(k) for k in na], list(na.values()), "o-", label=f"{name} noise aug.")
    ax.set_xlabel("PCA noise multiple")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "noise.png", dpi=90)
    plt.close(fig)
    return res


def ensemble_study(
    data: dict,
    folds: int = 5,
    members: int = 3,
    epochs: int = 30,
    out_dir: Path = REPORT_DIR,
    seed: int = 0,
) -> dict:
    """Does an ensemble beat a single model? Same-split comparison.

    For each outer fold, ``members`` models are trained on the same training folds
    with different seeds; the held-out fold scores the single members (mean) and their
    ensemble (mean softmax), clean and with 5x PCA noise.

    Parameters
    ----------
    data : dict
    folds, members, epochs : int
    out_dir : pathlib.Path
    seed : int

    Returns
    -------
    dict
    """
    from .cv import cv_splits, train_model
    from .evaluation import evaluate_noise

    s, y, e, nv = data["spectra"], data["y"], data["energy"], data["noise_values"]
    rows = []
    for k, (tr, te) in enumerate(cv_splits(y, data.get("groups"), folds, seed)):
        models = []
        for j in range(members):
            cfg = TrainConfig(
                arch="fcn_wide",
                epochs=epochs,
                augmentation=augmentation_config(),
                seed=seed + 1000 * (k + 1) + 17 * j,
            )
            models.append(train_model(cfg, s[tr], y[tr], e, nv, verbose=False)[0])
        x = preprocess(s[te], e, check_edge=False).x
        single = [float(np.mean(predict(m, x).argmax(1) == y[te])) for m in models]
        ens = float(np.mean(predict(models, x).argmax(1) == y[te]))
        single5 = [evaluate_noise(m, s[te], y[te], e, nv, (5,))["5"] for m in models]
        ens5 = evaluate_noise(models, s[te], y[te], e, nv, (5,))["5"]
        rows.append(
            {
                "fold": k,
                "single": single,
                "ensemble": ens,
                "single_noise5": single5,
                "ensemble_noise5": ens5,
            }
        )
        print(f"fold {k + 1}: single {np.mean(single):.4f}, ensemble {ens:.4f}", flush=True)
    res = {
        "protocol": (
            f"{folds}-fold stratified CV; per fold {members} fcn_wide models (different "
            f"seeds, same training folds, {epochs} epochs, shipped augmentation); held-out "
            "fold scored by each member and by their mean softmax."
        ),
        "folds": rows,
        "single_mean": float(np.mean([np.mean(r["single"]) for r in rows])),
        "ensemble_mean": float(np.mean([r["ensemble"] for r in rows])),
        "single_noise5_mean": float(np.mean([np.mean(r["single_noise5"]) for r in rows])),
        "ensemble_noise5_mean": float(np.mean([r["ensemble_noise5"] for r in rows])),
    }
    dump_json(res, out_dir / "ensemble.json")
    return res


def shipped_report(models, data: dict, cv_result: dict, out_dir: Path = REPORT_DIR) -> dict:
    """Figures and JSON of the shipped ensemble.

    Parameters
    ----------
    models : list of keras.Model
        The fold models (ensemble members).
    data : dict
        From :func:`.cv.load_training_data`.
    cv_result : dict
        From :func:`.cv.cross_validate` (out-of-fold probabilities, per-fold scores).
    out_dir : pathlib.Path

    Returns
    -------
    dict
    """
    from sklearn.manifold import TSNE

    from .architectures import feature_model

    out_dir.mkdir(parents=True, exist_ok=True)
    y = data["y"]
    oof = cv_result["oof_proba"].argmax(1)
    dig_in = digitized_inputs()
    dg = evaluate_digitized(models, dig_in)
    _, ydig, refs = dig_in
    rep = {
        "oof_confusion": confusion(y, oof),
        "oof_accuracy": float(np.mean(oof == y)),
        "fold_accuracy": cv_result["fold_accuracy"],
        "fold_digitized_correct": cv_result.get("fold_digitized_correct"),
        "ensemble_digitized": dg,
        "digitized_confusion": confusion(ydig, np.searchsorted(CLASSES, dg["predicted"])),
        "digitized_table": [
            {"id": r["id"], "source": r["source"], "valence": r["valence"], "predicted": p}
            for r, p in zip(refs, dg["predicted"], strict=True)
        ],
        "pipeline_shift_mn2_wide": pipeline_shift(models),
        "shift_accuracy": cv_result.get("shift_accuracy"),
        "noise_accuracy": cv_result.get("noise_accuracy"),
        "robust_accuracy": cv_result.get("robust_accuracy"),
        "robust_condition_accuracy": cv_result.get("robust"),
        "ensemble_digitized_0p5eV_per_channel": evaluate_digitized(
            models, digitized_inputs(dispersion=0.5)
        ),
    }
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    for ax, (title, cm) in zip(
        axes,
        (
            ("Titan, out-of-fold", rep["oof_confusion"]),
            ("digitized refs", rep["digitized_confusion"]),
        ),
        strict=True,
    ):
        ax.imshow(np.array(cm), cmap="Blues")
        for i in range(3):
            for j in range(3):
                ax.text(j, i, str(cm[i][j]), ha="center", va="center")
        ax.set_xticks(range(3), NAMES)
        ax.set_yticks(range(3), NAMES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_dir / "shipped_confusion.png", dpi=90)
    plt.close(fig)
    # t-SNE: input space vs the learned features of the first member
    x = preprocess(data["spectra"], data["energy"], check_edge=False).x
    feats = np.asarray(feature_model(models[0]).predict(x[..., None], verbose=0))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, (title, z) in zip(
        axes, (("input space", x), ("learned features (member 1)", feats)), strict=True
    ):
        emb = TSNE(n_components=2, random_state=0, init="pca", perplexity=30).fit_transform(z)
        for c in range(3):
            ax.scatter(*emb[y == c].T, s=3, label=NAMES[c])
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(markerscale=3)
    fig.tight_layout()
    fig.savefig(out_dir / "shipped_tsne.png", dpi=90)
    plt.close(fig)
    # shift and noise of the ensemble's folds
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for key, ax, xl in (
        ("shift_accuracy", axes[0], "validation shift (eV)"),
        ("noise_accuracy", axes[1], "PCA noise multiple"),
    ):
        d = rep[key] or {}
        ax.plot([float(k) for k in d], list(d.values()), "o-", label="CV folds")
        if key == "shift_accuracy":
            ps = rep["pipeline_shift_mn2_wide"]
            ax.plot([float(k) for k in ps], list(ps.values()), "s--", label="Mn2+ wide, pipeline")
            ax.legend()
        ax.set_xlabel(xl)
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "shipped_shift_noise.png", dpi=90)
    plt.close(fig)
    dump_json(rep, out_dir / "shipped.json")
    return rep


def main(argv: list[str] | None = None) -> int:
    """Command line of the comparison studies.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
    """
    p = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.reports",
        description="Architecture/augmentation and noise studies (reduced protocol).",
    )
    p.add_argument(
        "--part", choices=["arch", "noise", "ensemble", "robust", "limits", "all"], default="all"
    )
    p.add_argument("--aug-factor", type=int, default=2, help="robustness study")
    p.add_argument("--candidates", default=None, help="robustness study: comma-separated")
    p.add_argument("--members", type=int, default=3, help="ensemble study: models per fold")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--archs", default="fcn,fcn_wide,dense,conv_dense")
    p.add_argument("--factors", default="1,5,10")
    p.add_argument("--out-dir", type=Path, default=REPORT_DIR)
    a = p.parse_args(argv)
    data = load_training_data()
    if a.part in ("arch", "all"):
        architecture_study(
            data,
            archs=a.archs.split(","),
            factors=[int(f) for f in a.factors.split(",")],
            folds=a.folds,
            epochs=a.epochs,
            out_dir=a.out_dir,
        )
    if a.part in ("noise", "all"):
        noise_study(data, folds=a.folds, epochs=a.epochs, out_dir=a.out_dir)
    if a.part == "robust":
        robustness_study(
            data,
            names=a.candidates.split(",") if a.candidates else None,
            folds=a.folds,
            epochs=a.epochs,
            aug_factor=a.aug_factor,
            out_dir=a.out_dir,
        )
    if a.part == "limits":
        from .limits import limits_study

        limits_study(
            data, folds=a.folds, epochs=a.epochs, aug_factor=a.aug_factor, out_dir=a.out_dir
        )
    if a.part == "ensemble":
        ensemble_study(data, folds=a.folds, members=a.members, epochs=a.epochs, out_dir=a.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
