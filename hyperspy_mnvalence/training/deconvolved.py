"""Thick spectra deconvolved with their low loss: how each model reads them.

A thick sample scatters the whole core loss (edge and background) by the plasmon orders
of its low loss. ``classify_mn_valence(s, low_loss=ll)`` undoes that by Fourier-ratio
deconvolution first, so the network reads spectra made thin. This report records maps
thin and at t/lambda 1.5 with their low loss
(:func:`~hyperspy_mnvalence.simulations.lowloss.simulate_thick_pair`: parametric
Mn2+/Mn3+/Mn4+ edges, L3 15 % above the background, 0.3 eV resolution) and classifies
the thin spectra, the thick ones as they are and the thick ones with their low loss, at
each dose (electrons per eV of background at L3 before scattering).

Run ``python -m hyperspy_mnvalence.training.deconvolved --help``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

__all__ = ["deconvolved_accuracy"]


def deconvolved_accuracy(
    models: dict[str, str | Path],
    doses: tuple[float, ...] = (2e5, 2e6),
    shape: tuple[int, int] = (30, 30),
    t_over_lambda: float = 1.5,
    seed: int = 0,
) -> dict:
    """Accuracy of each model on thin, thick and deconvolved thick spectra.

    Parameters
    ----------
    models : dict
        ``{name: model}`` for ``classify_mn_valence(model=...)`` (a shipped name or a
        file).
    doses : tuple of float
        Electrons per eV of background at L3.
    shape : tuple of int
        Pixels per map.
    t_over_lambda : float
        Relative thickness of the thick maps.
    seed : int
        Seed of the recordings (every model reads the same spectra).

    Returns
    -------
    dict
        ``{name: {dose: {"thin", "thick_raw", "thick_deconvolved"}}}``: the share of
        pixels whose most likely valence is the true one (no-edge pixels count as wrong).
    """
    from hyperspy_mnvalence import classify_mn_valence, most_likely_valence
    from hyperspy_mnvalence.simulations.lowloss import simulate_thick_pair

    out: dict = {name: {} for name in models}
    for k, dose in enumerate(doses):
        thin, _, v_thin = simulate_thick_pair(shape, 0.0, dose=dose, rng=seed + 2 * k)
        thick, low, v = simulate_thick_pair(shape, t_over_lambda, dose=dose, rng=seed + 2 * k + 1)
        for name, model in models.items():

            def acc(s, truth, model=model, **kw) -> float:
                p = classify_mn_valence(s, model=model, show_progressbar=False, **kw)
                return float(np.mean(most_likely_valence(p).data == truth))

            out[name][f"{dose:g}"] = {
                "thin": acc(thin, v_thin),
                "thick_raw": acc(thick, v),
                "thick_deconvolved": acc(thick, v, low_loss=low),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    """Print and write the accuracies of the named models."""
    ap = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.deconvolved", description=__doc__
    )
    ap.add_argument("--models", nargs="+", required=True, metavar="NAME=MODEL",
                    help="shipped name or ONNX file per name")  # fmt: skip
    ap.add_argument("--doses", type=float, nargs="+", default=[2e5, 2e6])
    ap.add_argument("--shape", type=int, nargs=2, default=[30, 30])
    ap.add_argument("--t-over-lambda", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="JSON file for the result")
    args = ap.parse_args(argv)
    models = dict(m.split("=", 1) if "=" in m else (m, m) for m in args.models)
    result = deconvolved_accuracy(
        models, tuple(args.doses), tuple(args.shape), args.t_over_lambda, args.seed
    )
    for name, r in result.items():
        for dose, a in r.items():
            print(
                f"{name:14s} {dose:>8s} e-/eV  thin {a['thin']:.3f}  thick {a['thick_raw']:.3f}"
                f"  deconvolved {a['thick_deconvolved']:.3f}"
            )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
