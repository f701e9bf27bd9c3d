"""Command line: ``python -m hyperspy_mnvalence.training``.

Retrains the Mn valence classifier with stratified k-fold cross-validation, evaluates
it (shift, noise, digitized references, wide-window Mn2+ set) and exports the fold
models as one ONNX ensemble with the metadata the plugin reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .architectures import ARCHITECTURES

#: Where a run writes its model unless told: the current folder, never the package.
DEFAULT_OUT = Path("mn_valence_model.onnx")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training",
        description="Retrain the Mn L2,3 valence classifier and export it to ONNX.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output .onnx file (default: %(default)s in the current folder; the shipped "
        "models are replaced only when their path in the package is given)",
    )
    p.add_argument("--arch", default="fcn_wide", choices=sorted(ARCHITECTURES))
    p.add_argument("--folds", type=_positive, default=10, help="CV folds (1: one model, no CV)")
    p.add_argument("--epochs", type=_positive, default=30)
    p.add_argument("--aug-factor", type=_positive, default=10, help="augmented copies per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="initial Adam learning rate")
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--val-fraction", type=float, default=0.1, help="early-stopping split")
    p.add_argument("--seed", type=int, default=0)
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--data",
        type=Path,
        default=None,
        help="your own .npz (spectra, labels 2/3/4, energy_eV) instead of the Titan set",
    )
    src.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="your own labelled EELS files (.hspy, .msa, .dm3/.dm4, ...) instead of the "
        "Titan set; labels from FOLDER/labels.csv (file,valence), else "
        "metadata.Sample.mn_valence, else the file name (..._mn3...)",
    )
    p.add_argument(
        "--no-aug",
        action="append",
        default=[],
        metavar="NAME",
        help="switch an augmentation off (repeatable; 'all' for none)",
    )
    p.add_argument(
        "--aug",
        action="append",
        default=[],
        metavar="NAME",
        help="switch an augmentation on (repeatable; 'all' for every one)",
    )
    p.add_argument(
        "--single",
        action="store_true",
        help="ship the best-by-CV single fold model instead of the ensemble",
    )
    p.add_argument(
        "--fit-all",
        action="store_true",
        help="after cross-validation, train one network on all the data and ship it "
        "(how the shipped 'fast' and 'lite' models were made); the CV metrics describe its "
        "configuration",
    )
    p.add_argument("--summary", type=Path, default=None, help="write a JSON summary here")
    p.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="write the shipped-model report (confusion, t-SNE, shift/noise) here",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny fast run (2 folds, 2 epochs, 120 spectra) to check the pipeline",
    )
    return p


#: Modules of the ``training`` extra the command needs (import name: distribution).
TRAINING_MODULES = {"keras": "keras", "sklearn": "scikit-learn", "onnx": "onnx"}


def missing_training_modules() -> list[str]:
    """Distributions of the ``training`` extra that cannot be imported here.

    Returns
    -------
    list of str
        Empty when training can run.
    """
    import importlib.util

    missing = []
    for module, dist in TRAINING_MODULES.items():
        try:
            if importlib.util.find_spec(module) is None:
                missing.append(dist)
        except (ImportError, ValueError):  # blocked (sys.modules[name] = None) or broken
            missing.append(dist)
    return missing


def main(argv: list[str] | None = None) -> int:
    """Run the training command line.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        Exit status (1 when the ``training`` extra is not installed).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    missing = missing_training_modules()
    if missing:
        print(
            f"{parser.prog}: error: training needs the 'training' extra, which is not "
            f"installed here (missing: {', '.join(missing)}); install it with "
            "pip install 'hyperspy_mnvalence[training]'",
            file=sys.stderr,
        )
        return 1
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    from hyperspy_mnvalence import datasets

    from .augment import augmentation_config
    from .cv import TrainConfig, cross_validate, cv_splits, train_model
    from .data import load_training_data
    from .evaluation import (
        digitized_inputs,
        evaluate_digitized,
        evaluate_mn2_wide,
        evaluate_noise,
        evaluate_shift,
    )
    from .export import build_metadata, export_onnx, in_package_models

    t0 = time.time()
    if args.smoke and in_package_models(args.out):
        parser.error(f"--smoke would replace the shipped model {args.out}; give another --out")
    try:
        aug = augmentation_config(disable=args.no_aug, enable=args.aug)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        data = load_training_data(args.data, data_dir=args.data_dir)
    except (ValueError, OSError) as exc:  # also the data folder missing: one line
        parser.error(str(exc))
    if args.smoke:
        rng = np.random.default_rng(args.seed)
        members = [np.nonzero(data["y"] == c)[0] for c in range(3)]
        keep = np.sort(
            np.concatenate(
                [rng.choice(m, min(40, m.size), replace=False) for m in members if m.size]
            )
        )
        data["spectra"], data["y"] = data["spectra"][keep], data["y"][keep]
        if data["groups"] is not None:
            data["groups"] = data["groups"][keep]
        args.folds, args.epochs = min(args.folds, 2), min(args.epochs, 2)
    groups = data["groups"]
    if args.folds >= 2 and groups is not None:
        try:  # too few files for the folds: one error line before any training
            cv_splits(data["y"], groups, args.folds, args.seed)
        except ValueError as exc:
            parser.error(str(exc))
    if data["noise_values"] is None and aug["pca_noise"]["enabled"]:
        print("PCA noise file not found: pca_noise augmentation switched off", file=sys.stderr)
        aug["pca_noise"]["enabled"] = False
    cfg = TrainConfig(
        arch=args.arch,
        epochs=args.epochs,
        aug_factor=args.aug_factor,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        label_smoothing=args.label_smoothing,
        val_fraction=args.val_fraction,
        augmentation=aug,
        seed=args.seed,
    )
    s, y, e, nv = data["spectra"], data["y"], data["energy"], data["noise_values"]
    have_refs = True
    try:
        dig_in = digitized_inputs()
    except FileNotFoundError:
        have_refs, dig_in = False, None
    metrics: dict = {}
    if args.folds >= 2:
        res = cross_validate(cfg, data, folds=args.folds, digitized=have_refs)
        models = res["models"]
        metrics.update(
            cv_accuracy=res["cv_accuracy"],
            cv_accuracy_std=res["cv_accuracy_std"],
            cv_folds=args.folds,
            cv_splitter=res["cv_splitter"],
            cv_groups=res["cv_groups"],
            cv_fold_accuracy=res["fold_accuracy"],
            cv_oof_accuracy=res["oof_accuracy"],
            shift_accuracy=res.get("shift_accuracy"),
            noise_accuracy=res.get("noise_accuracy"),
            robust_accuracy=res.get("robust_accuracy"),
            robust_condition_accuracy=res.get("robust"),
            shift_noise_protocol="mean over the validation folds of the fold models",
            robust_protocol=(
                "held-out folds perturbed by ROBUST_CONDITIONS (cv.py; broadening 0.6-1.2 eV, "
                "dispersion 0.3-0.5 eV/channel, truncation 3-5 eV below / 15-19 eV above L3, "
                "their combination, 5x PCA noise; fixed seed); robust_accuracy = their mean"
            ),
        )
        if have_refs:
            metrics["fold_digitized_correct"] = res["fold_digitized_correct"]
        if args.single:
            models = [models[int(np.argmax(res["fold_accuracy"]))]]
        fold_info = res["fold_info"]
        if args.fit_all:
            model, info = train_model(cfg, s, y, e, nv, label="[all data]", groups=groups)
            models, fold_info = [model], [*fold_info, info]
            metrics["final_model"] = (
                "one network trained on all the training data with the cross-validated "
                "configuration: cv_*, shift_accuracy, noise_accuracy and robust_* are the "
                "out-of-fold scores of that configuration's fold models (single networks); "
                "digitized_* and mn2_wide are this network's own"
            )
        if have_refs and len(res["models"]) > 1 and not args.fit_all:
            # ensemble vs single members (out-of-fold single-model CV accuracy vs the
            # ensemble's digitized score; the ensemble's own CV would need nested CV)
            metrics["ensemble_vs_single"] = {
                "single_model_cv_accuracy": res["cv_accuracy"],
                "fold_digitized_correct": res["fold_digitized_correct"],
            }
    else:
        model, info = train_model(cfg, s, y, e, nv, label="[single]", groups=groups)
        models = [model]
        fold_info = [info]
        by_group = info["early_stopping_split"] == "by group"
        metrics.update(
            cv_accuracy=info.get("val_accuracy"),
            cv_accuracy_std=None,
            cv_folds=1,
            cv_note=(
                "no cross-validation: cv_accuracy is the accuracy on the "
                f"{args.val_fraction:.0%} early-stopping split"
                + (
                    " (whole files held out; it also chose the epoch)"
                    if by_group
                    else " (optimistic)"
                )
            ),
            shift_accuracy=evaluate_shift(model, s, y, e),
            noise_accuracy=evaluate_noise(model, s, y, e, nv) if nv is not None else None,
            shift_noise_protocol="on the training data itself (optimistic)",
        )
    if have_refs:
        dg = evaluate_digitized(models, dig_in)
        metrics.update(
            digitized_accuracy=dg["accuracy"],
            digitized_correct=dg["correct"],
            digitized_total=dg["total"],
            digitized_predicted=dg["predicted"],
        )
        dg05 = evaluate_digitized(models, digitized_inputs(dispersion=0.5))
        metrics.update(
            digitized_correct_0p5eV_per_channel=dg05["correct"],
            digitized_wrong_ids=dg["wrong_ids"],
            digitized_wrong_ids_0p5eV_per_channel=dg05["wrong_ids"],
        )
    try:
        metrics["mn2_wide"] = evaluate_mn2_wide(models)
    except FileNotFoundError:
        pass
    wall = time.time() - t0
    meta = build_metadata(
        architecture=args.arch,
        n_members=len(models),
        augmentation=aug,
        training_data=data["training_data"],
        seed=args.seed,
        metrics=metrics,
        extra={
            "evaluation_data": datasets.evaluation_records(),
            "training": {
                "epochs": args.epochs,
                "aug_factor": args.aug_factor,
                "batch_size": args.batch_size,
                "learning_rate": args.lr,
                "lr_schedule": "cosine decay to 1%",
                "label_smoothing": args.label_smoothing,
                "early_stopping": f"best epoch by loss on a {args.val_fraction:.0%} split "
                "of the training folds",
                "best_epochs": [i.get("best_epoch") for i in fold_info],
                "early_stopping_splits": [i.get("early_stopping_split") for i in fold_info],
                "wall_time_s": round(wall, 1),
                "cpu_count": os.cpu_count(),
                "smoke": bool(args.smoke),
                # after a smoke run's subsampling and leaving out spectra without an edge
                "spectra_used": int(len(y)),
                "spectra_used_per_class": np.bincount(y, minlength=3).tolist(),
            },
        },
    )
    path = export_onnx(models, args.out, meta)
    if args.report_dir is not None:
        if args.folds >= 2 and have_refs:
            from .reports import shipped_report

            shipped_report(models, data, res, args.report_dir)
        else:
            why = (
                "--folds 1 (no cross-validation)"
                if args.folds < 2
                else ("the digitized references (test/digitized_references.csv) are not found")
            )
            print(f"no report written to {args.report_dir}: {why}", file=sys.stderr)
    print(json.dumps({k: v for k, v in metrics.items() if k != "digitized_predicted"}, indent=1))
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB) in {wall:.0f} s")
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
