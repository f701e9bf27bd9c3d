"""The edge decision on the acquisition simulator: false Mn, detection, spikes, cost.

Prints tables and writes ``benchmarks/edge_decision.json``:

* **false Mn** - the share of spectra of every negative family
  (:data:`~hyperspy_mnvalence.simulations.NEGATIVE_FAMILIES`) that :func:`preprocess`
  calls valid, at doses of 50 to 1e5 electrons per channel (0.25 eV per channel), white
  and correlated detectors, with and without one spike per spectrum, offsets +-10 eV;
* **detection** - the share of Mn spectra (valence 2/3/4, background exponent 2-5,
  resolution 0.2-1 eV, offsets +-10 eV) called valid against their L3 height over the
  background, at 8e4 electrons per eV;
* **ROC** - both against the threshold ``min_snr`` (from each spectrum's ``edge_snr``);
* **spikes** - how many more no-edge pixels one spike per spectrum costs;
* **by dispersion** - the worst cell's false Mn over the same negative grid, and the
  detection at L3/background 3, 6 and 12 %, at 0.05-1.5 eV per channel (``--dispersions``;
  the flank test reads farther at coarse dispersion, ``decisions.flank_test``);
* **cost** - CPU microseconds per 2048-channel spectrum of :func:`preprocess`
  (``time.process_time``, one BLAS thread, batches of 512, the eager benchmark's data).

Usage: ``python benchmarks/edge_decision.py [--n 400] [--min-snr 8] [--no-cost]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.decisions import EDGE_MIN_SNR, snr_threshold
from hyperspy_mnvalence.preprocessing import preprocess, single_threaded_blas
from hyperspy_mnvalence.simulations import NEGATIVE_FAMILIES, edge_negatives, edge_positives
from hyperspy_mnvalence.simulations.conditions import DETECTORS

HERE = Path(__file__).resolve().parent
DISPERSION = 0.25
DOSES_PER_CHANNEL = (50.0, 500.0, 5e3, 1e5)
L3_RATIOS = (0.02, 0.03, 0.04, 0.06, 0.1, 0.2)
THRESHOLDS = (5.0, 6.0, 7.0, 7.5, 8.0, 10.0)


def _scores(acq) -> tuple[np.ndarray, np.ndarray]:
    """Shape test passed (min_snr 0) and the edge statistic of each spectrum."""
    pre = preprocess(acq.spectra, acq.energy, min_snr=0.0)
    return pre.valid, np.nan_to_num(pre.edge_snr, nan=-np.inf)


def negatives(n: int, seed: int = 0, dispersion: float = DISPERSION) -> list[dict]:
    rows = []
    for k, (family, det, dpc, spikes) in enumerate(
        (f, d, q, s)
        for f in NEGATIVE_FAMILIES
        for d in DETECTORS
        for q in DOSES_PER_CHANNEL
        for s in (0.0, 1.0)
    ):
        if family == "spikes" and spikes == 0.0:
            continue  # the spikes family always has spikes
        acq = edge_negatives(
            family,
            n,
            detector=det,
            dose_per_channel=dpc,
            spikes=spikes,
            dispersion_eV=dispersion,
            rng=seed + k,
        )
        ok, snr = _scores(acq)
        rows.append(
            dict(family=family, detector=det, dose_per_channel=dpc, spikes=spikes, ok=ok, snr=snr)
        )
    return rows


def positives(
    n: int, seed: int = 1000, dispersion: float = DISPERSION, ratios: tuple = L3_RATIOS
) -> list[dict]:
    rows = []
    for k, (ratio, det, spikes) in enumerate(
        (r, d, s) for r in ratios for d in DETECTORS for s in (0.0, 1.0)
    ):
        # the same spectra with and without spikes (the simulator draws them last)
        acq = edge_positives(
            n,
            l3_over_background=ratio,
            detector=det,
            spikes=spikes,
            dispersion_eV=dispersion,
            rng=seed + k // 2,
        )
        ok, snr = _scores(acq)
        rows.append(dict(l3_over_background=ratio, detector=det, spikes=spikes, ok=ok, snr=snr))
    return rows


def rate(row: dict, threshold: float) -> float:
    return float(np.mean(row["ok"] & (row["snr"] > threshold)))


def cost_us_per_spectrum(repeat: int = 3) -> dict:
    sys.path.insert(0, str(HERE))
    from benchmark_classification import eager_data

    data, energy = eager_data((16, 128, 2048))
    flat = data.reshape(-1, 2048)
    out = {}
    with single_threaded_blas():
        for spikes in (True, False):
            preprocess(flat[:512], energy, remove_spikes=spikes)
            best = np.inf
            for _ in range(repeat):
                c = time.process_time()
                for i in range(0, flat.shape[0], 512):
                    preprocess(flat[i : i + 512], energy, remove_spikes=spikes)
                best = min(best, (time.process_time() - c) / flat.shape[0] * 1e6)
            out["remove_spikes" if spikes else "no_spike_removal"] = best
    return out


def by_dispersion(
    n: int, dispersions: tuple[float, ...], min_snr: float = EDGE_MIN_SNR
) -> list[dict]:
    """Worst-cell false Mn and detection (3, 6, 12 %) at each dispersion, at the threshold
    ``preprocess(min_snr=min_snr)`` applies there (:func:`snr_threshold`)."""
    out = []
    for disp in dispersions:
        t = snr_threshold(min_snr, disp)
        neg = negatives(n, dispersion=disp)
        worst = max(neg, key=lambda r: rate(r, t))
        pos = positives(n, dispersion=disp, ratios=(0.03, 0.06, 0.12))
        det = {
            str(ratio): float(
                np.mean([rate(r, t) for r in pos if r["l3_over_background"] == ratio])
            )
            for ratio in (0.03, 0.06, 0.12)
        }
        row = {
            "dispersion_eV": disp,
            "threshold": t,
            "false_mn_worst": rate(worst, t),
            "false_mn_worst_cell": {
                k: worst[k] for k in ("family", "detector", "dose_per_channel", "spikes")
            },
            "false_mn_mean": float(np.mean([rate(r, t) for r in neg])),
            "detection": det,
        }
        out.append(row)
        print(
            f"{disp:5.2f} eV/channel (min_snr {t:.2f}): false Mn worst {100 * row['false_mn_worst']:.2f}% "
            f"({worst['family']}, {worst['detector']}, {worst['dose_per_channel']:g}/channel"
            f"{', spike' if worst['spikes'] else ''}), mean {100 * row['false_mn_mean']:.2f}%; "
            "detection " + ", ".join(f"{k}: {100 * v:.1f}%" for k, v in det.items()),
            flush=True,
        )
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400, help="spectra per condition")
    ap.add_argument("--no-cost", action="store_true", help="skip the timing")
    ap.add_argument("--dispersions", type=float, nargs="*", default=[0.05, 0.25, 0.5, 0.75, 1.0, 1.5],
                    help="eV per channel of the by-dispersion table (none: skip it)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=HERE / "edge_decision.json")
    ap.add_argument("--min-snr", type=float, default=EDGE_MIN_SNR,
                    help="threshold of the tables (default: the shipped EDGE_MIN_SNR)")  # fmt: skip
    args = ap.parse_args(argv)
    t = args.min_snr
    neg, pos = negatives(args.n), positives(args.n)

    print(f"False Mn (share called valid), min_snr={t}, {args.n} spectra per cell")
    print(f"{'family':14s} {'detector':11s} " + " ".join(f"{d:>9g}" for d in DOSES_PER_CHANNEL))
    for fam in NEGATIVE_FAMILIES:
        for det in DETECTORS:
            for spikes in (0.0, 1.0):
                cells = [
                    r
                    for r in neg
                    if r["family"] == fam and r["detector"] == det and r["spikes"] == spikes
                ]
                if not cells:
                    continue
                vals = " ".join(f"{100 * rate(r, t):8.2f}%" for r in cells)
                print(f"{fam:14s} {det + (' +spk' if spikes else ''):11s} {vals}")
    print("\nDetection at 8e4 e/eV, 0.25 eV/channel (share called valid)")
    print(
        f"{'L3/bg':>6s} "
        + " ".join(f"{d + (' +spk' if s else ''):>16s}" for d in DETECTORS for s in (0, 1))
    )
    for ratio in L3_RATIOS:
        cells = [r for r in pos if r["l3_over_background"] == ratio]
        print(f"{ratio:6.2f} " + " ".join(f"{100 * rate(r, t):15.1f}%" for r in cells))

    print("\nROC: worst false Mn over all negative cells, and detection (all detectors)")
    roc = []
    for th in THRESHOLDS:
        worst = max(rate(r, th) for r in neg)
        det = {
            str(ratio): float(
                np.mean([rate(r, th) for r in pos if r["l3_over_background"] == ratio])
            )
            for ratio in L3_RATIOS
        }
        roc.append({"min_snr": th, "worst_false_mn": worst, "detection": det})
        print(
            f"min_snr {th:5.1f}: worst false Mn {100 * worst:5.2f}%  "
            + "  ".join(f"{k}: {100 * v:5.1f}%" for k, v in det.items())
        )
    # one spike per spectrum: extra no-edge pixels
    extra = {}
    for ratio in L3_RATIOS:
        for det in DETECTORS:
            a, b = (
                rate(r, t)
                for s in (0.0, 1.0)
                for r in pos
                if r["l3_over_background"] == ratio and r["detector"] == det and r["spikes"] == s
            )
            extra[f"{ratio}/{det}"] = a - b
    print(
        "\nOne spike per spectrum: extra no-edge pixels (points): "
        + ", ".join(f"{k} {100 * v:+.1f}" for k, v in extra.items())
    )
    result = {
        "min_snr": t,
        "n_per_cell": args.n,
        "dispersion_eV": DISPERSION,
        "false_mn": [
            {k: v for k, v in r.items() if k not in ("ok", "snr")} | {"rate": rate(r, t)}
            for r in neg
        ],
        "false_mn_worst_per_family": {
            f: max(rate(r, t) for r in neg if r["family"] == f) for f in NEGATIVE_FAMILIES
        },
        "detection": [
            {k: v for k, v in r.items() if k not in ("ok", "snr")} | {"rate": rate(r, t)}
            for r in pos
        ],
        "roc": roc,
        "spike_extra_no_edge": extra,
    }
    print(
        "\nWorst false Mn per family:",
        {k: f"{100 * v:.2f}%" for k, v in result["false_mn_worst_per_family"].items()},
    )
    if args.dispersions:
        print("\nBy dispersion (the same negative grid; detection at 8e4 e/eV, both detectors)")
        result["by_dispersion"] = by_dispersion(args.n, tuple(args.dispersions), t)
    if not args.no_cost:
        result["cpu_us_per_spectrum"] = cost_us_per_spectrum()
        print(
            "\nCPU per 2048-channel spectrum (process_time, 1 BLAS thread): "
            + ", ".join(f"{k} {v:.1f} us" for k, v in result["cpu_us_per_spectrum"].items())
        )
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
