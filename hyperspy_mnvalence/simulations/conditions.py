"""Named acquisition conditions: the documented ranges, and random draws within them.

:data:`CONDITION_RANGES` gives, for every knob of
:func:`~hyperspy_mnvalence.simulations.simulate_acquisition`, the range real spectrum
images span; :func:`draw_conditions` draws one condition per spectrum (log-uniform where
a quantity spans decades), for training on realistic acquisitions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONDITION_RANGES", "LOG_UNIFORM", "draw_conditions", "DETECTORS"]

#: Range of every per-spectrum knob (inclusive), as real acquisitions span them.
CONDITION_RANGES: dict[str, tuple[float, float]] = {
    "t_over_lambda": (0.0, 1.5),
    "plasmon_eV": (15.0, 25.0),
    "plasmon_fwhm_eV": (4.0, 10.0),
    "resolution_eV": (0.1, 2.0),
    "background_exponent": (2.0, 5.0),
    "l3_over_background": (0.02, 0.5),
    "offset_eV": (-20.0, 20.0),
    "dispersion_eV": (0.05, 1.0),
    "dose": (1e4, 1e6),  # electrons per eV of background at the L3 maximum
    "gain": (1.0, 15.0),
    "read_noise": (0.0, 20.0),
    "psf_sigma_channels": (0.0, 1.0),
}

#: Quantities drawn log-uniformly.
LOG_UNIFORM = ("l3_over_background", "dose", "dispersion_eV", "resolution_eV")

#: Detector models: keyword arguments of ``simulate_acquisition``. ``"white"`` counts
#: electrons (Poisson only); ``"correlated"`` is a CCD whose point spread gives a lag-1
#: autocorrelation of about 0.55 and a variance/mean of about 4.4 counts, as measured on
#: real spectrum images.
DETECTORS: dict[str, dict] = {
    "white": {"psf_sigma_channels": 0.0, "gain": 1.0},
    "correlated": {"psf_sigma_channels": 0.7, "gain": 11.0, "read_noise": 3.0},
}


def draw_conditions(
    n: int,
    rng: np.random.Generator,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> dict[str, np.ndarray]:
    """Draw ``n`` acquisition conditions.

    Parameters
    ----------
    n : int
        Number of spectra.
    rng : numpy.random.Generator
        Generator of the draws.
    ranges : dict, optional
        Overrides of :data:`CONDITION_RANGES` (a range ``(a, a)`` fixes a knob).

    Returns
    -------
    dict
        One array of ``n`` values per knob of :data:`CONDITION_RANGES`.
    """
    r = dict(CONDITION_RANGES)
    for k, v in (ranges or {}).items():
        if k not in r:
            raise ValueError(f"Unknown condition {k!r}; known: {sorted(r)}.")
        r[k] = (float(v[0]), float(v[1]))
    out = {}
    for k, (lo, hi) in r.items():
        if hi < lo:
            raise ValueError(f"Range of {k!r} is reversed: {lo} > {hi}.")
        if k in LOG_UNIFORM and lo > 0:
            out[k] = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        else:
            out[k] = rng.uniform(lo, hi, n)
    return out
