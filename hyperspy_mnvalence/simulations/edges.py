"""Parametric Mn L2,3 edge model: the clean, background-free edge of the simulator.

The model describes the background-free Mn L2,3 core-loss of Mn2+, Mn3+ and Mn4+ as

* a few pseudo-Voigt white-line components for the L3 multiplet and for the L2
  multiplet, placed *relative to the L3 maximum*;
* two smoothed (error-function) steps for the continuum, at L3 and at L2 (one
  spin-orbit splitting higher), with the statistical 2:1 height ratio.

The numbers in :data:`EDGE_PARAMETERS` were fitted by least squares
(:func:`fit_edge_parameters`) to the per-class mean spectra of
``train/titan_mn_valence.npz`` (monochromated FEI Titan, 80 kV), so the shapes follow
real data; only the absolute L3 positions come from calibrated literature values
(:data:`L3_POSITIONS_EV`), because the Titan calibration is offset by several eV.

Everything is pure numpy. :mod:`hyperspy_mnvalence.simulations.acquisition` records
these edges (or real clean spectra) through a microscope and a detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import special

__all__ = [
    "EDGE_PARAMETERS",
    "FIT_QUALITY",
    "L3_POSITIONS_EV",
    "REFERENCE_RESOLUTION_EV",
    "VALENCES",
    "edge_table",
    "fit_edge_parameters",
    "mn_l23_edge",
    "peak_heights",
]

VALENCES: tuple[int, int, int] = (2, 3, 4)

#: Calibrated literature positions (eV) of the L3 maximum of each valence (MnO,
#: Mn2O3, MnO2), used where no position is given.
L3_POSITIONS_EV: dict[int, float] = {2: 640.0, 3: 641.8, 4: 643.4}

#: Energy resolution (Gaussian FWHM, eV) of the Titan data the parameters were fitted
#: to. The widths in :data:`EDGE_PARAMETERS` are *intrinsic*: this resolution has been
#: removed in quadrature, and ``resolution_eV`` is added back in quadrature.
REFERENCE_RESOLUTION_EV: float = 0.2

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))

# --- fitted parameters ---------------------------------------------------------------
# Fitted to the class means of the Titan training data (train/titan_mn_valence.npz,
# 560 Mn2+, 553 Mn3+, 466 Mn4+ spectra) by ``fit_edge_parameters()``; refit with
# ``python -m hyperspy_mnvalence.simulations.edges`` (prints this table). Positions are in eV
# relative to the L3 maximum, widths are intrinsic FWHM in eV, amplitudes are in units
# of the total continuum step (L3 step + L2 step = 1).
#   l3, l2      : (position, FWHM, amplitude) of each pseudo-Voigt component
#   eta         : Lorentzian fraction of the pseudo-Voigts
#   step        : (position of the L3 step, its FWHM)
#   spin_orbit  : L2 - L3 step separation
#   titan_l3_eV : the L3 maximum of the fitted class mean in the Titan's own (offset)
#                 calibration, for reference only (the model uses L3_POSITIONS_EV)
EDGE_PARAMETERS: dict[int, dict] = {
    2: {
        "l3": [
            (-0.7438, 0.9383, 1.22438),
            (0.0641, 3.0987, 4.03699),
            (2.4524, 4.1191, 1.83262),
        ],
        "l2": [
            (11.0416, 2.7714, 0.75821),
            (12.9988, 3.6401, 0.87001),
        ],
        "eta": 0.0,
        "step": (-0.3906, 0.5903),
        "spin_orbit": 12.247,
        "titan_l3_eV": 644.808,
    },
    3: {
        "l3": [
            (-1.6187, 2.7742, 2.40599),
            (0.3875, 3.7661, 3.47975),
            (2.6896, 4.9573, 1.6274),
        ],
        "l2": [
            (10.3948, 3.0095, 0.72859),
            (11.6438, 5.3578, 1.75566),
        ],
        "eta": 0.0,
        "step": (-0.8422, 1.2515),
        "spin_orbit": 12.273,
        "titan_l3_eV": 645.136,
    },
    4: {
        "l3": [
            (-2.5826, 2.4921, 2.5366),
            (-0.141, 3.2987, 4.13365),
            (1.1218, 5.9967, 1.20582),
        ],
        "l2": [
            (10.1551, 3.9673, 2.5507),
            (12.5125, 4.0428, 0.52768),
        ],
        "eta": 0.0426,
        "step": (0.1573, 1.4715),
        "spin_orbit": 10.4332,
        "titan_l3_eV": 646.548,
    },
}

#: Coefficient of determination of the fitted model against each class mean.
FIT_QUALITY: dict[int, float] = {2: 0.99935, 3: 0.9998, 4: 0.99982}
# --- end of fitted parameters --------------------------------------------------------


def _pseudo_voigt(x: np.ndarray, fwhm: float, eta: float) -> np.ndarray:
    """Unit-height pseudo-Voigt centred on 0."""
    g = np.exp(-0.5 * (x / (fwhm * _FWHM_TO_SIGMA)) ** 2)
    lor = 1.0 / (1.0 + (2.0 * x / fwhm) ** 2)
    return eta * lor + (1.0 - eta) * g


def _step(x: np.ndarray, fwhm: float) -> np.ndarray:
    """Gaussian-smoothed unit step at 0."""
    return 0.5 * (1.0 + special.erf(x / (fwhm * _FWHM_TO_SIGMA * np.sqrt(2.0))))


def _broaden(fwhm: float, extra: float) -> float:
    return float(np.sqrt(fwhm**2 + extra**2))


def _profile(e_rel: np.ndarray, p: dict, resolution_eV: float) -> np.ndarray:
    """Edge profile of one valence, with intrinsic widths broadened by the resolution.

    The Gaussian resolution is added in quadrature to every width; for the
    Lorentzian part of the pseudo-Voigts this is an approximation.
    """
    e_rel = np.asarray(e_rel, dtype=np.float64)
    out = np.zeros_like(e_rel)
    eta = p["eta"]
    for pos, fwhm, amp in list(p["l3"]) + list(p["l2"]):
        out += amp * _pseudo_voigt(e_rel - pos, _broaden(fwhm, resolution_eV), eta)
    s_pos, s_fwhm = p["step"]
    s_fwhm = _broaden(s_fwhm, resolution_eV)
    out += (2.0 / 3.0) * _step(e_rel - s_pos, s_fwhm)
    out += (1.0 / 3.0) * _step(e_rel - s_pos - p["spin_orbit"], s_fwhm)
    return out


@lru_cache(maxsize=64)
def _peak_correction(valence: int, resolution_eV: float) -> tuple[float, float]:
    """Position and height of the L3 maximum of the profile at this resolution."""
    p = EDGE_PARAMETERS[valence]
    x = np.arange(-3.0, 3.0, 0.002)
    y = _profile(x, p, resolution_eV)
    i = int(np.argmax(y))
    # parabolic refinement
    if 0 < i < x.size - 1:
        a, b, c = y[i - 1], y[i], y[i + 1]
        den = a - 2 * b + c
        d = 0.5 * (a - c) / den if den != 0 else 0.0
    else:
        d = 0.0
    return float(x[i] + d * 0.002), float(y[i])


def as_fractions(valence: int | None, fractions: Sequence[float] | None) -> np.ndarray:
    if (valence is None) == (fractions is None):
        raise ValueError("Give either a valence (2, 3 or 4) or fractions=(f2, f3, f4).")
    if fractions is None:
        if valence not in VALENCES:
            raise ValueError(f"Mn valence must be 2, 3 or 4, not {valence!r}.")
        f = np.zeros(3)
        f[VALENCES.index(int(valence))] = 1.0
        return f
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(f < 0) or not np.isfinite(f).all() or f.sum() <= 0:
        raise ValueError(
            f"fractions must be three non-negative numbers (Mn2+, Mn3+, Mn4+), got {fractions!r}."
        )
    return f


def mn_l23_edge(
    energy: np.ndarray,
    valence: int | None = None,
    *,
    fractions: Sequence[float] | None = None,
    l3_eV: float | Sequence[float] | None = None,
    resolution_eV: float = 0.3,
    offset_eV: float = 0.0,
    normalization: str = "continuum",
) -> np.ndarray:
    """Background-free Mn L2,3 core-loss of one valence or of a mixture.

    Parameters
    ----------
    energy : numpy.ndarray
        Energy losses in eV, any shape.
    valence : {2, 3, 4}, optional
        Oxidation state; give this or ``fractions``.
    fractions : sequence of 3 float, optional
        Amounts of Mn2+, Mn3+ and Mn4+ for a mixture (normalised to sum to 1); each
        valence sits at its own L3 position.
    l3_eV : float or sequence of 3 float, optional
        Energy of the L3 maximum: one number for a single valence, three (Mn2+, Mn3+,
        Mn4+) for a mixture. Default :data:`L3_POSITIONS_EV`.
    resolution_eV : float
        Gaussian energy resolution (FWHM, eV), added in quadrature to the intrinsic
        widths. The L3 maximum stays at ``l3_eV`` whatever the resolution.
    offset_eV : float
        Calibration offset added to every position (a mis-calibrated spectrometer).
    normalization : {"continuum", "peak"}
        ``"continuum"``: the continuum step far above L2 is 1 per unit of Mn, so
        mixtures are weighted per Mn atom. ``"peak"``: each valence's L3 maximum is 1
        (a mixture's components are scaled before mixing).

    Returns
    -------
    numpy.ndarray
        Intensities, same shape as ``energy``.
    """
    if not EDGE_PARAMETERS:
        raise RuntimeError("The edge parameters are missing; run fit_edge_parameters().")
    if normalization not in ("continuum", "peak"):
        raise ValueError(f"normalization must be 'continuum' or 'peak', not {normalization!r}.")
    if resolution_eV < 0:
        raise ValueError("resolution_eV must be non-negative.")
    f = as_fractions(valence, fractions)
    f = f / f.sum()
    energy = np.asarray(energy, dtype=np.float64)
    if l3_eV is None:
        pos = np.array([L3_POSITIONS_EV[v] for v in VALENCES])
    elif np.ndim(l3_eV) == 0:
        if fractions is not None and np.count_nonzero(f) > 1:
            raise ValueError("For a mixture, give l3_eV as three positions (Mn2+, Mn3+, Mn4+).")
        pos = np.full(3, float(l3_eV))
    else:
        pos = np.asarray(l3_eV, dtype=np.float64)
        if pos.shape != (3,):
            raise ValueError("l3_eV must be one number or three (Mn2+, Mn3+, Mn4+).")
    res = float(resolution_eV)
    out = np.zeros_like(energy)
    for k, v in enumerate(VALENCES):
        if f[k] == 0:
            continue
        shift, height = _peak_correction(v, res)
        y = _profile(energy - (pos[k] + offset_eV) + shift, EDGE_PARAMETERS[v], res)
        if normalization == "peak":
            y = y / height
        out += f[k] * y
    return out


def peak_heights(resolution_eV: float) -> np.ndarray:
    """L3 maximum of each valence's continuum-normalised edge at this resolution (3,)."""
    return np.array([_peak_correction(v, float(resolution_eV))[1] for v in VALENCES])


def edge_table(
    energy: np.ndarray, frac: np.ndarray, offset: np.ndarray, resolution_eV: float
) -> np.ndarray:
    """Continuum-normalised edges of ``n`` mixtures at ``n`` offsets, shape (n, m).

    Each valence is tabulated once on a fine grid (0.005 eV) and read by linear
    interpolation at ``energy - offset``: fast for any number of spectra.
    """
    step = 0.005
    lo = energy.min() - offset.max() - 1.0
    hi = energy.max() - offset.min() + 1.0
    grid = lo + step * np.arange(int(np.ceil((hi - lo) / step)) + 2)
    x = (energy[None, :] - offset[:, None] - lo) / step
    i0 = np.clip(np.floor(x).astype(np.int64), 0, grid.size - 2)
    w = x - i0
    out = np.zeros((frac.shape[0], energy.size))
    for k, v in enumerate(VALENCES):
        if not np.any(frac[:, k]):
            continue
        tab = mn_l23_edge(grid, v, resolution_eV=resolution_eV)
        out += frac[:, k : k + 1] * (tab[i0] * (1 - w) + tab[i0 + 1] * w)
    return out


# --- fitting ---------------------------------------------------------------------------

# Starting values, relative to the L3 maximum of the class mean (Titan calibration):
# (position, FWHM, amplitude) of the L3 and L2 components.
_START = {
    2: {"l3": [(-1.2, 1.2, 0.2), (0.0, 1.2, 0.5), (1.8, 2.0, 0.3)],
        "l2": [(11.2, 1.5, 0.1), (12.6, 2.5, 0.12)]},
    3: {"l3": [(-1.5, 1.5, 0.3), (0.0, 1.5, 0.5), (1.8, 2.0, 0.3)],
        "l2": [(10.5, 1.5, 0.15), (12.0, 2.5, 0.15)]},
    4: {"l3": [(-2.5, 1.5, 0.3), (-0.6, 1.5, 0.4), (0.2, 1.2, 0.5)],
        "l2": [(10.5, 1.5, 0.15), (12.0, 2.5, 0.2)]},
}  # fmt: skip


def _unpack(theta: np.ndarray, n3: int, n2: int) -> tuple[dict, float, float]:
    """Parameter vector -> (profile dict with observed widths, baseline, step scale)."""
    i = 0
    l3 = [tuple(theta[i + 3 * k : i + 3 * k + 3]) for k in range(n3)]
    i += 3 * n3
    l2 = [tuple(theta[i + 3 * k : i + 3 * k + 3]) for k in range(n2)]
    i += 3 * n2
    eta, s_pos, s_fwhm, so, scale, base = theta[i : i + 6]
    p = {"l3": l3, "l2": l2, "eta": eta, "step": (s_pos, s_fwhm), "spin_orbit": so}
    return p, base, scale


def _fit_one(energy: np.ndarray, mean: np.ndarray, start: dict) -> tuple[dict, float, float]:
    from scipy.optimize import least_squares

    i_max = int(np.argmax(mean))
    e0 = energy[i_max]
    top = mean[i_max] - mean[:20].mean()
    n3, n2 = len(start["l3"]), len(start["l2"])
    x0, lo, hi = [], [], []
    for pos, fwhm, a in start["l3"] + start["l2"]:
        x0 += [e0 + pos, fwhm, a * top]
        lo += [e0 + pos - 2.0, 0.3, 0.0]
        hi += [e0 + pos + 2.0, 6.0, 2.0 * top]
    post = mean[-20:].mean() - mean[:20].mean()
    x0 += [0.2, e0 - 0.5, 1.5, 11.0, post, mean[:20].mean()]
    lo += [0.0, e0 - 3.0, 0.3, 9.5, 0.0, -0.5]
    hi += [1.0, e0 + 2.0, 6.0, 12.5, 2.0, 0.5]

    def resid(theta):
        p, base, scale = _unpack(theta, n3, n2)
        pp = dict(p)
        pp["l3"] = [(c, w, a / max(scale, 1e-9)) for c, w, a in p["l3"]]
        pp["l2"] = [(c, w, a / max(scale, 1e-9)) for c, w, a in p["l2"]]
        return base + scale * _profile(energy, pp, 0.0) - mean

    r = least_squares(resid, np.array(x0), bounds=(np.array(lo), np.array(hi)), max_nfev=20000)
    res = r.fun
    r2 = 1.0 - np.sum(res**2) / np.sum((mean - mean.mean()) ** 2)
    p, _, scale = _unpack(r.x, n3, n2)
    return p, scale, float(r2)


def _rounded(c: float, w: float, a: float) -> tuple[float, float, float]:
    return (round(float(c), 4), round(float(w), 4), round(float(a), 5))


def fit_edge_parameters(
    spectra: np.ndarray | None = None,
    valence: np.ndarray | None = None,
    energy: np.ndarray | None = None,
) -> tuple[dict[int, dict], dict[int, float]]:
    """Fit the edge model to the per-class mean spectra of the Titan training data.

    For each valence the class mean is fitted (``scipy.optimize.least_squares``) with a
    constant baseline plus the model at the widths observed; the result is expressed
    relative to the model's L3 maximum, in units of the continuum step, with the
    Titan resolution (:data:`REFERENCE_RESOLUTION_EV`) removed from the widths in
    quadrature. Use only training data.

    Parameters
    ----------
    spectra, valence, energy : numpy.ndarray, optional
        Spectra ``(n, m)``, their valences ``(n,)`` and energy axis ``(m,)``; by
        default ``train/titan_mn_valence.npz`` (see
        :func:`hyperspy_mnvalence.datasets.load_titan_valence`).

    Returns
    -------
    parameters : dict
        ``{valence: parameters}`` in the format of :data:`EDGE_PARAMETERS`.
    r2 : dict
        ``{valence: R^2}`` of the fit to the class mean.
    """
    if spectra is None:
        from ..datasets import load_titan_valence

        d = load_titan_valence()
        spectra, valence, energy = d["spectra"], d["valence"], d["energy"]
    spectra = np.asarray(spectra, dtype=np.float64)
    valence = np.asarray(valence)
    energy = np.asarray(energy, dtype=np.float64)
    params, quality = {}, {}
    ref = REFERENCE_RESOLUTION_EV
    for v in VALENCES:
        mean = spectra[valence == v].mean(0)
        p, scale, r2 = _fit_one(energy, mean, _START[v])
        # L3 maximum of the fitted model (continuum normalised)
        pp = dict(p)
        pp["l3"] = [(c, w, a / scale) for c, w, a in p["l3"]]
        pp["l2"] = [(c, w, a / scale) for c, w, a in p["l2"]]
        x = np.arange(energy[0], energy[-1], 0.002)
        emax = float(x[np.argmax(_profile(x, pp, 0.0))])

        def intrinsic(w):
            return float(np.sqrt(max(w**2 - ref**2, 0.01)))

        params[v] = {
            "l3": [_rounded(c - emax, intrinsic(w), a) for c, w, a in pp["l3"]],
            "l2": [_rounded(c - emax, intrinsic(w), a) for c, w, a in pp["l2"]],
            "eta": round(float(p["eta"]), 4),
            "step": (round(float(p["step"][0]) - emax, 4), round(intrinsic(p["step"][1]), 4)),
            "spin_orbit": round(float(p["spin_orbit"]), 4),
            "titan_l3_eV": round(emax, 3),
        }
        quality[v] = round(float(r2), 5)
    return params, quality


if __name__ == "__main__":  # pragma: no cover - refits and prints the table
    import pprint

    _params, _quality = fit_edge_parameters()
    pprint.pprint(_params, sort_dicts=False, width=100)
    pprint.pprint(_quality)
