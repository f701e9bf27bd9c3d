"""Image comparisons of the result figures with baselines (pytest-mpl).

Each test draws one of the main figures from small data of the package's simulator
(:func:`~hyperspy_mnvalence.simulations.demo_ground_truth` and
:func:`~hyperspy_mnvalence.make_demo_spectrum_image`, fixed seeds) and pytest-mpl
compares the PNG with ``tests/baseline/<test name>.png``.

The results drawn are made from the simulator's truth, not by the network: the valence
fractions of each pixel blended 80/20 with a seeded Dirichlet draw (so that the
uncertainty maps are not flat), NaN where the pixel has no Mn (vacuum, substrate). The
baselines therefore change only when the figures change, not when a model or the
classification is retrained or retuned.

Robustness: matplotlib's ``default`` style (DejaVu Sans, shipped with matplotlib),
the Agg backend, a fixed size in inches (set by the plotting functions) and 72 dpi.

Tolerance: ``TOLERANCE`` = 3, the RMS difference of the pixel values on the 0-255
scale that pytest-mpl allows (matplotlib's ``compare_images``). Two runs on one machine
give byte-identical PNGs (RMS 0); the tolerance absorbs anti-aliasing and text-hinting
differences between matplotlib/FreeType builds, while real changes of the map figure
measured against its baseline give far more: without its scale bars 10.5, the Mn2+ and
Mn4+ colours swapped 24, the Mn2+ and Mn4+ probabilities swapped 48.

The tests run with ``--mpl`` (set in ``addopts``). To regenerate the baselines after
an intended change of a figure, look at the new images first, then::

    python -m pytest tests/test_figure_images.py -n 0 --no-cov --mpl-generate-path=tests/baseline
"""

from __future__ import annotations

import hyperspy.api as hs
import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.plotting import plot_class_spectra, plot_pixel_spectra
from hyperspy_mnvalence.simulations import demo_ground_truth

#: RMS pixel difference (0-255) allowed against a baseline (see the module docstring).
TOLERANCE = 3
#: Fixed resolution of the compared PNGs.
DPI = 72

image_compare = pytest.mark.mpl_image_compare(
    style="default", tolerance=TOLERANCE, savefig_kwargs={"dpi": DPI}
)


def _probabilities(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Probabilities ``(3, *shape)`` from the simulator's truth (see the module notes)."""
    truth = demo_ground_truth(shape, seed=seed)
    rng = np.random.default_rng(seed)
    noise = np.moveaxis(rng.dirichlet((2.0, 2.0, 2.0), size=shape), -1, 0)
    p = 0.8 * truth["fractions"] + 0.2 * noise
    p /= p.sum(0, keepdims=True)
    p[:, truth["region"] < 2] = np.nan
    return p


def _result(prob: np.ndarray, spatial: list[tuple[str, float]]) -> hs.signals.BaseSignal:
    """A classification result in the package's layout: the 'Mn valence' axis first
    (navigation), the spatial axes (numpy order, ``(name, scale in nm)``) as signal."""
    p = hs.signals.BaseSignal(prob).transpose(signal_axes=prob.ndim - 1)
    am = p.axes_manager
    v = am.navigation_axes[0]
    v.name, v.offset, v.scale = "Mn valence", 2.0, 1.0
    for ax, (name, scale) in zip(am.signal_axes[::-1], spatial, strict=True):
        ax.name, ax.units, ax.scale, ax.offset = name, "nm", scale, 0.0
    p.metadata.General.title = "Mn valence probability"
    p.metadata.set_item("MnValence.task", "classification")
    p.metadata.set_item("MnValence.classes", [2, 3, 4])
    p.metadata.set_item("MnValence.parameters.background", "auto")
    return p


@pytest.fixture(scope="module")
def spectrum_image():
    """A 12 x 16 demo spectrum image (seed 1) and a result from its truth."""
    s = mnv.make_demo_spectrum_image(shape=(12, 16), seed=1)
    return s, _result(_probabilities((12, 16), seed=1), [("y", 0.5), ("x", 0.5)])


def test_results_are_in_the_package_layout(spectrum_image, demo_small):
    """The hand-made results have the classifier's layout (so the figures test what
    users see)."""
    s, p = spectrum_image
    q = mnv.classify_mn_valence(demo_small, show_progressbar=False)
    assert type(p) is type(q)
    assert p.axes_manager.navigation_shape == (3,)
    assert p.axes_manager.signal_shape == s.axes_manager.navigation_shape
    assert [a.name for a in p.axes_manager.signal_axes] == [
        a.name for a in q.axes_manager.signal_axes
    ]
    grain = np.asarray(s.metadata.Sample.region_truth) >= 2
    ml = np.asarray(mnv.most_likely_valence(p).data)
    np.testing.assert_array_equal(np.isnan(ml), ~grain)


@image_compare
def test_map(spectrum_image):
    return mnv.plot_valence_maps(spectrum_image[1])


@image_compare
def test_line_scan():
    prob = _probabilities((8, 40), seed=2)[:, 4]  # a row of a map
    return mnv.plot_valence_maps(_result(prob, [("x", 0.5)]))


@image_compare
def test_thin_map():
    """A wide map two pixels high: panels in one or two columns."""
    prob = _probabilities((8, 24), seed=3)[:, 3:5]  # two rows of a map
    return mnv.plot_valence_maps(_result(prob, [("y", 1.0), ("x", 1.0)]))


@image_compare
def test_stack_of_three_maps():
    prob = np.stack([_probabilities((10, 12), seed=k) for k in (4, 5, 6)], axis=1)
    p = _result(prob, [("time", 1.0), ("y", 0.5), ("x", 0.5)])
    p.axes_manager.signal_axes[2].units = "frame"
    return mnv.plot_valence_maps(p)


@image_compare
def test_pixel_spectra(spectrum_image):
    s, p = spectrum_image
    # a Mn2+, a Mn3+ and a Mn4+ grain pixel, and one in vacuum (no Mn edge)
    return plot_pixel_spectra(s, p, [(3, 4), (7, 6), (11, 8), (0, 2)])


@image_compare
def test_class_spectra(spectrum_image):
    s, p = spectrum_image
    return plot_class_spectra(s, p)
