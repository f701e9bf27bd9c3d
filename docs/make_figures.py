"""Render the figures of the user guide and measure the white-line cross-check.

Run from the repository root: ``python docs/make_figures.py`` (about a minute on two
CPU cores; the white-line calibration needs the labelled data in ``MNVALENCE_DATA``,
used for evaluation only). Writes ``docs/_static/*.png`` and
``docs/_static/white_line_calibration.json`` (the numbers quoted in the user guide).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hyperspy_mnvalence as mnv  # noqa: E402
from hyperspy_mnvalence import plotting as pl  # noqa: E402
from hyperspy_mnvalence.white_line import white_line_ratio_spectra  # noqa: E402

OUT = Path(__file__).parent / "_static"
DPI = 90


def _save(fig, name: str) -> None:
    fig.savefig(OUT / name, dpi=DPI)
    print("wrote", OUT / name)


def shapes() -> None:
    """The four shapes of issue 18: 21 x 2 map, 40-pixel line scan, 128 x 128, stack."""
    # a thin 21 x 2 map calibrated in um (shown in nm), with no-edge ends
    thin = mnv.make_demo_spectrum_image((8, 21), seed=3).inav[:, 3:5]
    for a in thin.axes_manager.navigation_axes:
        a.scale, a.offset, a.units = 0.0025, 0.0, "µm"
    p = thin.classify_mn_valence(show_progressbar=False)
    _save(pl.plot_valence_maps(p, title="21 x 2 map"), "figure_map_21x2.png")
    # a 40-pixel line scan: vacuum at the start, a Mn-free substrate at the end
    line = mnv.make_demo_spectrum_image((8, 40), seed=4).inav[:, 4]
    p = line.classify_mn_valence(show_progressbar=False)
    fig = pl.plot_valence_maps(p, cross_check=True, signal=line, title="40-pixel line scan")
    _save(fig, "figure_line_40.png")
    _save(pl.plot_pixel_spectra(line, p, [10, 20, 30, 38]), "figure_pixel_spectra.png")
    # 128 x 128 with an ADF-like image (the total counts) and the white-line cross-check
    big = mnv.make_demo_spectrum_image((128, 128), seed=0)
    p = big.classify_mn_valence(show_progressbar=False)
    adf = hs.signals.Signal2D(np.asarray(big.data.sum(-1), dtype=float))
    adf.metadata.General.title = "ADF (simulated)"
    for a, b in zip(adf.axes_manager.signal_axes, big.axes_manager.navigation_axes, strict=True):
        a.name, a.units, a.scale, a.offset = b.name, b.units, b.scale, b.offset
    fig = pl.plot_valence_maps(p, image=adf, cross_check=True, signal=big, title="128 x 128 map")
    _save(fig, "figure_map_128x128.png")
    # a stack of three maps
    stack = hs.stack([mnv.make_demo_spectrum_image((24, 32), seed=k) for k in range(3)])
    stack.axes_manager.navigation_axes[2].name = "map"
    p = stack.classify_mn_valence(show_progressbar=False)
    _save(pl.plot_valence_maps(p, title="Stack of three maps"), "figure_stack_3.png")


def _thresholds(ratio: np.ndarray, valence: np.ndarray) -> tuple[float, float, float]:
    """Two ratio thresholds (Mn4+ | Mn3+ | Mn2+) with the best accuracy on training data."""
    ok = np.isfinite(ratio)
    r, v = ratio[ok], valence[ok]
    cands = np.quantile(r, np.linspace(0.01, 0.99, 197))
    best = (0.0, 0.0, 0.0)
    for a in cands:
        for b in cands[cands > a]:
            acc = float(np.mean(_classify(r, a, b) == v))
            if acc > best[0]:
                best = (acc, float(a), float(b))
    return best


def _classify(r: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.where(r > hi, 2, np.where(r > lo, 3, 4))


def white_line_calibration() -> dict:
    """The ratio on the simulator, the Titan training spectra (thresholds) and the 31
    digitized references (evaluation only), with the network's classes beside it."""
    from scipy.stats import spearmanr

    from hyperspy_mnvalence.classification import classify_spectra
    from hyperspy_mnvalence.datasets import load_digitized_references, load_titan_valence
    from hyperspy_mnvalence.simulations import synthetic_spectra

    res: dict = {"method": "white_line_ratio defaults (hyperspy_mnvalence.white_line)"}
    # simulator: noise-free edges at three resolutions
    e = np.arange(600.0, 700.0, 0.1)
    sim = {}
    for fwhm in (0.3, 0.6, 1.0):
        sim[str(fwhm)] = {
            str(v): float(
                white_line_ratio_spectra(
                    synthetic_spectra(e, v, noise=False, resolution_eV=fwhm), e
                )["ratio"][0]
            )
            for v in (2, 3, 4)
        }
    res["simulator_noise_free"] = sim
    # thresholds from the Titan training spectra (train/, allowed for fitting)
    t = load_titan_valence()
    tr = white_line_ratio_spectra(t["spectra"], t["energy"])["ratio"]
    acc, lo, hi = _thresholds(tr, t["valence"])
    res["titan_train"] = {
        "n": int(tr.size),
        "nan": int(np.isnan(tr).sum()),
        "per_valence": {
            str(v): [
                float(np.nanmean(tr[t["valence"] == v])),
                float(np.nanstd(tr[t["valence"] == v])),
            ]
            for v in (2, 3, 4)
        },
        "thresholds": [lo, hi],
        "threshold_accuracy": acc,
    }
    # digitized references: evaluation only
    refs = load_digitized_references()
    ratio = np.array(
        [white_line_ratio_spectra(r["intensity"], r["energy"])["ratio"][0] for r in refs]
    )
    l3 = np.array([white_line_ratio_spectra(r["intensity"], r["energy"])["l3_eV"][0] for r in refs])
    val = np.array([r["valence"] for r in refs])
    net = []
    for r in refs:
        prob = classify_spectra(r["intensity"][None], r["energy"])[0, :3]
        net.append(int(np.argmax(prob)) + 2 if np.all(np.isfinite(prob)) else -1)
    net = np.array(net)
    thr = _classify(ratio, lo, hi)
    res["digitized"] = {
        "n": len(refs),
        "nan": int(np.isnan(ratio).sum()),
        "per_valence": {
            str(v): [
                float(ratio[val == v].mean()),
                float(ratio[val == v].std()),
                int((val == v).sum()),
            ]
            for v in (2, 3, 4)
        },
        "l3_eV_per_valence": {
            str(v): [float(l3[val == v].mean()), float(l3[val == v].std())] for v in (2, 3, 4)
        },
        "spearman_ratio_vs_valence": float(spearmanr(ratio, val).statistic),
        "spearman_ratio_vs_network_class": float(spearmanr(ratio, net).statistic),
        "network_correct": int((net == val).sum()),
        "threshold_correct": int((thr == val).sum()),
        "threshold_agrees_with_network": int((thr == net).sum()),
        "threshold_confusion": {
            str(v): {str(w): int(np.sum((val == v) & (thr == w))) for w in (2, 3, 4)}
            for v in (2, 3, 4)
        },
        "per_spectrum": [
            {
                "id": r["id"],
                "source": r["source"],
                "valence": int(v),
                "ratio": float(x),
                "network": int(n),
            }
            for r, v, x, n in zip(refs, val, ratio, net, strict=True)
        ],
    }
    (OUT / "white_line_calibration.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res["digitized"].items() if k != "per_spectrum"}, indent=1))
    print(json.dumps(res["titan_train"], indent=1), json.dumps(sim, indent=1))
    _calibration_figure(res, tr, t["valence"], ratio, l3, val, refs)
    return res


def _calibration_figure(res, tr, tv, ratio, l3, val, refs) -> None:
    fig = Figure(figsize=(10.5, 4.4), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    rng = np.random.default_rng(0)
    for v in (2, 3, 4):
        x = tr[(tv == v) & np.isfinite(tr)]
        parts = a1.violinplot([x], positions=[v - 0.18], widths=0.3, showextrema=False)
        for b in parts["bodies"]:
            b.set_facecolor("0.7")
            b.set_alpha(0.8)
    sources = sorted({r["source"] for r in refs})
    markers = ["o", "s", "^", "D"]
    for j, src in enumerate(sources):
        m = np.array([r["source"] == src for r in refs])
        jit = rng.uniform(-0.06, 0.06, m.sum())
        a1.scatter(
            val[m] + 0.12 + jit,
            ratio[m],
            marker=markers[j % 4],
            c=[pl.VALENCE_COLORS[v - 2] for v in val[m]],
            edgecolors="black",
            lw=0.5,
            s=30,
            label=f"digitized: {src[:40]}",
        )
        a2.scatter(
            val[m] + jit, l3[m], marker=markers[j % 4], c=[pl.VALENCE_COLORS[v - 2] for v in val[m]],
            edgecolors="black", lw=0.5, s=30,
        )  # fmt: skip
    sim = res["simulator_noise_free"]
    for d in sim.values():
        a1.plot([2, 3, 4], [d[str(v)] for v in (2, 3, 4)], "--", lw=0.8, color="0.3")
    a1.plot([], [], "--", lw=0.8, color="0.3", label="simulator, noise-free (0.3-1 eV)")
    a1.fill_between([], [], color="0.7", label="Titan training spectra")
    lo, hi = res["titan_train"]["thresholds"]
    for th in (lo, hi):
        a1.axhline(th, color="black", lw=0.8, ls=":")
    a1.plot([], [], ":", color="black", label="thresholds (fitted on Titan training)")
    a1.set_xticks([2, 3, 4], ["Mn2+", "Mn3+", "Mn4+"])
    a1.set_ylabel("L3/L2 white-line ratio")
    a1.set_ylim(0, min(8.0, float(np.nanpercentile(tr, 99.5)) + 0.5))
    a1.set_title("White-line ratio per valence")
    from matplotlib.lines import Line2D

    handles, labels = a1.get_legend_handles_labels()
    grey = {"color": "none", "markerfacecolor": "0.75", "markeredgecolor": "black"}
    handles = [
        Line2D([], [], marker=h.get_paths() and markers[labels.index(lab) % 4], **grey)
        if lab.startswith("digitized")
        else h
        for h, lab in zip(handles, labels, strict=True)
    ]
    fig.legend(handles, labels, fontsize="x-small", loc="outside lower center", ncols=3)
    a2.set_xticks([2, 3, 4], ["Mn2+", "Mn3+", "Mn4+"])
    a2.set_ylabel("L3 position (eV, as published)")
    a2.set_title("L3 position, digitized references")
    _save(fig, "white_line_calibration.png")


if __name__ == "__main__":
    what = sys.argv[1:] or ["shapes", "calibration"]
    if "shapes" in what:
        shapes()
    if "calibration" in what:
        white_line_calibration()
