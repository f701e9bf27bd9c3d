"""The thick-sample warning without a low loss (issue 14): the median post-edge ratio
of the pixels with an edge, from plasmon replicas of the white lines."""

import warnings

import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.decisions import (
    THICK_MIN_PIXELS,
    THICK_RATIO,
    post_edge_ratio,
    thick_sample_condition,
)
from hyperspy_mnvalence.pipeline import preprocess
from hyperspy_mnvalence.simulations import simulate_acquisition
from hyperspy_mnvalence.simulations.conditions import DETECTORS


def _map(t, n=THICK_MIN_PIXELS, l3=0.12, seed=0, **kw):
    return simulate_acquisition(
        n,
        valence=np.resize([2, 3, 4], n),
        t_over_lambda=t,
        l3_over_background=l3,
        plasmon_eV=22.0,
        plasmon_fwhm_eV=8.0,
        dose=8e4,
        rng=seed,
        **DETECTORS["correlated"],
        **kw,
    )


def _thick_warnings(s, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        mnv.classify_mn_valence(s, model="lite", show_progressbar=False, **kw)
    return [str(w.message) for w in rec if "look thick" in str(w.message)]


def test_ratio_rises_with_thickness():
    med = []
    for t in (0.0, 0.5, 1.0, 1.5):
        acq = _map(t, seed=1)
        pre = preprocess(acq.spectra, acq.energy)
        r = post_edge_ratio(acq.spectra, acq.energy, pre.peak_eV)
        assert np.isfinite(r[pre.valid]).all() and np.isnan(r[~pre.valid]).all()
        med.append(np.median(r[pre.valid]))
    assert med == sorted(med)
    assert med[0] < 0.25 and med[1] < THICK_RATIO < med[2]
    # data that stop before the post-edge window: no ratio
    acq = _map(1.5, n=4, energy_range=(590.0, 660.0))
    pre = preprocess(acq.spectra, acq.energy)
    assert pre.valid.all()
    assert np.isnan(post_edge_ratio(acq.spectra, acq.energy, pre.peak_eV)).all()


def test_warning_on_a_thick_map_only():
    thick = _map(1.5, seed=2).to_signal((8, 8))
    found = _thick_warnings(thick)
    assert len(found) == 1 and f"thin samples stay below {THICK_RATIO:g}" in found[0]
    assert "low_loss=" in found[0]
    assert _thick_warnings(_map(0.0, seed=3).to_signal((8, 8))) == []
    assert _thick_warnings(_map(0.5, seed=4).to_signal((8, 8))) == []
    # too few pixels with an edge to tell: no decision
    few = _map(1.5, n=THICK_MIN_PIXELS - 4, seed=5)
    assert _thick_warnings(few.to_signal((THICK_MIN_PIXELS - 4,))) == []
    acq = _map(1.5, seed=2)
    pre = preprocess(acq.spectra, acq.energy)
    assert thick_sample_condition(acq.spectra[:10], acq.energy, pre.peak_eV[:10]) is None


def test_no_thick_warning_when_the_low_loss_is_given():
    exspy = pytest.importorskip("exspy")
    from hyperspy_mnvalence.simulations.lowloss import simulate_low_loss

    shape = (8, 8)
    n = shape[0] * shape[1]
    acq = _map(1.5, seed=6, energy_range=(470.0, 760.0))
    core = acq.to_signal(shape)
    ll = simulate_low_loss(
        n,
        t_over_lambda=1.5,
        plasmon_eV=22.0,
        plasmon_fwhm_eV=8.0,
        dispersion_eV=core.axes_manager.signal_axes[0].scale,
        rng=7,
    )
    low = exspy.signals.EELSSpectrum(ll.spectra.reshape(shape + (-1,)))
    ax = low.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = float(ll.energy[0]), float(ll.energy[1] - ll.energy[0]), "eV"
    assert _thick_warnings(core) != []
    assert _thick_warnings(core, low_loss=low) == []


def test_real_thin_titan_spectra_stay_far_below(titan_mn2_wide):
    x, e = titan_mn2_wide
    pre = preprocess(x, e, background="none")
    r = post_edge_ratio(x, e, pre.peak_eV, background="none")
    ok = np.isfinite(r)
    assert ok.sum() > 600
    # real MnO spectra (thinnest and thicker regions): median 0.18, far below 0.47
    assert np.median(r[ok]) < 0.25 and np.percentile(r[ok], 99) < THICK_RATIO
    assert thick_sample_condition(x, e, pre.peak_eV, background="none") is None
