"""The public robustness suite: accuracy on realistic acquisitions, held-out spectra only.

Every Titan spectrum is recorded through the acquisition simulator under a fixed grid of
conditions (:data:`SUITE`), each condition changing one knob of :data:`BASE`:

* L3 height above the background 3, 6, 12, 25 % at 8e4 electrons per eV of background
  at the edge, with a correlated (CCD-like) and with a white (electron-counting)
  detector;
* relative thickness t/lambda 0, 0.5, 1.0, 1.5; resolution 0.3, 1, 2 eV; dispersion
  0.05, 0.25, 0.5, 1 eV per channel; one cosmic-ray spike per spectrum;

with a random calibration offset of +-15 eV per spectrum. The recordings are seeded, so
every model sees the same raw spectra; each spectrum is classified through the full
inference path (``preprocess`` + network) by the model that did not train on it.
Accuracy counts a spectrum flagged "no Mn edge" as wrong; the no-edge rate is reported
beside it, and the false-Mn rate on the simulator's negative families.

The edge decision's ROC (:func:`edge_roc`, ``--roc``): on the suite's recordings at each
L3/background level (correlated and white detector) and on the negative families, the
share called "Mn edge" as the threshold ``min_snr`` sweeps. It reads the preprocessing
only (no network), so it holds for every model with the same preprocessing parameters.

Run ``python -m hyperspy_mnvalence.training.suite --help``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.simulations import (
    NEGATIVE_FAMILIES,
    simulate_acquisition,
    simulate_negatives,
)
from hyperspy_mnvalence.simulations.conditions import DETECTORS

from .predictors import (
    Predictor,
    keras_fold_predictor,
    keras_predictor,
    onnx_fold_predictor,
    onnx_predictor,
    routed_fold_predictor,
)

__all__ = [
    "BASE",
    "AT_KNOBS",
    "clean_at",
    "clean_at_dispersion",
    "conditions_at",
    "conditions_at_dispersion",
    "ROC_THRESHOLDS",
    "SUITE",
    "edge_roc",
    "main",
    "negatives_false_mn",
    "roc_figure",
    "run_suite",
    "suite_figure",
    "uncertainty_quartiles",
]

#: The reference condition every suite condition departs from.
BASE: dict = {
    "l3_over_background": 0.12,
    "dose": 8e4,
    "dispersion_eV": 0.25,
    "resolution_eV": 0.5,
    "t_over_lambda": 0.0,
    "detector": "correlated",
    "spikes_per_spectrum": 0.0,
}

#: (name, group, changes to BASE), fixed: the public grid models are compared on.
SUITE: list[tuple[str, str, dict]] = (
    [(f"l3bg_{int(r * 100)}", "l3_over_background", {"l3_over_background": r})
     for r in (0.03, 0.06, 0.12, 0.25)]
    + [(f"white_l3bg_{int(r * 100)}", "white", {"l3_over_background": r, "detector": "white"})
       for r in (0.03, 0.06, 0.12, 0.25)]
    + [(f"t_{t}", "t_over_lambda", {"t_over_lambda": t}) for t in (0.0, 0.5, 1.0, 1.5)]
    + [(f"res_{r}", "resolution_eV", {"resolution_eV": r}) for r in (0.3, 1.0, 2.0)]
    + [(f"disp_{d}", "dispersion_eV", {"dispersion_eV": d}) for d in (0.05, 0.25, 0.5, 1.0)]
    + [("spikes_1", "spikes", {"spikes_per_spectrum": 1.0})]
)  # fmt: skip

SEED = 20261127
OFFSET_EV = 15.0


#: The knobs a suite can be recorded at (``conditions_at``), with their rows' prefix.
AT_KNOBS: dict[str, str] = {"dispersion_eV": "disp", "resolution_eV": "res"}


def _at_value(knob: str, value: float) -> float:
    """``value`` as a float, for a knob a suite can be recorded at (else a ValueError)."""
    if knob not in AT_KNOBS:
        raise ValueError(f"knob must be one of {sorted(AT_KNOBS)}, not {knob!r}")
    return float(value)


def conditions_at(knob: str, value: float) -> list[tuple[str, str, dict]]:
    """The suite recorded at one value of a knob: how a model for that value is judged.

    Every Mn condition of :data:`SUITE` outside the knob's group, at ``value``, then
    the base condition at it.

    Parameters
    ----------
    knob : {"dispersion_eV", "resolution_eV"}
        eV per channel, or the zero-loss FWHM in eV.
    value : float
        The knob's value.

    Returns
    -------
    list of tuple
        ``(name, group, changes to BASE)``, in a fixed order (the seeds follow it).
    """
    v = _at_value(knob, value)
    rows = [
        (f"{name}@{v:g}", group, {**cond, knob: v}) for name, group, cond in SUITE if group != knob
    ]
    return rows + [(f"{AT_KNOBS[knob]}_{v:g}", knob, {knob: v})]


def clean_at(knob: str, value: float) -> list[tuple[str, str, dict]]:
    """One noise-free condition at one value of ``knob``: an electron-counting detector
    at infinite dose (expected values), the base condition otherwise."""
    v = _at_value(knob, value)
    return [(f"clean@{v:g}", "clean", {knob: v, "detector": "white", "dose": np.inf})]


def conditions_at_dispersion(dispersion_eV: float) -> list[tuple[str, str, dict]]:
    """:func:`conditions_at` for the dispersion (eV per channel)."""
    return conditions_at("dispersion_eV", dispersion_eV)


def clean_at_dispersion(dispersion_eV: float) -> list[tuple[str, str, dict]]:
    """:func:`clean_at` for the dispersion (eV per channel)."""
    return clean_at("dispersion_eV", dispersion_eV)


def _record(spectra, energy, cond: dict, seed: int, copies: int):
    c = {**BASE, **cond}
    det = dict(DETECTORS[c.pop("detector")])
    n = spectra.shape[0]
    rng = np.random.default_rng(seed)
    src = np.tile(np.arange(n), copies)
    acq = simulate_acquisition(
        src.size,
        edges=spectra[src],
        edge_energy=energy,
        offset_eV=rng.uniform(-OFFSET_EV, OFFSET_EV, src.size),
        energy_range=(590.0, 720.0),
        rng=rng,
        **c,
        **det,
    )
    return src, acq


def run_suite(
    spectra: np.ndarray,
    labels: np.ndarray,
    energy: np.ndarray,
    predict: Predictor,
    *,
    copies: int = 2,
    conditions: list[tuple[str, str, dict]] | None = None,
) -> dict:
    """Score one model (or a set of fold models) on the suite.

    Parameters
    ----------
    spectra, labels, energy : numpy.ndarray
        Clean spectra ``(n, k)``, class indices 0-2 and the energy axis.
    predict : callable
        ``predict(raw, energy, source) -> (m, 3)`` probabilities of raw spectra (NaN rows
        where the inference path flags no Mn edge); ``source`` gives the index of the
        clean spectrum each raw one was recorded from (to pick the held-out fold model).
    copies : int
        Recordings of each spectrum per condition.
    conditions : list, optional
        Default :data:`SUITE`.

    Returns
    -------
    dict
        Per condition: ``accuracy`` (right / all), ``no_edge`` (share flagged),
        ``accuracy_classified`` (right / classified), ``n``, the ``group`` and the
        condition; plus the clean Titan accuracy (``clean``: the spectra themselves).
    """
    out: dict = {"conditions": {}}
    for i, (name, group, cond) in enumerate(conditions or SUITE):
        src, acq = _record(spectra, energy, cond, SEED + i, copies)
        p = predict(acq.spectra, acq.energy, src)
        flagged = ~np.isfinite(p).all(1)
        pred = np.where(flagged, -1, np.nan_to_num(p).argmax(1))
        right = pred == labels[src]
        out["conditions"][name] = {
            "group": group,
            "condition": {**BASE, **cond},
            "n": int(src.size),
            "accuracy": float(right.mean()),
            "no_edge": float(flagged.mean()),
            "accuracy_classified": float(right[~flagged].mean()) if (~flagged).any() else None,
        }
    src = np.arange(spectra.shape[0])
    p = predict(spectra, energy, src)
    ok = np.isfinite(p).all(1)
    out["clean"] = float(np.mean(np.where(ok, np.nan_to_num(p).argmax(1), -1) == labels))
    accs = [c["accuracy"] for c in out["conditions"].values()]
    out["worst"] = float(min(accs))
    out["mean"] = float(np.mean(accs))
    out["score"] = 0.5 * out["worst"] + 0.5 * out["mean"]
    return out


def negatives_false_mn(
    classify: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int = 400
) -> dict:
    """Share of edge-free spectra reported as Mn, per negative family and detector.

    Parameters
    ----------
    classify : callable
        ``classify(raw, energy) -> (m, 3)`` with NaN rows where no edge is found.
    n : int
        Spectra per family and detector.

    Returns
    -------
    dict
        ``{family: {detector: false-Mn share}}`` at 8e4 electrons per eV, 0.25 eV per
        channel, offsets of +-15 eV.
    """
    out: dict = {}
    for fam, det, acq in _negatives(n):
        p = classify(acq.spectra, acq.energy)
        out.setdefault(fam, {})[det] = float(np.isfinite(p).all(1).mean())
    return out


def _negatives(n: int):
    """The suite's negatives: ``(family, detector, Acquisition)`` for every family and
    detector, at 8e4 electrons per eV, 0.25 eV per channel and offsets of +-15 eV (the
    same seeds for every model and for the ROC)."""
    for j, fam in enumerate(NEGATIVE_FAMILIES):
        for det in ("white", "correlated"):
            rng = np.random.default_rng(SEED + 100 + 7 * j + (det == "white"))
            acq = simulate_negatives(
                fam, n, rng=rng, dose=8e4, dispersion_eV=0.25,
                offset_eV=rng.uniform(-OFFSET_EV, OFFSET_EV, n), **DETECTORS[det],
            )  # fmt: skip
            yield fam, det, acq


#: Thresholds ``min_snr`` of the edge decision swept by :func:`edge_roc`.
ROC_THRESHOLDS = (0.0, 3.0, 5.0, 6.0, 7.0, 7.5, 8.0, 9.0, 10.0, 12.0, 16.0)


def _edge_scores(raw: np.ndarray, energy: np.ndarray, params: dict | None) -> np.ndarray:
    """Each spectrum's edge statistic where its shape tests pass, else -inf."""
    from hyperspy_mnvalence.preprocessing import preprocess

    pre = preprocess(raw, energy, params=params, min_snr=0.0)
    return np.where(pre.valid, np.nan_to_num(pre.edge_snr, nan=-np.inf), -np.inf)


def edge_roc(
    spectra: np.ndarray,
    energy: np.ndarray,
    *,
    params: dict | None = None,
    thresholds: tuple[float, ...] = ROC_THRESHOLDS,
    copies: int = 2,
    n_negatives: int = 400,
) -> dict:
    """ROC of the edge decision: detection on the suite's Mn spectra, false Mn on the
    negatives, against ``min_snr``.

    A spectrum is called "Mn edge" at threshold ``x`` when its shape tests pass and its
    edge statistic (``Preprocessed.edge_snr``) exceeds ``x``, exactly as
    ``preprocess(min_snr=x)`` decides at the suite's 0.25 eV per channel (coarser than
    0.5 eV per channel the decision scales ``x``:
    :func:`~hyperspy_mnvalence.decisions.snr_threshold`).

    Parameters
    ----------
    spectra, energy : numpy.ndarray
        Clean Mn spectra ``(n, k)`` and their energy axis (the suite's Titan spectra),
        recorded as :func:`run_suite` records them (same seeds) for the L3/background
        conditions of :data:`SUITE` (groups ``l3_over_background`` and ``white``).
    params : dict, optional
        Preprocessing parameters (a model's ``preprocessing``; default the package's).
    thresholds : tuple of float
        Values of ``min_snr``.
    copies : int
        Recordings of each spectrum per condition.
    n_negatives : int
        Spectra per negative family and detector (the seeds of
        :func:`negatives_false_mn`).

    Returns
    -------
    dict
        ``thresholds``; ``detection`` ``{condition: [share per threshold]}`` with the
        condition's ``l3_over_background`` and detector; ``false_mn``
        ``{family: {detector: [share per threshold]}}``; ``worst_false_mn`` and
        ``mean_false_mn`` (the highest and the mean over families and detectors, per
        threshold).
    """
    th = np.asarray(thresholds, dtype=np.float64)
    det: dict = {}
    for i, (name, group, cond) in enumerate(SUITE):
        if group not in ("l3_over_background", "white"):
            continue
        _, acq = _record(spectra, energy, cond, SEED + i, copies)
        s = _edge_scores(acq.spectra, acq.energy, params)
        c = {**BASE, **cond}
        det[name] = {
            "l3_over_background": c["l3_over_background"],
            "detector": c["detector"],
            "n": int(s.size),
            "rate": [float(np.mean(s > x)) for x in th],
        }
    fm: dict = {}
    for fam, d, acq in _negatives(n_negatives):
        s = _edge_scores(acq.spectra, acq.energy, params)
        fm.setdefault(fam, {})[d] = [float(np.mean(s > x)) for x in th]
    every = [v for f in fm.values() for v in f.values()]
    return {
        "thresholds": th.tolist(),
        "n_negatives": int(n_negatives),
        "copies": int(copies),
        "detection": det,
        "false_mn": fm,
        "worst_false_mn": np.max(every, axis=0).tolist(),
        "mean_false_mn": np.mean(every, axis=0).tolist(),
    }


def roc_figure(roc: dict, path: Path, default: float | None = None) -> None:
    """Detection against the false-Mn rate (mean over the negative families and
    detectors) as ``min_snr`` sweeps, one curve per L3/background level and detector,
    and the false-Mn rate per family against ``min_snr``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    th = np.asarray(roc["thresholds"])
    fm = 100 * np.asarray(roc["mean_false_mn"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {}
    for d in roc["detection"].values():
        r = d["l3_over_background"]
        style = "o-" if d["detector"] == "correlated" else "s--"
        line = axes[0].plot(fm, 100 * np.asarray(d["rate"]), style, color=colours.get(r),
                            ms=3, label=f"L3/bg {100 * r:g} % ({d['detector']})")  # fmt: skip
        colours.setdefault(r, line[0].get_color())
    if default is not None and np.any(th == default):
        k = int(np.nonzero(th == default)[0][0])
        axes[0].axvline(fm[k], color="k", lw=0.8, ls=":", label=f"min_snr {default:g}")
    axes[0].set_xscale("symlog", linthresh=0.1)
    axes[0].set_xlim(0, 100)
    axes[0].set_xlabel("false Mn, mean over the negative families and detectors (%)")
    axes[0].set_ylabel("Mn spectra called Mn edge (%)")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    for fam, dets in roc["false_mn"].items():
        line = axes[1].plot(th, 100 * np.asarray(dets["correlated"]), "o-", ms=3, label=fam)
        axes[1].plot(th, 100 * np.asarray(dets["white"]), "s--", ms=3, alpha=0.6,
                     color=line[0].get_color())  # fmt: skip
    if default is not None:
        axes[1].axvline(default, color="k", lw=0.8, ls=":")
    axes[1].set_yscale("symlog", linthresh=0.1)
    axes[1].set_ylim(0, 100)
    axes[1].set_xlabel("min_snr")
    axes[1].set_ylabel("false Mn (%), correlated - / white --")
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def uncertainty_quartiles(
    model: str,
    spectra: np.ndarray,
    labels: np.ndarray,
    energy: np.ndarray,
    names: tuple[str, ...] = ("l3bg_3", "l3bg_6", "l3bg_12", "l3bg_25", "t_1.5", "res_2.0"),
) -> dict:
    """Error rate per quartile of the model's uncertainties, on suite conditions.

    Two uncertainties of the exported model (through ``classify_spectra``): the ensemble
    spread of the winning class (``probability_std``) and the normalised entropy of the
    mean probabilities. A useful uncertainty has an error rate rising from its lowest to
    its highest quartile.

    Returns
    -------
    dict
        ``{"spread": [4 error rates], "entropy": [...], "n": classified}``, pooled over
        the conditions ``names``.
    """
    from hyperspy_mnvalence.classification import classify_spectra

    err, spread, ent = [], [], []
    for i, (name, _, cond) in enumerate(SUITE):
        if name not in names:
            continue
        src, acq = _record(spectra, energy, cond, SEED + i, 1)
        out = classify_spectra(acq.spectra, acq.energy, model=model)
        p, sd = out[:, :3], out[:, 3:6]
        ok = np.isfinite(p).all(1)
        k = p[ok].argmax(1)
        err.append(k != labels[src][ok])
        spread.append(sd[ok][np.arange(k.size), k])
        q = np.clip(p[ok], 1e-12, 1)
        ent.append(-(q * np.log(q)).sum(1) / np.log(3))
    err, spread, ent = map(np.concatenate, (err, spread, ent))
    res = {"n": int(err.size), "conditions": list(names)}
    for key, u in (("spread", spread), ("entropy", ent)):
        edges = np.quantile(u, [0.25, 0.5, 0.75])
        qi = np.searchsorted(edges, u, side="right")
        res[key] = [float(err[qi == j].mean()) for j in range(4)]
    return res


def suite_figure(results: dict[str, dict], path: Path) -> None:
    """Accuracy against L3/background, one line per model (the paper's noise figure for
    real conditions), and the other groups as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=[1, 1.6])
    ratios = [3, 6, 12, 25]

    def floor(keys, default: float) -> float:
        # the axis starts low enough to show every value (a model that fails somewhere)
        low = min(res["conditions"][k]["accuracy"] for res in results.values() for k in keys)
        return min(default, 0.1 * np.floor(10 * low))

    for name, res in results.items():
        c = res["conditions"]
        line = axes[0].plot(ratios, [c[f"l3bg_{r}"]["accuracy"] for r in ratios], "o-",
                            label=f"{name} (correlated)")  # fmt: skip
        axes[0].plot(ratios, [c[f"white_l3bg_{r}"]["accuracy"] for r in ratios], "s--",
                     color=line[0].get_color(), alpha=0.6, label=f"{name} (white)")  # fmt: skip
    axes[0].set_xscale("log")
    axes[0].set_xticks(ratios, [f"{r} %" for r in ratios])
    axes[0].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_xlabel("L3 height above background (8e4 e-/eV of background)")
    axes[0].set_ylabel("accuracy (no-edge counts as wrong)")
    lines = [f"{p}l3bg_{r}" for p in ("", "white_") for r in ratios]
    axes[0].set_ylim(floor(lines, 0.3), 1.0)
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    others = [
        k for k in next(iter(results.values()))["conditions"] if not k.startswith(("l3bg", "white"))
    ]
    width = 0.8 / max(len(results), 1)
    for i, (name, res) in enumerate(results.items()):
        axes[1].bar(np.arange(len(others)) + i * width,
                    [res["conditions"][k]["accuracy"] for k in others], width, label=name)  # fmt: skip
    axes[1].set_xticks(np.arange(len(others)) + 0.4 - width / 2, others, rotation=60, fontsize=7)
    axes[1].set_ylim(floor(others, 0.5), 1.0)
    axes[1].set_ylabel("accuracy at L3/background 12 %")
    axes[1].legend(fontsize=7)
    axes[1].grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Score models on the suite; write ``<name>.json`` per model and ``suite.png``."""
    ap = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.suite", description=__doc__
    )
    ap.add_argument("--folds", nargs="*", default=[], metavar="NAME=DIR",
                    help="fold models (folder written by acquisition_cv); NAME=DIR1+DIR2 "
                    "averages the probabilities of several folders of the same folds")  # fmt: skip
    ap.add_argument("--routed", nargs="*", default=[], metavar="NAME=GENERAL,WEAK,T[,STAT]",
                    help="two fold folders of the same folds: spectra whose STAT (edge_snr, "
                    "the default, or l3_over_background) is below T read by WEAK's fold "
                    "models, the others by GENERAL's")  # fmt: skip
    ap.add_argument("--onnx", nargs="*", default=[], metavar="NAME=MODEL",
                    help="ONNX model file or shipped name, scored on every spectrum")  # fmt: skip
    ap.add_argument("--onnx-folds", nargs="*", default=[], metavar="NAME=MODEL[,WEAK,T]",
                    help="an exported ensemble of the fold models (a shipped name such as "
                    "acquisition, or a file): each spectrum read by the member that held it "
                    "out, so the held-out suite needs no fold folders; with WEAK and T, "
                    "spectra whose measured L3/background is below T read by WEAK's member "
                    "(the weak-edge route)")  # fmt: skip
    ap.add_argument("--keras", nargs="*", default=[], metavar="NAME=FILE",
                    help="one saved Keras model, scored on every spectrum")  # fmt: skip
    ap.add_argument("--held-out", metavar="DIR=K",
                    help="score only the held-out spectra of fold K of the fold folder DIR")  # fmt: skip
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--negatives", type=int, default=400, help="spectra per negative family")
    ap.add_argument("--roc", action="store_true",
                    help="also the edge decision's ROC (roc.json, roc.png)")  # fmt: skip
    ap.add_argument("--at-dispersion", type=float, metavar="EV",
                    help="the suite recorded at this dispersion (conditions_at_dispersion), "
                    "with a noise-free row at it (clean_at_dispersion)")  # fmt: skip
    ap.add_argument("--at-resolution", type=float, metavar="EV",
                    help="the suite recorded at this zero-loss FWHM (conditions_at), "
                    "with a noise-free row at it (clean_at)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.held_out and (args.folds or args.routed or args.onnx_folds):
        ap.error("--held-out scores single models (--keras, --onnx), not fold folders")

    from .acquisitions import titan_training_set

    spectra, energy, labels = titan_training_set()
    if args.held_out:
        path, k = args.held_out.rsplit("=", 1)
        rec = json.loads((Path(path) / "folds.json").read_text())
        te = np.asarray(rec["folds"][k]["held_out"], int)
        spectra, labels = spectra[te], labels[te]
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    preds = {}
    for item in args.folds:
        name, path = item.split("=", 1)
        dirs = [Path(d) for d in path.split("+")]
        try:  # one preprocessing for every folder's models (a blend of recipes)
            preds[name] = keras_fold_predictor(dirs, spectra.shape[0])
        except ValueError as err:
            ap.error(f"{path}: {err}")
    for item in args.routed:
        name, spec = item.split("=", 1)
        try:
            general, weak, t, *stat = spec.split(",")
            preds[name] = routed_fold_predictor(
                Path(general), Path(weak), float(t), spectra.shape[0], *stat
            )
        except (ValueError, TypeError) as err:
            ap.error(
                f"--routed {item}: {err} (give NAME=GENERAL_DIR,WEAK_DIR,THRESHOLD"
                "[,edge_snr|l3_over_background])"
            )
    for item in args.onnx_folds:
        name, spec = item.split("=", 1)
        model, *route = spec.split(",")
        if len(route) not in (0, 2):
            ap.error(f"--onnx-folds {item}: give NAME=MODEL or NAME=MODEL,WEAK,THRESHOLD")
        weak, t = (route[0], float(route[1])) if route else (None, None)
        preds[name] = onnx_fold_predictor(model, labels, weak=weak, weak_below=t)
    for item in args.keras:
        name, path = item.split("=", 1)
        preds[name] = keras_predictor(path)
    for item in args.onnx:
        name, path = item.split("=", 1)
        preds[name] = onnx_predictor(path)
    at = None  # (knob, value) of a suite recorded at one value
    if args.at_dispersion is not None and args.at_resolution is not None:
        ap.error("give --at-dispersion or --at-resolution, not both")
    if args.at_dispersion is not None:
        at = ("dispersion_eV", args.at_dispersion)
    elif args.at_resolution is not None:
        at = ("resolution_eV", args.at_resolution)
    conditions = None if at is None else conditions_at(*at)
    for name, pr in preds.items():
        res = run_suite(spectra, labels, energy, pr, copies=args.copies, conditions=conditions)
        if at is not None:
            clean = run_suite(
                spectra, labels, energy, pr, copies=args.copies, conditions=clean_at(*at)
            )
            res[f"clean_at_{at[0].removesuffix('_eV')}"] = next(iter(clean["conditions"].values()))
        if args.held_out:
            res["held_out"] = {"folds": args.held_out, "n_spectra": int(labels.size)}
        if args.negatives:
            res["false_mn"] = negatives_false_mn(lambda r, e, pr=pr: pr(r, e, None), args.negatives)
        results[name] = res
        (args.out / f"suite_{name}.json").write_text(json.dumps(res, indent=1))
        print(
            name, json.dumps({k: res[k] for k in ("clean", "worst", "mean", "score")}), flush=True
        )
        for k, c in res["conditions"].items():
            print(f"  {k:18s} acc {c['accuracy']:.3f}  no-edge {c['no_edge']:.3f}", flush=True)
    if results and conditions is None:  # the figure draws the suite's own rows
        suite_figure(results, args.out / "suite.png")
    if args.roc:
        from hyperspy_mnvalence.decisions import EDGE_MIN_SNR
        from hyperspy_mnvalence.model import load_model

        model = load_model(None)  # the shipped default's preprocessing
        roc = edge_roc(
            spectra, energy, params=model.preprocessing, copies=args.copies,
            n_negatives=args.negatives or 400,
        )  # fmt: skip
        roc.update(model=model.path.name, default_min_snr=EDGE_MIN_SNR)
        (args.out / "roc.json").write_text(json.dumps(roc, indent=1))
        roc_figure(roc, args.out / "roc.png", default=EDGE_MIN_SNR)
        k = roc["thresholds"].index(EDGE_MIN_SNR) if EDGE_MIN_SNR in roc["thresholds"] else None
        for x_i, x in enumerate(roc["thresholds"]):
            mark = " (default)" if x_i == k else ""
            det = "  ".join(
                f"{n} {100 * d['rate'][x_i]:5.1f}%" for n, d in roc["detection"].items()
            )
            fm = f"mean {100 * roc['mean_false_mn'][x_i]:5.2f}% worst {100 * roc['worst_false_mn'][x_i]:5.2f}%"
            print(f"min_snr {x:5.1f}{mark}: false Mn {fm}  {det}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
