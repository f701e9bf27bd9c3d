"""Training of the mixed-valence (fraction-regression) model.

The model reads a preprocessed Mn L2,3 spectrum and returns the fractions of Mn2+,
Mn3+ and Mn4+ (softmax output, so they are non-negative and sum to 1). It is the same
fully convolutional network as the classifier (convolution blocks, global average
pooling, softmax), so it inherits its invariance to the energy calibration.

Training data are synthetic *linear mixtures* of real single-valence Titan spectra
(``train/titan_mn_valence.npz``), drawn afresh every epoch by :mod:`.mixtures` (atomic
fractions on the simplex: pure spectra, binary and ternary mixtures). The mixed raw
spectra then go through the classifier's instrument augmentations
(:func:`hyperspy_mnvalence.training.augment.augment_and_preprocess`: background,
plural scattering, broadening, truncation, dispersion, noise, translation) and the
package's one :func:`~hyperspy_mnvalence.preprocessing.preprocess`. The
hyper-parameters and augmentations are in :mod:`.fraction_config`; the scores of a
model (held-out mixtures, calibration invariance, digitized references) in
:mod:`.fraction_scores`.

The loss is the cross-entropy against the soft fraction targets (KL divergence plus a
constant); ``--loss mse`` trains on the squared error of the fractions instead, and
``--loss l1`` on the absolute errors that score the model (:func:`fraction_l1`).

Cross-validation: stratified k-fold over the *source spectra*; the mixtures that
score a fold model are built only from the spectra of its held-out fold. The shipped
model is an ensemble of the fold models in one ONNX graph (their spread is the
``probability_std`` output).

Run ``python -m hyperspy_mnvalence.training.fractions --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hyperspy_mnvalence import datasets

from .augment import augment_and_preprocess, augmentation_config
from .evaluation import predict
from .fraction_config import FractionConfig
from .fraction_scores import (
    digitized_mean_valence,
    evaluate_invariance,
    evaluate_mixtures,
    fraction_figure,
    mixture_scores,
)
from .mixtures import make_mixtures

__all__ = ["fraction_l1", "main", "run", "train_fraction_model"]


def fraction_l1(y_true, y_pred):
    """Absolute errors of the fractions plus the absolute error of the mean valence.

    The two quantities the model is scored on. Their minimiser is the conditional
    median rather than the mean that cross-entropy and squared error learn, so a
    spectrum that could be pure or could hold a little of another valence is hedged
    less toward a mixture (held-out pure spectra, fold 1: mean-valence error 0.126 ->
    0.092), though mixtures come out slightly worse (``training/README.md``).

    Parameters
    ----------
    y_true, y_pred : tensor
        ``(batch, 3)`` true and predicted fractions.

    Returns
    -------
    tensor
        ``(batch,)`` loss per sample.
    """
    from keras import ops

    d = y_pred - ops.cast(y_true, y_pred.dtype)
    valence_error = d[:, 1] + 2.0 * d[:, 2]  # sum(d * (2, 3, 4)), as sum(d) == 0
    return ops.sum(ops.abs(d), axis=-1) + ops.abs(valence_error)


def train_fraction_model(
    cfg: FractionConfig,
    spectra: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    noise_values: np.ndarray | None = None,
    verbose: bool = True,
    label: str = "",
):
    """Train one fraction model on fresh augmented mixtures every epoch.

    Parameters
    ----------
    cfg : FractionConfig
    spectra : numpy.ndarray
        Raw training spectra ``(m, C)``.
    y : numpy.ndarray
        Class indices 0..2.
    energy : numpy.ndarray
        ``(C,)``.
    noise_values : numpy.ndarray, optional
        Titan PCA noise samples (needed by the ``pca_noise`` augmentation).
    verbose : bool
    label : str

    Returns
    -------
    model : keras.Model
    info : dict
        ``seconds``, ``final_loss``.
    """
    import keras

    from .loop import train_loop

    aug = augmentation_config(cfg.augmentation)
    if noise_values is None:
        aug["pca_noise"]["enabled"] = False
    t0 = time.time()
    if cfg.loss == "cce":
        loss = keras.losses.CategoricalCrossentropy()
    elif cfg.loss == "mse":
        loss = keras.losses.MeanSquaredError()
    elif cfg.loss == "l1":
        loss = fraction_l1
    else:
        raise ValueError(f"loss must be 'cce', 'mse' or 'l1', not {cfg.loss!r}")

    def make_epoch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        mixed, w = make_mixtures(spectra, y, cfg.n_mixtures, cfg, rng)
        return augment_and_preprocess(mixed, energy, aug, rng, noise_values), w

    model, fit = train_loop(
        cfg,
        samples_per_epoch=cfg.n_mixtures,
        loss=loss,
        make_epoch=make_epoch,
        verbose=verbose,
        label=label,
        t0=t0,
    )
    return model, {"seconds": time.time() - t0, "final_loss": fit["final_loss"]}


def run(
    cfg: FractionConfig,
    folds: int = 5,
    members: int = 3,
    out: str | os.PathLike | None = None,
    report_dir: str | os.PathLike | None = None,
    data: dict | None = None,
    n_eval: int = 2000,
    digitized: bool = True,
    verbose: bool = True,
) -> dict:
    """Cross-validate, evaluate and export the fraction ensemble.

    Parameters
    ----------
    cfg : FractionConfig
    folds : int
        Stratified folds over the source spectra.
    members : int
        Fold models trained (the first ``members`` folds); each is scored on
        mixtures of its held-out fold, and all of them form the exported ensemble.
    out : path-like, optional
        ONNX output; not exported if None.
    report_dir : path-like, optional
        Where ``fractions_report.json`` and ``fractions.png`` go.
    data : dict, optional
        From :func:`.cv.load_training_data` (loaded if omitted).
    n_eval : int
        Held-out mixtures per fold.
    digitized : bool
        Evaluate on the digitized references (evaluation only; no choice uses it).
    verbose : bool

    Returns
    -------
    dict
        The report (also the ``metrics`` of the model metadata) and ``models``.
    """
    from .cv import cv_splits
    from .data import load_training_data

    data = data if data is not None else load_training_data()
    s, y, e = data["spectra"], data["y"], data["energy"]
    nv = data.get("noise_values")
    # ungrouped, as the protocol below states (groups of a user npz are not used here)
    splits = cv_splits(y, None, folds, cfg.seed)
    models, fold_scores, trues, preds, infos, invs = [], [], [], [], [], []
    t0 = time.time()
    for k, (tr, te) in enumerate(splits):
        if k >= members:
            break
        fcfg = FractionConfig(**{**asdict(cfg), "seed": cfg.seed + 1000 * (k + 1)})
        model, info = train_fraction_model(fcfg, s[tr], y[tr], e, nv, verbose, f"[fold {k + 1}]")
        ev = evaluate_mixtures(model, s[te], y[te], e, n_eval, 4321 + k, cfg, nv)
        invs.append(evaluate_invariance(lambda x, m=model: predict(m, x), s[te], y[te], e))
        fold_scores.append({"clean": ev["clean"], "augmented": ev["augmented"]})
        trues.append(ev["true"])
        preds.append(ev["pred"])
        infos.append(info)
        models.append(model)
        if verbose:
            c = ev["clean"]
            print(
                f"fold {k + 1}: mixture MAE mean valence {c['mae_mean_valence']:.4f}, "
                f"fractions {c['mae_fractions']['overall']:.4f} "
                f"(augmented {ev['augmented']['mae_mean_valence']:.4f}) "
                f"offset max {invs[-1]['offset_max_abs_change']:.3f}, "
                f"dispersion max {invs[-1]['dispersion_max_abs_change']:.3f} "
                f"({time.time() - t0:.0f} s)",
                flush=True,
            )
    true, pred = np.concatenate(trues), np.concatenate(preds)
    pooled = mixture_scores(pred, true)

    def _mean(key: str, setting: str = "clean"):
        return float(np.mean([f[setting][key] for f in fold_scores]))

    metrics = {
        "mixture_mae_mean_valence": pooled["mae_mean_valence"],
        "mixture_mae_fractions": pooled["mae_fractions"],
        "mixture_p95_mean_valence_error": pooled["p95_mean_valence_error"],
        "mixture_mae_mean_valence_augmented": _mean("mae_mean_valence", "augmented"),
        "mixture_mae_fractions_augmented": float(
            np.mean([f["augmented"]["mae_fractions"]["overall"] for f in fold_scores])
        ),
        "fold_mixture_mae_mean_valence": [f["clean"]["mae_mean_valence"] for f in fold_scores],
        "mixture_protocol": (
            f"StratifiedKFold({folds}) over the {len(y)} source spectra; each of the first "
            f"{len(models)} fold models is scored on {n_eval} mixtures ({cfg.p_pure:.0%} pure, "
            f"{cfg.p_binary:.0%} binary, the rest ternary Dirichlet({cfg.dirichlet_alpha:g})) "
            "of single spectra of its held-out fold only; 'clean': no augmentation, "
            "'augmented': EVAL_AUGMENTATION"
        ),
        "invariance_offset_max_abs_change_mean_valence": float(
            max(i["offset_max_abs_change"] for i in invs)
        ),
        "invariance_offset_mean_abs_change_mean_valence": float(
            np.mean([i["offset_mean_abs_change"] for i in invs])
        ),
        "invariance_dispersion_max_abs_change_mean_valence": float(
            max(i["dispersion_max_abs_change"] for i in invs)
        ),
        "invariance_dispersion_mean_abs_change_mean_valence": float(
            np.mean([i["dispersion_mean_abs_change"] for i in invs])
        ),
        "invariance_protocol": (
            "held-out mixtures on axes offset by -15..+15 eV and resampled to 0.05..0.5 "
            "eV/channel, full preprocessing; change of the mean valence vs the original"
        ),
    }
    report: dict = {"config": asdict(cfg), "folds": folds, "members": len(models)}
    report["fold_scores"] = fold_scores
    report["fold_invariance"] = invs
    report["fold_info"] = infos
    if digitized:
        dg = digitized_mean_valence(lambda x: predict(models, x))
        report["digitized"] = dg
        metrics["digitized_mean_valence_within_0.35"] = dg["within_0.35"]
        metrics["digitized_total"] = dg["total"]
        metrics["digitized_mae_mean_valence"] = dg["mae"]
        metrics["digitized_outside_ids"] = dg["outside_ids"]
        metrics["fold_digitized_within_0.35"] = [
            digitized_mean_valence(lambda x, m=m: predict(m, x))["within_0.35"] for m in models
        ]
    report["metrics"] = metrics
    report["training_seconds"] = float(sum(i["seconds"] for i in infos))
    report["wall_seconds"] = time.time() - t0
    if report_dir is not None:
        rd = Path(report_dir)
        rd.mkdir(parents=True, exist_ok=True)
        tag = "" if cfg.loss == "cce" else f"_{cfg.loss}"
        (rd / f"fractions{tag}_report.json").write_text(json.dumps(report, indent=1))
        fraction_figure(report, true, pred, rd / f"fractions{tag}.png")
    if out is not None:
        from .export import build_metadata, export_onnx

        meta = build_metadata(
            architecture=cfg.arch,
            n_members=len(models),
            augmentation=augmentation_config(cfg.augmentation),
            training_data=data["training_data"],
            seed=cfg.seed,
            metrics=metrics,
            extra={
                "task": "fractions",
                "evaluation_data": datasets.evaluation_records(),
                "class_names": ["Mn2+", "Mn3+", "Mn4+"],
                "training": {
                    **{k: v for k, v in asdict(cfg).items() if k != "augmentation"},
                    "folds": folds,
                    "members": len(models),
                    "mixing": "atomic fractions; [0,1] spectra divided by the L3 height "
                    "per unit continuum step of their valence",
                    "wall_time_s": report["training_seconds"],
                    "cpu_count": os.cpu_count(),
                },
                "outputs_meaning": {
                    "probabilities": "fractions of Mn2+, Mn3+, Mn4+ (ensemble mean)",
                    "probability_std": "standard deviation of the fractions over members",
                },
            },
        )
        export_onnx(models, out, meta)
        report["onnx"] = str(out)
        if verbose:
            print(f"exported {out}", flush=True)
    report["models"] = models
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: train, evaluate and export the fraction model.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        Exit status.
    """

    from .architectures import ARCHITECTURES

    p = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.fractions",
        description="Train the Mn mixed-valence fraction model on synthetic mixtures of "
        "real single-valence Titan spectra, cross-validate it on mixtures of held-out "
        "spectra, and export the fold ensemble to ONNX.",
    )
    p.add_argument(
        "--out",
        default="mn_valence_fractions.onnx",
        help="output .onnx file (default: %(default)s in the current folder; the shipped "
        "model is replaced only when its path in the package is given)",
    )
    p.add_argument("--no-export", action="store_true", help="do not write the ONNX file")
    p.add_argument(
        "--report-dir",
        default=None,
        help="folder for fractions_report.json and the figures (default: the folder of --out)",
    )
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--members", type=int, default=3, help="fold models trained/ensembled")
    p.add_argument("--epochs", type=int, default=120)
    p.add_argument("--n-mixtures", type=int, default=10000, help="mixtures per epoch")
    p.add_argument("--n-eval", type=int, default=2000, help="held-out mixtures per fold")
    p.add_argument("--arch", default="fcn_wide", choices=sorted(ARCHITECTURES))
    p.add_argument("--loss", choices=("cce", "mse", "l1"), default="cce")
    p.add_argument("--learning-rate", type=float, default=3e-3)
    p.add_argument(
        "--max-average",
        type=int,
        default=1,
        help="mix means of 1..N same-valence spectra in training (1: single spectra)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="labelled .npz (default: Titan data)")
    p.add_argument("--no-digitized", action="store_true")
    p.add_argument("--smoke", action="store_true", help="tiny run (pipeline check)")
    a = p.parse_args(argv)
    cfg = FractionConfig(
        arch=a.arch,
        epochs=a.epochs,
        n_mixtures=a.n_mixtures,
        learning_rate=a.learning_rate,
        loss=a.loss,
        max_average=a.max_average,
        seed=a.seed,
    )
    n_eval = a.n_eval
    if a.smoke:
        cfg.epochs, cfg.n_mixtures, n_eval, cfg.smoke = 1, 128, 64, True
    from .data import load_training_data
    from .export import in_package_models

    if a.smoke and not a.no_export and in_package_models(a.out):
        p.error(f"--smoke would replace the shipped model {a.out}; give another --out")
    for name in ("folds", "members", "epochs", "n_mixtures", "n_eval"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        data = load_training_data(a.data)
    except (ValueError, OSError) as exc:
        p.error(str(exc))
    digitized = not a.no_digitized
    if digitized:
        try:
            datasets.load_digitized_references()
        except datasets.DataNotFoundError:
            print("digitized references not found: not evaluated on them", file=sys.stderr)
            digitized = False
    report_dir = a.report_dir if a.report_dir is not None else str(Path(a.out).parent)
    rep = run(
        cfg,
        folds=a.folds,
        members=a.members,
        out=None if a.no_export else a.out,
        report_dir=report_dir,
        data=data,
        n_eval=n_eval,
        digitized=digitized,
    )
    print(json.dumps({k: v for k, v in rep["metrics"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
