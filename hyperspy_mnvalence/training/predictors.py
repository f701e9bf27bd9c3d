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
    "fold_clean_accuracy",
    "mean_predictor",
    "member_session",
    "onnx_fold_predictor",
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


def member_session(model: str | Path):
    """An onnxruntime session of an exported ensemble that also returns each member's
    probabilities (the graph's per-member softmax, ``(n, members, 3)``, as a second
    output), and that output's name."""
    import onnx
    import onnxruntime as ort

    from hyperspy_mnvalence.model import load_model

    m = onnx.load(str(load_model(model).path))
    soft = [node for node in m.graph.node if node.op_type == "Softmax"]
    if len(soft) != 1:
        raise ValueError(f"{model}: expected one Softmax node (the members'), found {len(soft)}")
    name = soft[0].output[0]
    m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(
        m.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    ), name


def onnx_fold_predictor(
    model: str | Path,
    labels: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    weak: str | Path | None = None,
    weak_below: float | None = None,
) -> Predictor:
    """Held-out predictions from an exported ensemble of fold models.

    An acquisition-trained ensemble (:mod:`.acquisition_export`) holds the fold models
    of ``StratifiedKFold(folds, seed)`` over the Titan spectra as its members, in fold
    order. Each recording of a Titan spectrum is read by the member that held that
    spectrum out, exactly as :func:`keras_fold_predictor` reads the fold folders, so the
    suite can be re-run from the shipped file alone. With ``weak`` (an ensemble of the
    same folds), spectra whose measured contrast (``Preprocessed.l3_over_background``)
    is below ``weak_below`` are read by its held-out member instead (the weak-edge
    route of ``classify_mn_valence``).

    Parameters
    ----------
    model : str or path-like
        A shipped model's name or an ONNX file.
    labels : numpy.ndarray
        Class index of every Titan spectrum (the split is stratified by it).
    folds, seed : int
        The split (:func:`.cv.cv_splits`).
    weak : str or path-like, optional
        The weak-edge ensemble of the same folds.
    weak_below : float, optional
        Its threshold on the measured contrast.

    Returns
    -------
    Predictor
    """
    from hyperspy_mnvalence.preprocessing import preprocess

    from .cv import cv_splits

    owner = np.full(len(labels), -1)
    for k, (_, held) in enumerate(cv_splits(np.asarray(labels), None, folds, seed)):
        owner[held] = k
    nets = [member_session(model)] + ([member_session(weak)] if weak is not None else [])

    def predict(raw, energy, source):
        pre = preprocess(raw, energy)
        out = np.full((raw.shape[0], 3), np.nan, np.float32)
        # not a recording of the Titan spectra (source None): the first fold model, as
        # keras_fold_predictor reads them (the negatives' false-Mn rate)
        fold = np.zeros(raw.shape[0], int) if source is None else owner[source]
        low = np.zeros(raw.shape[0], bool)
        if weak is not None:
            low = pre.l3_over_background < weak_below  # NaN (no edge) is neither
        for (sess, name), pick in zip(nets, (~low, low)[: len(nets)], strict=True):
            rows = np.nonzero(pre.valid & pick)[0]
            if rows.size:
                mem = sess.run([name], {"spectra": pre.x[rows]})[0]
                if mem.shape[1] != folds:
                    raise ValueError(f"{mem.shape[1]} ensemble members, not one per fold ({folds})")
                out[rows] = mem[np.arange(rows.size), fold[rows]]
        return out

    return predict


def fold_clean_accuracy(
    model: str | Path,
    spectra: np.ndarray,
    energy: np.ndarray,
    labels: np.ndarray,
    folds: int = 5,
    seed: int = 0,
) -> list[float]:
    """Held-out accuracy on the clean spectra as given, per fold, from an exported
    ensemble of fold models (as :mod:`.acquisition_export` measures it on the fold
    folders: a spectrum flagged "no Mn edge" counts as wrong).

    Parameters
    ----------
    model : str or path-like
        A shipped model's name or an ONNX file whose members are the fold models.
    spectra, energy, labels : numpy.ndarray
        The Titan spectra, their energy axis and class indices.
    folds, seed : int
        The split (:func:`.cv.cv_splits`).

    Returns
    -------
    list of float
        One accuracy per fold.
    """
    from .cv import cv_splits

    labels = np.asarray(labels)
    predict = onnx_fold_predictor(model, labels, folds, seed)
    out = []
    for _, held in cv_splits(labels, None, folds, seed):  # each fold preprocessed alone
        p = predict(spectra[held], energy, held)
        right = np.isfinite(p).all(1) & (np.nan_to_num(p).argmax(1) == labels[held])
        out.append(float(right.mean()))
    return out


def onnx_predictor(model: str) -> Predictor:
    """A predictor through the package's own inference (an ONNX model file or a shipped
    model's name such as ``"fast"``)."""
    from hyperspy_mnvalence.classification import classify_spectra

    def predict(raw, energy, source=None):
        return classify_spectra(raw, energy, model=model)[:, :3]

    return predict
