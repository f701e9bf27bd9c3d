"""The demo spectrum image, and noisy spectra on a given energy axis.

:func:`make_demo_spectrum_image` records a scene of three Mn grains, vacuum and a
Mn-free substrate through :func:`~hyperspy_mnvalence.simulations.simulate_acquisition`.
:func:`synthetic_spectra` is the quick path for tests and examples: the same parametric
edge and power-law background, Poisson-sampled on an energy axis the caller chooses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .acquisition import simulate_acquisition
from .edges import L3_POSITIONS_EV, VALENCES, as_fractions, edge_table, peak_heights

__all__ = ["demo_ground_truth", "make_demo_spectrum_image", "synthetic_spectra"]


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
        frac = as_fractions(valence, None)[None, :]
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
    edge = edge_table(energy, frac, offset, resolution_eV)
    expected = cts[:, None] * edge
    if background_ratio > 0:
        l3 = np.array([L3_POSITIONS_EV[v] for v in VALENCES])
        e_l3 = frac @ l3  # true energy of the L3 maximum of the mixture (approx.)
        peak = cts * (frac @ peak_heights(resolution_eV))
        true_e = np.clip(energy[None, :] - offset[:, None], 1.0, None)
        amp = background_ratio * peak * e_l3**background_exponent
        expected = expected + amp[:, None] * true_e ** (-background_exponent)
    out = expected
    if noise:
        gen = np.random.default_rng(rng)
        out = gen.poisson(np.clip(expected, 0, None)).astype(np.float64)
    return out[0] if single else out


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

    The spectra are recorded by :func:`~hyperspy_mnvalence.simulations.simulate_acquisition`
    (the same forward model as training and the robustness suite) with parametric edges.
    Regions (see :func:`demo_ground_truth`): vacuum (a dark level and a few counts of
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
    ny, nx = int(shape[0]), int(shape[1])
    if ny * nx > 4096 * 4096:
        raise ValueError(f"The demo map is limited to 4096 x 4096 pixels, not {ny} x {nx}.")
    truth = demo_ground_truth((ny, nx), seed)
    npix = ny * nx
    offset = np.linspace(drift_eV[0], drift_eV[1], npix)
    frac = truth["fractions"].reshape(3, npix).T
    thick = truth["thickness"].ravel()
    region = truth["region"].ravel()
    mn = thick > 0
    # L3 height relative to the background under it: thickness of Mn over a background
    # that grows with the thickness (the substrate has the full background)
    heights = peak_heights(resolution_eV)
    bg_scale = np.where(mn, 0.5 + 0.5 * thick, 0.0)
    bg_scale[region == 1] = 1.0
    ref_peak = counts * heights.mean()
    l3_ratio = np.zeros(npix)
    l3_ratio[mn] = (counts * thick[mn] * (frac[mn] @ heights)) / (
        background_ratio * ref_peak * bg_scale[mn]
    )
    # background electrons per eV at the L3 maximum (vacuum: about two per channel)
    dose = np.where(bg_scale > 0, background_ratio * ref_peak * bg_scale, 2.0) / dispersion_eV
    fr = np.where(mn[:, None], frac, np.array([0.0, 1.0, 0.0]))
    acq = simulate_acquisition(
        npix,
        fractions=fr,
        l3_over_background=l3_ratio,
        resolution_eV=resolution_eV,
        background_exponent=background_exponent,
        offset_eV=offset,
        dispersion_eV=dispersion_eV,
        energy_range=energy_range,
        dose=dose,
        dark_level=2.0,
        rng=seed + 1,
    )
    s = acq.to_signal((ny, nx), pixel_size_nm=pixel_size_nm)
    s.metadata.General.title = "Synthetic Mn L2,3 spectrum image (Mn2+/Mn3+/Mn4+)"
    s.metadata.set_item("Sample.mn_valence_truth", truth["valence"])
    s.metadata.set_item("Sample.mn_fractions_truth", truth["fractions"])
    s.metadata.set_item("Sample.region_truth", truth["region"])
    s.metadata.set_item("Sample.calibration_offset_eV", offset.reshape(ny, nx))
    if lazy:
        s = s.as_lazy()
    return s
