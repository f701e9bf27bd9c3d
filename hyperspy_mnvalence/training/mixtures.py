"""Linear mixtures of single-valence Titan spectra: the fraction model's training targets.

All Titan spectra share one energy axis in one instrument calibration, so mixing them
channel by channel preserves the chemical shifts between valences. Each [0, 1]-scaled
spectrum is first put on a per-atom scale (:func:`per_atom_scale`), so the mixing
weights are *atomic* fractions; the weights are drawn on the simplex
(:func:`draw_weights`): pure spectra, binary and ternary mixtures.
"""

from __future__ import annotations

import numpy as np

from .fraction_config import FractionConfig

__all__ = ["draw_weights", "make_mixtures", "per_atom_scale"]


def per_atom_scale() -> np.ndarray:
    """Factors that put [0, 1]-scaled spectra of Mn2+, Mn3+, Mn4+ on a per-atom scale.

    The inverse of the L3 height per unit continuum step of each valence at the Titan
    resolution (from the edge model fitted to the class means of the Titan data).

    Returns
    -------
    numpy.ndarray
        Shape ``(3,)``.
    """
    from hyperspy_mnvalence.simulations.edges import REFERENCE_RESOLUTION_EV
    from hyperspy_mnvalence.simulations.edges import peak_heights as _peak_heights

    return 1.0 / _peak_heights(REFERENCE_RESOLUTION_EV)


def draw_weights(n: int, cfg: FractionConfig, rng: np.random.Generator) -> np.ndarray:
    """Fractions on the simplex: pure, binary and ternary mixtures.

    Parameters
    ----------
    n : int
    cfg : FractionConfig
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(n, 3)``, rows summing to 1.
    """
    w = rng.dirichlet(np.full(3, cfg.dirichlet_alpha), size=n)
    kind = rng.random(n)
    pure = kind < cfg.p_pure
    binary = (~pure) & (kind < cfg.p_pure + cfg.p_binary)
    if np.any(pure):
        w[pure] = np.eye(3)[rng.integers(0, 3, int(pure.sum()))]
    if np.any(binary):
        k = int(binary.sum())
        drop = rng.integers(0, 3, k)
        a = rng.random(k)
        wb = np.zeros((k, 3))
        keep = np.array([[1, 2], [0, 2], [0, 1]])[drop]
        wb[np.arange(k), keep[:, 0]] = a
        wb[np.arange(k), keep[:, 1]] = 1.0 - a
        w[binary] = wb
    return w


def make_mixtures(
    spectra: np.ndarray,
    y: np.ndarray,
    n: int,
    cfg: FractionConfig,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear mixtures of single-valence spectra sharing one energy axis.

    Parameters
    ----------
    spectra : numpy.ndarray
        Raw [0, 1]-scaled spectra ``(m, C)`` on one common energy axis.
    y : numpy.ndarray
        Class index (0, 1, 2 for Mn2+, Mn3+, Mn4+) of each spectrum.
    n : int
        Number of mixtures.
    cfg : FractionConfig
    rng : numpy.random.Generator
    weights : numpy.ndarray, optional
        ``(n, 3)`` atomic fractions; drawn with :func:`draw_weights` if omitted.

    Returns
    -------
    mixed : numpy.ndarray
        ``(n, C)`` mixed spectra, each scaled to a maximum of 1.
    fractions : numpy.ndarray
        ``(n, 3)`` float32 atomic fractions (the targets).
    """
    w = draw_weights(n, cfg, rng) if weights is None else np.asarray(weights, float)
    scale = per_atom_scale()
    mixed = np.zeros((n, spectra.shape[1]))
    for k in range(3):
        pool = np.nonzero(y == k)[0]
        if pool.size == 0:
            if np.any(w[:, k] > 0):
                raise ValueError(f"no spectra of class {k} to mix")
            continue
        n_avg = rng.integers(1, max(int(cfg.max_average), 1) + 1, size=n)
        comp = np.zeros((n, spectra.shape[1]))
        for j in range(int(n_avg.max())):
            use = n_avg > j
            comp[use] += spectra[rng.choice(pool, size=int(use.sum()))]
        comp /= n_avg[:, None]
        mixed += (w[:, k] * scale[k])[:, None] * comp
    top = np.abs(mixed).max(1, keepdims=True)
    return mixed / np.where(top > 0, top, 1.0), w.astype(np.float32)
