"""Scores of trained classifiers: calibration shifts, Titan PCA noise, simulated
other-instrument conditions, the digitized literature references (evaluation only) and
the Titan Mn2+ line."""

from __future__ import annotations

import numpy as np

from hyperspy_mnvalence.preprocessing import (
    preprocess,
)

from .augment import NO_AUGMENTATION, add_pca_noise, augment_raw
from .data import CLASSES

__all__ = [
    "NOISE_MULTIPLES",
    "ROBUST_CONDITIONS",
    "ROBUST_SEED",
    "SHIFTS_EV",
    "digitized_inputs",
    "evaluate_digitized",
    "evaluate_mn2_wide",
    "evaluate_noise",
    "evaluate_robust",
    "evaluate_shift",
    "predict",
    "unit_range",
]


SHIFTS_EV = tuple(float(s) for s in np.arange(-5.0, 5.01, 1.0))


NOISE_MULTIPLES = (0, 1, 2, 3, 4, 5)


#: Simulated other-instrument conditions of the robustness CV: the held-out Titan fold is
#: perturbed with the pipeline's own raw-spectrum augmentations (every spectrum, ``p=1``),
#: drawn with a fixed seed, so every model/configuration sees the same perturbed spectra.
#: ``noise5`` is the Titan PCA noise at 5x (the noise test's convention).
_ROBUST_BROADENING = {"broadening": {"enabled": True, "p": 1.0, "fwhm_eV": [0.6, 1.2]}}


_ROBUST_DISPERSION = {
    "dispersion": {"enabled": True, "p": 1.0, "step_eV": [0.3, 0.5], "n_groups": 5}
}


_ROBUST_TRUNCATION = {
    "truncation": {
        "enabled": True,
        "p": 1.0,
        "pre_edge_eV": [3.0, 5.0],
        "post_edge_eV": [15.0, 19.0],
    }
}


ROBUST_CONDITIONS: dict = {
    "broadening": _ROBUST_BROADENING,
    "dispersion": _ROBUST_DISPERSION,
    "truncation": _ROBUST_TRUNCATION,
    # the three at once
    "combined": {**_ROBUST_BROADENING, **_ROBUST_TRUNCATION, **_ROBUST_DISPERSION},
    "noise5": None,
}


ROBUST_SEED = 4321


def predict(models, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Mean softmax of one model or a list of models on preprocessed input.

    Parameters
    ----------
    models : keras.Model or list of keras.Model
    x : numpy.ndarray
        ``(n, L)`` float32.
    batch_size : int

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` probabilities.
    """
    if not isinstance(models, list | tuple):
        models = [models]
    xs = np.asarray(x, np.float32)[..., None]
    out = [np.asarray(m.predict(xs, batch_size=batch_size, verbose=0)) for m in models]
    return np.mean(out, axis=0)


def evaluate_shift(
    models, spectra: np.ndarray, y: np.ndarray, energy: np.ndarray, shifts=SHIFTS_EV
) -> dict:
    """Accuracy when the window is cut ``shift`` eV off the detected L3 peak.

    Parameters
    ----------
    models : keras.Model or list
    spectra, y, energy : numpy.ndarray
        Raw validation spectra, class indices, energy axis.
    shifts : sequence of float

    Returns
    -------
    dict
        ``{"-5.0": acc, ...}``.
    """
    out = {}
    for s in shifts:
        x = preprocess(spectra, energy, check_edge=False, center_offset_eV=float(s)).x
        out[f"{float(s):.1f}"] = float(np.mean(predict(models, x).argmax(1) == y))
    return out


def unit_range(spectra: np.ndarray) -> np.ndarray:
    """Each spectrum min-max scaled to [0, 1] (float64): the noise test's convention.

    Parameters
    ----------
    spectra : numpy.ndarray
        ``(n, C)``.

    Returns
    -------
    numpy.ndarray
    """
    s = np.asarray(spectra, np.float64)
    mn = s.min(1, keepdims=True)
    return (s - mn) / np.maximum(s.max(1, keepdims=True) - mn, 1e-12)


def evaluate_noise(
    models,
    spectra: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    noise_values: np.ndarray,
    multiples=NOISE_MULTIPLES,
    seed: int = 1234,
) -> dict:
    """Accuracy with the Titan PCA noise, times ``multiple``, added to [0, 1] spectra.

    Parameters
    ----------
    models : keras.Model or list
    spectra, y, energy : numpy.ndarray
    noise_values : numpy.ndarray
    multiples : sequence of float
    seed : int

    Returns
    -------
    dict
        ``{"0": acc, ...}``.
    """
    out = {}
    s01 = unit_range(spectra)
    for m in multiples:
        rng = np.random.default_rng(seed)
        noisy = add_pca_noise(s01, noise_values, float(m), rng)
        x = preprocess(noisy, energy, check_edge=False).x
        out[f"{m:g}"] = float(np.mean(predict(models, x).argmax(1) == y))
    return out


def evaluate_robust(
    models,
    spectra: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    noise_values: np.ndarray | None,
    seed: int = ROBUST_SEED,
) -> dict:
    """Accuracy under simulated other-instrument conditions (robustness CV).

    Each condition of :data:`ROBUST_CONDITIONS` perturbs every (held-out) spectrum with
    the pipeline's own augmentations, parameters drawn from a generator seeded with
    ``seed`` (the same perturbation for every model scored on the same spectra), then
    applies the inference preprocessing (no translation). ``noise5`` adds the Titan PCA
    noise at 5x as in :func:`evaluate_noise`.

    Parameters
    ----------
    models : keras.Model or list
    spectra, y, energy : numpy.ndarray
        Raw held-out spectra, class indices, energy axis.
    noise_values : numpy.ndarray or None
        Titan PCA noise (``noise5`` is skipped without it).
    seed : int

    Returns
    -------
    dict
        Accuracy per condition and ``robust_accuracy`` (their mean).
    """
    import copy

    out: dict = {}
    peak = preprocess(spectra, energy, check_edge=False).peak_eV
    for name, over in ROBUST_CONDITIONS.items():
        if over is None:
            if noise_values is not None:
                out[name] = evaluate_noise(models, spectra, y, energy, noise_values, (5,), seed)[
                    "5"
                ]
            continue
        cfg = copy.deepcopy(NO_AUGMENTATION)
        for k, v in over.items():
            cfg[k].update(v)
        rng = np.random.default_rng(seed)
        x = None
        for ii, yy, ee in augment_raw(spectra, energy, peak, cfg, rng):
            px = preprocess(yy, ee, check_edge=False).x
            if x is None:
                x = np.zeros((len(y), px.shape[1]), np.float32)
            x[ii] = px
        out[name] = float(np.mean(predict(models, x).argmax(1) == y))
    out["robust_accuracy"] = float(np.mean(list(out.values())))
    return out


def digitized_inputs(dispersion: float | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The digitized references through the package preprocessing (evaluation only).

    Parameters
    ----------
    dispersion : float, optional
        Resample each reference (linear interpolation) to this many eV per channel
        first, as the real-data dispersion test does.

    Returns
    -------
    x : numpy.ndarray
        ``(31, 300)`` model input.
    y : numpy.ndarray
        Class indices.
    refs : list of dict
    """
    from hyperspy_mnvalence.datasets import load_digitized_references

    refs = load_digitized_references()
    xs = []
    for d in refs:
        e, inten = np.asarray(d["energy"], float), np.asarray(d["intensity"], float)
        if dispersion is not None:
            eu = np.arange(e[0], e[-1], dispersion)
            e, inten = eu, np.interp(eu, e, inten)
        xs.append(preprocess(inten, e).x)
    x = np.concatenate(xs)
    y = np.searchsorted(CLASSES, [d["valence"] for d in refs])
    return x, y, refs


def evaluate_digitized(models, inputs=None) -> dict:
    """Score on the 31 digitized literature references (evaluation only).

    Parameters
    ----------
    models : keras.Model or list
    inputs : tuple, optional
        Output of :func:`digitized_inputs` (computed if omitted).

    Returns
    -------
    dict
        ``correct``, ``total``, ``accuracy``, ``predicted`` (valence per spectrum),
        ``wrong_ids``.
    """
    x, y, refs = inputs if inputs is not None else digitized_inputs()
    pred = predict(models, x).argmax(1)
    ok = pred == y
    return {
        "correct": int(ok.sum()),
        "total": int(y.size),
        "accuracy": float(ok.mean()),
        "predicted": [int(CLASSES[i]) for i in pred],
        "wrong_ids": [int(refs[i]["id"]) for i in np.nonzero(~ok)[0]],
    }


def evaluate_mn2_wide(models) -> dict:
    """Fraction of the 659 wide-window Titan Mn2+ spectra classified Mn2+.

    They are preprocessed on their own 615-685 eV axis (calibration-independent
    alignment), then classified.

    Parameters
    ----------
    models : keras.Model or list

    Returns
    -------
    dict
        ``fraction_mn2``, ``n``, ``fraction_mn2_thinnest``.
    """
    from hyperspy_mnvalence.datasets import load_titan_mn2_wide

    d = load_titan_mn2_wide()
    x = preprocess(d["spectra"], d["energy"], check_edge=False).x
    pred = predict(models, x).argmax(1)
    return {
        "fraction_mn2": float(np.mean(pred == 0)),
        "n": int(pred.size),
        "fraction_mn2_thinnest": float(np.mean(pred[d["thinnest"]] == 0)),
    }
