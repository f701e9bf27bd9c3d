"""train_loop: seeding, the record of the backend, and epochs made in worker processes."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np
import pytest

# Keras is imported inside the tests: the worker processes import this module to find
# make_toy_epoch, and need nothing but numpy for it
pytestmark = [
    pytest.mark.training,
    pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="needs Keras"),
]


@dataclass
class _Cfg:
    arch: str = "fcn"
    seed: int = 3
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 3e-3


def make_toy_epoch(rng: np.random.Generator, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A picklable epoch maker: a class-dependent peak on noise, one-hot targets."""
    y = rng.integers(0, 3, n)
    t = np.linspace(0.0, 1.0, 300)
    x = np.exp(-0.5 * ((t[None] - 0.3 - 0.1 * y[:, None]) / 0.03) ** 2)
    x = (x + rng.normal(0.0, 0.05, x.shape)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[y]


def _train(workers: int, make_epoch=make_toy_epoch):
    import keras

    from hyperspy_mnvalence.training.loop import train_loop

    return train_loop(
        _Cfg(),
        samples_per_epoch=64,
        loss=keras.losses.CategoricalCrossentropy(),
        make_epoch=make_epoch,
        verbose=False,
        workers=workers,
    )


def test_train_loop_records_backend_and_time():
    import keras

    model, info = _train(0)
    assert info["backend"]["name"] == keras.config.backend()
    assert info["backend"]["keras_version"] == keras.__version__
    assert info["backend"]["version"] and info["backend"]["device"]
    assert info["workers"] == 0 and info["best_epoch"] == 0
    assert 0.0 < info["data_wait_s"] < info["seconds"]
    assert 0.0 < info["data_wait_share"] < 1.0
    assert info["seconds_per_epoch"] == pytest.approx(info["seconds"] / 3)
    # the same seed gives the same model
    again, _ = _train(0)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_workers_make_the_spawned_epochs():
    """Workers draw epoch i from SeedSequence(seed).spawn(epochs)[i], whichever worker."""
    from hyperspy_mnvalence.training.loop import _epochs

    wait: list[float] = []
    got = list(_epochs(make_toy_epoch, 3, 4, 2, wait))
    seeds = np.random.SeedSequence(3).spawn(4)
    for (x, y), s in zip(got, seeds, strict=True):
        ex, ey = make_toy_epoch(np.random.default_rng(s))
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)
    assert len(wait) == 4 and all(w >= 0 for w in wait)
    # one worker gives the same epochs as two
    one = list(_epochs(make_toy_epoch, 3, 4, 1, []))
    for (x1, _), (x2, _) in zip(one, got, strict=True):
        np.testing.assert_array_equal(x1, x2)
    # in this process: one generator drawn in turn (the behaviour before workers)
    rng = np.random.default_rng(3)
    for x, _ in _epochs(make_toy_epoch, 3, 2, 0, []):
        np.testing.assert_array_equal(x, make_toy_epoch(rng)[0])


def test_train_loop_with_a_worker_is_reproducible():
    model, info = _train(1, functools.partial(make_toy_epoch, n=48))
    again, _ = _train(1, functools.partial(make_toy_epoch, n=48))
    assert info["workers"] == 1 and np.isfinite(info["final_loss"])
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_workers_need_a_picklable_epoch_maker():
    def closure(rng):  # pragma: no cover - never called
        return make_toy_epoch(rng)

    with pytest.raises(TypeError, match="picklable"):
        _train(1, closure)
