"""The recordings the edge decision is calibrated and tested on.

``benchmarks/edge_decision.py`` (false Mn, detection, ROC, by dispersion) and the
package's tests draw them here, so that both read the same recipe: power-law
backgrounds of exponent 2-5, calibration offsets of +-10 eV, a white or correlated
detector (:data:`~hyperspy_mnvalence.simulations.conditions.DETECTORS`).
"""

from __future__ import annotations

import numpy as np

from .acquisition import Acquisition, simulate_acquisition
from .conditions import DETECTORS
from .negatives import simulate_negatives

__all__ = ["edge_negatives", "edge_positives"]


def edge_negatives(
    family: str,
    n: int,
    *,
    detector: str = "correlated",
    dose_per_channel: float = 500.0,
    spikes: float = 0.0,
    dispersion_eV: float = 0.25,
    rng: np.random.Generator | int | None = None,
) -> Acquisition:
    """Edge-free spectra of one negative family, as the edge benchmark records them.

    Parameters
    ----------
    family : str
        One of :data:`~hyperspy_mnvalence.simulations.NEGATIVE_FAMILIES` (``"spikes"``
        always has its own spikes; ``spikes`` is ignored for it).
    n : int
        Number of spectra.
    detector : {"white", "correlated"}
        Detector model.
    dose_per_channel : float
        Electrons per channel of background at the edge.
    spikes : float
        Mean number of cosmic-ray spikes per spectrum.
    dispersion_eV : float
        eV per channel.
    rng : numpy.random.Generator or int, optional
        Random source (offsets, background exponents, then the recording).

    Returns
    -------
    Acquisition
    """
    rng = np.random.default_rng(rng)
    kw = dict(DETECTORS[detector])
    if family != "spikes":
        kw["spikes_per_spectrum"] = spikes
    return simulate_negatives(
        family,
        n,
        rng=rng,
        dose=dose_per_channel / dispersion_eV,
        dispersion_eV=dispersion_eV,
        offset_eV=rng.uniform(-10, 10, n),
        background_exponent=rng.uniform(2, 5, n),
        **kw,
    )


def edge_positives(
    n: int,
    *,
    l3_over_background: float,
    detector: str = "correlated",
    spikes: float = 0.0,
    dispersion_eV: float = 0.25,
    rng: np.random.Generator | int | None = None,
) -> Acquisition:
    """Parametric Mn edges of every valence at 8e4 electrons per eV, as the edge
    benchmark records them (resolution 0.2-1 eV, log-uniform).

    Parameters
    ----------
    n : int
        Number of spectra.
    l3_over_background : float
        L3 height above the background over the background.
    detector : {"white", "correlated"}
        Detector model.
    spikes : float
        Mean number of cosmic-ray spikes per spectrum (drawn last: the same spectra
        with and without them for one seed).
    dispersion_eV : float
        eV per channel.
    rng : numpy.random.Generator or int, optional
        Random source (valences, offsets, background exponents, resolutions, then the
        recording).

    Returns
    -------
    Acquisition
    """
    rng = np.random.default_rng(rng)
    return simulate_acquisition(
        n,
        valence=rng.integers(2, 5, n),
        l3_over_background=l3_over_background,
        dose=8e4,
        dispersion_eV=dispersion_eV,
        offset_eV=rng.uniform(-10, 10, n),
        background_exponent=rng.uniform(2, 5, n),
        resolution_eV=np.exp(rng.uniform(np.log(0.2), np.log(1.0), n)),
        spikes_per_spectrum=spikes,
        rng=rng,
        **DETECTORS[detector],
    )
