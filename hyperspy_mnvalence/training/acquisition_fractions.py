"""The fraction model trained on simulated acquisitions of mixtures, and its baseline.

Mixtures of clean Titan spectra (:func:`.mixtures.make_mixtures`: atomic fractions on
the simplex) are recorded every epoch through the acquisition simulator and
``preprocess`` (:func:`.acquisitions.acquisition_epoch`), exactly as the classifier's
inputs. The model is scored on mixtures of *held-out* spectra recorded at the robustness
suite's conditions, against the linear-unmixing baseline users would otherwise run:
non-negative least squares of the preprocessed spectrum onto the preprocessed class
means of the training spectra (plus a free constant, as the input is mean-subtracted),
the coefficients converted to atomic fractions.

Run ``python -m hyperspy_mnvalence.training.acquisition_fractions --help``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.preprocessing import preprocess

from .acquisitions import add_condition_arguments, titan_training_set

__all__ = ["nnls_fractions", "evaluate_fraction_suite", "main"]

CLASSES = np.array([2.0, 3.0, 4.0])


def nnls_fractions(x: np.ndarray, basis: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Atomic fractions by non-negative least squares onto class-mean inputs.

    Parameters
    ----------
    x : numpy.ndarray
        Preprocessed spectra ``(n, L)``.
    basis : numpy.ndarray
        Preprocessed class means ``(3, L)`` of the peak-normalised clean spectra.
    scale : numpy.ndarray
        Per-atom scale of each class (:func:`.mixtures.per_atom_scale`).

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` fractions summing to 1 (1/3 each where the fit is all zero).
    """
    from scipy.optimize import lsq_linear

    a = np.column_stack([basis.T, np.ones(basis.shape[1])])
    lo = np.array([0.0, 0.0, 0.0, -np.inf])
    out = np.empty((x.shape[0], 3))
    for i, row in enumerate(x):
        c = lsq_linear(a, row, bounds=(lo, np.inf)).x[:3] / scale
        s = c.sum()
        out[i] = c / s if s > 0 else 1.0 / 3.0
    return out


def _scores(pred: np.ndarray, w: np.ndarray) -> dict:
    mv = np.abs(pred @ CLASSES - w @ CLASSES)
    return {
        "mae_mean_valence": float(mv.mean()),
        "mae_fractions": float(np.abs(pred - w).mean()),
        "p95_mean_valence_error": float(np.percentile(mv, 95)),
    }


def evaluate_fraction_suite(
    predict, spectra, y, energy, basis, *, n: int = 1500, seed: int = 777
) -> dict:
    """Mean-valence and fraction errors on recorded mixtures of held-out spectra.

    Conditions: clean (very high dose, strong edge) and the suite's L3/background of
    6, 12 and 25 % at 8e4 electrons per eV with the correlated detector, 0.25 eV per
    channel, 0.5 eV resolution, offsets of +-15 eV; network and NNLS baseline side by side.

    Returns
    -------
    dict
        ``{condition: {"network": scores, "nnls": scores, "n": classified}}``.
    """
    from hyperspy_mnvalence.simulations import simulate_acquisition
    from hyperspy_mnvalence.simulations.conditions import DETECTORS

    from .fraction_config import FractionConfig
    from .mixtures import make_mixtures, per_atom_scale

    rng = np.random.default_rng(seed)
    mixed, w = make_mixtures(spectra, y, n, FractionConfig(), rng)
    scale = per_atom_scale()
    out = {}
    conds = {"clean": (0.4, np.inf, "white"), "l3bg_6": (0.06, 8e4, "correlated"),
             "l3bg_12": (0.12, 8e4, "correlated"), "l3bg_25": (0.25, 8e4, "correlated")}  # fmt: skip
    for name, (ratio, dose, det) in conds.items():
        acq = simulate_acquisition(
            n, edges=mixed, edge_energy=energy, l3_over_background=ratio, dose=dose,
            resolution_eV=0.5, dispersion_eV=0.25, offset_eV=rng.uniform(-15, 15, n),
            energy_range=(590.0, 720.0), rng=rng, **DETECTORS[det],
        )  # fmt: skip
        pre = preprocess(acq.spectra, acq.energy)
        v = pre.valid
        net = predict(pre.x[v])
        lin = nnls_fractions(pre.x[v], basis, scale)
        out[name] = {"n": int(v.sum()), "network": _scores(net, w[v]), "nnls": _scores(lin, w[v])}
    return out


def class_basis(spectra, y, energy) -> np.ndarray:
    """Preprocessed class means of clean spectra ``(3, L)``."""
    x = preprocess(spectra, energy, check_edge=False).x
    return np.stack([x[y == k].mean(0) for k in range(3)])


def export_fraction_model(
    model, fold_model, out: Path, cfg, conditions: dict, held_out: dict, info: dict
) -> dict:
    """Write an acquisition-trained fraction network as a shipped fraction model.

    Parameters
    ----------
    model : keras.Model
        The network trained on every spectrum (the one exported).
    fold_model : keras.Model
        The same recipe with fold 1 held out: the card's mixture and invariance figures
        are its figures on the held-out spectra.
    out : pathlib.Path
        The ``.onnx`` file.
    cfg : FractionConfig
        The recipe.
    conditions : dict
        The training conditions.
    held_out : dict
        The fold-1 run's fraction suite (:func:`evaluate_fraction_suite`).
    info : dict
        Training times and settings of the exported network.

    Returns
    -------
    dict
        The card's metrics.
    """
    import os

    from hyperspy_mnvalence import datasets
    from hyperspy_mnvalence.preprocessing import DEFAULT_PREPROCESSING

    from .cv import cv_splits
    from .evaluation import predict
    from .export import build_metadata, export_onnx
    from .fraction_scores import digitized_mean_valence, evaluate_invariance, evaluate_mixtures

    spectra, energy, y = titan_training_set()
    _, te = cv_splits(y, None, 5, 0)[0]
    ev = evaluate_mixtures(fold_model, spectra[te], y[te], energy, 2000, 4321, cfg)
    inv = evaluate_invariance(lambda x: predict(fold_model, x), spectra[te], y[te], energy)
    dig = digitized_mean_valence(lambda x: predict(model, x))
    metrics = {
        "mixture_mae_mean_valence": ev["clean"]["mae_mean_valence"],
        "mixture_mae_fractions": ev["clean"]["mae_fractions"],
        "mixture_p95_mean_valence_error": ev["clean"]["p95_mean_valence_error"],
        "mixture_mae_mean_valence_augmented": ev["augmented"]["mae_mean_valence"],
        "mixture_protocol": (
            "fold 1 of StratifiedKFold(5, seed 0) held out: the same recipe trained on the "
            "other folds, scored on 2000 mixtures of single held-out spectra, preprocessed "
            "as they are ('clean') or with EVAL_AUGMENTATION ('augmented')"
        ),
        "acquisition_fractions": held_out,
        "acquisition_fractions_protocol": (
            "mixtures of the fold-1 held-out spectra recorded at the robustness suite's "
            "conditions (evaluate_fraction_suite), network beside NNLS onto class means"
        ),
        "invariance_offset_max_abs_change_mean_valence": inv["offset_max_abs_change"],
        "invariance_offset_mean_abs_change_mean_valence": inv["offset_mean_abs_change"],
        "invariance_dispersion_max_abs_change_mean_valence": inv["dispersion_max_abs_change"],
        "invariance_dispersion_mean_abs_change_mean_valence": inv["dispersion_mean_abs_change"],
        "digitized_mean_valence_within_0.35": dig["within_0.35"],
        "digitized_total": dig["total"],
        "digitized_mae_mean_valence": dig["mae"],
        "digitized_outside_ids": dig["outside_ids"],
    }
    d = datasets.load_titan_valence()
    meta = build_metadata(
        architecture=cfg.arch,
        n_members=1,
        augmentation={"acquisition_conditions": conditions},
        training_data=[
            {"file": "train/titan_mn_valence.npz", "sha256": d["sha256"], "n_spectra": int(y.size)}
        ],
        seed=cfg.seed,
        metrics=metrics,
        preprocessing=dict(DEFAULT_PREPROCESSING),
        extra={
            "task": "fractions",
            "evaluation_data": datasets.evaluation_records(),
            "class_names": ["Mn2+", "Mn3+", "Mn4+"],
            "training": {
                **{k: v for k, v in asdict(cfg).items() if k != "augmentation"},
                "recorded": "mixtures recorded every epoch through the acquisition simulator "
                "and preprocess (acquisition_fractions)",
                "members": 1,
                "cpu_count": os.cpu_count(),
                **info,
            },
            "outputs_meaning": {
                "probabilities": "fractions of Mn2+, Mn3+, Mn4+",
                "probability_std": "0 (one network)",
            },
        },
    )
    export_onnx([model], out, meta)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Train (fold 1 held out) and score a fraction model on recorded mixtures."""
    ap = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.acquisition_fractions", description=__doc__
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--n-mixtures", type=int, default=8000)
    ap.add_argument("--arch", default="fcn_wide")
    ap.add_argument("--n-eval", type=int, default=1500, help="mixtures per suite condition")
    ap.add_argument("--all-data", action="store_true", help="train on every spectrum")
    ap.add_argument("--evaluate-only", type=Path, help="score a saved .keras or .onnx model")
    ap.add_argument("--export", type=Path, metavar="ONNX",
                    help="with --all-data: write the network as a fraction model (its card "
                    "from the fold-1 run in --held-out)")  # fmt: skip
    ap.add_argument("--held-out", type=Path, metavar="DIR",
                    help="the fold-1 run of the same recipe (fractions.keras, fractions_suite.json)")  # fmt: skip
    ap.add_argument("--control", metavar="CONDITION",
                    help="a control: train only at this condition of the classifier's suite "
                    "(e.g. l3bg_12, recorded exactly as the fraction suite's row of that "
                    "name); replaces --clean/--as-given/--range")  # fmt: skip
    ap.add_argument("--one-knob", action="store_true",
                    help="with --control: fix only the condition's own knob and draw the "
                    "others over the training ranges")  # fmt: skip
    add_condition_arguments(ap)
    args = ap.parse_args(argv)
    if args.export and not (args.all_data and args.held_out):
        ap.error("--export needs --all-data and --held-out (the fold-1 run of the recipe)")
    if args.one_knob and not args.control:
        ap.error("--one-knob needs --control")
    if args.control and (args.clean is not None or args.as_given is not None or args.range):
        ap.error("--control sets the training conditions: give no --clean, --as-given or --range")

    import keras

    from .acquisitions import acquisition_epoch, conditions_from_arguments, titan_training_set
    from .cv import cv_splits
    from .evaluation import predict
    from .fraction_config import FractionConfig
    from .loop import train_loop
    from .mixtures import make_mixtures

    spectra, energy, y = titan_training_set()
    tr, te = cv_splits(y, None, 5, 0)[0]
    if args.all_data:
        tr = np.arange(y.size)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = FractionConfig(arch=args.arch, epochs=args.epochs, n_mixtures=args.n_mixtures, seed=1)
    if args.control:
        from .controls import control_conditions

        conditions = control_conditions(args.control, one_knob=args.one_knob)
    else:
        conditions = conditions_from_arguments(args)
    t0 = time.time()
    if args.evaluate_only and args.evaluate_only.suffix == ".onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(args.evaluate_only), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name

        class _Onnx:
            def predict(self, x, batch_size=None, verbose=0):
                x = np.asarray(x, np.float32)
                return sess.run(None, {name: x.reshape(x.shape[0], -1)})[0]

        model, info = _Onnx(), {"model": str(args.evaluate_only)}
    elif args.evaluate_only:
        model = keras.models.load_model(args.evaluate_only)
        info = {"model": str(args.evaluate_only)}
    else:
        timing = {"data": 0.0}

        def make_epoch(rng):
            t = time.time()
            mixed, w = make_mixtures(spectra[tr], y[tr], cfg.n_mixtures, cfg, rng)
            x, ww = acquisition_epoch(mixed, energy, w, rng, conditions=conditions)
            timing["data"] += time.time() - t
            return x, ww

        model, fit = train_loop(
            cfg,
            samples_per_epoch=int(0.8 * cfg.n_mixtures),
            loss=keras.losses.CategoricalCrossentropy(),
            make_epoch=make_epoch,
            label="[fractions]",
            t0=t0,
        )
        model.save(args.out / "fractions.keras")
        info = {"seconds": time.time() - t0, "data_seconds": timing["data"], **fit}
    basis = class_basis(spectra[tr], y[tr], energy)
    res = evaluate_fraction_suite(
        lambda x: predict(model, x), spectra[te], y[te], energy, basis, n=args.n_eval
    )
    report = {
        "config": asdict(cfg),
        "conditions": conditions,
        "train": info,
        "held_out_fold": 1,
        "suite": res,
    }
    if args.all_data:
        report["note"] = "trained on every spectrum: these mixtures are in-sample"
    if args.control:
        report["control"] = {"condition": args.control, "one_knob": bool(args.one_knob)}
    (args.out / "fractions_suite.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(res, indent=1), flush=True)
    if args.export:
        held = json.loads((args.held_out / "fractions_suite.json").read_text())
        fold_model = keras.models.load_model(args.held_out / "fractions.keras")
        metrics = export_fraction_model(
            model, fold_model, args.export, cfg, conditions, held["suite"], info
        )
        print(f"exported {args.export}", json.dumps(metrics, indent=1, default=str), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
