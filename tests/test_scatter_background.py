"""simulate_acquisition(scatter_background=True): the background scattered as a real thick
sample scatters it, checked against scattering the whole recorded spectrum."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence.simulations import simulate_acquisition
from hyperspy_mnvalence.simulations.scattering import plural_scattering

KW = dict(dose=np.inf, poisson=False, dispersion_eV=0.25, resolution_eV=0.3, rng=0)


def test_thin_samples_are_unchanged():
    a = simulate_acquisition(3, valence=[2, 3, 4], t_over_lambda=0.0, **KW)
    b = simulate_acquisition(3, valence=[2, 3, 4], t_over_lambda=0.0, scatter_background=True, **KW)
    np.testing.assert_allclose(a.spectra, b.spectra, rtol=1e-6)


@pytest.mark.parametrize("t", [0.5, 1.5])
def test_background_matches_scattering_the_whole_spectrum(t):
    ep, ew, r = 20.0, 6.0, 3.5
    common = dict(l3_over_background=0.0, plasmon_eV=ep, plasmon_fwhm_eV=ew,
                  background_exponent=r, **KW)  # fmt: skip
    got = simulate_acquisition(
        1, valence=3, t_over_lambda=t, scatter_background=True, energy_range=(590.0, 720.0),
        **common,
    )  # fmt: skip
    # the unscattered spectrum over a wide range, scattered as a whole, cut to 590-720 eV
    wide = simulate_acquisition(
        1, valence=3, t_over_lambda=0.0, energy_range=(150.0, 760.0), **common
    )
    whole = plural_scattering(wide.spectra, 0.25, t, ep, ew)
    keep = (wide.energy >= 590.0) & (wide.energy < 720.0)
    ref = whole[0, keep]
    assert np.allclose(wide.energy[keep], got.energy)
    # shapes agree (the option scales the background to 1 e/eV at L3, like the thin one)
    ratio = got.spectra[0] / ref
    assert np.ptp(ratio) / ratio.mean() < 1e-3  # measured 3e-5 (t 0.5) and 5e-5 (1.5)
    # and differ from the edge-only default, whose background is the bare power law
    edge_only = simulate_acquisition(
        1, valence=3, t_over_lambda=t, energy_range=(590.0, 720.0), **common
    )
    bare = edge_only.spectra[0] / ref
    assert np.ptp(bare) / bare.mean() > 0.01  # measured 0.013 and 0.039
