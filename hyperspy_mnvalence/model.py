"""Loading and running the ONNX models that ship with the package.

A model file carries everything needed to use it: its metadata (JSON under the
``hyperspy_mnvalence`` key of the ONNX ``metadata_props``) holds the classes, the energy
step, the preprocessing parameters, the training data (names and sha256) and the
metrics. Inference runs through onnxruntime, on CUDA when ``onnxruntime-gpu`` is
installed and a GPU is visible, on the CPU otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .model_file import (
    METADATA_KEY,
    ModelError,
    check_metadata,
    stamp_model,
    verify_model_file,
)

__all__ = [
    "DEFAULT_MODEL",
    "ENSEMBLE_MODEL",
    "FRACTIONS_MODEL",
    "FAST_MODEL",
    "LITE_MODEL",
    "ACQUISITION_MODEL",
    "BROAD_MODEL",
    "BROAD_RESOLUTION_EV",
    "THIN_MODEL",
    "ONE_EV_DISPERSION",
    "ONE_EV_MODEL",
    "WEAK_CONTRAST",
    "WEAK_MODEL",
    "METADATA_KEY",
    "SHIPPED_MODELS",
    "ModelError",
    "MnValenceModel",
    "default_model_path",
    "load_model",
    "model_card",
    "stamp_model",
    "verify_model_file",
]

_logger = logging.getLogger(__name__)

FRACTIONS_MODEL = "mn_valence_fractions.onnx"
FAST_MODEL = "mn_valence_fcn_fast.onnx"
LITE_MODEL = "mn_valence_fcn_lite.onnx"
#: The default classifier: five networks trained on simulated acquisitions through the
#: inference preprocessing (chosen by the robustness suite's rule,
#: ``training/reports/acquisition/selection_outcome.json``).
ACQUISITION_MODEL = "mn_valence_fcn_acquisition.onnx"
#: Ten networks trained on the clean Titan spectra (the default before the suite's rule
#: picked the acquisition-trained ensemble): best on thin, clean, well-resolved data.
ENSEMBLE_MODEL = "mn_valence_fcn.onnx"
DEFAULT_MODEL = ACQUISITION_MODEL
#: Five networks trained on thin acquisitions only (no plural scattering): what reads
#: spectra deconvolved with their low loss (``classify_mn_valence(s, low_loss=ll)``
#: uses it unless a model is given), and thin samples.
THIN_MODEL = "mn_valence_fcn_thin.onnx"
#: Five networks trained on acquisitions at 1.4-2 eV resolution (chosen by the rule
#: ``broad_resolution_slot``): what reads spectra whose zero-loss FWHM is given as
#: :data:`BROAD_RESOLUTION_EV` or more (``classify_mn_valence(s, resolution_eV=...)``
#: uses it unless a model or a low loss is given).
BROAD_MODEL = "mn_valence_fcn_broad.onnx"
#: Zero-loss FWHM (eV) from which the broad model reads by default.
BROAD_RESOLUTION_EV = 1.4
#: Five networks trained on spectra recorded at 1 eV per channel (chosen by the rule
#: ``exact_1ev_slot``): what reads spectra whose dispersion lies in
#: :data:`ONE_EV_DISPERSION` (``classify_mn_valence`` uses it unless a model, a low loss
#: or a coarse ``resolution_eV`` is given).
ONE_EV_MODEL = "mn_valence_fcn_1ev.onnx"
#: Dispersions (eV per channel) the 1-eV model reads by default.
ONE_EV_DISPERSION = (0.95, 1.05)
#: Five networks trained on weak edges only, L3 2-5 % above the background (chosen by the
#: rule ``weak_contrast_route``): the better reader of dilute or weak-signal maps whose
#: measured L3/background is below :data:`WEAK_CONTRAST` (``model="weak"``).
WEAK_MODEL = "mn_valence_fcn_weak.onnx"
#: Measured L3/background (``Preprocessed.l3_over_background``) below which the weak-edge
#: model reads better than the default (the rule's threshold, fixed from the simulator).
WEAK_CONTRAST = 0.049
#: Names accepted for ``model`` instead of a path: the shipped models.
SHIPPED_MODELS = {
    "ensemble": ENSEMBLE_MODEL,
    "fast": FAST_MODEL,
    "lite": LITE_MODEL,
    "acquisition": ACQUISITION_MODEL,
    "thin": THIN_MODEL,
    "broad": BROAD_MODEL,
    "1ev": ONE_EV_MODEL,
    "weak": WEAK_MODEL,
    "fractions": FRACTIONS_MODEL,
}
_REQUIRED = ("classes", "energy_step_eV", "preprocessing", "input_name", "outputs")


def default_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a model shipped in the package.

    Parameters
    ----------
    name : str
        File name inside ``hyperspy_mnvalence/models``.

    Returns
    -------
    pathlib.Path
    """
    return Path(str(resources.files("hyperspy_mnvalence").joinpath("models", name)))


def _providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    chosen = [p for p in wanted if p in available]
    return chosen or available


class MnValenceModel:
    """An ONNX Mn-valence model with its metadata.

    Picklable: the onnxruntime session is not pickled but recreated on first use in
    the receiving process, so the model travels to dask workers.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file.

    Attributes
    ----------
    path : pathlib.Path
    metadata : dict
        The model card stored in the file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(
                f"Model file {self.path} does not exist. Pass model=None for the shipped "
                "model, or the path of a model exported by hyperspy_mnvalence.training."
            )
        props = verify_model_file(self.path)  # read without onnx; hashes checked
        self._session = None
        self._lock = threading.Lock()
        self._outputs_checked = False
        if METADATA_KEY not in props:
            raise ModelError(
                f"{self.path} is an ONNX model but not a hyperspy_mnvalence model: it has "
                f"no '{METADATA_KEY}' metadata. Export models with "
                "hyperspy_mnvalence.training."
            )
        try:
            self.metadata = json.loads(props[METADATA_KEY])
        except json.JSONDecodeError as exc:
            raise ModelError(f"The metadata of {self.path} is not valid JSON: {exc}") from exc
        if not isinstance(self.metadata, dict):
            raise ModelError(f"The metadata of {self.path} is not a JSON object.")
        missing = [k for k in _REQUIRED if k not in self.metadata]
        if missing:
            raise ModelError(
                f"{self.path} is incompatible with this version of hyperspy_mnvalence: its "
                f"metadata lacks {missing}. Re-export it with hyperspy_mnvalence.training."
            )
        check_metadata(self.path, self.metadata)

    # -- pickling: drop the session --------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_session"] = None
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        task = self.metadata.get("task", "classification")
        return f"<MnValenceModel {self.path.name}: {task}, {self.n_members} member(s)>"

    # -- properties -----------------------------------------------------------------
    @property
    def classes(self) -> list[int]:
        """Valences of the output columns."""
        return [int(c) for c in self.metadata["classes"]]

    @property
    def preprocessing(self) -> dict:
        """Preprocessing parameters the model was trained with."""
        p = dict(self.metadata["preprocessing"])
        p.setdefault("energy_step_eV", self.metadata["energy_step_eV"])
        return p

    @property
    def n_members(self) -> int:
        """Number of ensemble members in the graph."""
        return int(self.metadata.get("n_members", 1))

    @property
    def task(self) -> str:
        """``"classification"`` or ``"fractions"``."""
        return str(self.metadata.get("task", "classification"))

    # -- inference ------------------------------------------------------------------
    def _get_session(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort

                    opts = ort.SessionOptions()
                    opts.log_severity_level = 3
                    # no busy-waiting between calls: the CPU goes to the preprocessing
                    # threads (measured: 1026 -> 742 CPU us per spectrum on 2 cores)
                    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    # one thread per call: callers run calls side by side (batches in
                    # threads, dask blocks, ``predict``'s own pool), so onnxruntime's
                    # pool would only compete with them (measured on 2 cores, fcn_lite:
                    # 2 threads cost 0.28 CPU s per 16k spectra, 1 thread 0.16, same wall)
                    opts.intra_op_num_threads = 1
                    try:
                        sess = ort.InferenceSession(
                            str(self.path), sess_options=opts, providers=_providers()
                        )
                    except Exception as exc:
                        raise ModelError(f"onnxruntime could not load {self.path}: {exc}") from exc
                    self._check_io(sess)
                    self._session = sess
        return self._session

    def _check_io(self, sess) -> None:
        """The metadata's input and output names must be the graph's."""
        inputs = [i.name for i in sess.get_inputs()]
        outputs = [o.name for o in sess.get_outputs()]
        name = self.metadata["input_name"]
        if name not in inputs:
            raise ModelError(
                f"{self.path}: metadata input_name {name!r} is not an input of the graph "
                f"(its inputs: {inputs}); re-export the model."
            )
        wrong = [o for o in self.metadata["outputs"] if o not in outputs]
        if wrong:
            raise ModelError(
                f"{self.path}: metadata outputs {wrong} are not outputs of the graph (its "
                f"outputs: {outputs}); re-export the model."
            )

    def _check_outputs(self, x: np.ndarray, probs: np.ndarray) -> None:
        """The first batch's outputs must be finite probabilities summing to 1."""
        rows = np.all(np.isfinite(x), axis=1)
        p = probs[rows].astype(np.float64)
        if p.size == 0:
            return
        bad = ~np.all(np.isfinite(p), axis=1) | (np.abs(p.sum(axis=1) - 1.0) > 1e-3)
        bad |= np.any(p < -1e-6, axis=1)
        if np.any(bad):
            k = int(np.argmax(bad))
            raise ModelError(
                f"{self.path} gives outputs that are not probabilities ({int(bad.sum())} of "
                f"{bad.size} spectra of the first batch; e.g. {p[k].tolist()}): the model is "
                "corrupted or not a classifier with a softmax output. Reinstall "
                "hyperspy_mnvalence or re-export the model."
            )
        self._outputs_checked = True

    @property
    def providers(self) -> list[str]:
        """onnxruntime execution providers in use (CUDA first when available)."""
        return list(self._get_session().get_providers())

    def predict(
        self, x: np.ndarray, batch_size: int = 2048, n_threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on preprocessed spectra.

        Parameters
        ----------
        x : numpy.ndarray
            Preprocessed input, shape ``(n, n_channels)``.
        batch_size : int
            Spectra per onnxruntime call.
        n_threads : int, optional
            Calls run at once in threads (each onnxruntime call uses one core). Default:
            the number of CPUs, at most 4.

        Returns
        -------
        probabilities : numpy.ndarray
            Shape ``(n, 3)``: class probabilities (or fractions).
        spread : numpy.ndarray
            Shape ``(n, 3)``: standard deviation over ensemble members (zeros for a
            single network).
        """
        sess = self._get_session()
        x = np.ascontiguousarray(x, dtype=np.float32)
        n = x.shape[0]
        out_names = list(self.metadata["outputs"])
        probs = np.empty((n, 3), np.float32)
        spread = np.zeros((n, 3), np.float32)
        in_name = self.metadata["input_name"]
        batch_size = max(int(batch_size), 1)
        starts = range(0, n, batch_size)

        def run(i: int) -> None:
            res = sess.run(out_names, {in_name: x[i : i + batch_size]})
            probs[i : i + batch_size] = res[0]
            if len(res) > 1:
                spread[i : i + batch_size] = res[1]

        if not getattr(self, "_outputs_checked", True) and n:
            run(0)  # the first batch alone, checked before the others run
            self._check_outputs(x[:batch_size], probs[:batch_size])
            starts = starts[1:]
        n_threads = resolve_threads(n_threads, len(starts))
        if n_threads > 1:
            with ThreadPoolExecutor(n_threads, thread_name_prefix="mnvalence-onnx") as pool:
                list(pool.map(run, starts))
        else:
            for i in starts:
                run(i)
        return probs, spread


def resolve_threads(n_threads: int | None, n_tasks: int) -> int:
    # threads for n_tasks tasks: n_threads, by default the CPUs (at most 4); never more
    # than the tasks, at least 1 (shared by predict and classification's batch pool)
    if n_threads is None:
        n_threads = min(os.cpu_count() or 1, 4)
    return max(1, min(int(n_threads), n_tasks))


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> MnValenceModel:
    return MnValenceModel(path)


def load_model(
    model: str | os.PathLike | MnValenceModel | None = None, *, name: str = DEFAULT_MODEL
) -> MnValenceModel:
    """Load a model once per process (cached by path and modification time).

    Parameters
    ----------
    model : str, path-like, MnValenceModel or None
        ``None`` for the default classifier (``"acquisition"``: five networks trained on
        simulated acquisitions); ``"ensemble"`` (ten networks trained on clean Titan
        spectra, best on thin, clean data), ``"fast"`` (the default's fold-1 network
        alone, no ensemble spread: see its model card), ``"lite"`` (one smaller network
        trained on clean spectra, a little less accurate) or ``"fractions"`` for a shipped model by name;
        a path to a retrained ``.onnx`` file; or an already-loaded model (returned as
        is).
    name : str
        Which shipped model when ``model`` is None.

    Returns
    -------
    MnValenceModel
    """
    if isinstance(model, MnValenceModel):
        return model
    if isinstance(model, str) and model in SHIPPED_MODELS and not Path(model).exists():
        model, name = None, SHIPPED_MODELS[model]
    if not (model is None or isinstance(model, str | os.PathLike)):
        raise TypeError(
            "model must be None (the shipped model), a shipped model's name "
            f"({', '.join(SHIPPED_MODELS)}), the path of a .onnx file or a MnValenceModel, "
            f"got {type(model).__name__} {model!r}"
        )
    path = Path(model) if model is not None else default_model_path(name)
    if path.is_dir():
        raise ModelError(
            f"model {str(path)!r} is a folder; give the path of a .onnx model file in it, "
            f"or a shipped model's name ({', '.join(SHIPPED_MODELS)})."
        )
    if not path.is_file():
        hint = (
            " The shipped model is missing from the installation; reinstall hyperspy_mnvalence."
            if model is None
            else f" Give one of the shipped models by name ({', '.join(SHIPPED_MODELS)}) or "
            "the path of a retrained .onnx file."
        )
        raise ModelError(f"Model file {path} does not exist.{hint}")
    return _load_cached(str(path.resolve()), path.stat().st_mtime)


def model_card(model: str | os.PathLike | MnValenceModel | None = None) -> dict:
    """The model card stored inside a model file.

    Parameters
    ----------
    model : str, path-like, MnValenceModel or None
        ``None`` for the shipped classifier, a shipped model's name (``"fast"``,
        ``"lite"``, ``"fractions"``), or a model file.

    Returns
    -------
    dict
        Holds ``classes``, ``energy_step_eV``, ``training_data`` (file names and
        sha256), ``metrics`` (``cv_accuracy``, ``digitized_accuracy``,
        ``shift_accuracy``, ``noise_accuracy``), the preprocessing parameters and more.
    """
    m = load_model(model)
    card = json.loads(json.dumps(m.metadata))
    card["path"] = str(m.path)
    return card
