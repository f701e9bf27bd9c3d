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


@pytest.fixture(scope="module")
def signal():
    return _edge_signal(nav=(6, 8))


@pytest.fixture(scope="module")
def full_peak(signal):
    p = mnv.classify_mn_valence(signal, model="lite")
    return np.asarray(p.metadata.MnValence.l3_peak_eV.data)


def _data(sig):
    return np.asarray(sig.data.compute() if sig._lazy else sig.data)


@pytest.mark.parametrize("lazy", [False, True])
def test_recalibrated_then_sliced_result_maps_its_own_pixels(signal, full_peak, lazy):
    p = mnv.classify_mn_valence(signal.as_lazy() if lazy else signal, model="lite")
    assert np.isfinite(full_peak).sum() > 10  # the pixels differ: a real check
    for ax in p.axes_manager.signal_axes:
        ax.scale = 2.0  # a pixel size of 2
    q = p.isig[1:4, :]
    maps = mnv.valence_maps(q)
    np.testing.assert_array_equal(_data(maps["l3_peak_eV"]), full_peak[:, 1:4])
    np.testing.assert_array_equal(maps["l3_peak_eV"].axes_manager.signal_axes[0].axis, [2, 4, 6])
    # a calibrated (float) slice and an integer index
    r = p.isig[2.0:6.0, 4]
    np.testing.assert_array_equal(_data(mnv.valence_maps(r)["l3_peak_eV"]), full_peak[4, 1:3])
    # the slice of a slice, and one valence's map
    qq = q.isig[1:, 2:5]
    np.testing.assert_array_equal(_data(mnv.valence_maps(qq)["l3_peak_eV"]), full_peak[2:5, 2:4])
    std = _data(p.metadata.MnValence.probability_std)
    np.testing.assert_array_equal(_data(p.inav[1].metadata.MnValence.probability_std), std[1])


def test_sliced_result_saved_and_reloaded_keeps_its_maps(signal, full_peak, tmp_path):
    import hyperspy.api as hs

    p = mnv.classify_mn_valence(signal, model="lite")
    p.axes_manager.signal_axes[0].scale = 3.0
    p.isig[3:7, 1:4].save(tmp_path / "q.hspy")
    q = hs.load(tmp_path / "q.hspy")
    np.testing.assert_array_equal(
        np.asarray(mnv.valence_maps(q)["l3_peak_eV"].data), full_peak[1:4, 3:7]
    )
    # and sliced again after loading
    np.testing.assert_array_equal(
        np.asarray(mnv.valence_maps(q.isig[1:3, 0])["l3_peak_eV"].data), full_peak[1, 4:6]
    )


def test_other_signals_slice_as_before():
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.arange(24.0).reshape(2, 3, 4))
    s.metadata.set_item("MnValence.note", "not a result")
    np.testing.assert_array_equal(s.isig[1:3, 0].data, np.arange(24.0).reshape(2, 3, 4)[:, 0, 1:3])
