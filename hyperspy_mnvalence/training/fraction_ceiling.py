"""How well can a fraction network read these spectra at all? A ceiling, not a model.

One network trained on the mixtures of fold 1's training spectra (StratifiedKFold(5,
seed 0)) with every augmentation off, scored on clean mixtures of the held-out spectra
and of its own training spectra, both exactly as ``fraction_scores.evaluate_mixtures`` draws
them (single spectra, seed 4321, no recording). No acquisition effect is left: no
background, noise, blur, offset or resampling, so the held-out figure bounds what the
same network can reach on recorded spectra (issue 13's fraction target is set at
L3/background 12 %).

Run ``python -m hyperspy_mnvalence.training.fraction_ceiling --help``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

__all__ = ["ceiling", "main"]


def ceiling(
    data: dict,
    arch: str = "fcn_wide",
    epochs: int = 120,
    n_mixtures: int = 10000,
    n_eval: int = 2000,
    verbose: bool = True,
) -> dict:
    """Train the ceiling network on fold 1 and score it on clean mixtures.

    Parameters
    ----------
    data : dict
        From :func:`.cv.load_training_data` (``spectra``, ``y``, ``energy``).
    arch : str
        Architecture (:data:`.architectures.ARCHITECTURES`).
    epochs, n_mixtures : int
        Training length (fresh mixtures every epoch).
    n_eval : int
        Mixtures per scored set.
    verbose : bool

    Returns
    -------
    dict
        ``config``, ``train_seconds`` and, for ``held_out`` and ``in_sample``, the
        mean-valence and fraction errors, with the mean-valence error of the pure
        spectra and of the mixtures apart.
    """
    from hyperspy_mnvalence.preprocessing import preprocess

    from .cv import cv_splits
    from .evaluation import predict
    from .fraction_config import CLASSES, FRACTION_AUGMENTATION, FractionConfig
    from .fractions import train_fraction_model
    from .mixtures import make_mixtures

    s, y, e = data["spectra"], data["y"], data["energy"]
    tr, te = cv_splits(y, None, 5, 0)[0]
    off = {k: {"enabled": False} for k in FRACTION_AUGMENTATION}
    cfg = FractionConfig(
        arch=arch, epochs=epochs, n_mixtures=n_mixtures, augmentation=off, seed=1000
    )
    t0 = time.time()
    model, _ = train_fraction_model(cfg, s[tr], y[tr], e, None, verbose, "[ceiling]")
    out: dict = {"config": asdict(cfg), "train_seconds": time.time() - t0}
    scored = FractionConfig(**{**asdict(cfg), "max_average": 1})  # single spectra
    for name, idx in (("held_out", te), ("in_sample", tr)):
        mixed, w = make_mixtures(s[idx], y[idx], n_eval, scored, np.random.default_rng(4321))
        pred = predict(model, preprocess(mixed, e, check_edge=False).x)
        err = np.abs(pred @ CLASSES - w @ CLASSES)
        pure = w.max(axis=1) > 0.999
        out[name] = {
            "mae_mean_valence": float(err.mean()),
            "mae_fractions": float(np.abs(pred - w).mean()),
            "mae_mean_valence_pure": float(err[pure].mean()) if pure.any() else None,
            "mae_mean_valence_mixed": float(err[~pure].mean()) if (~pure).any() else None,
            "n": int(w.shape[0]),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Train and score the ceiling network; write its JSON to ``--out``."""
    ap = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.fraction_ceiling", description=__doc__
    )
    ap.add_argument("--out", type=Path, required=True, help="JSON file")
    ap.add_argument("--arch", default="fcn_wide")
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--n-mixtures", type=int, default=10000)
    args = ap.parse_args(argv)

    from .data import load_training_data

    res = ceiling(load_training_data(), args.arch, args.epochs, args.n_mixtures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("held_out", "in_sample")}, indent=1), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
