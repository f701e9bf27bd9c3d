"""The edge decision rejects a second line 15-18 eV above the first (La M5,4-like pairs)
and keeps thick Mn edges, whose plasmon replica lies there too."""

from __future__ import annotations

import numpy as np
import pytest

import hyperspy_mnvalence.decisions._edge as edge
from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.simulations import simulate_acquisition, simulate_negatives
from hyperspy_mnvalence.simulations.conditions import DETECTORS

N = 2000


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
    with_test = _called_mn(acq.spectra, acq.energy)
    monkeypatch.setattr(edge, "BEYOND_L2_MAX", np.inf)
    without = _called_mn(acq.spectra, acq.energy)
    assert with_test <= 0.012  # 0.8-0.9 % measured at 4000 spectra
    assert without >= 1.5 * with_test  # what the test removes (1.5 % without it)


@pytest.mark.parametrize("plasmon_eV", [15.0, 20.0, 25.0])
def test_thick_mn_edges_are_kept(plasmon_eV, monkeypatch):
    acq = _thick_mn(4, plasmon_eV)
    with_test = _called_mn(acq.spectra, acq.energy)
    monkeypatch.setattr(edge, "BEYOND_L2_MAX", np.inf)
    without = _called_mn(acq.spectra, acq.energy)
    assert with_test >= 0.95
    assert without - with_test <= 0.01


@pytest.mark.parametrize("dose", [2e6, 2e5])
def test_thick_samples_scattered_as_a_whole_lose_no_pixel(dose, monkeypatch):
    # a threshold of 0.3 flagged 5-7 % of these pixels, 0.4 1.5-3.3 %
    spectra, energy = _thick_whole_spectrum(0, dose)
    with_test = _called_mn(spectra, energy)
    monkeypatch.setattr(edge, "BEYOND_L2_MAX", np.inf)
    assert with_test == pytest.approx(_called_mn(spectra, energy), abs=0.002)
