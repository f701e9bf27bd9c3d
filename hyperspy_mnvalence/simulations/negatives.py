"""Spectra without a Mn L2,3 edge, to calibrate and test the edge decision.

Each family is recorded through the same
:func:`~hyperspy_mnvalence.simulations.simulate_acquisition` as the Mn spectra, so it
carries the same background, dose, detector noise and spikes:

``"background"``
    the power-law background alone;
``"broad_edge"``
    an O K-like edge: a smooth onset and a broad hump, no sharp white lines, with its
    onset anywhere in 600-690 eV;
``"other_l_edge"``
    the white-line pair of another transition metal outside the Mn window (Cr-like
    L3 at 570-600 eV or Fe-like at 690-715 eV);
``"la_m_like"``
    a La M5,4-like pair of sharp lines 15-18 eV apart whose first line sits just above
    the Mn window (680-700 eV), as a strongly offset spectrum shows it;
``"spikes"``
    the background with one to three cosmic-ray spikes per spectrum.
"""

from __future__ import annotations

import numpy as np

from .acquisition import Acquisition, simulate_acquisition
from .edges import mn_l23_edge

__all__ = ["NEGATIVE_FAMILIES", "simulate_negatives"]

NEGATIVE_FAMILIES: tuple[str, ...] = (
    "background",
    "broad_edge",
    "other_l_edge",
    "la_m_like",
    "spikes",
)

_GRID = np.arange(520.0, 800.0, 0.1)


def _broad_edges(n: int, rng: np.random.Generator) -> np.ndarray:
    onset = rng.uniform(600.0, 690.0, n)[:, None]
    x = _GRID[None, :] - onset
    step = 0.5 * (1.0 + np.tanh(x / rng.uniform(1.5, 4.0, n)[:, None]))
    hump = np.exp(
        -0.5 * ((x - rng.uniform(5, 12, n)[:, None]) / rng.uniform(3, 8, n)[:, None]) ** 2
    )
    return step * (0.6 + 0.8 * hump)


def _other_l_edges(n: int, rng: np.random.Generator) -> np.ndarray:
    low = rng.random(n) < 0.5
    l3 = np.where(low, rng.uniform(570.0, 600.0, n), rng.uniform(690.0, 715.0, n))
    valence = rng.integers(2, 5, n)
    out = np.empty((n, _GRID.size))
    for i in range(n):
        out[i] = mn_l23_edge(_GRID, int(valence[i]), l3_eV=float(l3[i]), resolution_eV=0.2)
    return out


def _la_m_like(n: int, rng: np.random.Generator) -> np.ndarray:
    m5 = rng.uniform(680.0, 700.0, n)[:, None]
    split = rng.uniform(15.0, 18.0, n)[:, None]
    w = rng.uniform(0.8, 1.6, n)[:, None]
    lines = np.exp(-0.5 * ((_GRID[None, :] - m5) / w) ** 2)
    lines += rng.uniform(0.8, 1.3, n)[:, None] * np.exp(
        -0.5 * ((_GRID[None, :] - m5 - split) / w) ** 2
    )
    return lines + 0.1 * (0.5 + 0.5 * np.tanh((_GRID[None, :] - m5) / 2.0))


def simulate_negatives(
    family: str,
    n: int,
    *,
    strength: float | np.ndarray = 0.2,
    rng: np.random.Generator | int | None = None,
    **acquisition,
) -> Acquisition:
    """Edge-free spectra of one family (see the module docstring).

    Parameters
    ----------
    family : str
        One of :data:`NEGATIVE_FAMILIES`.
    n : int
        Number of spectra.
    strength : float or numpy.ndarray
        Height of the family's feature above the background, relative to the background
        under it (ignored for ``"background"`` and ``"spikes"``).
    rng : numpy.random.Generator or int, optional
        Generator or seed.
    **acquisition
        Keyword arguments of :func:`simulate_acquisition` (dose, detector, offset ...).

    Returns
    -------
    Acquisition
        ``truth["has_edge"]`` is False everywhere, ``truth["valence"]`` 0 and
        ``truth["family"]`` the family name.
    """
    if family not in NEGATIVE_FAMILIES:
        raise ValueError(f"Unknown negative family {family!r}; known: {NEGATIVE_FAMILIES}.")
    gen = np.random.default_rng(rng)
    kw = dict(acquisition)
    if family in ("background", "spikes"):
        if family == "spikes":
            kw.setdefault("spikes_per_spectrum", 2.0)
        acq = simulate_acquisition(n, valence=3, l3_over_background=0.0, rng=gen, **kw)
    else:
        make = {"broad_edge": _broad_edges, "other_l_edge": _other_l_edges, "la_m_like": _la_m_like}
        shapes = make[family](n, gen)
        kw.setdefault("resolution_eV", 0.2)
        acq = simulate_acquisition(
            n, edges=shapes, edge_energy=_GRID, l3_over_background=strength, rng=gen, **kw
        )
    acq.truth["has_edge"] = np.zeros(n, dtype=bool)
    acq.truth["valence"] = np.zeros(n, dtype=np.int8)
    acq.truth["family"] = family
    return acq
