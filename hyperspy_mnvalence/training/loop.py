"""The training loop shared by the classifier and the fraction model.

Both are trained the same way: seeds fixed with :func:`.cv.set_seeds`, the network of
:func:`.architectures.build_model`, Adam with a cosine-decaying learning rate (to 1 %
over the run), and every epoch a *fresh* batch of augmented inputs fitted for one pass
(``model.fit(epochs=1)``). Optionally a validation loss is computed after every epoch
and the weights of the best epoch are restored at the end. What differs between the
models (how an epoch's inputs and targets are made, the loss, the validation) is
passed in.

TensorFlow/Keras are imported lazily inside :func:`train_loop`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["LoopConfig", "train_loop"]


class LoopConfig(Protocol):
    """The hyper-parameters :func:`train_loop` reads from a configuration.

    :class:`.cv.TrainConfig` and :class:`.fractions.FractionConfig` have them all.

    Attributes
    ----------
    arch : str
        Architecture name (see :mod:`.architectures`).
    seed : int
        Seed of Python, numpy, TensorFlow and of the generator of the epochs' inputs.
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
) -> tuple[Any, dict]:
    """Train a new model on freshly made inputs every epoch.

    The order of the random draws is fixed: :func:`.cv.set_seeds` (``cfg.seed``) and
    ``numpy.random.default_rng(cfg.seed)`` first, then the model is built; every epoch
    ``make_epoch`` draws from that generator, then ``model.fit`` runs one shuffled
    pass, then ``validate`` (if given) scores the model.

    Parameters
    ----------
    cfg : LoopConfig
        ``arch``, ``seed`` (also of the generator passed to ``make_epoch``),
        ``epochs`` (each one call of ``make_epoch`` and one pass of ``fit``),
        ``batch_size`` and ``learning_rate`` (initial Adam learning rate; cosine decay
        to 1 % over ``epochs * ceil(samples_per_epoch / batch_size)`` steps).
    samples_per_epoch : int
        Number of inputs ``make_epoch`` returns (for the learning-rate schedule).
    loss : keras.losses.Loss
        Training loss.
    make_epoch : callable
        ``make_epoch(rng) -> (x, targets)``: the epoch's preprocessed inputs ``(n, L)``
        and targets ``(n, 3)``, drawn from ``rng``.
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

    Returns
    -------
    model : keras.Model
        The trained model (best validation epoch if ``validate`` is given).
    info : dict
        ``best_epoch`` (1-based; 0 without ``validate``) and ``final_loss`` (training
        loss of the last epoch).
    """
    import keras

    from .architectures import build_model
    from .cv import set_seeds

    set_seeds(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.time() if t0 is None else t0
    model = build_model(cfg.arch)
    epochs, batch_size = cfg.epochs, cfg.batch_size
    steps = epochs * int(np.ceil(samples_per_epoch / batch_size))
    sched = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=loss, metrics=metrics)
    best = (np.inf, -1)
    best_w = None
    last = float("nan")
    for ep in range(epochs):
        x, targets = make_epoch(rng)
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
    return model, {"best_epoch": int(best[1] + 1), "final_loss": last}
