"""The training loop shared by the classifier and the fraction model.

Both are trained the same way: seeds fixed with :func:`seed_everything`, the network of
:func:`.architectures.build_model`, Adam with a cosine-decaying learning rate (to 1 %
over the run), and every epoch a *fresh* batch of augmented inputs fitted for one pass
(``model.fit(epochs=1)``). Optionally a validation loss is computed after every epoch
and the weights of the best epoch are restored at the end. What differs between the
models (how an epoch's inputs and targets are made, the loss, the validation) is
passed in.

Any Keras 3 backend trains: TensorFlow, JAX or PyTorch, chosen by the environment
variable ``KERAS_BACKEND`` before Keras is first imported. With ``workers > 0`` the
epochs' inputs are made ahead in worker processes while the model trains, so that a
GPU does not wait for one CPU core. Keras is imported lazily inside the functions.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["LoopConfig", "backend_info", "seed_everything", "train_loop"]

_logger = logging.getLogger(__name__)


class LoopConfig(Protocol):
    """The hyper-parameters :func:`train_loop` reads from a configuration.

    :class:`.cv.TrainConfig` and :class:`.fraction_config.FractionConfig` have them all.

    Attributes
    ----------
    arch : str
        Architecture name (see :mod:`.architectures`).
    seed : int
        Seed of Python, numpy, the Keras backend and of the epochs' inputs.
    epochs : int
        Number of epochs.
    batch_size : int
    learning_rate : float
        Initial Adam learning rate.
    """

    arch: str
    seed: int
    epochs: int
    batch_size: int
    learning_rate: float


def seed_everything(seed: int) -> None:
    """Fix the seeds of Python, numpy and the Keras backend; ask for determinism.

    ``keras.utils.set_random_seed`` seeds Python, numpy and the backend's generator
    (TensorFlow's, PyTorch's, or Keras' own JAX seed generator). Where the backend
    can make its operations deterministic it is asked to: TensorFlow with
    ``tf.config.experimental.enable_op_determinism``; PyTorch with
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` and deterministic
    cuDNN (``CUBLAS_WORKSPACE_CONFIG=:4096:8`` is set for cuBLAS unless set
    already; it only takes effect if CUDA was not initialised yet). JAX's random
    numbers are functional and seeded above; its CPU results are deterministic, and
    on a GPU set ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` before starting
    Python for deterministic reductions (not set here: XLA rejects flags it does not
    know, and the flag's name changes between versions).

    Parameters
    ----------
    seed : int
    """
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras

    keras.utils.set_random_seed(seed)
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.experimental.enable_op_determinism()
        except Exception as err:  # pragma: no cover - older TensorFlow
            _logger.debug("TensorFlow op determinism not available: %s", err)
    elif backend == "torch":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def backend_info() -> dict:
    """The Keras backend in use, its version and the device it computes on.

    Returns
    -------
    dict
        ``name`` (``"tensorflow"``, ``"jax"``, ``"torch"``), ``version`` (of the
        backend's package), ``keras_version`` and ``device`` (e.g. ``"cpu"``,
        ``"gpu: NVIDIA H100 80GB HBM3"``).
    """
    import keras

    name = keras.config.backend()
    version, device = None, "cpu"
    try:
        if name == "tensorflow":
            import tensorflow as tf

            version = tf.__version__
            gpus = tf.config.list_logical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(
                    tf.config.list_physical_devices("GPU")[0]
                )
                device = f"gpu: {details.get('device_name', gpus[0].name)}"
        elif name == "jax":
            import jax

            version = jax.__version__
            d = jax.devices()[0]
            device = d.platform if d.platform == "cpu" else f"{d.platform}: {d.device_kind}"
        elif name == "torch":
            import torch

            version = torch.__version__
            if torch.cuda.is_available():
                device = f"cuda: {torch.cuda.get_device_name(0)}"
        else:
            version = getattr(__import__(name), "__version__", None)
    except Exception as err:  # pragma: no cover - a backend without a device query
        _logger.debug("device of backend %s not found: %s", name, err)
    return {"name": name, "version": version, "keras_version": keras.__version__, "device": device}


# the worker processes' epoch maker (set once per worker by _init_worker)
_WORKER_MAKE_EPOCH: Callable | None = None


def _init_worker(make_epoch: Callable) -> None:
    global _WORKER_MAKE_EPOCH
    _WORKER_MAKE_EPOCH = make_epoch


def _worker_epoch(seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    return _WORKER_MAKE_EPOCH(np.random.default_rng(seed))


def _epochs(
    make_epoch: Callable, seed: int, epochs: int, workers: int, wait: list[float]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The epochs' ``(x, targets)``, made here or ahead in ``workers`` processes.

    The time spent waiting for each epoch is appended to ``wait``. With workers,
    epoch ``i`` is drawn from ``default_rng(SeedSequence(seed).spawn(epochs)[i])``
    whichever worker makes it, and at most ``workers + 1`` epochs are in flight.
    """
    if workers <= 0:
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            t = time.perf_counter()
            out = make_epoch(rng)
            wait.append(time.perf_counter() - t)
            yield out
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    try:
        pickle.dumps(make_epoch)
    except Exception as err:
        raise TypeError(
            "train_loop(workers > 0) sends make_epoch to worker processes, so it must be "
            "picklable: a module-level function, or functools.partial of one with "
            f"picklable arguments, not a closure or lambda ({err})"
        ) from err
    seeds = np.random.SeedSequence(seed).spawn(epochs)
    # 'spawn': forking a process in which TensorFlow, JAX or PyTorch runs threads can hang
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(make_epoch,),
    )
    try:
        ahead = deque(pool.submit(_worker_epoch, s) for s in seeds[: workers + 1])
        for i in range(epochs):
            t = time.perf_counter()
            out = ahead.popleft().result()
            wait.append(time.perf_counter() - t)
            if i + workers + 1 < epochs:
                ahead.append(pool.submit(_worker_epoch, seeds[i + workers + 1]))
            yield out
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def train_loop(
    cfg: LoopConfig,
    *,
    samples_per_epoch: int,
    loss: Any,
    make_epoch: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
    metrics: Sequence[str] | None = None,
    validate: Callable[[Any], tuple[float, str]] | None = None,
    note: str = "",
    verbose: bool = True,
    label: str = "",
    t0: float | None = None,
    workers: int = 0,
) -> tuple[Any, dict]:
    """Train a new model on freshly made inputs every epoch.

    The order of the random draws is fixed: :func:`seed_everything` (``cfg.seed``)
    first, then the model is built; every epoch ``make_epoch`` draws from its
    generator, then ``model.fit`` runs one shuffled pass, then ``validate`` (if given)
    scores the model.

    Parameters
    ----------
    cfg : LoopConfig
        ``arch``, ``seed`` (also of the generators passed to ``make_epoch``),
        ``epochs`` (each one call of ``make_epoch`` and one pass of ``fit``),
        ``batch_size`` and ``learning_rate`` (initial Adam learning rate; cosine decay
        to 1 % over ``epochs * ceil(samples_per_epoch / batch_size)`` steps).
    samples_per_epoch : int
        Number of inputs ``make_epoch`` returns (for the learning-rate schedule).
    loss : keras.losses.Loss
        Training loss.
    make_epoch : callable
        ``make_epoch(rng) -> (x, targets)``: the epoch's preprocessed inputs ``(n, L)``
        and targets ``(n, 3)``, drawn from ``rng`` only. With ``workers > 0`` it must
        be picklable (a module-level function or ``functools.partial`` of one, not a
        closure): it is sent once to each worker process.
    metrics : sequence of str, optional
        Keras metrics passed to ``compile``.
    validate : callable, optional
        ``validate(model) -> (loss, note)`` after every epoch: the validation loss
        (lowest wins; those weights are restored at the end) and a text appended to
        the progress line. Without it the final weights are kept.
    note : str
        Text appended to the progress lines until ``validate`` returns one.
    verbose : bool
        Print a progress line every 10 epochs and after the last one.
    label : str
        Prefix of the progress lines.
    t0 : float, optional
        ``time.time()`` the progress lines count from (default: now).
    workers : int
        ``0`` (default): every epoch is made in this process, from one generator
        ``numpy.random.default_rng(cfg.seed)`` drawn from in turn. ``n > 0``: ``n``
        worker processes make the epochs ahead (up to ``n + 1`` in flight) while the
        model trains; epoch ``i`` is drawn from
        ``default_rng(numpy.random.SeedSequence(cfg.seed).spawn(cfg.epochs)[i])``,
        so a run is reproducible and the same for every ``n > 0``, but not the same
        as with ``workers=0``.

    Returns
    -------
    model : keras.Model
        The trained model (best validation epoch if ``validate`` is given).
    info : dict
        ``best_epoch`` (1-based; 0 without ``validate``), ``final_loss`` (training
        loss of the last epoch), ``seconds`` (wall time of the loop),
        ``seconds_per_epoch``, ``data_wait_s`` (time spent waiting for the epochs'
        inputs: making them, with ``workers=0``), ``data_wait_share`` (its share of
        ``seconds``), ``workers``, and ``backend`` (:func:`backend_info`).
    """
    import keras

    from .architectures import build_model

    start = time.perf_counter()
    seed_everything(cfg.seed)
    t0 = time.time() if t0 is None else t0
    model = build_model(cfg.arch)
    epochs, batch_size = cfg.epochs, cfg.batch_size
    steps = epochs * int(np.ceil(samples_per_epoch / batch_size))
    sched = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=loss, metrics=metrics)
    best = (np.inf, -1)
    best_w = None
    last = float("nan")
    wait: list[float] = []
    for ep, (x, targets) in enumerate(_epochs(make_epoch, cfg.seed, epochs, workers, wait)):
        h = model.fit(
            x[..., None], targets, batch_size=batch_size, epochs=1, shuffle=True, verbose=0
        )
        last = float(h.history["loss"][-1])
        if validate is not None:
            val_loss, note = validate(model)
            if val_loss < best[0]:
                best = (val_loss, ep)
                best_w = model.get_weights()
        if verbose and (ep % 10 == 9 or ep == epochs - 1):
            print(
                f"{label} epoch {ep + 1}/{epochs} loss {last:.4f}{note} ({time.time() - t0:.0f} s)",
                flush=True,
            )
    if best_w is not None:
        model.set_weights(best_w)
    seconds = time.perf_counter() - start
    info = {
        "best_epoch": int(best[1] + 1),
        "final_loss": last,
        "seconds": seconds,
        "seconds_per_epoch": seconds / max(epochs, 1),
        "data_wait_s": float(sum(wait)),
        "data_wait_share": float(sum(wait)) / seconds if seconds > 0 else 0.0,
        "workers": int(workers),
        "backend": backend_info(),
    }
    _logger.info(
        "%s trained %d epochs in %.1f s on %s (%.0f %% waiting for data, %d workers)",
        label or cfg.arch,
        epochs,
        seconds,
        info["backend"]["device"],
        100 * info["data_wait_share"],
        workers,
    )
    return model, info
