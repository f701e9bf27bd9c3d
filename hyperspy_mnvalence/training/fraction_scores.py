"""Scores of a fraction model: held-out mixtures, calibration invariance, digitized references, figure."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.preprocessing import preprocess, resampling_matrix

from .augment import augment_and_preprocess, augmentation_config
from .evaluation import digitized_inputs, predict
from .fraction_config import CLASSES, EVAL_AUGMENTATION, FractionConfig
from .mixtures import make_mixtures

__all__ = [
    "digitized_mean_valence",
    "evaluate_invariance",
    "evaluate_mixtures",
    "fraction_figure",
    "mixture_scores",
]


def mixture_scores(pred: np.ndarray, w: np.ndarray) -> dict:
    """Errors of predicted fractions ``pred`` against the true ``w`` (both ``(n, 3)``).

    Returns
    -------
    dict
        ``mae_mean_valence``, ``mae_fractions`` (per valence and overall) and
        ``p95_mean_valence_error``.
    """
    err = np.abs(pred - w)
    mv_err = np.abs(pred @ CLASSES - w @ CLASSES)
    return {
        "mae_mean_valence": float(mv_err.mean()),
        "mae_fractions": {
            "Mn2+": float(err[:, 0].mean()),
            "Mn3+": float(err[:, 1].mean()),
            "Mn4+": float(err[:, 2].mean()),
            "overall": float(err.mean()),
        },
        "p95_mean_valence_error": float(np.percentile(mv_err, 95)),
    }


def evaluate_mixtures(
    models,
    spectra: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    n: int = 2000,
    seed: int = 4321,
    cfg: FractionConfig | None = None,
    noise_values: np.ndarray | None = None,
) -> dict:
    """Score on mixtures built from (held-out) spectra.

    Two settings: ``clean`` (mixtures preprocessed as they are) and ``augmented``
    (:data:`EVAL_AUGMENTATION` applied, as a harder, instrument-varied test).

    Parameters
    ----------
    models : keras.Model or list
    spectra, y, energy : numpy.ndarray
        Held-out raw spectra, class indices, energy axis.
    n : int
        Mixtures per setting.
    seed : int
    cfg : FractionConfig, optional
        Mixture shares (default :class:`FractionConfig`); ``max_average`` is ignored.
    noise_values : numpy.ndarray, optional

    Returns
    -------
    dict
        ``clean`` and ``augmented`` scores, plus ``true``/``pred`` arrays (clean).
    """
    # held-out mixtures always mix single spectra
    cfg = FractionConfig(**{**asdict(cfg or FractionConfig()), "max_average": 1})
    rng = np.random.default_rng(seed)
    mixed, w = make_mixtures(spectra, y, n, cfg, rng)
    pred = predict(models, preprocess(mixed, energy, check_edge=False).x)
    out = {"clean": mixture_scores(pred, w), "true": w, "pred": pred}
    aug = augmentation_config(EVAL_AUGMENTATION)
    if noise_values is None:
        aug["pca_noise"]["enabled"] = False
    xa = augment_and_preprocess(mixed, energy, aug, rng, noise_values)
    out["augmented"] = mixture_scores(predict(models, xa), w)
    return out


def digitized_mean_valence(predict_fn) -> dict:
    """Mean valence of the 31 digitized references (evaluation only).

    Parameters
    ----------
    predict_fn : callable
        Maps preprocessed input ``(n, L)`` to fractions ``(n, 3)``.

    Returns
    -------
    dict
        ``within_0.35`` (count), ``total``, ``mae``, ``mean_valence``, ``true``,
        ``ids``, ``outside_ids``.
    """
    x, yc, refs = digitized_inputs()
    mv = predict_fn(x) @ CLASSES
    truth = CLASSES[yc]
    ok = np.abs(mv - truth) <= 0.35
    return {
        "within_0.35": int(ok.sum()),
        "total": int(ok.size),
        "mae": float(np.mean(np.abs(mv - truth))),
        "mean_valence": [round(float(v), 4) for v in mv],
        "true": [int(t) for t in truth],
        "ids": [int(r["id"]) for r in refs],
        "outside_ids": [int(refs[i]["id"]) for i in np.nonzero(~ok)[0]],
    }


def evaluate_invariance(
    predict_fn,
    spectra: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    n: int = 300,
    seed: int = 99,
) -> dict:
    """Change of the predicted mean valence under calibration changes.

    Held-out mixtures are put on energy axes shifted by -15 ... +15 eV and resampled
    to dispersions 0.05 ... 0.5 eV per channel, then run through the full
    preprocessing (edge search, background, window).

    Parameters
    ----------
    predict_fn : callable
        Preprocessed input to fractions.
    spectra, y, energy : numpy.ndarray
        Held-out raw spectra, class indices, energy axis.
    n : int
    seed : int

    Returns
    -------
    dict
        ``offset_max_abs_change`` / ``dispersion_max_abs_change`` (largest change of
        the mean valence over spectra and settings), ``..._mean_abs_change`` and the
        per-setting means.
    """
    rng = np.random.default_rng(seed)
    mixed, w = make_mixtures(spectra, y, n, FractionConfig(), rng)
    ref = predict_fn(preprocess(mixed, energy, check_edge=False).x) @ CLASSES
    res: dict = {"offsets_eV": {}, "dispersions_eV": {}}
    worst_o, mean_o, worst_d, mean_d = 0.0, [], 0.0, []
    for off in (-15.0, -9.87, -4.63, 3.21, 10.55, 15.0):
        pre = preprocess(mixed, energy + off, check_edge=False)
        d = np.abs(predict_fn(pre.x) @ CLASSES - ref)
        res["offsets_eV"][f"{off:+.2f}"] = float(d.mean())
        worst_o, mean_o = max(worst_o, float(d.max())), mean_o + [float(d.mean())]
    for disp in (0.05, 0.15, 0.25, 0.35, 0.5):
        new_e = np.arange(energy[0], energy[-1] + 1e-9, disp)
        pre = preprocess(mixed @ resampling_matrix(energy, new_e), new_e, check_edge=False)
        d = np.abs(predict_fn(pre.x) @ CLASSES - ref)
        res["dispersions_eV"][f"{disp:.2f}"] = float(d.mean())
        worst_d, mean_d = max(worst_d, float(d.max())), mean_d + [float(d.mean())]
    res["offset_max_abs_change"] = worst_o
    res["offset_mean_abs_change"] = float(np.mean(mean_o))
    res["dispersion_max_abs_change"] = worst_d
    res["dispersion_mean_abs_change"] = float(np.mean(mean_d))
    res["mixture_mae_mean_valence_reference"] = float(np.mean(np.abs(ref - w @ CLASSES)))
    return res


def fraction_figure(report: dict, true: np.ndarray, pred: np.ndarray, path: Path) -> None:
    """The report's figure: held-out mean valence, per-fraction errors, digitized references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    tv, pv = true @ CLASSES, pred @ CLASSES
    ax[0].scatter(tv, pv, s=3, alpha=0.4)
    ax[0].plot([2, 4], [2, 4], "k--", lw=1)
    m = report["metrics"]
    ax[0].set(
        xlabel="true mean valence",
        ylabel="predicted mean valence",
        title=f"held-out mixtures (out of fold), MAE {m['mixture_mae_mean_valence']:.3f}",
    )
    per = m["mixture_mae_fractions"]
    names = ["Mn2+", "Mn3+", "Mn4+", "overall"]
    ax[1].bar(names, [per[k] for k in names], color=["C0", "C1", "C2", "grey"])
    ax[1].axhline(0.07, color="r", ls="--", lw=1, label="target 0.07")
    ax[1].set(ylabel="MAE of fraction", title="per-fraction MAE (held-out mixtures)")
    ax[1].legend()
    dg = report.get("digitized")
    if dg:
        mv, tr = np.array(dg["mean_valence"]), np.array(dg["true"])
        ax[2].scatter(np.arange(mv.size), mv, c=[f"C{t - 2}" for t in tr], s=25)
        for t in (2, 3, 4):
            ax[2].axhspan(t - 0.35, t + 0.35, color=f"C{t - 2}", alpha=0.1)
        ax[2].set(
            xlabel="digitized reference (index)",
            ylabel="mean valence",
            title=f"digitized references: {dg['within_0.35']}/{dg['total']} within 0.35",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
