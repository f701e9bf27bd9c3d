"""What limits the shift and noise scores on the Titan set: controls, not new models.

Two questions, answered with a training configuration (by default that of the previous
shipped model, 3 augmented copies per epoch) in stratified k-fold CV (the same splits as
:func:`.cv.cross_validate`):

* **Shift.** The shift test cuts the model window ``s`` eV off the detected L3 peak.
  The Titan spectra span only 30 eV (exactly the model window), so a shifted window
  also loses ``|s|`` eV of real data at one end (padded with the edge value). The
  *truncation control* keeps the window aligned and removes the same data: if the
  accuracies agree, the loss at ``s`` comes from the missing data, not from a lack of
  translation invariance.
* **Noise.** A model trained *only* at the test condition (Titan PCA noise at exactly
  5x on every spectrum) and a linear discriminant trained on many 5x noise draws give
  an estimate of how well 5x-noisy spectra of this set can be classified at all.

Run ``python -m hyperspy_mnvalence.training.reports --part limits``; writes
``limits.json`` and ``limits.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hyperspy_mnvalence.preprocessing import DEFAULT_PREPROCESSING, preprocess

from .augment import add_pca_noise, augmentation_config
from .cv import TrainConfig, cv_splits, train_model
from .evaluation import SHIFTS_EV, evaluate_noise, evaluate_shift, predict, unit_range

__all__ = ["limits_study", "truncate_like_shift"]


def truncate_like_shift(spectra: np.ndarray, energy: np.ndarray, shift_eV: float) -> np.ndarray:
    """Remove the data a window shifted by ``shift_eV`` would not see, keep the rest.

    A window cut ``shift_eV`` off the L3 peak covers ``[peak + w0 + s, peak + w1 + s]``
    (``w0, w1`` the model window). Channels outside it are replaced by the nearest
    remaining value, as if the spectrum had been recorded over a shorter range.

    Parameters
    ----------
    spectra : numpy.ndarray
        ``(n, C)`` raw spectra.
    energy : numpy.ndarray
        ``(C,)`` energy axis in eV.
    shift_eV : float

    Returns
    -------
    numpy.ndarray
        ``(n, C)`` float64 copy.
    """
    w0, w1 = DEFAULT_PREPROCESSING["window_eV"]
    peak = preprocess(spectra, energy, check_edge=False).peak_eV
    lo = peak + w0 + shift_eV
    hi = peak + w1 + shift_eV
    e = np.asarray(energy, float)[None, :]
    keep = (e >= lo[:, None] - 1e-9) & (e < hi[:, None] - 1e-9)
    first = np.argmax(keep, axis=1)
    last = keep.shape[1] - 1 - np.argmax(keep[:, ::-1], axis=1)
    idx = np.clip(np.arange(keep.shape[1])[None, :], first[:, None], last[:, None])
    return np.take_along_axis(np.asarray(spectra, float), idx, axis=1)


def _lda_noise(tr_s, tr_y, te_s, te_y, energy, noise_values, multiple, draws, seed) -> float:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [
            preprocess(
                add_pca_noise(unit_range(tr_s), noise_values, multiple, rng),
                energy,
                check_edge=False,
            ).x
            for _ in range(draws)
        ]
    )
    clf = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    clf.fit(x, np.tile(tr_y, draws))
    noisy = add_pca_noise(unit_range(te_s), noise_values, multiple, np.random.default_rng(1234))
    xt = preprocess(noisy, energy, check_edge=False).x
    return float(np.mean(clf.predict(xt) == te_y))


def limits_study(
    data: dict,
    folds: int = 10,
    epochs: int = 30,
    aug_factor: int = 3,
    arch: str = "fcn_wide",
    seed: int = 0,
    out_dir: Path | None = None,
) -> dict:
    """Shift-vs-truncation and noise-limit controls in stratified k-fold CV.

    Parameters
    ----------
    data : dict
        From :func:`.cv.load_training_data` (needs ``noise_values``).
    folds, epochs, aug_factor : int
        Default: the configuration of the previous shipped model (3 augmented copies;
        the shipped model uses 10), with which the study in training/reports was run.
    arch : str
    seed : int
    out_dir : pathlib.Path, optional
        Where to write ``limits.json`` and ``limits.png``.

    Returns
    -------
    dict
    """
    s, y, e, nv = data["spectra"], data["y"], data["energy"], data["noise_values"]
    if nv is None:
        raise ValueError("The noise control needs train/titan_pca_noise.npz.")
    shipped = TrainConfig(
        arch=arch,
        epochs=epochs,
        aug_factor=aug_factor,
        seed=seed,
        augmentation=augmentation_config(),
    )
    only5 = TrainConfig(
        arch=arch,
        epochs=epochs,
        aug_factor=aug_factor,
        seed=seed,
        augmentation=augmentation_config({"pca_noise": {"p": 1.0, "multiple": [5.0, 5.0]}}),
    )
    per_fold = []
    for k, (tr, te) in enumerate(cv_splits(y, data.get("groups"), folds, seed)):
        t0 = time.time()
        m, _ = train_model(shipped, s[tr], y[tr], e, nv, verbose=False)
        shift = evaluate_shift(m, s[te], y[te], e)
        trunc = {}
        for sh in SHIFTS_EV:
            x = preprocess(truncate_like_shift(s[te], e, sh), e, check_edge=False).x
            trunc[f"{sh:.1f}"] = float(np.mean(predict(m, x).argmax(1) == y[te]))
        noise = evaluate_noise(m, s[te], y[te], e, nv, (0, 5))
        m5, _ = train_model(only5, s[tr], y[tr], e, nv, verbose=False)
        noise_only5 = evaluate_noise(m5, s[te], y[te], e, nv, (0, 5))
        lda = {
            str(mult): _lda_noise(s[tr], y[tr], s[te], y[te], e, nv, mult, 1 if mult == 0 else 8, k)
            for mult in (0, 5)
        }
        per_fold.append(
            {
                "shift": shift,
                "truncation": trunc,
                "noise_shipped_config": noise,
                "noise_trained_at_5x_only": noise_only5,
                "noise_lda": lda,
            }
        )
        print(
            f"fold {k + 1}/{folds} ({time.time() - t0:.0f} s): shift -5/0/+5 "
            f"{shift['-5.0']:.3f}/{shift['0.0']:.3f}/{shift['5.0']:.3f}, truncation "
            f"{trunc['-5.0']:.3f}/{trunc['5.0']:.3f}, 5x noise {noise['5']:.3f} "
            f"(5x-only model {noise_only5['5']:.3f}, LDA {lda['5']:.3f})",
            flush=True,
        )

    def mean(key: str) -> dict:
        return {k: float(np.mean([f[key][k] for f in per_fold])) for k in per_fold[0][key]}

    res = {
        "protocol": (
            f"{arch}, stratified {folds}-fold CV (seed {seed}, the splits of cross_validate), "
            f"{epochs} epochs, {aug_factor} augmented copies. 'shift': window cut s eV off "
            "the L3 peak (the shift test). 'truncation': aligned window, the data that the "
            "shifted window misses removed. 'noise_trained_at_5x_only': same network "
            "trained with the Titan PCA noise at exactly 5x on every spectrum. "
            "'noise_lda': shrinkage LDA on the preprocessed windows, trained on 8 noise "
            "draws of the training folds."
        ),
        "shift": mean("shift"),
        "truncation": mean("truncation"),
        "noise_shipped_config": mean("noise_shipped_config"),
        "noise_trained_at_5x_only": mean("noise_trained_at_5x_only"),
        "noise_lda": mean("noise_lda"),
        "per_fold": per_fold,
    }
    res["shift_minus_truncation"] = {
        k: res["shift"][k] - res["truncation"][k] for k in res["shift"]
    }
    if out_dir is not None:
        _write(res, Path(out_dir))
    return res


def _write(res: dict, out_dir: Path) -> None:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "limits.json").write_text(json.dumps(res, indent=1))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8.5, 3.4))
    sh = [float(k) for k in res["shift"]]
    a1.plot(sh, list(res["shift"].values()), "o-", label="window shifted")
    a1.plot(sh, list(res["truncation"].values()), "s--", label="aligned, same data removed")
    a1.set_xlabel("shift (eV)")
    a1.set_ylabel("CV accuracy")
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    names = ["shipped config", "trained at 5x only", "linear (LDA)"]
    keys = ["noise_shipped_config", "noise_trained_at_5x_only", "noise_lda"]
    xs = np.arange(len(keys))
    a2.bar(xs - 0.2, [res[k]["0"] for k in keys], 0.4, label="no noise")
    a2.bar(xs + 0.2, [res[k]["5"] for k in keys], 0.4, label="5x PCA noise")
    a2.set_xticks(xs, names, fontsize=8)
    a2.set_ylim(0.6, 1.0)
    a2.set_ylabel("CV accuracy")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out_dir / "limits.png", dpi=90)
    plt.close(fig)
