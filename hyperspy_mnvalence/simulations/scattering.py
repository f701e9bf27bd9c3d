"""Plural scattering and instrument resolution: the one convolution the simulator and
the training augmentations share.

A spectrum recorded through a sample of relative thickness ``t`` (t/lambda) is its
single-scattering spectrum convolved with the Poisson sum of plasmon orders,
``sum_k exp(-t) t**k / k! P**k`` (``P`` a Gaussian plasmon of ``plasmon_eV`` and
``plasmon_fwhm_eV``), i.e. the transfer function ``exp(t (P(f) - 1))``, then with the
zero-loss shape (a Gaussian of ``resolution_eV`` FWHM). Plasmon orders only move
intensity *up* in energy, so what enters the first channels comes from energies below
the spectrum: the spectrum is padded below with its first value over the reach of every
order that carries weight (the Poisson tail beyond it below 1e-6), so that nothing
wraps around from the high-energy end of the periodic grid.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["plural_scattering", "scattering_reach_eV", "scattering_transfer"]

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))

#: Weight of the plasmon orders left out of the padding (Poisson tail).
_TAIL = 1e-6


def scattering_reach_eV(
    t_over_lambda: np.ndarray, plasmon_eV: np.ndarray, plasmon_fwhm_eV: np.ndarray
) -> float:
    """Energy up to which plural scattering moves intensity (all orders but a 1e-6 tail).

    Parameters
    ----------
    t_over_lambda, plasmon_eV, plasmon_fwhm_eV : numpy.ndarray
        Per-spectrum thickness and plasmon energy and width (eV).

    Returns
    -------
    float
        The largest shift, in eV, over the spectra.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_mnvalence.simulations.scattering import scattering_reach_eV
    >>> bool(200 < scattering_reach_eV(np.array([1.5]), np.array([20.0]), np.array([6.0])) < 300)
    True
    """
    t = np.asarray(t_over_lambda, dtype=np.float64)
    if t.size == 0 or not np.any(t > 0):
        return 0.0
    k = stats.poisson.isf(_TAIL, t.max())  # orders that carry weight
    sigma = float(np.max(plasmon_fwhm_eV)) * _FWHM_TO_SIGMA
    return float(k * np.max(plasmon_eV) + 5.0 * sigma * np.sqrt(max(k, 1.0)))


def plural_scattering(
    y: np.ndarray,
    step: float,
    t_over_lambda,
    plasmon_eV,
    plasmon_fwhm_eV,
    resolution_eV=0.0,
) -> np.ndarray:
    """Convolve spectra with the plasmon orders of their thickness and a resolution.

    Parameters
    ----------
    y : numpy.ndarray
        Spectra on a uniform axis, shape ``(n, m)``.
    step : float
        Energy per channel (eV).
    t_over_lambda, plasmon_eV, plasmon_fwhm_eV, resolution_eV : float or array_like
        Per spectrum (scalars or shape ``(n,)``): relative thickness (0 for none),
        plasmon energy and FWHM, and the FWHM of the Gaussian resolution (0 for none).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, m)``, float64; ``y`` itself where there is nothing to do.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_mnvalence.simulations.scattering import plural_scattering
    >>> y = np.zeros((1, 2000)); y[0, 100] = 1.0  # a line 10 eV into a 0.1 eV axis
    >>> out = plural_scattering(y, 0.1, 1.0, 20.0, 4.0)
    >>> round(float(out[0, 100]), 3), round(float(out.sum()), 3)  # exp(-1) stays put
    (0.368, 1.0)
    """
    y = np.asarray(y, dtype=np.float64)
    n, m = y.shape

    def per(v):
        return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))

    t, ep, ew, blur = per(t_over_lambda), per(plasmon_eV), per(plasmon_fwhm_eV), per(resolution_eV)
    if not (np.any(t > 0) or np.any(blur > 0)):
        return y
    blur_reach = 5.0 * float(blur.max()) * _FWHM_TO_SIGMA
    left = int(np.ceil((scattering_reach_eV(t, ep, ew) + blur_reach) / step)) + 2
    right = int(np.ceil(blur_reach / step)) + 2
    size = 1 << int(np.ceil(np.log2(m + left + right)))
    yp = np.pad(y, ((0, 0), (left, size - m - left)), mode="edge")
    transfer = scattering_transfer(np.fft.rfftfreq(size, d=step), t, ep, ew, blur)
    out = np.fft.irfft(np.fft.rfft(yp, axis=1) * transfer, n=size, axis=1)
    return out[:, left : left + m]


def scattering_transfer(
    f: np.ndarray,
    t_over_lambda: np.ndarray,
    plasmon_eV: np.ndarray,
    plasmon_fwhm_eV: np.ndarray,
    resolution_eV: np.ndarray,
) -> np.ndarray:
    """Fourier transform of the low loss: plasmon orders times the zero-loss shape.

    ``exp(t (P(f) - 1))`` (``P`` a Gaussian plasmon) times a Gaussian resolution, per
    spectrum, at frequencies ``f`` (cycles per eV). The one formula of
    :func:`plural_scattering` and of the low-loss simulator.

    Parameters
    ----------
    f : numpy.ndarray
        Frequencies, shape ``(k,)``.
    t_over_lambda, plasmon_eV, plasmon_fwhm_eV, resolution_eV : numpy.ndarray
        Per spectrum, shape ``(n,)`` (FWHM in eV; 0 for no resolution).

    Returns
    -------
    numpy.ndarray
        Complex, shape ``(n, k)``.
    """
    f = np.asarray(f, dtype=np.float64)
    t = np.asarray(t_over_lambda, dtype=np.float64)[:, None]
    sig = np.asarray(plasmon_fwhm_eV, dtype=np.float64) * _FWHM_TO_SIGMA
    # Where the plasmon's Gaussian factor has fallen below 1e-18, exp(t (P - 1)) equals
    # exp(-t) to double precision: the complex exponentials are needed below that
    # frequency only (a few per cent of a fine axis)
    f_cut = np.sqrt(np.log(1e18) / 2.0) / (np.pi * max(float(sig.min(initial=np.inf)), 1e-300))
    k = int(np.searchsorted(np.abs(f), f_cut, side="right")) if np.all(np.diff(f) >= 0) else f.size
    low = f[None, :k]
    plasmon = np.exp(-2j * np.pi * low * np.asarray(plasmon_eV, dtype=np.float64)[:, None])
    plasmon *= np.exp(-2.0 * (np.pi * low * sig[:, None]) ** 2)
    transfer = np.empty((t.shape[0], f.size), dtype=np.complex128)
    transfer[:, :k] = np.exp(t * (plasmon - 1.0))
    transfer[:, k:] = np.exp(-t)
    res = (np.asarray(resolution_eV, dtype=np.float64) * _FWHM_TO_SIGMA)[:, None]
    return transfer * np.exp(-2.0 * (np.pi * f[None, :] * res) ** 2)
