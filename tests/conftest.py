"""Shared fixtures: headless plotting, the labelled data (skip or fail), the model."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from hyperspy_mnvalence.datasets import DATA_ENV, data_dir  # noqa: E402
from hyperspy_mnvalence.model import default_model_path  # noqa: E402

_DATA_FILES = (
    "train/titan_mn_valence.npz",
    "train/titan_mn2_wide.npz",
    "train/titan_pca_noise.npz",
    "test/digitized_references.csv",
)


@pytest.fixture(scope="session")
def real_data():
    """The labelled data folder; skips (or fails under CI's MNVALENCE_REQUIRE_DATA=1)."""
    root = data_dir()
    missing = [f for f in _DATA_FILES if not (root / f).is_file()]
    if missing:
        msg = (
            f"labelled data not found in {root} (missing {missing}); set {DATA_ENV} "
            "to the folder holding train/ and test/"
        )
        if os.environ.get("MNVALENCE_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def shipped_model():
    """The classifier shipped as package data; its absence is a broken install."""
    path = default_model_path()
    if not path.is_file():
        pytest.fail(f"the shipped model {path} is missing from the package")
    from hyperspy_mnvalence.model import load_model

    return load_model()


def toy_edge(energy: np.ndarray, l3: float = 640.0, l2_ratio: float = 0.45) -> np.ndarray:
    """A crude white-line pair with edge steps (for preprocessing unit tests only)."""
    g = lambda c, w: np.exp(-0.5 * ((energy - c) / w) ** 2)  # noqa: E731
    step = lambda c: 0.5 + np.arctan((energy - c) / 0.5) / np.pi  # noqa: E731
    return g(l3, 0.9) + l2_ratio * g(l3 + 11.0, 1.1) + 0.12 * step(l3 - 1) + 0.06 * step(l3 + 10)
