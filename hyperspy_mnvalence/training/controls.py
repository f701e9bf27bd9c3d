"""Control networks: one network trained at exactly one robustness-suite condition.

Issue 13 sets the shipped model's targets against *controls*: a network of the same
architecture trained only at one condition of the suite (e.g. the L3 peak 3 % above the
background, correlated detector, 8e4 electrons per eV), which is the ceiling a model
trained for every condition can hope to reach there. For one cross-validation fold, each
control is trained on that fold's training spectra recorded afresh every epoch at its
condition, through the same simulator and ``preprocess`` as the shipped models; then the
control and the candidate's model of the same fold are scored on the same recordings of
the held-out fold at that condition.

Run ``python -m hyperspy_mnvalence.training.controls --help``.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.simulations.conditions import DETECTORS

from .acquisitions import TRAINING_CONDITIONS, titan_training_set
from .predictors import keras_predictor
from .suite import BASE, OFFSET_EV, SEED, SUITE, run_suite

__all__ = ["control_conditions", "main"]


def _suite_row(name: str) -> tuple[str, str, dict]:
    rows = {r[0]: r for r in SUITE}
    if name not in rows:
        raise ValueError(f"Unknown suite condition {name!r}; known: {sorted(rows)}.")
    return rows[name]


def control_conditions(name: str, one_knob: bool = False) -> dict:
    """Training conditions that record spectra exactly as the suite's condition ``name``.

    Parameters
    ----------
    name : str
        A condition of :data:`.suite.SUITE`, e.g. ``"l3bg_3"``.
    one_knob : bool
        Fix only what the condition changes from :data:`.suite.BASE` (e.g. the L3 height
        of ``"l3bg_3"``) and draw every other knob over the default's training ranges: a
        control that tells the price of one knob's spread from that of all of them.

    Returns
    -------
    dict
        A training distribution for :func:`.acquisitions.record` (every knob fixed at the
        suite's value and offsets drawn in the suite's range, or with ``one_knob`` only
        the condition's own knobs fixed; no clean or as-given share).
    """
    out = copy.deepcopy(TRAINING_CONDITIONS)
    change = _suite_row(name)[2]
    if one_knob:
        _fix(out, change)
    else:
        _fix(out, {**BASE, **change})
        # simulate_acquisition's default exponent and the suite's offsets, as the suite
        out["ranges"].update(background_exponent=[3.0, 3.0], offset_eV=[-OFFSET_EV, OFFSET_EV])
    out["clean"] = 0.0
    out["as_given"] = 0.0
    return out


def _fix(out: dict, settings: dict) -> None:
    """Fix the knobs of ``settings`` (a suite condition's) in a training distribution."""
    for knob, v in settings.items():
        if knob == "detector":
            det = DETECTORS[v]
            psf = float(det.get("psf_sigma_channels", 0.0))
            out["psf_sigma_channels"] = [psf, psf]
            out["correlated"] = 1.0 if psf > 0 else 0.0
            out["ranges"].update(
                gain=[float(det.get("gain", 1.0))] * 2,
                read_noise=[float(det.get("read_noise", 0.0))] * 2,
            )
        elif knob == "dispersion_eV":
            out["dispersion_bins"] = [float(v)]
        elif knob == "spikes_per_spectrum":
            out["spikes_per_spectrum"] = 2.0 * float(v)  # half the groups
        else:
            out["ranges"][knob] = [float(v), float(v)]


def main(argv: list[str] | None = None) -> int:
    """Train one control per condition for one fold; write ``controls.json`` to ``--out``."""
    ap = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.controls", description=__doc__
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--candidate", type=Path, required=True,
                    help="fold-model folder of the candidate (written by acquisition_cv)")  # fmt: skip
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--conditions", nargs="+", default=["l3bg_3", "l3bg_6", "l3bg_12", "l3bg_25"])
    ap.add_argument("--arch", default="fcn_wide")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--eval-copies", type=int, default=8)
    ap.add_argument("--one-knob", action="store_true",
                    help="fix only the knob the condition changes; the others over the "
                    "default's training ranges (control_conditions(one_knob=True))")  # fmt: skip
    ap.add_argument("--reuse", action="store_true",
                    help="score the controls already saved in --out instead of training them")  # fmt: skip
    args = ap.parse_args(argv)

    import keras

    from .acquisition_cv import AcquisitionConfig, train_fold

    spectra, energy, labels = titan_training_set()
    rec = json.loads((args.candidate / "folds.json").read_text())
    # the candidate's own held-out fold; the control trains on the rest
    te = np.sort(np.asarray(rec["folds"][str(args.fold)]["held_out"], int))
    tr = np.setdiff1d(np.arange(labels.size), te)
    candidate = keras.models.load_model(args.candidate / f"fold{args.fold}.keras")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "controls.json"
    result = json.loads(path.read_text()) if path.exists() else {"conditions": {}}
    result.update(
        candidate=str(args.candidate),
        fold=args.fold,
        n_held_out=int(te.size),
        eval_copies=args.eval_copies,
        protocol=__doc__.split("\n\n")[1].replace("\n", " "),
        one_knob=bool(args.one_knob),
    )
    for name in args.conditions:
        cond = control_conditions(name, one_knob=args.one_knob)
        cfg = AcquisitionConfig(
            arch=args.arch, epochs=args.epochs, copies=args.copies, seed=100 + args.fold
        )
        saved = args.out / f"control_{name}_fold{args.fold}.keras"
        if args.reuse:
            model = keras.models.load_model(saved)
            info = result["conditions"][name]["training"]
            info = {k: v for k, v in info.items() if k not in ("config", "conditions")}
        else:
            model, info = train_fold(
                cfg,
                spectra[tr],
                labels[tr],
                energy,
                label=f"[control {name}]",
                conditions=cond,
                val_conditions=cond,
            )
            model.save(saved)
        row = [_suite_row(name)]
        scores = {}
        for who, m in (("control", model), ("candidate", candidate)):
            r = run_suite(
                spectra[te], labels[te], energy, keras_predictor(m), copies=args.eval_copies,
                conditions=row,
            )  # fmt: skip
            scores[who] = r["conditions"][name]
        result["conditions"][name] = {
            "control": scores["control"]["accuracy"],
            "candidate": scores["candidate"]["accuracy"],
            "gap": scores["control"]["accuracy"] - scores["candidate"]["accuracy"],
            "no_edge": scores["candidate"]["no_edge"],
            "control_accuracy_classified": scores["control"]["accuracy_classified"],
            "candidate_accuracy_classified": scores["candidate"]["accuracy_classified"],
            "n": scores["candidate"]["n"],
            "training": {"config": cfg.__dict__, "conditions": cond, **info},
            "seed_of_recordings": SEED,
        }
        path.write_text(json.dumps(result, indent=1))
        print(
            f"{name}: control {scores['control']['accuracy']:.3f}  candidate "
            f"{scores['candidate']['accuracy']:.3f}  (no-edge {scores['candidate']['no_edge']:.3f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
