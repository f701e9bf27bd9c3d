"""The edge decision rejects a second line 15-18 eV above the first (La M5,4-like pairs)
and keeps thick Mn edges, whose plasmon replica lies there too."""

from __future__ import annotations

import numpy as np
import pytest
from _edge_features import white_line_features

import hyperspy_mnvalence.decisions._edge as edge
from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.simulations import simulate_acquisition, simulate_negatives
from hyperspy_mnvalence.simulations.conditions import DETECTORS

N = 2000

#: Both tests of a line beyond L2 off (``BEYOND_L2_MAX`` and ``LINE_BEYOND_L2``).
NO_LINE_TEST = (-np.inf, np.inf, np.inf)


def _la_m(det: str, seed: int):
    rng = np.random.default_rng(seed)
    return simulate_negatives(
        "la_m_like", N, rng=rng, dose=8e4, dispersion_eV=0.25,
        offset_eV=rng.uniform(-15, 15, N), **DETECTORS[det],
    )  # fmt: skip


def _thick_mn(seed: int, plasmon_eV: float):
    rng = np.random.default_rng(seed)
    return simulate_acquisition(
        N, valence=rng.integers(2, 5, N), t_over_lambda=1.5, plasmon_eV=plasmon_eV,
        l3_over_background=0.12, dose=8e4, dispersion_eV=0.25, resolution_eV=0.5,
        offset_eV=rng.uniform(-15, 15, N), rng=rng, **DETECTORS["correlated"],
    )  # fmt: skip


def _thick_whole_spectrum(seed: int, dose: float):
    """t/lambda 1.5 with the whole expected spectrum scattered (background included), as
    in a real thick sample, then Poisson-sampled: 600 spectra and their energy axis."""
    pytest.importorskip("exspy")
    from hyperspy_mnvalence.simulations.lowloss import simulate_thick_pair

    core, _, _ = simulate_thick_pair((20, 30), 1.5, dose=dose, rng=seed)
    return core.data.reshape(600, -1), core.axes_manager.signal_axes[0].axis


def _called_mn(spectra, energy) -> float:
    return float(preprocess(spectra, energy).valid.mean())


@pytest.mark.parametrize("det", ["correlated", "white"])
def test_la_m_like_pairs_are_not_mn(det, monkeypatch):
    acq = _la_m(det, 3)
    assert _called_mn(acq.spectra, acq.energy) <= 0.005  # the bound; 0 measured
    # the second line beyond an empty L2 place: 1.1-1.15 % called Mn without that test
    monkeypatch.setattr(edge, "LINE_BEYOND_L2", NO_LINE_TEST)
    assert _called_mn(acq.spectra, acq.energy) >= 0.008
    # and without the test of a line as strong as L3 too: 2.4 %
    monkeypatch.setattr(edge, "BEYOND_L2_MAX", np.inf)
    assert _called_mn(acq.spectra, acq.energy) >= 0.018


def _pair(l2_core: float, beyond: float, post: float) -> dict:
    """Features of a white-line pair (L3 height 1, trough 0.1, L2 maximum 0.5)."""
    return white_line_features(0.1, post, l2=0.5, l2_core=l2_core, beyond=beyond)


@pytest.mark.parametrize(
    ("l2_core", "beyond", "post", "passes"),
    [
        (0.15, 0.8, 0.2, False),  # a line at 15-17.5 eV, nothing at L2's place: La M-like
        (0.45, 0.8, 0.2, True),  # an L2 line at 10-12 eV: Mn
        (0.15, 0.45, 0.2, True),  # too little beyond to call it a second line
        (0.15, 0.8, 0.7, True),  # the continuum stays up after it: a thick sample
    ],
)
def test_a_second_line_beyond_an_empty_l2_place_is_not_mn(l2_core, beyond, post, passes):
    assert bool(edge.edge_decision(_pair(l2_core, beyond, post))[1][0]) is passes


@pytest.mark.parametrize("plasmon_eV", [15.0, 20.0, 25.0])
def test_thick_mn_edges_are_kept(plasmon_eV, monkeypatch):
    acq = _thick_mn(4, plasmon_eV)
    with_test = _called_mn(acq.spectra, acq.energy)
    monkeypatch.setattr(edge, "BEYOND_L2_MAX", np.inf)
    monkeypatch.setattr(edge, "LINE_BEYOND_L2", NO_LINE_TEST)
    without = _called_mn(acq.spectra, acq.energy)
    assert with_test >= 0.95
    assert without - with_test <= 0.01


@pytest.mark.parametrize("dose", [2e6, 2e5])
def test_thick_samples_scattered_as_a_whole_lose_no_pixel(dose, monkeypatch):
    # a threshold of 0.3 flagged 5-7 % of these pixels, 0.4 1.5-3.3 %; the test of a
    # line beyond an empty L2 place flagged 2.3 % at 2e5 before it asked that the
    # continuum fall back after that line (LINE_BEYOND_L2[2])
    spectra, energy = _thick_whole_spectrum(0, dose)
    with_test = _called_mn(spectra, energy)
    monkeypatch.setattr(edge, "BEYOND_L2_MAX", np.inf)
    monkeypatch.setattr(edge, "LINE_BEYOND_L2", NO_LINE_TEST)
    assert with_test == pytest.approx(_called_mn(spectra, energy), abs=0.002)
