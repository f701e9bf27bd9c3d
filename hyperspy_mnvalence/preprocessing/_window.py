"""Cutting the model's window around the L3 peak and normalising it."""

from __future__ import annotations

import numpy as np


def extract_window(
    y: np.ndarray,
    start: np.ndarray,
    n_channels: int,
) -> np.ndarray:
    """Cut ``n_channels`` channels from each spectrum from channel ``start`` on.

    Channels outside the data take the nearest edge value.

    Parameters
    ----------
    y : numpy.ndarray
        Shape ``(n, m)``.
    start : numpy.ndarray
        First channel per spectrum (may be negative), shape ``(n,)``.
    n_channels : int
        Window length.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, n_channels)``.
    """
    start = np.asarray(start)
    s0 = int(start[0]) if start.size else 0
    if start.size and 0 <= s0 <= y.shape[1] - n_channels and np.all(start == s0):
        # one start for all rows, inside the data (spectra aligned on their peaks)
        return y[:, s0 : s0 + n_channels].copy()
    idx = np.clip(start[:, None] + np.arange(n_channels)[None, :], 0, y.shape[1] - 1)
    return np.take_along_axis(y, idx, axis=1)


def normalise(x: np.ndarray) -> np.ndarray:
    """Min-max scale each spectrum to [0, 1], then subtract its mean.

    Parameters
    ----------
    x : numpy.ndarray
        Shape ``(n, m)``.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, m)``; constant rows give zeros.
    """
    mn = x.min(axis=1, keepdims=True)
    rng = x.max(axis=1, keepdims=True) - mn
    z = x - mn
    z /= np.where(rng > 0, rng, 1.0)
    z -= z.mean(axis=1, keepdims=True)
    return z.astype(np.float32)
