"""Export of Keras models (one or an ensemble) to ONNX with the plugin's metadata.

The graph takes ``spectra`` float32 ``(N, L)`` (dynamic ``N`` and ``L``; 300 for the
shipped preprocessing) and returns ``probabilities`` (mean of the members' softmax)
and ``probability_std`` (standard deviation across members), both ``(N, 3)``.
The metadata is a JSON string under the key ``"hyperspy_mnvalence"`` in
``model.metadata_props``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

__all__ = ["METADATA_KEY", "build_metadata", "export_onnx", "read_metadata"]

METADATA_KEY = "hyperspy_mnvalence"
OPSET = 17


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
    """
    import hyperspy_mnvalence
    from hyperspy_mnvalence.preprocessing import DEFAULT_PREPROCESSING

    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:  # pragma: no cover
        tf_version = None
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
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
    }
    if extra:
        meta.update(extra)
    return meta


def export_onnx(models, path: str | os.PathLike, metadata: dict) -> Path:
    """Write one Keras model or an ensemble as one ONNX graph.

    Parameters
    ----------
    models : keras.Model or list of keras.Model
        Models taking ``(N, L, 1)`` and returning softmax ``(N, 3)``.
    path : path-like
        Output ``.onnx`` file.
    metadata : dict
        Stored as JSON under :data:`METADATA_KEY`.

    Returns
    -------
    pathlib.Path
    """
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import onnx
    import tensorflow as tf
    import tf2onnx

    if not isinstance(models, list | tuple):
        models = [models]
    members = list(models)

    @tf.function(input_signature=(tf.TensorSpec((None, None), tf.float32, name="spectra"),))
    def ensemble(spectra):
        x = tf.expand_dims(spectra, -1)
        probs = tf.stack([m(x, training=False) for m in members], axis=0)
        mean = tf.reduce_mean(probs, axis=0)
        std = tf.sqrt(tf.reduce_mean(tf.square(probs - mean[None]), axis=0))
        return {
            "probabilities": tf.identity(mean, name="probabilities"),
            "probability_std": tf.identity(std, name="probability_std"),
        }

    proto, _ = tf2onnx.convert.from_function(
        ensemble,
        input_signature=ensemble.input_signature,
        opset=OPSET,
        output_path=None,
    )
    # name the graph outputs exactly as the contract says
    names = {"probabilities", "probability_std"}
    for out in proto.graph.output:
        for n in names:
            if out.name != n and out.name.split(":")[0].endswith(n):
                _rename_output(proto, out.name, n)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(metadata, sort_keys=True)
    proto.producer_name = "hyperspy_mnvalence.training"
    onnx.checker.check_model(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def _rename_output(proto, old: str, new: str) -> None:
    for node in proto.graph.node:
        for i, o in enumerate(node.output):
            if o == old:
                node.output[i] = new
        for i, o in enumerate(node.input):
            if o == old:
                node.input[i] = new
    for out in proto.graph.output:
        if out.name == old:
            out.name = new


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
