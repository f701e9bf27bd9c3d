"""Out-of-range warnings (issue 14): one warning per call, naming the condition and
the share of pixels; none for data inside the validated range."""

import warnings

import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.decisions import out_of_range
from hyperspy_mnvalence.preprocessing import DEFAULT_PREPROCESSING
from hyperspy_mnvalence.simulations import simulate_acquisition


def _range_warnings(s, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        p = mnv.classify_mn_valence(s, model="lite", show_progressbar=False, **kw)
    found = [str(w.message) for w in rec if "outside the validated range" in str(w.message)]
    return p, found


def test_inside_the_range_no_warning():
    acq = simulate_acquisition(48, valence=np.repeat([2, 3, 4], 16), dose=8e4, rng=0)
    _, found = _range_warnings(acq.to_signal((6, 8)))
    assert found == []


def test_coarse_dispersion_is_named_with_all_pixels():
    acq = simulate_acquisition(
        48, valence=3, dose=8e4, dispersion_eV=1.5, energy_range=(560.0, 760.0), rng=1
    )
    _, found = _range_warnings(acq.to_signal((6, 8)))
    assert len(found) == 1
    assert "dispersion, 1.5 eV per channel" in found[0] and "all pixels" in found[0]


def test_short_pre_edge_gives_the_share_of_pixels():
    # the data start 8 eV below the L3 peak: the background fit wants 19 eV
    acq = simulate_acquisition(
        48, valence=2, dose=8e4, energy_range=(632.0, 720.0), l3_over_background=0.3, rng=2
    )
    p, found = _range_warnings(acq.to_signal((6, 8)))
    assert len(found) == 1
    share = 100 * np.mean(np.isfinite(mnv.most_likely_valence(p).data))
    assert share > 0
    assert "pre-edge is shorter" in found[0] and "100.0 % of the pixels with an edge" in found[0]


def test_scattered_l3_peaks_are_named_a_smooth_drift_is_not():
    e = np.arange(590.0, 720.0, 0.25)
    rng = np.random.default_rng(3)
    reason = np.zeros(400, dtype=np.int8)
    noise_peaks = rng.uniform(619.0, 671.0, 400)  # noise taken for edges
    drift = 640.0 + np.linspace(0.0, 10.0, 400)  # the demo's 10 eV drift
    found = out_of_range(e, DEFAULT_PREPROCESSING, None, noise_peaks, reason)
    assert len(found) == 1 and "L3 peaks of neighbouring pixels differ" in found[0]
    share = float(found[0].split(" in ")[1].split(" %")[0])
    assert 80 < share <= 100
    assert out_of_range(e, DEFAULT_PREPROCESSING, None, drift, reason) == []


def test_out_of_range_reads_the_model_metadata():
    e = np.arange(600.0, 700.0, 0.6)
    meta = {"augmentation": {"dispersion": {"enabled": True, "step_eV": [0.05, 0.5]}}}
    assert out_of_range(e, DEFAULT_PREPROCESSING, meta)  # 0.6 > 0.5 trained
    assert not out_of_range(e, DEFAULT_PREPROCESSING, None)  # default range to 1 eV
    with pytest.raises(KeyError):
        out_of_range(e, {}, None, np.array([640.0]), np.array([0]))
