"""The acquisition forward model: a clean Mn L2,3 edge recorded as a raw spectrum.

One function, :func:`simulate_acquisition`, takes clean, background-free edges (real
spectra such as the Titan training set, or the parametric edges of
:mod:`~hyperspy_mnvalence.simulations.edges`) through the acquisition in physical order:

1. **plural scattering** with a low-loss model (Poisson sum of plasmon orders,
   ``t_over_lambda`` 0-1.5), then the **instrument resolution** (Gaussian zero-loss of
   ``resolution_eV`` FWHM, 0.1-2 eV);
2. a **power-law background** ``A E**-r`` (``background_exponent`` 2-5) under the edge,
   the L3 maximum standing ``l3_over_background`` (0.01-0.5) above it;
3. the **spectrometer**: energy offset (``offset_eV``, +-20 eV; an array of offsets is a
   drift across a map) and dispersion (``dispersion_eV``, 0.02-1 eV per channel), the
   spectrum integrated over each channel;
4. the **dose** (``dose``: electrons per eV of background at the L3 maximum, 10-1e6)
   and Poisson sampling of the electrons;
5. the **detector**: a point-spread function that correlates neighbouring channels
   (``psf_sigma_channels``, Gaussian, 0-1.5; 0.7 gives a lag-1 autocorrelation of about
   0.55 as measured on real CCD spectrum images), ``gain`` (counts per electron, 1-20),
   a fixed gain-reference pattern (``gain_pattern``, relative rms 0-0.02), read-out
   noise (``read_noise``, counts rms) and a dark level;
6. **cosmic-ray spikes** (``spikes_per_spectrum``, heights ``spike_height`` times the L3
   height) and **hot channels** (``hot_channels``, the same channels in every spectrum).

Every per-spectrum parameter is a scalar or an array of one value per spectrum; every
random draw is recorded in :attr:`Acquisition.truth`. The defaults describe an ideal
detector (Poisson counting, no point spread, unit gain, no read-out noise, no spikes):
switch each effect on by its parameter. Pure numpy, vectorised over spectra, seeded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .edges import L3_POSITIONS_EV, REFERENCE_RESOLUTION_EV, VALENCES, mn_l23_edge
from .scattering import plural_scattering, scattering_reach_eV

__all__ = ["Acquisition", "simulate_acquisition", "CHUNK"]

_logger = logging.getLogger(__name__)

#: Spectra simulated per internal block (bounds memory; results do not depend on it).
CHUNK = 1024

#: Step of the true-energy grid on which the physics is computed (eV).
GRID_STEP_EV = 0.1


@dataclass
class Acquisition:
    """Raw spectra and what made them.

    Attributes
    ----------
    spectra : numpy.ndarray
        Detector counts, float32, shape ``(n, n_channels)``.
    energy : numpy.ndarray
        Energy of each channel as the spectrometer reports it (eV); channel ``k``
        collects the energies within half a channel of ``energy[k]``.
    truth : dict
        One array per drawn or given quantity (``valence``, ``fractions``,
        ``t_over_lambda``, ``resolution_eV``, ``l3_over_background``, ``offset_eV``,
        ``dose``, ``l3_true_eV`` ...), ``has_edge``, the spike positions and the
        detector's fixed pattern; see :func:`simulate_acquisition`.
    """

    spectra: np.ndarray
    energy: np.ndarray
    truth: dict = field(default_factory=dict)

    def to_signal(
        self, navigation_shape: tuple[int, ...] | None = None, lazy: bool = False, **kwargs
    ):
        """The spectra as an ``EELS_MnValence`` signal, the truth in ``metadata.Sample``.

        Parameters
        ----------
        navigation_shape : tuple of int, optional
            Numpy-order navigation shape (``(rows, columns)`` for a map); default one
            line of ``n`` spectra (a single spectrum when ``n == 1``).
        lazy : bool
            Return a lazy (dask) signal.
        **kwargs
            ``pixel_size_nm`` and ``title`` of :func:`.signal.to_signal`.

        Returns
        -------
        MnValenceEELSSpectrum
        """
        from .signal import to_signal

        return to_signal(self, navigation_shape, lazy=lazy, **kwargs)


def per_spectrum(value, n: int, name: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{name} must be a number or one value per spectrum ({n}), got {a.shape}.")
    return a.copy()


def _check_range(a: np.ndarray, name: str, lo: float, hi: float) -> None:
    if not np.all(np.isfinite(a)) or np.any(a < lo) or np.any(a > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}]; got {a.min():.4g} ... {a.max():.4g}.")


def _clean_edges(
    edges, edge_energy, valence, fractions, n, resolution, grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean edges on ``grid`` (true energy), with the resolution applied.

    Returns the edges ``(n, g)`` with their L3 height 1 above the pre-edge, the
    per-spectrum fractions ``(n, 3)`` (NaN for given spectra of unknown valence) and the
    resolution still to apply by convolution (FWHM per spectrum).
    """
    if edges is not None:
        e = np.asarray(edge_energy, dtype=np.float64)
        src = np.asarray(edges, dtype=np.float64)
        if src.ndim == 1:
            src = src[None, :]
        if e.ndim != 1 or src.shape[1] != e.size:
            raise ValueError("edges must have shape (n, len(edge_energy)).")
        step = np.diff(e)
        if np.any(step <= 0):
            raise ValueError("edge_energy must increase.")
        # outside the given range: the pre-edge level below, the post-edge level
        # (slowly decaying like the continuum) above
        lo = src[:, :5].mean(1, keepdims=True)
        hi = src[:, -10:].mean(1, keepdims=True)
        out = np.empty((src.shape[0], grid.size))
        for i in range(src.shape[0]):
            out[i] = np.interp(grid, e, src[i])
        below = grid < e[0]
        above = grid > e[-1]
        out[:, below] = lo
        out[:, above] = (hi - lo) * (grid[above] / e[-1])[None, :] ** -3.0 + lo
        out -= lo
        # the given spectra already carry their instrument's resolution
        extra = np.sqrt(np.clip(resolution**2 - REFERENCE_RESOLUTION_EV**2, 0.0, None))
        frac = np.full((src.shape[0], 3), np.nan)
        if valence is not None:
            v = np.broadcast_to(np.asarray(valence), (src.shape[0],))
            frac = np.zeros((src.shape[0], 3))
            for k, val in enumerate(VALENCES):
                frac[v == val, k] = 1.0
        if fractions is not None:
            frac = np.broadcast_to(np.asarray(fractions, float), (src.shape[0], 3)).copy()
        return out, frac, extra
    if fractions is not None:
        frac = np.atleast_2d(np.asarray(fractions, dtype=np.float64))
        if frac.shape[-1] != 3 or np.any(frac < 0) or np.any(frac.sum(1) <= 0):
            raise ValueError("fractions must have shape (3,) or (n, 3), non-negative.")
        frac = np.broadcast_to(frac / frac.sum(1, keepdims=True), (n, 3))
    else:
        if valence is None:
            raise ValueError("Give edges (clean spectra), a valence or fractions.")
        v = np.broadcast_to(np.asarray(valence), (n,))
        if not np.isin(v, VALENCES).all():
            raise ValueError(f"valence must be 2, 3 or 4, got {np.unique(v)}.")
        frac = np.zeros((n, 3))
        for k, val in enumerate(VALENCES):
            frac[v == val, k] = 1.0
    # parametric edges at each distinct resolution (a handful in practice)
    out = np.zeros((n, grid.size))
    res_keys = np.round(resolution, 3)
    for r in np.unique(res_keys):
        rows = res_keys == r
        for k, val in enumerate(VALENCES):
            if np.any(frac[rows, k]):
                tab = mn_l23_edge(grid, val, resolution_eV=float(r))
                out[rows] += frac[rows, k : k + 1] * tab[None, :]
    return out, np.array(frac), np.zeros(n)


def _l3_height(
    y: np.ndarray, grid: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Height and energy of the maximum of each row between ``lo`` and ``hi``."""
    sl = slice(int(np.searchsorted(grid, lo)), int(np.searchsorted(grid, hi)))
    i = np.argmax(y[:, sl], axis=1) + sl.start
    rows = np.arange(y.shape[0])
    return y[rows, i], grid[i]


def _integrate_channels(
    signal: np.ndarray, grid: np.ndarray, edges_obs: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """Integral of each row over each channel, the channels shifted by ``offset``.

    Channel ``k`` of row ``i`` collects true energies ``edges_obs[k] - offset[i]`` to
    ``edges_obs[k + 1] - offset[i]``; the cumulative integral (trapezoids) is read by
    linear interpolation, so any dispersion, finer or coarser than the grid, works.
    """
    step = grid[1] - grid[0]
    cum = np.zeros((signal.shape[0], grid.size))
    cum[:, 1:] = np.cumsum(0.5 * (signal[:, 1:] + signal[:, :-1]) * step, axis=1)
    x = (edges_obs[None, :] - offset[:, None] - grid[0]) / step
    i0 = np.clip(np.floor(x).astype(np.int64), 0, grid.size - 2)
    w = np.clip(x - i0, 0.0, 1.0)
    rows = np.arange(signal.shape[0])[:, None]
    c = cum[rows, i0] * (1.0 - w) + cum[rows, i0 + 1] * w
    return np.diff(c, axis=1)


def _scattered_background(grid, e_l3, r, t, plasmon_eV, plasmon_fwhm_eV) -> np.ndarray:
    """The power-law background ``(E / e_l3) ** -r`` scattered by the plasmon orders of
    thickness ``t``, computed from the scattering's reach below ``grid`` and scaled to 1
    at ``e_l3`` again."""
    reach = scattering_reach_eV(t, plasmon_eV, plasmon_fwhm_eV)
    below = int(np.ceil(reach / GRID_STEP_EV)) + 2
    low = grid[0] - GRID_STEP_EV * below
    if low <= 10.0:
        raise ValueError(
            f"scatter_background needs the background down to {low:.0f} eV (the reach of "
            "the plasmon orders below the range): use a higher energy range or thinner t"
        )
    ext = np.concatenate([grid[0] - GRID_STEP_EV * np.arange(below, 0, -1), grid])
    bg = (ext[None, :] / e_l3[:, None]) ** (-r[:, None])
    bg = plural_scattering(bg, GRID_STEP_EV, t, plasmon_eV, plasmon_fwhm_eV)[:, below:]
    at = np.array([np.interp(e, grid, row) for e, row in zip(e_l3, bg, strict=True)])
    return bg / at[:, None]


def simulate_acquisition(
    n: int | None = None,
    *,
    edges: np.ndarray | None = None,
    edge_energy: np.ndarray | None = None,
    valence=None,
    fractions=None,
    t_over_lambda=0.0,
    plasmon_eV=20.0,
    plasmon_fwhm_eV=6.0,
    resolution_eV=0.3,
    background_exponent=3.0,
    l3_over_background=0.12,
    offset_eV=0.0,
    dispersion_eV: float = 0.25,
    energy_range: tuple[float, float] = (590.0, 720.0),
    dose=8e4,
    poisson: bool = True,
    psf_sigma_channels: float = 0.0,
    gain=1.0,
    gain_pattern: float = 0.0,
    read_noise=0.0,
    dark_level: float = 0.0,
    spikes_per_spectrum: float = 0.0,
    spike_height: tuple[float, float] = (3.0, 10.0),
    hot_channels: int = 0,
    hot_level: float = 5.0,
    edge_scale=1.0,
    scatter_background: bool = False,
    rng: np.random.Generator | int | None = None,
) -> Acquisition:
    """Record clean Mn L2,3 edges as raw spectra, in physical order.

    Parameters
    ----------
    n : int, optional
        Number of spectra (default: the number of ``edges``, or inferred from the
        per-spectrum arrays; 1 for all scalars).
    edges, edge_energy : numpy.ndarray, optional
        Clean background-free spectra ``(n, k)`` on their energy axis ``(k,)`` (e.g. the
        Titan spectra, whose 0.2 eV resolution is taken into account). Their energy is
        the *true* energy loss. Without them, parametric edges of ``valence`` or
        ``fractions`` are used, at the literature L3 positions.
    valence : int or array_like, optional
        2, 3 or 4 per spectrum (recorded as truth; selects the parametric edge).
    fractions : array_like, optional
        ``(3,)`` or ``(n, 3)`` amounts of Mn2+, Mn3+, Mn4+ (parametric mixtures).
    t_over_lambda : float or array_like
        Relative thickness, 0-1.5 (plural scattering by plasmon orders).
    plasmon_eV, plasmon_fwhm_eV : float or array_like
        Plasmon energy (10-30 eV) and width (2-15 eV) of the low-loss model.
    resolution_eV : float or array_like
        FWHM of the zero-loss peak, 0.1-2 eV.
    background_exponent : float or array_like
        Exponent ``r`` of the background ``A E**-r``, 2-5.
    l3_over_background : float or array_like
        Height of the L3 maximum above the background divided by the background there,
        0-0.5 (0: no edge at all, a negative; the truth ``has_edge`` is then False).
    offset_eV : float or array_like
        Calibration error, -30 to 30 eV: a feature at true energy ``E`` is reported at
        ``E + offset``. An array of offsets along a scan is a drift.
    dispersion_eV : float
        Energy per channel, 0.02-1 eV.
    energy_range : tuple of float
        First reported energy and the end of the range: ``round((hi - lo) /
        dispersion_eV)`` channels.
    dose : float or array_like
        Electrons per eV of background at the L3 maximum, 1-1e7 (``numpy.inf``:
        expected values, no shot noise).
    poisson : bool
        Sample electrons from the Poisson law (False: expected values).
    psf_sigma_channels : float
        Gaussian point spread of the detector in channels, 0-1.5.
    gain : float or array_like
        Counts per electron, 0.1-50.
    gain_pattern : float
        Relative rms of a fixed per-channel gain-reference residual, 0-0.05 (the same
        pattern in every spectrum of the call).
    read_noise : float or array_like
        Gaussian read-out noise, counts rms per channel, 0-1e4.
    dark_level : float
        Constant counts added by the detector.
    spikes_per_spectrum : float
        Mean number of cosmic-ray spikes per spectrum (Poisson), 0-5; each 1-2 channels
        high by ``spike_height`` times the L3 height.
    spike_height : tuple of float
        Range of spike heights, in units of the spectrum's L3 height above background.
    hot_channels : int
        Number of hot channels (the same in every spectrum), each ``hot_level`` times
        the background counts at the L3 maximum above their neighbours.
    hot_level : float
        Height of the hot channels.
    edge_scale : float or array_like
        Multiplies the edge only (a thickness map of Mn at a fixed background).
    scatter_background : bool
        Also scatter the background by the same plasmon orders, as a real thick sample
        does (the background is computed down to the scattering's reach below the
        range, scattered, and scaled back to 1 electron/eV at the L3 maximum, so that
        ``l3_over_background`` and ``dose`` keep their meaning). Default False: the
        edge alone is scattered, as the robustness suite records (the difference
        matters above L2, where the plasmon replica of the background's own curvature
        lies; see ``tests/test_edge_beyond_l2.py``).
    rng : numpy.random.Generator or int, optional
        Generator or seed of every draw.

    Returns
    -------
    Acquisition
        ``spectra`` (float32 counts), ``energy`` and ``truth``: every parameter per
        spectrum, ``l3_true_eV`` (the L3 maximum in true energy) and ``l3_eV`` (as
        reported), ``l3_counts`` (L3 height above background in counts per channel),
        ``has_edge``, ``spike_channels`` (one array of channel indices per spectrum, empty
        where it has none), ``hot_channels`` and
        ``gain_pattern`` (per channel).

    Examples
    --------
    >>> from hyperspy_mnvalence.simulations import simulate_acquisition
    >>> acq = simulate_acquisition(valence=[2, 3, 4], l3_over_background=0.06,
    ...                            dose=8e4, psf_sigma_channels=0.7, gain=5.0, rng=0)
    >>> acq.spectra.shape, acq.energy[:2]
    ((3, 520), array([590.  , 590.25]))
    >>> acq.truth["valence"].tolist()
    [2, 3, 4]
    """
    gen = np.random.default_rng(rng)
    if n is None:
        sizes = [
            np.size(a)
            for a in (
                t_over_lambda,
                resolution_eV,
                background_exponent,
                l3_over_background,
                offset_eV,
                dose,
                gain,
                read_noise,
                edge_scale,
                valence,
            )
            if a is not None and np.ndim(a) > 0
        ]
        if edges is not None:
            sizes.append(np.atleast_2d(edges).shape[0])
        if fractions is not None and np.ndim(fractions) == 2:
            sizes.append(np.shape(fractions)[0])
        n = max(sizes) if sizes else 1
    n = int(n)
    if n < 1:
        raise ValueError("n must be at least 1.")
    d = float(dispersion_eV)
    _check_range(np.array([d]), "dispersion_eV", 0.005, 5.0)
    e0, e1 = map(float, energy_range)
    if not e1 > e0 + 10 * d:
        raise ValueError("energy_range must span at least ten channels, low to high.")
    p = {
        "t_over_lambda": per_spectrum(t_over_lambda, n, "t_over_lambda"),
        "plasmon_eV": per_spectrum(plasmon_eV, n, "plasmon_eV"),
        "plasmon_fwhm_eV": per_spectrum(plasmon_fwhm_eV, n, "plasmon_fwhm_eV"),
        "resolution_eV": per_spectrum(resolution_eV, n, "resolution_eV"),
        "background_exponent": per_spectrum(background_exponent, n, "background_exponent"),
        "l3_over_background": per_spectrum(l3_over_background, n, "l3_over_background"),
        "offset_eV": per_spectrum(offset_eV, n, "offset_eV"),
        "dose": per_spectrum(dose, n, "dose"),
        "gain": per_spectrum(gain, n, "gain"),
        "read_noise": per_spectrum(read_noise, n, "read_noise"),
        "edge_scale": per_spectrum(edge_scale, n, "edge_scale"),
    }
    for name, lo, hi in (
        ("t_over_lambda", 0, 3), ("plasmon_eV", 5, 40), ("plasmon_fwhm_eV", 0.5, 30),
        ("resolution_eV", 0.0, 5), ("background_exponent", 0.5, 8),
        ("l3_over_background", 0, 100), ("offset_eV", -60, 60), ("gain", 1e-3, 1e4),
        ("read_noise", 0, 1e6), ("edge_scale", 0, 1e3),
    ):  # fmt: skip
        _check_range(p[name], name, lo, hi)
    if np.any(~(p["dose"] > 0)):
        raise ValueError("dose must be positive (numpy.inf for no shot noise).")
    _check_range(np.array([psf_sigma_channels]), "psf_sigma_channels", 0, 10)
    _check_range(np.array([gain_pattern]), "gain_pattern", 0, 0.5)
    _check_range(np.array([spikes_per_spectrum]), "spikes_per_spectrum", 0, 50)

    # channel k is reported at e0 + k d and collects e0 + (k -+ 1/2) d
    n_ch = int(round((e1 - e0) / d))
    energy = e0 + d * np.arange(n_ch)
    edges_obs = e0 - 0.5 * d + d * np.arange(n_ch + 1)
    m = energy.size
    # the true-energy grid every spectrum needs (offsets shift the window read)
    g_lo = edges_obs[0] - p["offset_eV"].max() - 2.0
    g_hi = edges_obs[-1] - p["offset_eV"].min() + 2.0
    grid = g_lo + GRID_STEP_EV * np.arange(int(np.ceil((g_hi - g_lo) / GRID_STEP_EV)) + 1)
    if grid[0] <= 50:
        raise ValueError("energy_range and offset_eV must keep true energies above 50 eV.")

    out = np.empty((n, m), dtype=np.float32)
    l3_true = np.empty(n)
    l3_counts = np.empty(n)
    frac_all = np.empty((n, 3))
    src = None if edges is None else np.atleast_2d(np.asarray(edges))
    if src is not None and src.shape[0] != n:
        raise ValueError(f"edges hold {src.shape[0]} spectra, but n is {n}.")
    l3_nominal = np.array([L3_POSITIONS_EV[v] for v in VALENCES])
    val_n = None if valence is None else np.broadcast_to(np.asarray(valence), (n,))
    frac_n = None
    if fractions is not None:
        frac_n = np.broadcast_to(np.atleast_2d(np.asarray(fractions, dtype=np.float64)), (n, 3))
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        rows = slice(a, b)
        k = b - a

        clean, frac, extra = _clean_edges(
            None if src is None else src[rows], edge_energy,
            None if val_n is None else val_n[rows], None if frac_n is None else frac_n[rows],
            k, p["resolution_eV"][rows], grid,
        )  # fmt: skip
        frac_all[rows] = frac
        # 1. plural scattering and the resolution still to apply
        y = plural_scattering(
            clean, GRID_STEP_EV, p["t_over_lambda"][rows], p["plasmon_eV"][rows],
            p["plasmon_fwhm_eV"][rows], extra,
        )  # fmt: skip
        # the L3 maximum: near the nominal position (parametric) or the given maximum
        if src is None:
            centre = np.nan_to_num(frac @ l3_nominal, nan=641.0)
            lo, hi = centre.min() - 4.0, centre.max() + 4.0
        else:
            tops = np.asarray(edge_energy)[np.argmax(src[rows], axis=1)]
            lo, hi = tops.min() - 4.0, tops.max() + 4.0
        h, e_l3 = _l3_height(y, grid, lo, hi)
        l3_true[rows] = e_l3
        ok = h > 0
        y = y / np.where(ok, h, 1.0)[:, None]
        # 2. background: 1 electron/eV at the L3 maximum times the dose
        r = p["background_exponent"][rows]
        bg = (grid[None, :] / e_l3[:, None]) ** (-r[:, None])
        if scatter_background:
            bg = _scattered_background(
                grid, e_l3, r, p["t_over_lambda"][rows], p["plasmon_eV"][rows],
                p["plasmon_fwhm_eV"][rows],
            )  # fmt: skip
        ratio = p["l3_over_background"][rows] * p["edge_scale"][rows]
        sig = bg + ratio[:, None] * y
        # 3. spectrometer: offset, dispersion, channel integration; 4. dose
        dose = p["dose"][rows]
        finite_dose = np.isfinite(dose)
        expected = _integrate_channels(sig, grid, edges_obs, p["offset_eV"][rows])
        expected *= np.where(finite_dose, dose, 1.0)[:, None]
        l3_counts[rows] = ratio * d * np.where(finite_dose, dose, 1.0) * p["gain"][rows]
        if poisson and finite_dose.any():
            fd = finite_dose
            expected[fd] = gen.poisson(np.clip(expected[fd], 0, None)).astype(np.float64)
        # 5. detector
        if psf_sigma_channels > 0:
            expected = ndimage.gaussian_filter1d(
                expected, psf_sigma_channels, axis=1, mode="nearest", truncate=4.0
            )
        expected *= p["gain"][rows, None]
        out[rows] = expected
    truth_pattern = np.zeros(m)
    if gain_pattern > 0:
        truth_pattern = gen.normal(0.0, gain_pattern, m)
        out *= (1.0 + truth_pattern)[None, :].astype(np.float32)
    if np.any(p["read_noise"] > 0):
        out += (gen.standard_normal((n, m)) * p["read_noise"][:, None]).astype(np.float32)
    out += np.float32(dark_level)
    # 6. spikes and hot channels
    spikes: list[np.ndarray] = [np.array([], dtype=np.int64)] * n  # one entry per spectrum
    bg_counts = np.where(np.isfinite(p["dose"]), p["dose"], 1.0) * d * p["gain"]
    # spike heights are in units of the L3 height (10 % of the background without an edge)
    spike_unit = np.where(l3_counts > 0, l3_counts, 0.1 * bg_counts)
    if spikes_per_spectrum > 0:
        counts = gen.poisson(spikes_per_spectrum, n)
        for i in np.nonzero(counts)[0]:
            ch = gen.integers(0, m, counts[i])
            height = gen.uniform(*spike_height, counts[i]) * spike_unit[i]
            out[i, ch] += height.astype(np.float32)
            wide = gen.random(counts[i]) < 0.3  # some spikes spill into the next channel
            nxt = np.minimum(ch[wide] + 1, m - 1)
            out[i, nxt] += (0.4 * height[wide]).astype(np.float32)
            spikes[i] = ch
    hot = (
        gen.choice(m, size=int(hot_channels), replace=False) if hot_channels else np.array([], int)
    )
    if hot.size:
        out[:, hot] += (hot_level * bg_counts)[:, None].astype(np.float32)
    has_edge = (p["l3_over_background"] * p["edge_scale"]) > 0
    valence_truth = np.where(
        np.isnan(frac_all).any(1) | ~has_edge,
        0,
        np.array(VALENCES)[np.argmax(np.nan_to_num(frac_all), 1)],
    )
    truth = dict(p)
    truth.update(
        valence=valence_truth.astype(np.int8),
        fractions=frac_all,
        has_edge=has_edge,
        l3_true_eV=l3_true,
        l3_eV=l3_true + p["offset_eV"],
        l3_counts=l3_counts,
        dispersion_eV=d,
        scatter_background=bool(scatter_background),
        psf_sigma_channels=float(psf_sigma_channels),
        gain_pattern=truth_pattern,
        dark_level=float(dark_level),
        spike_channels=spikes,
        n_spikes=np.array([0] * n) if not spikes_per_spectrum else counts,
        hot_channels=np.sort(hot),
        poisson=bool(poisson),
    )
    _logger.debug("simulated %d spectra of %d channels", n, m)
    return Acquisition(spectra=out, energy=energy, truth=truth)
