"""Cross-validated training on simulated acquisitions (the classifier).

For each of ``folds`` stratified folds of the Titan spectra, one network is trained on
the other folds' spectra recorded afresh every epoch through the acquisition simulator
and ``preprocess`` (:func:`.acquisitions.acquisition_epoch`); the best epoch is chosen
on a fixed, realistic recording of an early-stopping split of the training folds (never
the held-out fold). Each fold model is saved with its held-out indices, so that the
robustness suite (:mod:`.suite`) scores every spectrum only with the model that never
saw it; the fold models together form the shipped ensemble.

Run ``python -m hyperspy_mnvalence.training.acquisition_cv --help``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["AcquisitionConfig", "train_fold", "main"]


@dataclass
class AcquisitionConfig:
    """Hyper-parameters of one acquisition-trained network.

    Attributes
    ----------
    arch : str
        Architecture (see :mod:`.architectures`).
    epochs : int
        Epochs, each a fresh recording of the training spectra.
    copies : int
        Recordings of every training spectrum per epoch.
    batch_size : int
    learning_rate : float
    label_smoothing : float
    val_fraction : float
        Early-stopping share of the training folds.
    seed : int
    """

    arch: str = "fcn_wide"
    epochs: int = 30
    copies: int = 6
    batch_size: int = 64
    learning_rate: float = 3e-3
    label_smoothing: float = 0.05
    val_fraction: float = 0.1
    seed: int = 0


def train_fold(
    cfg: AcquisitionConfig,
    spectra,
    labels,
    energy,
    *,
    label: str = "",
    conditions: dict | None = None,
    val_conditions: dict | None = None,
):
    """Train one network on acquisitions of ``spectra`` (class indices ``labels``).

    ``conditions`` is the training distribution (default ``TRAINING_CONDITIONS``);
    ``val_conditions`` that of the early-stopping recording (default
    ``TRAINING_CONDITIONS``, whatever ``conditions`` is).

    Returns
    -------
    model : keras.Model
    info : dict
        ``best_epoch``, ``val_accuracy`` (realistic early-stopping set), ``seconds``,
        ``data_seconds`` (making the epochs) and ``epoch_inputs`` (mean kept per epoch).
    """
    import keras

    from .acquisitions import acquisition_epoch
    from .cv import split_for_early_stopping
    from .evaluation import predict
    from .loop import train_loop

    t0 = time.time()
    tr, va, _ = split_for_early_stopping(labels, None, cfg.val_fraction, cfg.seed)
    onehot = np.eye(3, dtype=np.float32)[labels]
    x_val, y_val = acquisition_epoch(
        spectra[va],
        energy,
        onehot[va],
        np.random.default_rng(cfg.seed + 999),
        copies=3,
        conditions=val_conditions,
    )
    y_val = y_val.argmax(1)
    timing = {"data": 0.0, "inputs": []}

    def make_epoch(rng):
        t = time.time()
        x, y = acquisition_epoch(
            spectra[tr], energy, onehot[tr], rng, copies=cfg.copies, conditions=conditions
        )
        timing["data"] += time.time() - t
        timing["inputs"].append(x.shape[0])
        return x, y

    def validate(model):
        p = predict(model, x_val)
        loss = float(-np.mean(np.log(p[np.arange(y_val.size), y_val] + 1e-7)))
        return loss, f" val_acc {np.mean(p.argmax(1) == y_val):.4f}"

    model, fit = train_loop(
        cfg,
        samples_per_epoch=int(0.8 * cfg.copies * tr.size),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"],
        make_epoch=make_epoch,
        validate=validate,
        label=label,
        t0=t0,
    )
    info = {
        "best_epoch": fit["best_epoch"],
        "val_accuracy": float(np.mean(predict(model, x_val).argmax(1) == y_val)),
        "seconds": time.time() - t0,
        "data_seconds": timing["data"],
        "epoch_inputs": float(np.mean(timing["inputs"])),
    }
    return model, info


def main(argv: list[str] | None = None) -> int:
    """Train the fold models; write ``fold{k}.keras`` and ``folds.json`` to ``--out``."""
    ap = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.acquisition_cv", description=__doc__
    )
    ap.add_argument("--out", type=Path, required=True, help="folder for the fold models")
    ap.add_argument("--arch", default="fcn_wide")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only", type=int, nargs="*", help="train only these folds (1-based)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--copies", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--stop-on-training-conditions", action="store_true",
        help="record the early-stopping set under the training conditions (default: under "
        "TRAINING_CONDITIONS, whatever --range says), for a model meant for a narrower input",
    )  # fmt: skip
    from .acquisitions import add_condition_arguments, conditions_from_arguments, titan_training_set

    add_condition_arguments(ap)
    args = ap.parse_args(argv)
    conditions = conditions_from_arguments(args)

    from .cv import cv_splits

    spectra, energy, labels = titan_training_set()
    splits = cv_splits(labels, None, args.folds, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    record_path = args.out / "folds.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {"folds": {}}
    stopping = "training conditions" if args.stop_on_training_conditions else "default"
    record["split"] = {"kind": "StratifiedKFold", "folds": args.folds, "seed": args.seed}
    for k, (tr, te) in enumerate(splits, start=1):
        if args.only and k not in args.only:
            continue
        cfg = AcquisitionConfig(
            arch=args.arch, epochs=args.epochs, copies=args.copies, seed=args.seed + k
        )
        model, info = train_fold(
            cfg, spectra[tr], labels[tr], energy, label=f"[fold {k}]", conditions=conditions,
            val_conditions=conditions if args.stop_on_training_conditions else None,
        )  # fmt: skip
        model.save(args.out / f"fold{k}.keras")
        record["folds"][str(k)] = {
            "held_out": te.tolist(),
            "config": asdict(cfg),
            "conditions": conditions,
            "early_stopping": stopping,
            **info,
        }
        record_path.write_text(json.dumps(record))
        print(f"fold {k}: {json.dumps(info)}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
