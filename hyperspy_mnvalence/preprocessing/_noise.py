"""Noise of each spectrum."""

from __future__ import annotations

import numpy as np


def channel_noise(spectra: np.ndarray, max_differences: int = 512) -> np.ndarray:
    """Noise per channel of each spectrum, from channel-to-channel differences.

    Median absolute deviation of the first differences, divided by sqrt(2): robust to
    edges and smooth backgrounds. Use it on the raw (not interpolated) channels. For
    sparse counts (mostly zeros, where the MAD collapses to 0) it is floored at
    the standard deviation of the differences, so vacuum pixels are not taken for edges.
    Long spectra use every k-th difference only, at most ``max_differences`` of them
    (the same estimate from a sample; a fraction of the work).

    Parameters
    ----------
    spectra : numpy.ndarray
        Shape ``(n, m)``.
    max_differences : int
        Most differences used per spectrum.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``.
    """
    m = spectra.shape[1]
    k = max(1, -(-(m - 1) // max_differences))  # every k-th difference
    hi, lo = spectra[:, 1::k], spectra[:, : m - 1 : k]
    if spectra.dtype not in (np.float32, np.float64):
        # integer counts (unsigned differences would wrap) and float16 (too coarse)
        hi, lo = hi.astype(np.float64), lo.astype(np.float64)
    d = hi - lo
    floor = d.std(axis=1)
    d -= row_median(d)[:, None]
    np.abs(d, out=d)
    mad = row_median(d)
    return np.maximum(1.4826 * mad, floor) / np.sqrt(2)


def row_median(a: np.ndarray) -> np.ndarray:
    """Median of each row, as ``np.median(a, axis=1)`` for finite values; reorders ``a``.

    One in-place partition at the upper middle; for an even length the lower middle
    is the largest value left of it.
    """
    k = a.shape[1]
    h = k // 2
    a.partition(h, axis=1)
    upper = a[:, h]
    if k % 2:
        return upper.copy()
    return (a[:, :h].max(axis=1) + upper) / 2


def smoothed_noise(spectra: np.ndarray, energy: np.ndarray, sigma_eV: float = 0.3) -> np.ndarray:
    """Noise of each spectrum after Gaussian smoothing by ``sigma_eV``.

    Parameters
    ----------
    spectra : numpy.ndarray
        Raw spectra, shape ``(n, m)``.
    energy : numpy.ndarray
        Their energy axis, shape ``(m,)``.
    sigma_eV : float
        Smoothing width.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``.
    """
    disp = float(np.median(np.abs(np.diff(energy))))
    s_ch = max(sigma_eV / disp, 0.5)
    return channel_noise(spectra) / np.sqrt(max(2 * np.sqrt(np.pi) * s_ch, 1.0))
