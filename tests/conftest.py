"""Shared fixtures: headless plotting, the labelled data (skip or fail), the models, the
demo spectrum image built by the package's simulator.

Tests take what they share from fixtures here; model-level checks shared with the
mutant test live in ``tests/mutants/checks.py``.
"""

from __future__ import annotations

import os
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

if os.environ.get("MNVALENCE_TEST_NO_ONNX") == "1":
    # the install users get from a plain `pip install`: no onnx package, so models load
    # through onnxruntime alone (tests that need onnx to build models skip)
    sys.modules["onnx"] = None

from hyperspy_mnvalence.datasets import DATA_ENV, data_dir  # noqa: E402
from hyperspy_mnvalence.model import default_model_path  # noqa: E402

_DATA_FILES = (
    "train/titan_mn_valence.npz",
    "train/titan_mn2_wide.npz",
    "train/titan_pca_noise.npz",
    "test/digitized_references.csv",
)


#: Fixtures that need the labelled data: a test using any of them is marked ``realdata``
#: (so ``-m "not realdata"`` deselects exactly those tests).
_REALDATA_FIXTURES = {"real_data", "digitized_references", "titan_mn2_wide"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _REALDATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realdata)


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


@pytest.fixture(scope="session")
def fraction_model():
    """The fraction model shipped as package data."""
    from hyperspy_mnvalence.model import FRACTIONS_MODEL, load_model

    path = default_model_path(FRACTIONS_MODEL)
    if not path.is_file():
        pytest.fail(f"the shipped fraction model {path} is missing from the package")
    return load_model(name=FRACTIONS_MODEL)


@pytest.fixture(scope="session")
def demo_small():
    """A 24 x 32 demo spectrum image (seed 1) with its truth in ``metadata.Sample``.

    Shared by many tests: do not modify it (``deepcopy`` first).
    """
    from hyperspy_mnvalence import make_demo_spectrum_image

    return make_demo_spectrum_image(shape=(24, 32), seed=1)


@pytest.fixture(scope="session")
def digitized_references(real_data):
    """The 31 digitized literature spectra (evaluation only)."""
    from hyperspy_mnvalence.datasets import load_digitized_references

    return load_digitized_references()


@pytest.fixture(scope="session")
def titan_mn2_wide(real_data):
    """The 659 Titan Mn2+ spectra kept out of training, as (spectra, energy)."""
    from hyperspy_mnvalence.datasets import load_titan_mn2_wide

    d = load_titan_mn2_wide()
    return d["spectra"], d["energy"]


def _toy_edge(energy: np.ndarray, l3: float = 640.0, l2_ratio: float = 0.45) -> np.ndarray:
    """A crude white-line pair with edge steps (for preprocessing unit tests only)."""
    g = lambda c, w: np.exp(-0.5 * ((energy - c) / w) ** 2)  # noqa: E731
    step = lambda c: 0.5 + np.arctan((energy - c) / 0.5) / np.pi  # noqa: E731
    return g(l3, 0.9) + l2_ratio * g(l3 + 11.0, 1.1) + 0.12 * step(l3 - 1) + 0.06 * step(l3 + 10)


def _write_labelled_folder(root, seed: int = 0):
    """Synthetic Mn2+/3+/4+ EELS files with different calibrations, as a user's folder.

    ``si_mn2.hspy`` (6 x 7 spectrum image, 600 eV + 0.2 eV/channel), ``line_mn3.hspy``
    (40-pixel line scan, 610 eV + 0.25 eV/channel, edge 2 eV high), ``single_Mn3+.msa``
    (one spectrum, 605 eV + 0.3 eV/channel), ``line_mn4.hspy`` (40 pixels, 615 eV +
    0.05 eV/channel, edge 1.5 eV low) and ``labelled_by_metadata.hspy`` (2 Mn4+ spectra,
    label in ``metadata.Sample.mn_valence``). Returns ``{file name: (valence, n_spectra,
    energy axis)}``.
    """
    import hyperspy.api as hs

    from hyperspy_mnvalence.synthetic import synthetic_spectra

    rng = np.random.default_rng(seed)
    files = {
        "si_mn2.hspy": (2, (6, 7), 600.0, 0.2, 450, 0.0),
        "line_mn3.hspy": (3, (40,), 610.0, 0.25, 260, 2.0),
        "single_Mn3+.msa": (3, (), 605.0, 0.3, 250, 0.0),
        "line_mn4.hspy": (4, (40,), 615.0, 0.05, 1300, -1.5),
        "labelled_by_metadata.hspy": (4, (2,), 605.0, 0.1, 700, 1.0),
    }
    out = {}
    for name, (valence, shape, offset, scale, n_ch, cal) in files.items():
        energy = offset + scale * np.arange(n_ch)
        n = int(np.prod(shape))
        y = synthetic_spectra(
            energy,
            valence,
            counts=rng.uniform(150.0, 400.0, n),
            offset_eV=cal + rng.normal(0.0, 0.3, n),
            rng=rng,
        )
        s = hs.signals.Signal1D(y.reshape(*shape, n_ch))
        s.set_signal_type("EELS")
        ax = s.axes_manager.signal_axes[0]
        ax.offset, ax.scale, ax.units = offset, scale, "eV"
        if name == "labelled_by_metadata.hspy":
            s.metadata.set_item("Sample.mn_valence", valence)
        s.save(root / name, overwrite=True)
        out[name] = (valence, n, energy)
    return out


@pytest.fixture(scope="session")
def toy_edge():
    """The crude white-line pair ``toy_edge(energy, l3=640.0, l2_ratio=0.45)`` (for
    preprocessing unit tests only)."""
    return _toy_edge


@pytest.fixture(scope="session")
def write_labelled_folder():
    """The writer ``write_labelled_folder(root, seed=0)`` of a user's folder of labelled
    files made by the package's simulator (see :func:`_write_labelled_folder`)."""
    return _write_labelled_folder


@pytest.fixture
def labelled_folder(tmp_path):
    """A user's folder of labelled synthetic files (see :func:`_write_labelled_folder`):
    ``(folder, {file name: (valence, n_spectra, energy axis)})``."""
    return tmp_path, _write_labelled_folder(tmp_path)


@pytest.fixture(scope="session")
def clean_titan_like():
    """Clean, background-free parametric edges like the Titan training spectra: 20 of
    each valence on 635-665 eV at 0.1 eV per channel, L3 at 645 eV, scaled to [0, 1].

    Returns ``(spectra, class indices 0-2, energy)``.
    """
    from hyperspy_mnvalence.simulations import mn_l23_edge

    e = np.arange(635.0, 665.0, 0.1)
    labels = np.repeat([0, 1, 2], 20)
    s = np.stack([mn_l23_edge(e, int(v) + 2, l3_eV=645.0, resolution_eV=0.2) for v in labels])
    s = (s - s.min(1, keepdims=True)) / np.ptp(s, axis=1, keepdims=True)
    return s, labels, e
