"""The three figure functions take lazy results (and lazy spectrum images) and draw the
same figure as from the eager ones, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.plotting import plot_class_spectra, plot_pixel_spectra

SHAPE = (8, 10)


@pytest.fixture(scope="module")
def eager_and_lazy():
    """A demo spectrum image (seed 7) classified eagerly, and lazily from its lazy copy."""
    s = mnv.make_demo_spectrum_image(shape=SHAPE, seed=7)
    p = mnv.classify_mn_valence(s, show_progressbar=False)
    lz = s.as_lazy()
    q = mnv.classify_mn_valence(lz, show_progressbar=False)
    assert lz._lazy and q._lazy  # the result of a lazy input stays lazy
    return (s, p), (lz, q)


def _pixels(fig: Figure) -> np.ndarray:
    fig.set_dpi(60)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def _same_figure(a: Figure, b: Figure) -> None:
    ia, ib = _pixels(a), _pixels(b)
    assert ia.shape == ib.shape
    np.testing.assert_array_equal(ia, ib)


def test_lazy_result_is_the_eager_one(eager_and_lazy):
    (s, p), (_, q) = eager_and_lazy
    got = np.asarray(q.data.compute())
    np.testing.assert_allclose(got, np.asarray(p.data), atol=1e-6, equal_nan=True)
    # against the simulator's truth, on the pixels of one valence (not on interfaces)
    frac = np.asarray(s.metadata.Sample.mn_fractions_truth)
    pure = frac.max(0) >= 0.999
    ml = np.asarray(mnv.most_likely_valence(p).data)
    assert pure.sum() >= 20
    assert np.mean(ml[pure] == frac.argmax(0)[pure] + 2) > 0.95


def test_plot_valence_maps_of_a_lazy_result(eager_and_lazy):
    (_, p), (_, q) = eager_and_lazy
    fig = mnv.plot_valence_maps(q)
    assert q._lazy  # drawing does not compute the result in place
    _same_figure(mnv.plot_valence_maps(p), fig)


def test_plot_valence_maps_of_a_lazy_line_scan(eager_and_lazy):
    (_, p), (_, q) = eager_and_lazy
    _same_figure(mnv.plot_valence_maps(p.isig[:, 4]), mnv.plot_valence_maps(q.isig[:, 4]))


def test_plot_pixel_spectra_of_lazy_data(eager_and_lazy):
    (s, p), (lz, q) = eager_and_lazy
    pixels = [(3, 2), (5, 4), (7, 6)]
    _same_figure(plot_pixel_spectra(s, p, pixels), plot_pixel_spectra(lz, q, pixels))


def test_plot_class_spectra_of_lazy_data(eager_and_lazy):
    (s, p), (lz, q) = eager_and_lazy
    _same_figure(plot_class_spectra(s, p), plot_class_spectra(lz, q))
