"""Plural scattering, the one convolution of the simulator and the training augmentations."""

import numpy as np
import pytest

from hyperspy_mnvalence.simulations import simulate_acquisition
from hyperspy_mnvalence.simulations.scattering import plural_scattering, scattering_reach_eV


def test_orders_carry_poisson_weights_and_conserve_counts():
    step, t, ep = 0.1, 1.2, 20.0
    y = np.zeros((1, 6000))
    y[0, 50] = 1.0
    out = plural_scattering(y, step, t, ep, 2.0)[0]
    assert out.sum() == pytest.approx(1.0, abs=1e-9)
    assert out[50] == pytest.approx(np.exp(-t), rel=1e-6)
    # the k-th order sits k plasmon energies up, with weight exp(-t) t^k / k!
    for k in (1, 2, 3):
        c = 50 + int(round(k * ep / step))
        weight = out[c - 60 : c + 61].sum()
        assert weight == pytest.approx(np.exp(-t) * t**k / np.prod(range(1, k + 1)), rel=0.02)


def test_nothing_wraps_from_the_high_energy_end():
    # a step: zero below 40 eV, one above; multiple orders of the high end must not
    # wrap around into the first channels (they did with a fixed 20 eV padding)
    step = 0.1
    y = np.zeros((1, 1300))
    y[0, 400:] = 1.0
    out = plural_scattering(y, step, 1.5, 25.0, 6.0)[0]
    assert np.abs(out[:350]).max() < 1e-6
    # at 129.9 eV, orders 0-3 land from the step (>= 40 eV); order 4 (100 eV) from below it
    from scipy import stats

    assert out[-1] == pytest.approx(stats.poisson.cdf(3, 1.5), abs=2e-3)


def test_thick_clean_edge_keeps_its_pre_edge():
    kw = dict(valence=[2, 3, 4], plasmon_eV=20.0, l3_over_background=100.0, poisson=False, rng=0)
    thin = simulate_acquisition(3, t_over_lambda=0.0, **kw)
    thick = simulate_acquisition(3, t_over_lambda=1.5, **kw)
    pre = (thin.energy >= 590) & (thin.energy < 620)
    for a in (thin, thick):
        y = a.spectra / a.spectra.max(axis=1, keepdims=True)
        # only the faint power law (1 % of L3) below the edge; 0.29-0.34 with the wrap bug
        assert y[:, pre].max() < 0.02


def test_reach_covers_the_orders_with_weight():
    assert scattering_reach_eV(np.array([0.0]), np.array([20.0]), np.array([5.0])) == 0.0
    r = scattering_reach_eV(np.array([0.5, 1.5]), np.array([15.0, 25.0]), np.array([4.0, 8.0]))
    assert 9 * 25.0 < r < 16 * 25.0
