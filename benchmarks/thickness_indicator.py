"""The thick-sample warning without a low loss, on the acquisition simulator.

For maps of ``--pixels`` spectra, each map with one set of conditions (plasmon
15-25 eV and 4-10 eV wide, resolution 0.1-2 eV, background exponent 2-5, dispersion
0.1/0.25/0.5/1 eV per channel, offset +-15 eV; valences 2/3/4 mixed over the pixels;
correlated detector noise), at L3 6/12/25 % above the background and 1e4/8e4
electrons per eV, it records the median post-edge ratio
(:func:`~hyperspy_mnvalence.decisions.post_edge_ratio`, via
:func:`~hyperspy_mnvalence.decisions.thick_sample_condition`'s rule) and whether the
warning fires, per t/lambda. Writes ``benchmarks/thickness_indicator.json`` with, for
maps of 64 and 128 pixels: the false-warning rate at t/lambda <= 0.5 (warned maps over
all maps), the detection rate at t/lambda >= 1.0 among the maps where a decision is
made (at least ``THICK_MIN_PIXELS`` pixels with an edge) and the share of maps decided
(overall and per cell).

Usage: ``python benchmarks/thickness_indicator.py [--maps 40] [--seed 13]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.decisions import (
    THICK_MIN_PIXELS,
    THICK_RATIO,
    post_edge_ratio,
)
from hyperspy_mnvalence.pipeline import preprocess
from hyperspy_mnvalence.simulations import simulate_acquisition
from hyperspy_mnvalence.simulations.conditions import DETECTORS

HERE = Path(__file__).resolve().parent
THICKNESSES = (0.0, 0.25, 0.5, 1.0, 1.25, 1.5)
L3_RATIOS = (0.06, 0.12, 0.25)
DOSES = (1e4, 8e4)
SIZES = (64, 128)


def map_ratios(n_maps: int, t: float, l3: float, dose: float, rng) -> np.ndarray:
    """Per-spectrum post-edge ratios, shape ``(n_maps, max(SIZES))`` (NaN: no edge)."""
    npx = max(SIZES)
    out = np.full((n_maps, npx), np.nan)
    for k in range(n_maps):
        acq = simulate_acquisition(
            npx,
            valence=rng.integers(2, 5, npx),
            t_over_lambda=t,
            plasmon_eV=rng.uniform(15, 25),
            plasmon_fwhm_eV=rng.uniform(4, 10),
            resolution_eV=rng.uniform(0.1, 2.0),
            background_exponent=rng.uniform(2, 5),
            l3_over_background=l3,
            dose=dose,
            offset_eV=rng.uniform(-15, 15),
            dispersion_eV=float(rng.choice([0.1, 0.25, 0.5, 1.0])),
            rng=rng,
            **DETECTORS["correlated"],
        )
        pre = preprocess(acq.spectra, acq.energy)
        out[k] = post_edge_ratio(acq.spectra, acq.energy, pre.peak_eV)
    return out


def decide(ratios: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The warning's rule on the first ``size`` pixels of each map: (decided, warned)."""
    r = ratios[:, :size]
    n = np.isfinite(r).sum(axis=1)
    med = np.array([np.median(x[np.isfinite(x)]) if np.isfinite(x).any() else np.nan for x in r])
    decided = n >= THICK_MIN_PIXELS
    return decided, decided & (med > THICK_RATIO)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", type=int, default=40, help="maps per cell")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", default=str(HERE / "thickness_indicator.json"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    cells = []
    for t in THICKNESSES:
        for l3 in L3_RATIOS:
            for dose in DOSES:
                r = map_ratios(args.maps, t, l3, dose, rng)
                cell = {"t_over_lambda": t, "l3_over_background": l3, "dose": dose}
                for size in SIZES:
                    d, w = decide(r, size)
                    cell[f"decided_{size}"] = float(d.mean())
                    cell[f"warned_{size}"] = float(w.mean())
                    cell[f"warned_of_decided_{size}"] = float(w[d].mean()) if d.any() else None
                    cell[f"n_decided_{size}"] = int(d.sum())
                cell["median_ratio_64"] = float(np.nanmedian(np.nanmedian(r, axis=1)))
                cells.append(cell)
                print(cell, flush=True)
    summary = {}
    for size in SIZES:
        thin = [c for c in cells if c["t_over_lambda"] <= 0.5]
        thick = [c for c in cells if c["t_over_lambda"] >= 1.0]
        n_dec = sum(c[f"n_decided_{size}"] for c in thick)
        hits = sum(
            c[f"warned_of_decided_{size}"] * c[f"n_decided_{size}"]
            for c in thick
            if c[f"n_decided_{size}"]
        )
        summary[str(size)] = {
            "false_warning_rate_t_le_0.5": float(np.mean([c[f"warned_{size}"] for c in thin])),
            "worst_cell_false_warning_rate": float(max(c[f"warned_{size}"] for c in thin)),
            "detection_rate_t_ge_1.0_of_decided": float(hits / n_dec) if n_dec else None,
            "worst_cell_detection_rate_of_decided": min(
                (c[f"warned_of_decided_{size}"] for c in thick if c[f"n_decided_{size}"]),
                default=None,
            ),
            "decided_share_t_ge_1.0": float(np.mean([c[f"decided_{size}"] for c in thick])),
            "worst_cell_decided_share_t_ge_1.0": float(min(c[f"decided_{size}"] for c in thick)),
        }
    res = {
        "threshold": THICK_RATIO,
        "min_pixels": THICK_MIN_PIXELS,
        "maps_per_cell": args.maps,
        "seed": args.seed,
        "detector": "correlated",
        "summary_by_map_pixels": summary,
        "cells": cells,
    }
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return res


if __name__ == "__main__":
    main()
