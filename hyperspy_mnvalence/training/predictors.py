"""Predictors: a model (fold models, Keras, ONNX) as one function of raw spectra.

A predictor maps ``(raw spectra (n, k), energy (k,), source)`` to class probabilities
``(n, 3)``, with NaN rows where the preprocessing finds no Mn edge; ``source`` gives
each spectrum's index among the Titan spectra (``None`` for other spectra), so that
fold models score only the spectra they held out. The robustness suite
(:mod:`.suite`), the controls (:mod:`.controls`) and the digitized report
(:mod:`.acquisition_report`) score models through them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "Predictor",
    "keras_fold_predictor",
    "keras_predictor",
    "mean_predictor",
    "onnx_predictor",
    "routed_fold_predictor",
]

#: ``predict(raw, energy, source) -> probabilities`` (NaN rows: no Mn edge).
Predictor = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _fold_models(fold_dir: Path | Sequence[Path], n_spectra: int) -> tuple[np.ndarray, dict]:
    """Which fold holds out each spectrum, and each fold's models (one per folder)."""
    import keras

    dirs = [Path(fold_dir)] if isinstance(fold_dir, str | Path) else [Path(d) for d in fold_dir]
    owner = np.full(n_spectra, -1)
    models: dict[int, list] = {}
    first = None
    for d in dirs:
        folds = json.loads((d / "folds.json").read_text())["folds"]
        held = {int(k): sorted(f["held_out"]) for k, f in folds.items()}
        if first is None:
            first = held
        elif held != first:
            raise ValueError(f"{d}: the fold folders must hold out the same spectra per fold")
        for k in held:
            owner[np.asarray(held[k], int)] = k
            models.setdefault(k, []).append(keras.models.load_model(d / f"fold{k}.keras"))
    if (owner < 0).any():
        raise ValueError(f"{int((owner < 0).sum())} spectra have no held-out fold model yet.")
    return owner, models


def _fill(out, pre_x, rows_of, models) -> None:
    """``out[rows] =`` the mean of fold ``k``'s models on its rows, for every fold."""
    for k, ms in models.items():
        rows = rows_of(k)
        if rows.size:
            x = pre_x[rows][..., None]
            out[rows] = np.mean([m.predict(x, batch_size=2048, verbose=0) for m in ms], axis=0)


def keras_fold_predictor(fold_dir: Path | Sequence[Path], n_spectra: int) -> Predictor:
    """A predictor that scores each spectrum with the fold model that held it out.

    Parameters
    ----------
    fold_dir : path-like or sequence of path-like
        A folder written by :mod:`.acquisition_cv` (``folds.json`` and
        ``fold<k>.keras``), or several folders of the same folds: each spectrum is then
        scored by the mean probabilities of their fold models that held it out (one
        ensemble of two recipes), from one preprocessing.
    n_spectra : int
        Number of Titan spectra the folds split.

    Returns
    -------
    Predictor
    """
    from hyperspy_mnvalence.preprocessing import preprocess

    owner, models = _fold_models(fold_dir, n_spectra)

    def predict(raw, energy, source):
        pre = preprocess(raw, energy)
        out = np.full((raw.shape[0], 3), np.nan, np.float32)
        # not a recording of the Titan spectra (source None): the first fold model
        fold = np.full(raw.shape[0], min(models)) if source is None else owner[source]
        _fill(out, pre.x, lambda k: np.nonzero((fold == k) & pre.valid)[0], models)
        return out

    return predict


def routed_fold_predictor(
    general: Path | Sequence[Path],
    weak: Path,
    threshold: float,
    n_spectra: int,
    statistic: str = "edge_snr",
) -> Predictor:
    """Fold models of two recipes, each spectrum read by one of them by a statistic.

    A spectrum whose ``statistic`` (an attribute of
    :class:`~hyperspy_mnvalence.preprocessing.Preprocessed`: ``"edge_snr"``, the edge
    test's height over the noise, or ``"l3_over_background"``, the measured edge
    contrast) is below ``threshold`` is read by the ``weak`` recipe's fold model that
    held it out, every other one by the ``general`` recipe's; both from one
    preprocessing.

    Parameters
    ----------
    general, weak : path-like
        Fold folders of the same folds (:mod:`.acquisition_cv`).
    threshold : float
        Value of the statistic below which the weak recipe reads.
    n_spectra : int
        Number of Titan spectra the folds split.
    statistic : {"edge_snr", "l3_over_background"}
        What decides.

    Returns
    -------
    Predictor
    """
    from hyperspy_mnvalence.preprocessing import preprocess

    if statistic not in ("edge_snr", "l3_over_background"):
        raise ValueError(f"statistic must be 'edge_snr' or 'l3_over_background', not {statistic!r}")
    owner, general_models = _fold_models(general, n_spectra)
    owner_w, weak_models = _fold_models(weak, n_spectra)
    if not np.array_equal(owner, owner_w):
        raise ValueError(f"{weak}: the fold folders must hold out the same spectra per fold")

    def predict(raw, energy, source):
        pre = preprocess(raw, energy)
        out = np.full((raw.shape[0], 3), np.nan, np.float32)
        fold = np.full(raw.shape[0], min(general_models)) if source is None else owner[source]
        low = getattr(pre, statistic) < threshold  # NaN (no edge) is neither
        for models, pick in ((general_models, ~low), (weak_models, low)):
            _fill(out, pre.x, lambda k, p=pick: np.nonzero((fold == k) & pre.valid & p)[0], models)
        return out

    return predict


def mean_predictor(predictors: list[Predictor]) -> Predictor:
    """A predictor that averages the class probabilities of several (one ensemble of two
    fold folders: ``--folds NAME=DIR1+DIR2``). Every predictor reads the same
    ``preprocess``, so they flag the same spectra (NaN rows)."""

    def predict(raw, energy, source=None):
        return np.mean([p(raw, energy, source) for p in predictors], axis=0)

    return predict


def keras_predictor(model) -> Predictor:
    """A predictor of one Keras model (or a saved ``.keras`` file) through ``preprocess``."""
    from hyperspy_mnvalence.preprocessing import preprocess

    if isinstance(model, str | Path):
        import keras

        model = keras.models.load_model(model)

    def predict(raw, energy, source=None):
        pre = preprocess(raw, energy)
        out = np.full((raw.shape[0], 3), np.nan, np.float32)
        if pre.valid.any():
            x = pre.x[pre.valid][..., None]
            out[pre.valid] = model.predict(x, batch_size=2048, verbose=0)
        return out

    return predict


def onnx_predictor(model: str) -> Predictor:
    """A predictor through the package's own inference (an ONNX model file or a shipped
    model's name such as ``"fast"``)."""
    from hyperspy_mnvalence.classification import classify_spectra

    def predict(raw, energy, source=None):
        return classify_spectra(raw, energy, model=model)[:, :3]

    return predict
