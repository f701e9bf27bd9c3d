"""Parametric Mn L2,3 edge model and synthetic EELS spectrum images.

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

Everything is pure numpy: :func:`make_demo_spectrum_image` builds a 64 x 64 x 560
spectrum image in a fraction of a second.
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
    "demo_ground_truth",
    "fit_edge_parameters",
    "make_demo_spectrum_image",
    "mn_l23_edge",
    "synthetic_spectra",
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
# ``python -m hyperspy_mnvalence.synthetic`` (prints this table). Positions are in eV
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


def _as_fractions(valence: int | None, fractions: Sequence[float] | None) -> np.ndarray:
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
    f = _as_fractions(valence, fractions)
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


def synthetic_spectra(
    energy: np.ndarray,
    valence: int | None = None,
    *,
    fractions: Sequence[float] | np.ndarray | None = None,
    counts: float | np.ndarray = 200.0,
    background_exponent: float = 3.0,
    background_ratio: float = 2.0,
    offset_eV: float | np.ndarray = 0.0,
    resolution_eV: float = 0.3,
    noise: bool = True,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Spectra with a Mn L2,3 edge, a power-law background and Poisson noise.

    Parameters
    ----------
    energy : numpy.ndarray
        Energy axis (eV) as read by the spectrometer, shape ``(n_channels,)``.
    valence : {2, 3, 4}, optional
        Oxidation state of every spectrum; give this or ``fractions``.
    fractions : array_like, optional
        Amounts of Mn2+, Mn3+, Mn4+: shape ``(3,)`` for one spectrum or ``(n, 3)``
        for ``n`` spectra. Rows are normalised to sum to 1.
    counts : float or numpy.ndarray
        Expected counts per channel of the Mn continuum step (the edge jump above L2);
        the L3 white line is about five times higher. Scalar or shape ``(n,)``.
    background_exponent : float
        Exponent ``r`` of the background ``A * E**-r`` (``E`` the true energy loss).
    background_ratio : float
        Background under the L3 maximum divided by the L3 maximum of the edge; 0
        for none.
    offset_eV : float or numpy.ndarray
        Calibration error of each spectrum: features appear at true energy +
        ``offset_eV``. Scalar or shape ``(n,)``.
    resolution_eV : float
        Gaussian energy resolution (FWHM, eV).
    noise : bool
        Draw Poisson counts; if False return the expected counts.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, n_channels)`` (``(n_channels,)`` for a single spectrum), float64.
    """
    energy = np.asarray(energy, dtype=np.float64)
    if energy.ndim != 1:
        raise ValueError("energy must be one-dimensional.")
    if fractions is None:
        frac = _as_fractions(valence, None)[None, :]
    else:
        if valence is not None:
            raise ValueError("Give either a valence or fractions, not both.")
        frac = np.atleast_2d(np.asarray(fractions, dtype=np.float64))
        if frac.shape[-1] != 3 or np.any(frac < 0) or np.any(frac.sum(1) <= 0):
            raise ValueError("fractions must have shape (3,) or (n, 3), non-negative.")
        frac = frac / frac.sum(1, keepdims=True)
    single = np.ndim(counts) == 0 and np.ndim(offset_eV) == 0 and frac.shape[0] == 1
    n = (
        np.broadcast_shapes(frac.shape[:1], np.shape(counts), np.shape(offset_eV))[0]
        if not (single)
        else 1
    )
    frac = np.broadcast_to(frac, (n, 3))
    offset = np.broadcast_to(np.asarray(offset_eV, dtype=np.float64), (n,))
    cts = np.broadcast_to(np.asarray(counts, dtype=np.float64), (n,))
    edge = _edge_table(energy, frac, offset, resolution_eV)
    expected = cts[:, None] * edge
    if background_ratio > 0:
        l3 = np.array([L3_POSITIONS_EV[v] for v in VALENCES])
        e_l3 = frac @ l3  # true energy of the L3 maximum of the mixture (approx.)
        peak = cts * (frac @ _peak_heights(resolution_eV))
        true_e = np.clip(energy[None, :] - offset[:, None], 1.0, None)
        amp = background_ratio * peak * e_l3**background_exponent
        expected = expected + amp[:, None] * true_e ** (-background_exponent)
    out = expected
    if noise:
        gen = np.random.default_rng(rng)
        out = gen.poisson(np.clip(expected, 0, None)).astype(np.float64)
    return out[0] if single else out


def _peak_heights(resolution_eV: float) -> np.ndarray:
    return np.array([_peak_correction(v, float(resolution_eV))[1] for v in VALENCES])


def _edge_table(
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


# --- demo spectrum image ---------------------------------------------------------------


def demo_ground_truth(shape: tuple[int, int] = (48, 64), seed: int = 0) -> dict:
    """Ground truth of :func:`make_demo_spectrum_image` for the same shape and seed.

    The map (numpy order ``(rows, columns)``) holds, from left to right: vacuum, three
    grains (Mn2+, Mn3+, Mn4+) as vertical bands with wavy boundaries and a two-pixel
    mixed interface, and a Mn-free substrate. Vertical bands span all rows, so every
    grain sees the whole calibration drift (which follows the raster, i.e. time).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``; both at least 8.
    seed : int
        Seed of the random boundary waviness and thickness.

    Returns
    -------
    dict
        ``fractions`` (3, rows, cols): Mn2+, Mn3+, Mn4+ amounts (0 where no Mn);
        ``valence`` (rows, cols): mean valence, NaN where there is no Mn;
        ``region`` (rows, cols) int: 0 vacuum, 1 substrate, 2/3/4 the grain's
        majority valence; ``thickness`` (rows, cols): relative Mn amount (0-1].
    """
    ny, nx = (int(shape[0]), int(shape[1]))
    if ny < 8 or nx < 8:
        raise ValueError("The demo map needs at least 8 x 8 pixels.")
    gen = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    u = (xx + 0.5) / nx
    v = (yy + 0.5) / ny
    # five bands, boundaries at fixed fractions of the width plus a random wave
    edges = np.array([0.14, 0.38, 0.62, 0.86])
    phase = gen.uniform(0, 2 * np.pi, edges.size)
    amp = gen.uniform(0.02, 0.04, edges.size)
    b = edges[:, None, None] + amp[:, None, None] * np.sin(
        2 * np.pi * 1.5 * v[None] + phase[:, None, None]
    )
    band = np.sum(u[None] > b, axis=0)  # 0 vacuum, 1..3 grains, 4 substrate
    # mixed interfaces between grains: a linear ramp over 2 pixels
    width = 2.0 / nx
    s1 = np.clip((u - b[1]) / width + 0.5, 0.0, 1.0)
    s2 = np.clip((u - b[2]) / width + 0.5, 0.0, 1.0)
    frac = np.stack([1 - s1, s1 * (1 - s2), s2])
    mn = (band >= 1) & (band <= 3)
    frac = np.where(mn[None], frac, 0.0)
    frac[:, mn] /= frac[:, mn].sum(0)
    val = np.where(mn, np.tensordot(np.array(VALENCES, float), frac, axes=1), np.nan)
    region = np.select([band == 0, band == 4], [0, 1], default=0)
    region = np.where(mn, 2 + np.argmax(frac, axis=0), region)
    thick = 0.75 + 0.25 * np.sin(2 * np.pi * (v + 0.3 * u) + gen.uniform(0, 2 * np.pi))
    thick = np.where(mn, thick, 0.0)
    return {"fractions": frac, "valence": val, "region": region.astype(np.int8), "thickness": thick}


def make_demo_spectrum_image(
    shape: tuple[int, int] = (48, 64),
    *,
    dispersion_eV: float = 0.25,
    energy_range: tuple[float, float] = (580.0, 720.0),
    drift_eV: tuple[float, float] = (-4.0, 6.0),
    counts: float = 300.0,
    background_ratio: float = 2.0,
    background_exponent: float = 3.0,
    resolution_eV: float = 0.3,
    pixel_size_nm: float = 0.5,
    seed: int = 0,
    lazy: bool = False,
):
    """A synthetic Mn L2,3 spectrum image with three valences and a drifting calibration.

    Regions (see :func:`demo_ground_truth`): vacuum (a dark level of a few counts and
    Poisson noise, no edge), grains of Mn2+, Mn3+ and Mn4+ with narrow mixed
    interfaces on a power-law background, and a Mn-free substrate (power-law
    background only). The energy calibration drifts linearly in acquisition (raster)
    order from ``drift_eV[0]`` to ``drift_eV[1]``, so the absolute L3 position says
    little about the valence.

    Parameters
    ----------
    shape : tuple of int
        Navigation shape ``(rows, columns)`` (numpy order).
    dispersion_eV : float
        Energy per channel.
    energy_range : tuple of float
        First and (approximately) last energy of the axis.
    drift_eV : tuple of float
        Calibration offset at the first and at the last pixel.
    counts : float
        Counts per channel of the Mn continuum step at full thickness.
    background_ratio, background_exponent : float
        Power-law background (see :func:`synthetic_spectra`); the substrate has the
        background of full-thickness Mn.
    resolution_eV : float
        Gaussian energy resolution (FWHM).
    pixel_size_nm : float
        Spatial calibration of both navigation axes.
    seed : int
        Seed of the geometry and of the noise.
    lazy : bool
        Return a lazy (dask) signal.

    Returns
    -------
    MnValenceEELSSpectrum
        The signal (``signal_type`` ``"EELS_MnValence"``). The truth is stored as
        numpy arrays in ``s.metadata.Sample``: ``mn_valence_truth`` (rows, cols;
        mean valence, NaN where no Mn), ``mn_fractions_truth`` (3, rows, cols) and
        ``region_truth`` (0 vacuum, 1 substrate, 2-4 grains), plus
        ``calibration_offset_eV`` (rows, cols). They are the same as
        :func:`demo_ground_truth` returns and are not sliced along with the signal.
    """
    import exspy

    ny, nx = int(shape[0]), int(shape[1])
    truth = demo_ground_truth((ny, nx), seed)
    n_ch = int(round((energy_range[1] - energy_range[0]) / dispersion_eV))
    energy = energy_range[0] + dispersion_eV * np.arange(n_ch)
    npix = ny * nx
    offset = np.linspace(drift_eV[0], drift_eV[1], npix)
    frac = truth["fractions"].reshape(3, npix).T
    thick = truth["thickness"].ravel()
    region = truth["region"].ravel()
    gen = np.random.default_rng(seed + 1)
    mn = thick > 0
    # edges at per-pixel offsets (tabulated once per valence, then interpolated)
    edge = np.zeros((npix, n_ch))
    edge[mn] = _edge_table(energy, frac[mn], offset[mn], resolution_eV)
    expected = (counts * thick)[:, None] * edge
    # power-law background: Mn pixels scale with thickness, the substrate is full
    heights = _peak_heights(resolution_eV)
    l3 = np.array([L3_POSITIONS_EV[v] for v in VALENCES])
    ref_peak = counts * heights.mean()
    bg_scale = np.where(mn, 0.5 + 0.5 * thick, 0.0)
    bg_scale[region == 1] = 1.0
    true_e = energy[None, :] - offset[:, None]
    amp = background_ratio * ref_peak * l3.mean() ** background_exponent
    expected += (amp * bg_scale)[:, None] * true_e ** (-background_exponent)
    expected += 2.0  # dark level (vacuum shows only this)
    data = gen.poisson(expected).astype(np.float32).reshape(ny, nx, n_ch)

    s = exspy.signals.EELSSpectrum(data)
    ax_x, ax_y, ax_e = (
        s.axes_manager.navigation_axes[0],
        s.axes_manager.navigation_axes[1],
        s.axes_manager.signal_axes[0],
    )
    for ax, name in ((ax_x, "x"), (ax_y, "y")):
        ax.name, ax.units, ax.scale, ax.offset = name, "nm", pixel_size_nm, 0.0
    ax_e.name, ax_e.units, ax_e.scale, ax_e.offset = (
        "Energy loss",
        "eV",
        dispersion_eV,
        float(energy_range[0]),
    )
    s.metadata.General.title = "Synthetic Mn L2,3 spectrum image (Mn2+/Mn3+/Mn4+)"
    s.set_microscope_parameters(beam_energy=200.0, convergence_angle=20.0, collection_angle=30.0)
    s.metadata.set_item("Sample.elements", ["Mn", "O"])
    s.metadata.set_item("Sample.mn_valence_truth", truth["valence"])
    s.metadata.set_item("Sample.mn_fractions_truth", truth["fractions"])
    s.metadata.set_item("Sample.region_truth", truth["region"])
    s.metadata.set_item("Sample.calibration_offset_eV", offset.reshape(ny, nx))
    try:
        s.set_signal_type("EELS_MnValence")
    except Exception:  # the signal class may not be importable (yet)
        s.metadata.Signal.signal_type = "EELS_MnValence"
    if lazy:
        s = s.as_lazy()
    return s


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
        from .datasets import load_titan_valence

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
