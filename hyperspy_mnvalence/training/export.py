"""Export of Keras models (one or an ensemble) to ONNX with the plugin's metadata.

The graph takes ``spectra`` float32 ``(N, L)`` (dynamic ``N`` and ``L``; 300 for the
shipped preprocessing) and returns ``probabilities`` (mean of the members' softmax)
and ``probability_std`` (standard deviation across members), both ``(N, 3)``.
The metadata is a JSON string under the key ``"hyperspy_mnvalence"`` in
``model.metadata_props``. :func:`export_onnx` builds the graph from the trained
weights (:mod:`._onnx_graph`), so it works with every Keras backend and needs no
TensorFlow; graphs written by earlier versions (with tf2onnx) are rewritten in place by
:mod:`.graph_rewrites`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from pathlib import Path

from hyperspy_mnvalence.model import stamp_model  # issue 15: model integrity

__all__ = [
    "METADATA_KEY",
    "build_metadata",
    "export_onnx",
    "in_package_models",
    "read_metadata",
    "set_metadata",
    "write_metadata",
]

_logger = logging.getLogger(__name__)

METADATA_KEY = "hyperspy_mnvalence"
#: The ``graph`` entry of the metadata of a graph built by :func:`export_onnx`.
WEIGHTS_NOTE = (
    "built from the Keras weights (hyperspy_mnvalence.training.export.export_onnx): "
    "batch normalisations and biases folded into the convolutions"
)


def build_metadata(
    *,
    architecture: str,
    n_members: int,
    augmentation: dict,
    training_data: list[dict],
    seed: int,
    metrics: dict,
    preprocessing: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """The metadata dict of the ONNX model contract (format version 1).

    Parameters
    ----------
    architecture : str
    n_members : int
    augmentation : dict
    training_data : list of dict
        ``{"file", "sha256", "n_spectra"}`` per file.
    seed : int
    metrics : dict
        ``cv_accuracy``, ``cv_accuracy_std``, ``digitized_accuracy``,
        ``digitized_correct``, ``digitized_total``, ``shift_accuracy``,
        ``noise_accuracy``, ``fold_digitized_correct`` ...
    preprocessing : dict, optional
        Defaults to ``DEFAULT_PREPROCESSING``.
    extra : dict, optional
        Further keys (training settings, notes).

    Returns
    -------
    dict
        With ``backend``: the Keras backend that trained the model (``name``,
        ``version``, ``keras_version``, ``device``; see :func:`.loop.backend_info`), and
        ``tensorflow_version`` (``None`` unless the backend is TensorFlow).
    """
    import hyperspy_mnvalence
    from hyperspy_mnvalence.preprocessing import DEFAULT_PREPROCESSING

    from .loop import backend_info

    backend = backend_info()
    tf_version = backend["version"] if backend["name"] == "tensorflow" else None
    pre = dict(preprocessing or DEFAULT_PREPROCESSING)
    meta = {
        "format_version": 1,
        "task": "classification",
        "classes": [2, 3, 4],
        "class_names": ["Mn2+", "Mn3+", "Mn4+"],
        "energy_step_eV": float(pre["energy_step_eV"]),
        "preprocessing": pre,
        "input_name": "spectra",
        "outputs": ["probabilities", "probability_std"],
        "architecture": architecture,
        "n_members": int(n_members),
        "augmentation": augmentation,
        "training_data": training_data,
        "seed": int(seed),
        "metrics": metrics,
        "package_version": hyperspy_mnvalence.__version__,
        "tensorflow_version": tf_version,
        "backend": backend,
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
    }
    if extra:
        meta.update(extra)
    return meta


def in_package_models(path: str | os.PathLike) -> bool:
    """Whether ``path`` is in the installed package's models folder (the shipped models).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    bool
    """
    from hyperspy_mnvalence.model import default_model_path

    return Path(path).resolve().parent == default_model_path().resolve().parent


#: Added to the ``graph`` entry of the metadata when the members were grouped.
GROUPED_NOTE = "ensemble members run side by side as grouped convolutions"


def set_metadata(proto, meta: dict) -> None:
    """Replace the model card (:data:`METADATA_KEY`) in a loaded ONNX model, in place.

    Parameters
    ----------
    proto : onnx.ModelProto
    meta : dict
    """
    for p in proto.metadata_props:
        if p.key == METADATA_KEY:
            p.value = json.dumps(meta, sort_keys=True)


def write_metadata(path: str | os.PathLike, meta: dict) -> None:
    """Replace the model card of a model file; graph and weights are left as they are.

    Parameters
    ----------
    path : path-like
        An exported ``.onnx`` file.
    meta : dict
        The new card (e.g. :func:`read_metadata` with results added).
    """
    import onnx

    proto = onnx.load(str(path))
    set_metadata(proto, meta)
    onnx.save(proto, str(path))
    stamp_model(path)  # the hashes exclude the card, but a re-stamp keeps the file canonical


def export_onnx(models, path: str | os.PathLike, metadata: dict, *, check: bool = True) -> Path:
    """Write one Keras model or an ensemble as one ONNX graph, built from the weights.

    The graph is written with :mod:`onnx.helper` from the trained weights
    (:mod:`._onnx_graph`): batch normalisations and biases folded into the
    convolutions, dropout left out, members of the same fully convolutional shape run
    as grouped convolutions, opset 17, dynamic batch and length. Neither TensorFlow nor
    tf2onnx is needed: any Keras 3 backend (TensorFlow, JAX, PyTorch) works.

    Parameters
    ----------
    models : keras.Model or list of keras.Model
        Models taking ``(N, L, 1)`` and returning softmax ``(N, 3)``.
    path : path-like
        Output ``.onnx`` file.
    metadata : dict
        Stored as JSON under :data:`METADATA_KEY`, with a ``graph`` entry added.
    check : bool
        Compare the graph with the Keras models on 64 random spectra of 300 channels
        and raise ``ValueError`` if any output differs by more than 1e-4 (a model whose
        layers are not one chain would otherwise export silently wrong).

    Returns
    -------
    pathlib.Path
    """
    import onnx

    from ._onnx_graph import build_graph

    members = list(models) if isinstance(models, list | tuple) else [models]
    proto, grouped = build_graph(members)
    if check:
        _check_against_keras(proto, members)
    note = f"{WEIGHTS_NOTE}; {GROUPED_NOTE}" if grouped else WEIGHTS_NOTE
    metadata = {**metadata, "graph": note}
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(metadata, sort_keys=True)
    proto.producer_name = "hyperspy_mnvalence.training"
    onnx.checker.check_model(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    stamp_model(path)  # issue 15: record the SHA-256 of the weights and graph (checked at load)
    return path


def _check_against_keras(proto, members, atol: float = 1e-4) -> None:
    """Raise ``ValueError`` if the graph's outputs differ from the Keras models'."""
    import numpy as np
    import onnxruntime as ort

    x = np.random.default_rng(0).normal(0.0, 0.3, (64, 300)).astype(np.float32)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    p, sd = sess.run(None, {"spectra": x})
    probs = np.stack([np.asarray(m.predict(x[..., None], verbose=0)) for m in members])
    diff = max(np.abs(p - probs.mean(0)).max(), np.abs(sd - probs.std(0)).max())
    if not diff <= atol:
        raise ValueError(
            f"the ONNX graph differs from the Keras model(s) by {diff:.2e} (> {atol}): "
            "the models are not chains of the layers hyperspy_mnvalence exports"
        )
    _logger.debug("exported graph within %.1e of Keras", diff)


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``hyperspy_mnvalence`` metadata of an exported model.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict
    """
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    for p in m.metadata_props:
        if p.key == METADATA_KEY:
            return json.loads(p.value)
    raise KeyError(f"{path} has no {METADATA_KEY!r} metadata")
