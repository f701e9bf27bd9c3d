"""The white-line cross-check decides "Mn edge or not" exactly as the network does."""

import numpy as np

from hyperspy_mnvalence.decisions import EDGE_MIN_SNR
from hyperspy_mnvalence.pipeline import preprocess
from hyperspy_mnvalence.simulations import simulate_acquisition
from hyperspy_mnvalence.simulations.conditions import DETECTORS
from hyperspy_mnvalence.white_line import white_line_ratio_spectra


def test_default_threshold_is_the_edge_decisions():
    # weak edges, many near the threshold: the default must be the network's
    acq = simulate_acquisition(
        300,
        valence=np.tile([2, 3, 4], 100),
        l3_over_background=np.linspace(0.01, 0.05, 300),
        dose=8e4,
        rng=3,
        **DETECTORS["correlated"],
    )
    pre = preprocess(acq.spectra, acq.energy)
    r = white_line_ratio_spectra(acq.spectra, acq.energy)
    np.testing.assert_array_equal(r["valid"], pre.valid)
    # some kept spectra lie within 0.5 of the threshold: another default would differ
    assert np.sum(pre.valid & (pre.edge_snr < EDGE_MIN_SNR + 0.5)) >= 1
    assert 50 < pre.valid.sum() < 300
