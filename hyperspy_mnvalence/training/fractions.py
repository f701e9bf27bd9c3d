"""Training of the mixed-valence (fraction-regression) model.

The model reads a preprocessed Mn L2,3 spectrum and returns the fractions of Mn2+,
Mn3+ and Mn4+ (softmax output, so they are non-negative and sum to 1). It is the same
fully convolutional network as the classifier (convolution blocks, global average
pooling, softmax), so it inherits its invariance to the energy calibration.

Training data are synthetic *linear mixtures* of real single-valence Titan spectra
(``train/titan_mn_valence.npz``). All those spectra share one energy axis in one
instrument calibration, so the chemical shifts between valences are preserved by
mixing them channel by channel. Each [0, 1]-scaled spectrum is first put on a
per-atom scale: divided by the L3 height per unit continuum step of its valence
(:data:`hyperspy_mnvalence.synthetic.EDGE_PARAMETERS` was fitted to the class means
of the same data), so the mixing weights are *atomic* fractions, the convention of
:func:`hyperspy_mnvalence.synthetic.synthetic_spectra`. The weights are drawn on the
simplex: a share of pure spectra, a share of binary mixtures (uniform weight) and
ternary mixtures (flat Dirichlet). The mixed raw spectra then go through the
classifier's instrument augmentations
(:func:`hyperspy_mnvalence.training.augment.augment_and_preprocess`: background,
plural scattering, broadening, truncation, dispersion, noise, translation) and the
package's one :func:`~hyperspy_mnvalence.preprocessing.preprocess`.

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
import copy
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hyperspy_mnvalence import datasets
from hyperspy_mnvalence.preprocessing import preprocess, resampling_matrix

from .augment import augment_and_preprocess, augmentation_config

__all__ = [
    "EVAL_AUGMENTATION",
    "FRACTION_AUGMENTATION",
    "FractionConfig",
    "digitized_mean_valence",
    "evaluate_invariance",
    "evaluate_mixtures",
    "fraction_l1",
    "main",
    "make_mixtures",
    "per_atom_scale",
    "run",
    "train_fraction_model",
]

CLASSES = np.array([2.0, 3.0, 4.0])

#: Full augmentation configuration of the fraction model, explicit so that it does not
#: follow changes of the classifier's defaults: every physical augmentation on, at about
#: half the probabilities of the classifier's original settings (on held-out fold-1
#: mixtures, 40 epochs: mean-valence MAE 0.183 against 0.195 at the full probabilities;
#: see training/reports/fractions_experiments.json).
FRACTION_AUGMENTATION: dict = {
    "translation": {"enabled": True, "p": 1.0, "max_shift_eV": 5.0},
    "background": {
        "enabled": True,
        "p": 0.15,
        "power_law_amplitude": [0.0, 3.0],
        "power_law_exponent": [2.0, 5.0],
        "residual_slope": [-0.3, 0.3],
    },
    "plural_scattering": {
        "enabled": True,
        "p": 0.15,
        "thickness_t_over_lambda": [0.0, 1.5],
        "plasmon_eV": [15.0, 25.0],
        "plasmon_fwhm_eV": [4.0, 10.0],
    },
    "broadening": {"enabled": True, "p": 0.25, "fwhm_eV": [0.1, 1.5]},
    "truncation": {
        "enabled": True,
        "p": 0.3,
        "pre_edge_eV": [3.0, 8.0],
        "post_edge_eV": [15.0, 22.0],
    },
    "dispersion": {"enabled": True, "p": 0.3, "step_eV": [0.05, 0.35], "n_groups": 6},
    "poisson_noise": {"enabled": True, "p": 0.15, "counts_at_peak": [200.0, 20000.0]},
    "gaussian_noise": {"enabled": True, "p": 0.15, "sigma": [0.0, 0.03]},
    "pca_noise": {"enabled": True, "p": 0.25, "multiple": [0.0, 5.0]},
}

#: The harder test setting of :func:`evaluate_mixtures`: the same ranges at the
#: classifier's original probabilities (about twice the fraction model's).
_EVAL_P = {
    "background": 0.3,
    "plural_scattering": 0.3,
    "broadening": 0.5,
    "truncation": 0.3,
    "dispersion": 0.5,
    "poisson_noise": 0.3,
    "gaussian_noise": 0.3,
    "pca_noise": 0.5,
}
EVAL_AUGMENTATION: dict = {
    k: {**v, "p": _EVAL_P.get(k, v["p"])} for k, v in FRACTION_AUGMENTATION.items()
}


@dataclass
class FractionConfig:
    """Hyper-parameters of the fraction model.

    Attributes
    ----------
    arch : str
        Architecture (see :mod:`.architectures`).
    epochs : int
        Epochs; every epoch draws ``n_mixtures`` fresh mixtures.
    n_mixtures : int
        Mixtures per epoch.
    p_pure, p_binary : float
        Shares of pure spectra and binary mixtures; the rest are ternary.
    dirichlet_alpha : float
        Concentration of the ternary Dirichlet weights.
    batch_size : int
    learning_rate : float
        Initial Adam learning rate (cosine decay to 1 %).
    loss : str
        ``"cce"`` (cross-entropy on soft targets), ``"mse"`` or ``"l1"``
        (:func:`fraction_l1`).
    max_average : int
        Each mixture component is the mean of 1 ... ``max_average`` random spectra of
        its valence (training only; 1 mixes single spectra).
    augmentation : dict
        Overrides of the instrument augmentations (default
        :data:`FRACTION_AUGMENTATION`).
    seed : int
    smoke : bool
        A tiny pipeline check (recorded in the model card), not a usable model.
    """

    arch: str = "fcn_wide"
    epochs: int = 120
    n_mixtures: int = 10000
    p_pure: float = 0.2
    p_binary: float = 0.3
    dirichlet_alpha: float = 1.0
    batch_size: int = 64
    learning_rate: float = 3e-3
    loss: str = "cce"
    max_average: int = 1
    augmentation: dict = field(default_factory=lambda: copy.deepcopy(FRACTION_AUGMENTATION))
    seed: int = 0
    smoke: bool = False


def per_atom_scale() -> np.ndarray:
    """Factors that put [0, 1]-scaled spectra of Mn2+, Mn3+, Mn4+ on a per-atom scale.

    The inverse of the L3 height per unit continuum step of each valence at the Titan
    resolution (from the edge model fitted to the class means of the Titan data).

    Returns
    -------
    numpy.ndarray
        Shape ``(3,)``.
    """
    from hyperspy_mnvalence.simulations.edges import REFERENCE_RESOLUTION_EV
    from hyperspy_mnvalence.simulations.edges import peak_heights as _peak_heights

    return 1.0 / _peak_heights(REFERENCE_RESOLUTION_EV)


def draw_weights(n: int, cfg: FractionConfig, rng: np.random.Generator) -> np.ndarray:
    """Fractions on the simplex: pure, binary and ternary mixtures.

    Parameters
    ----------
    n : int
    cfg : FractionConfig
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(n, 3)``, rows summing to 1.
    """
    w = rng.dirichlet(np.full(3, cfg.dirichlet_alpha), size=n)
    kind = rng.random(n)
    pure = kind < cfg.p_pure
    binary = (~pure) & (kind < cfg.p_pure + cfg.p_binary)
    if np.any(pure):
        w[pure] = np.eye(3)[rng.integers(0, 3, int(pure.sum()))]
    if np.any(binary):
        k = int(binary.sum())
        drop = rng.integers(0, 3, k)
        a = rng.random(k)
        wb = np.zeros((k, 3))
        keep = np.array([[1, 2], [0, 2], [0, 1]])[drop]
        wb[np.arange(k), keep[:, 0]] = a
        wb[np.arange(k), keep[:, 1]] = 1.0 - a
        w[binary] = wb
    return w


def make_mixtures(
    spectra: np.ndarray,
    y: np.ndarray,
    n: int,
    cfg: FractionConfig,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear mixtures of single-valence spectra sharing one energy axis.

    Parameters
    ----------
    spectra : numpy.ndarray
        Raw [0, 1]-scaled spectra ``(m, C)`` on one common energy axis.
    y : numpy.ndarray
        Class index (0, 1, 2 for Mn2+, Mn3+, Mn4+) of each spectrum.
    n : int
        Number of mixtures.
    cfg : FractionConfig
    rng : numpy.random.Generator
    weights : numpy.ndarray, optional
        ``(n, 3)`` atomic fractions; drawn with :func:`draw_weights` if omitted.

    Returns
    -------
    mixed : numpy.ndarray
        ``(n, C)`` mixed spectra, each scaled to a maximum of 1.
    fractions : numpy.ndarray
        ``(n, 3)`` float32 atomic fractions (the targets).
    """
    w = draw_weights(n, cfg, rng) if weights is None else np.asarray(weights, float)
    scale = per_atom_scale()
    mixed = np.zeros((n, spectra.shape[1]))
    for k in range(3):
        pool = np.nonzero(y == k)[0]
        if pool.size == 0:
            if np.any(w[:, k] > 0):
                raise ValueError(f"no spectra of class {k} to mix")
            continue
        n_avg = rng.integers(1, max(int(cfg.max_average), 1) + 1, size=n)
        comp = np.zeros((n, spectra.shape[1]))
        for j in range(int(n_avg.max())):
            use = n_avg > j
            comp[use] += spectra[rng.choice(pool, size=int(use.sum()))]
        comp /= n_avg[:, None]
        mixed += (w[:, k] * scale[k])[:, None] * comp
    top = np.abs(mixed).max(1, keepdims=True)
    return mixed / np.where(top > 0, top, 1.0), w.astype(np.float32)


def _predict(models, x: np.ndarray) -> np.ndarray:
    from .evaluation import predict

    return predict(models, x)


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


def _scores(pred: np.ndarray, w: np.ndarray) -> dict:
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
    pred = _predict(models, preprocess(mixed, energy, check_edge=False).x)
    out = {"clean": _scores(pred, w), "true": w, "pred": pred}
    aug = augmentation_config(EVAL_AUGMENTATION)
    if noise_values is None:
        aug["pca_noise"]["enabled"] = False
    xa = augment_and_preprocess(mixed, energy, aug, rng, noise_values)
    out["augmented"] = _scores(_predict(models, xa), w)
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
    from .evaluation import digitized_inputs

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


def _figures(report: dict, true: np.ndarray, pred: np.ndarray, path: Path) -> None:
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
        invs.append(evaluate_invariance(lambda x, m=model: _predict(m, x), s[te], y[te], e))
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
    pooled = _scores(pred, true)

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
        dg = digitized_mean_valence(lambda x: _predict(models, x))
        report["digitized"] = dg
        metrics["digitized_mean_valence_within_0.35"] = dg["within_0.35"]
        metrics["digitized_total"] = dg["total"]
        metrics["digitized_mae_mean_valence"] = dg["mae"]
        metrics["digitized_outside_ids"] = dg["outside_ids"]
        metrics["fold_digitized_within_0.35"] = [
            digitized_mean_valence(lambda x, m=m: _predict(m, x))["within_0.35"] for m in models
        ]
    report["metrics"] = metrics
    report["training_seconds"] = float(sum(i["seconds"] for i in infos))
    report["wall_seconds"] = time.time() - t0
    if report_dir is not None:
        rd = Path(report_dir)
        rd.mkdir(parents=True, exist_ok=True)
        tag = "" if cfg.loss == "cce" else f"_{cfg.loss}"
        (rd / f"fractions{tag}_report.json").write_text(json.dumps(report, indent=1))
        _figures(report, true, pred, rd / f"fractions{tag}.png")
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
