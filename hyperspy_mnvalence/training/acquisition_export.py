"""Export acquisition-trained fold models as the shipped ensemble, with their model card.

Reads the fold folders written by :mod:`.acquisition_cv`, scores the fold models on the
robustness suite (each spectrum by the model that held it out), writes the ensemble of
all fold models (and, with ``--fast``, the fold-1 model alone) as ONNX, and records in
the model card: the training conditions, the held-out clean accuracy per fold, the suite
summary (``metrics["acquisition"]``), the false-Mn rate on the negative families, the
digitized references through the pipeline (evaluation only) and the Titan Mn2+ line.

Run ``python -m hyperspy_mnvalence.training.acquisition_export --help``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["also_suite_metrics", "main", "refresh", "suite_metrics"]


def _merge_folds(dirs: list[Path]) -> Path:
    """One folder holding every fold model and one folds.json."""
    if len(dirs) == 1:
        return dirs[0]
    tmp = Path(tempfile.mkdtemp(prefix="mnv_folds_"))
    rec: dict = {"folds": {}}
    for d in dirs:
        r = json.loads((d / "folds.json").read_text())
        rec["split"] = r["split"]
        for k, f in r["folds"].items():
            rec["folds"][k] = f
            shutil.copy(d / f"fold{k}.keras", tmp / f"fold{k}.keras")
    (tmp / "folds.json").write_text(json.dumps(rec))
    return tmp


def suite_metrics(suite: dict) -> dict:
    """The model card's ``metrics["acquisition"]`` from a :func:`.suite.run_suite` result."""
    return (
        {k: suite[k] for k in ("clean", "worst", "mean", "score")}
        | {"conditions": {n: c["accuracy"] for n, c in suite["conditions"].items()}}
        | {"no_edge": {n: c["no_edge"] for n, c in suite["conditions"].items()}}
        | ({"false_mn": suite["false_mn"]} if "false_mn" in suite else {})
    )


def also_suite_metrics(suite: dict) -> dict:
    """A card's ``metrics[KEY]`` for a suite recorded at one value of a knob
    (``--at-dispersion``, ``--at-resolution``): :func:`suite_metrics` and its noise-free
    row (``clean_at_*``)."""
    return suite_metrics(suite) | {
        k: v["accuracy"] for k, v in suite.items() if k.startswith("clean_at_")
    }


def refresh(
    model: Path,
    suite_json: Path,
    reports: Path,
    card: str = "model_card.json",
    also: dict[str, Path] | None = None,
    digitized: bool = False,
    cv_from: str | None = None,
) -> dict:
    """Replace an exported model's suite figures by those of a new suite run.

    For a suite re-run with the same fold models (after a change of the simulator or of
    the edge decision): the card's ``metrics["acquisition"]`` (with the error per
    uncertainty quartile measured afresh), the model file (re-stamped) and
    ``reports/model_card.json`` and ``reports/suite.json``; the model's weights and graph
    are not touched.

    Parameters
    ----------
    model : pathlib.Path
        The exported ensemble.
    suite_json : pathlib.Path
        ``suite_<name>.json`` written by ``python -m hyperspy_mnvalence.training.suite``.
    reports : pathlib.Path
        The reports folder.
    card : str
        Name of the card written there (``model_card.json`` for the default ensemble).
    also : dict, optional
        ``{KEY: suite json}``: suites recorded at one value of a knob, for the card's
        ``metrics[KEY]`` (as the export's ``--also-suite``).
    digitized : bool
        Also score the digitized literature references and the Titan Mn2+ line afresh
        through the inference path (evaluation data; the card's ``digitized_pipeline``
        and ``mn2_wide_line``).
    cv_from : str, optional
        The exported fold ensemble whose members give the held-out accuracy on the
        spectra as given (``cv_accuracy``, ``cv_fold_accuracy``), measured afresh: by
        default the model itself where it holds one member per fold; for a single
        network of a recipe (``fast``), that recipe's ensemble.

    Returns
    -------
    dict
        The new ``metrics["acquisition"]``.
    """
    from .acquisitions import titan_training_set
    from .export import read_metadata, write_metadata
    from .suite import uncertainty_quartiles

    suite = json.loads(Path(suite_json).read_text())
    spectra, energy, labels = titan_training_set()
    meta = read_metadata(model)
    acq = suite_metrics(suite)
    if int(meta.get("n_members", 1)) > 1:
        acq["error_by_uncertainty_quartile"] = uncertainty_quartiles(
            str(model), spectra, labels, energy
        )
    meta["metrics"]["acquisition"] = acq
    folds = int(meta["metrics"].get("cv_folds", 0))
    source = cv_from or (str(model) if int(meta.get("n_members", 1)) == folds > 1 else None)
    if source is not None:
        from .predictors import fold_clean_accuracy

        acc = fold_clean_accuracy(source, spectra, energy, labels)
        meta["metrics"].update(
            cv_accuracy=float(np.mean(acc)), cv_accuracy_std=float(np.std(acc)),
            cv_fold_accuracy=acc,
        )  # fmt: skip
    for key, path in (also or {}).items():
        meta["metrics"][key] = also_suite_metrics(json.loads(Path(path).read_text()))
    if digitized:
        from .acquisition_report import digitized_through_pipeline, mn2_line

        meta["metrics"]["digitized_pipeline"] = digitized_through_pipeline(str(model))
        meta["metrics"]["mn2_wide_line"] = mn2_line(str(model))
    write_metadata(model, meta)
    reports.mkdir(parents=True, exist_ok=True)
    if card == "model_card.json":
        (reports / "suite.json").write_text(json.dumps(suite, indent=1))
    (reports / card).write_text(json.dumps(read_metadata(model), indent=1, default=str))
    return acq


def main(argv: list[str] | None = None) -> int:
    """Score, export and write the model card of the fold models."""
    ap = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.acquisition_export", description=__doc__
    )
    ap.add_argument("--folds", type=Path, nargs="+", help="fold folders")
    ap.add_argument("--out", type=Path, required=True, help="ensemble .onnx")
    ap.add_argument("--refresh", type=Path, metavar="SUITE_JSON",
                    help="only replace the suite figures in the card of --out by this suite "
                    "run's (see refresh())")  # fmt: skip
    ap.add_argument("--card", default="model_card.json",
                    help="with --refresh: the card's file name in --reports")  # fmt: skip
    ap.add_argument("--digitized", action="store_true",
                    help="with --refresh: also score the digitized references and the Mn2+ "
                    "line afresh (evaluation data)")  # fmt: skip
    ap.add_argument("--cv-from", metavar="MODEL",
                    help="with --refresh: the fold ensemble whose members give the held-out "
                    "CV figures afresh (default: --out itself if it has one member per "
                    "fold; e.g. acquisition for fast)")  # fmt: skip
    ap.add_argument("--suite", type=Path, metavar="SUITE_JSON",
                    help="the suite run of these fold models (suite_<name>.json written by "
                    "training.suite), used instead of scoring them again")  # fmt: skip
    ap.add_argument("--also-suite", nargs="*", default=[], metavar="KEY=SUITE_JSON",
                    help="another suite run of these fold models (e.g. --at-resolution 2), "
                    "summarised in the card's metrics[KEY]")  # fmt: skip
    ap.add_argument("--fast", type=Path, help="also write the fold-1 model alone here")
    ap.add_argument("--reports", type=Path, required=True, help="folder for the reports")
    ap.add_argument("--copies", type=int, default=2)
    args = ap.parse_args(argv)
    if args.refresh is not None:
        also = dict(item.split("=", 1) for item in args.also_suite)
        acq = refresh(
            args.out, args.refresh, args.reports, args.card, also, args.digitized, args.cv_from
        )
        print(json.dumps(acq, indent=1, default=str))
        return 0
    if not args.folds:
        ap.error("--folds is required (unless --refresh)")

    import keras

    from hyperspy_mnvalence.datasets import evaluation_records, load_titan_valence
    from hyperspy_mnvalence.preprocessing import DEFAULT_PREPROCESSING, preprocess

    from .acquisition_report import digitized_through_pipeline, mn2_line
    from .export import build_metadata, export_onnx, read_metadata, write_metadata
    from .predictors import keras_fold_predictor
    from .suite import (
        negatives_false_mn,
        run_suite,
        suite_figure,
        uncertainty_quartiles,
    )

    d = load_titan_valence()
    spectra, energy = d["spectra"].astype(np.float64), d["energy"]
    labels = d["valence"].astype(int) - 2
    folder = _merge_folds(args.folds)
    rec = json.loads((folder / "folds.json").read_text())
    ks = sorted(rec["folds"], key=int)
    models = [keras.models.load_model(folder / f"fold{k}.keras") for k in ks]
    args.reports.mkdir(parents=True, exist_ok=True)

    # held-out clean accuracy per fold (the spectra as given, through preprocess)
    fold_acc = []
    for k, m in zip(ks, models, strict=True):
        te = np.asarray(rec["folds"][k]["held_out"], int)
        pre = preprocess(spectra[te], energy)
        p = m.predict(pre.x[..., None], batch_size=2048, verbose=0).argmax(1)
        fold_acc.append(float(np.mean((p == labels[te]) & pre.valid)))
    if args.suite is not None:
        suite = json.loads(args.suite.read_text())
    else:
        predict = keras_fold_predictor(folder, spectra.shape[0])
        suite = run_suite(spectra, labels, energy, predict, copies=args.copies)
        suite["false_mn"] = negatives_false_mn(lambda r, e: predict(r, e, None))
    (args.reports / "suite.json").write_text(json.dumps(suite, indent=1))
    suite_figure({"shipped": suite}, args.reports / "suite.png")

    cfg = rec["folds"][ks[0]]["config"]
    conditions = rec["folds"][ks[0]].get("conditions")
    card_train = {
        "protocol": "acquisition_cv: each fold model trained on the other folds' spectra, "
        "recorded afresh every epoch through the acquisition simulator and preprocess",
        "split": rec["split"],
        "config": cfg,
        "seconds": [rec["folds"][k]["seconds"] for k in ks],
        "data_seconds": [rec["folds"][k]["data_seconds"] for k in ks],
        "best_epoch": [rec["folds"][k]["best_epoch"] for k in ks],
        "hardware": f"{platform.machine()} CPU ({platform.processor() or 'unknown'}), "
        "2 cores shared with other work; no GPU",
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
    }
    metrics = {
        "cv_accuracy": float(np.mean(fold_acc)),
        "cv_accuracy_std": float(np.std(fold_acc)),
        "cv_fold_accuracy": fold_acc,
        "cv_folds": len(ks),
        "cv_splitter": rec["split"]["kind"],
        "acquisition": suite_metrics(suite),
    }
    for item in args.also_suite:  # where a specialist is used: the suite recorded there
        key, path = item.split("=", 1)
        metrics[key] = also_suite_metrics(json.loads(Path(path).read_text()))
    data_rec = [
        {"file": "train/titan_mn_valence.npz", "sha256": d["sha256"], "n_spectra": int(labels.size)}
    ]
    outputs = [(args.out, models, "ensemble of the fold models")]
    if args.fast:
        outputs.append((args.fast, models[:1], "the fold-1 model alone"))
    for i, (path, ms, what) in enumerate(outputs):
        meta = build_metadata(
            architecture=cfg["arch"],
            n_members=len(ms),
            augmentation={"acquisition_conditions": conditions},
            training_data=data_rec,
            seed=int(cfg["seed"]),
            metrics=dict(metrics),
            preprocessing=dict(DEFAULT_PREPROCESSING),
            extra={
                "training": {**card_train, "members": what},
                "evaluation_data": evaluation_records(),
            },
        )
        export_onnx(ms, path, meta)
        dig = digitized_through_pipeline(str(path))
        line = mn2_line(str(path))
        meta = read_metadata(path)  # the card as written (with its graph entry)
        meta["metrics"]["digitized_pipeline"] = dig
        meta["metrics"]["mn2_wide_line"] = line
        if len(ms) > 1:
            uq = uncertainty_quartiles(str(path), spectra, labels, energy)
            meta["metrics"]["acquisition"]["error_by_uncertainty_quartile"] = uq
        write_metadata(path, meta)  # the model's own evaluation added to its card
        # the ensemble's card is model_card.json (as refresh() writes it)
        card = "model_card.json" if i == 0 else f"{path.stem}_card.json"
        (args.reports / card).write_text(json.dumps(meta, indent=1, default=str))
        print(path, json.dumps({"digitized": dig, "mn2_line": line}), flush=True)
    print(json.dumps(metrics, indent=1, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
