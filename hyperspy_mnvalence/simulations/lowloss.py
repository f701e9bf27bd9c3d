"""The low-loss spectrum that goes with a simulated core loss.

:func:`simulate_low_loss` records the zero-loss peak and its plasmon orders with the same
plural-scattering model as :func:`~hyperspy_mnvalence.simulations.simulate_acquisition`
(Poisson sum of Gaussian plasmons of ``plasmon_eV`` and ``plasmon_fwhm_eV``, relative
thickness ``t_over_lambda``; a Gaussian zero-loss peak of ``resolution_eV`` FWHM), each
channel integrating its energy range, so that a Fourier-ratio deconvolution of the core
loss with it recovers the single-scattering edge.
"""

from __future__ import annotations

import numpy as np

from .acquisition import Acquisition, per_spectrum, simulate_acquisition
from .scattering import plural_scattering, scattering_transfer

__all__ = ["low_loss_signal", "simulate_low_loss", "simulate_thick_pair"]


def simulate_low_loss(
    n: int | None = None,
    *,
    t_over_lambda=1.0,
    plasmon_eV=20.0,
    plasmon_fwhm_eV=6.0,
    resolution_eV=0.3,
    dispersion_eV: float = 0.25,
    energy_range: tuple[float, float] = (-20.0, 236.0),
    electrons: float = 1e7,
    poisson: bool = True,
    rng: np.random.Generator | int | None = None,
) -> Acquisition:
    """Low-loss spectra (zero loss and plasmon orders) of given relative thickness.

    Parameters
    ----------
    n : int, optional
        Number of spectra (default: from the per-spectrum arrays, else 1).
    t_over_lambda, plasmon_eV, plasmon_fwhm_eV, resolution_eV : float or array_like
        As in :func:`~hyperspy_mnvalence.simulations.simulate_acquisition` (pass the
        same values per spectrum to pair the two).
    dispersion_eV : float
        Energy per channel (the core loss's, for a Fourier-ratio deconvolution).
    energy_range : tuple of float
        First reported energy and the end of the range.
    electrons : float
        Electrons per spectrum (all orders).
    poisson : bool
        Sample the electrons from the Poisson law.
    rng : numpy.random.Generator or int, optional
        Generator or seed.

    Returns
    -------
    Acquisition
        ``spectra`` (float32 counts), ``energy`` and ``truth`` (the parameters per
        spectrum and ``zero_loss_fraction``, ``exp(-t/lambda)``).

    Examples
    --------
    >>> from hyperspy_mnvalence.simulations.lowloss import simulate_low_loss
    >>> ll = simulate_low_loss(2, t_over_lambda=[0.5, 1.5], rng=0)
    >>> ll.spectra.shape
    (2, 1024)
    """
    scalars = (t_over_lambda, plasmon_eV, plasmon_fwhm_eV, resolution_eV)
    if n is None:
        sizes = [np.size(a) for a in scalars if np.ndim(a) > 0]
        n = max(sizes) if sizes else 1
    n = int(n)
    t = per_spectrum(t_over_lambda, n, "t_over_lambda")
    ep = per_spectrum(plasmon_eV, n, "plasmon_eV")
    ew = per_spectrum(plasmon_fwhm_eV, n, "plasmon_fwhm_eV")
    res = per_spectrum(resolution_eV, n, "resolution_eV")
    if np.any(t < 0) or np.any(res <= 0) or np.any(ep <= 0) or np.any(ew <= 0):
        raise ValueError("t_over_lambda must be >= 0; energies and widths positive.")
    d = float(dispersion_eV)
    e0, e1 = map(float, energy_range)
    m = int(round((e1 - e0) / d))
    energy = e0 + d * np.arange(m)
    # periodic grid long enough that the plasmon orders do not wrap around
    size = 1 << int(np.ceil(np.log2(2 * m)))
    f = np.fft.rfftfreq(size, d=d)[None, :]
    transfer = scattering_transfer(f[0], t, ep, ew, res)
    transfer *= np.sinc(f * d)  # each channel integrates one dispersion step
    # channel k of the output sits at e0 + k d: bring 0 eV to channel -e0 / d
    transfer *= np.exp(-2j * np.pi * f * (-e0))
    y = np.fft.irfft(transfer, n=size, axis=1)[:, :m]
    y = np.clip(y, 0.0, None)
    y *= electrons / y.sum(axis=1, keepdims=True)
    gen = np.random.default_rng(rng)
    if poisson:
        y = gen.poisson(y).astype(np.float64)
    truth = {
        "t_over_lambda": t,
        "plasmon_eV": ep,
        "plasmon_fwhm_eV": ew,
        "resolution_eV": res,
        "zero_loss_fraction": np.exp(-t),
        "dispersion_eV": d,
    }
    return Acquisition(spectra=y.astype(np.float32), energy=energy, truth=truth)


def low_loss_signal(low: Acquisition, navigation_shape: tuple[int, ...] | None = None):
    """Simulated low-loss spectra as an exspy ``EELSSpectrum`` (calibrated energy axis).

    Parameters
    ----------
    low : Acquisition
        Output of :func:`simulate_low_loss`.
    navigation_shape : tuple of int, optional
        Numpy-order navigation shape; default one line of spectra.

    Returns
    -------
    exspy.signals.EELSSpectrum
    """
    from .signal import eels_signal

    return eels_signal(
        low.spectra, low.energy, navigation_shape, "Simulated low loss", low.truth["dispersion_eV"]
    )


def simulate_thick_pair(
    shape: tuple[int, int],
    t_over_lambda: float,
    *,
    dose: float = 2e5,
    l3_over_background: float = 0.15,
    rng: np.random.Generator | int | None = None,
):
    """A core-loss map of one relative thickness and the low loss that goes with it.

    The expected core loss of a thin sample (Mn2+, Mn3+ and Mn4+ parametric edges in
    turn, L3 ``l3_over_background`` above a power-law background, 0.3 eV resolution,
    offsets of +-5 eV, 470-760 eV at 0.25 eV per channel, ``dose`` electrons per eV of
    background at L3) is scattered *as a whole*, background included, by the plasmon
    orders of each pixel's low loss (plasmon 15-25 eV, width 4-10 eV), then Poisson
    sampled: a thick sample of the same material, whose sharp, unscattered part is
    ``exp(-t_over_lambda)`` of the thin one's. Its low loss has the same plasmons, so a
    Fourier-ratio deconvolution recovers the thin spectrum.

    Parameters
    ----------
    shape : tuple of int
        Navigation shape (rows, columns).
    t_over_lambda : float
        Relative thickness of every pixel (0 gives the thin map).
    dose : float
        Electrons per eV of background at the L3 maximum before scattering.
    l3_over_background : float
        L3 height above the background before scattering.
    rng : numpy.random.Generator or int, optional
        Generator or seed of every draw.

    Returns
    -------
    core : EELS_MnValence
        The core-loss map, the truth in ``metadata.Sample``.
    low_loss : exspy.signals.EELSSpectrum
        Its low loss (-20-236 eV, the core loss's dispersion).
    valence : numpy.ndarray
        The true valence per pixel, shape ``shape``.
    """
    n = int(np.prod(shape))
    gen = np.random.default_rng(rng)
    valence = np.resize([2, 3, 4], n)
    plasmon = gen.uniform(15.0, 25.0, n)
    width = gen.uniform(4.0, 10.0, n)
    core = simulate_acquisition(
        n,
        valence=valence,
        resolution_eV=0.3,
        l3_over_background=l3_over_background,
        dose=dose,
        offset_eV=gen.uniform(-5, 5, n),
        energy_range=(470.0, 760.0),
        poisson=False,
        rng=gen,
    )
    d = float(core.truth["dispersion_eV"])
    t = np.full(n, float(t_over_lambda))
    thick = plural_scattering(core.spectra, d, t, plasmon, width)
    core.spectra = gen.poisson(np.clip(thick, 0, None)).astype(np.float32)
    core.truth.update(t_over_lambda=t, plasmon_eV=plasmon, plasmon_fwhm_eV=width)
    ll = simulate_low_loss(
        n,
        t_over_lambda=t,
        plasmon_eV=plasmon,
        plasmon_fwhm_eV=width,
        resolution_eV=0.3,
        dispersion_eV=d,
        rng=gen,
    )
    return core.to_signal(tuple(shape)), low_loss_signal(ll, shape), valence.reshape(shape)
