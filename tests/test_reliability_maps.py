"""Result maps follow their result (issue 15, defect 4): recalibrated, sliced, saved;
non-uniform navigation axes kept."""

from __future__ import annotations

import numpy as np
import pytest

import hyperspy_mnvalence as mnv


def _edge_signal(nav=(6, 8), seed=0):
    import exspy

    e = 560.0 + 0.25 * np.arange(600)
    g = lambda c, w: np.exp(-0.5 * ((e - c) / w) ** 2)  # noqa: E731
    rng = np.random.default_rng(seed)
    l3 = 640.0 + rng.uniform(-4, 4, size=(*nav, 1))  # a different L3 peak per pixel
    y = 1000 * (e / 600.0) ** -3 + 300 * (g(l3, 0.9) + 0.45 * g(l3 + 11, 1.1))
    s = exspy.signals.EELSSpectrum(rng.poisson(y * 20).astype(np.float32))
    s.set_signal_type("EELS_MnValence")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = 560.0, 0.25, "eV"
    return s


@pytest.mark.parametrize("lazy", [False, True])
def test_non_uniform_navigation_axis_kept(lazy):
    s = _edge_signal(nav=(4, 5))
    s.axes_manager.navigation_axes[0].convert_to_non_uniform_axis()
    x = np.array([0.0, 1.0, 3.0, 6.0, 10.0])
    s.axes_manager.navigation_axes[0].axis = x
    p = mnv.classify_mn_valence(s.as_lazy() if lazy else s, model="lite")
    for sig in (p, p.metadata.MnValence.l3_peak_eV, mnv.most_likely_valence(p)):
        ax = sig.axes_manager.signal_axes[0]
        assert not ax.is_uniform
        np.testing.assert_array_equal(ax.axis, x)
