"""Gaussian smoothing and difference-of-Gaussians filters on rows of spectra."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft, ndimage


def gaussian_smooth(y: np.ndarray, sigma_ch: float) -> np.ndarray:
    return ndimage.gaussian_filter1d(y, sigma_ch, axis=-1, mode="nearest")


def gauss_radius(sigma_ch: float) -> int:
    # scipy.ndimage.gaussian_filter1d's kernel radius for truncate=4
    return int(4.0 * float(sigma_ch) + 0.5)


def gaussian_band(sigma_ch: float, n_out: int) -> np.ndarray:
    """The Gaussian filter of :func:`gaussian_smooth` as a matrix on an unpadded segment.

    Shape ``(n_out + 2 R, n_out)`` (``R`` the kernel radius): ``segment @ band`` is the
    smoothed segment at its channels ``R ... R + n_out - 1``, which read no padding, up
    to rounding.
    """
    r = gauss_radius(sigma_ch)
    x = np.arange(-r, r + 1)
    g = np.exp(-0.5 / (sigma_ch * sigma_ch) * x**2)
    g /= g.sum()
    band = np.zeros((n_out + 2 * r, n_out))
    for j in range(n_out):
        band[j : j + 2 * r + 1, j] = g
    return band


@lru_cache(maxsize=32)
def dog_kernel(step: float) -> tuple[np.ndarray, int]:
    """Kernel of the 0.6 eV - 3 eV difference of Gaussians and its radius.

    The two kernels are those of :func:`scipy.ndimage.gaussian_filter1d` (truncate 4),
    each normalised to sum 1, so filtering with this kernel equals
    ``gaussian_smooth(y, 0.6 / step) - gaussian_smooth(y, 3 / step)`` away from the row ends.
    """
    big = gauss_radius(3.0 / step)
    kernel = np.zeros(2 * big + 1)
    for sigma, sign in ((0.6 / step, 1.0), (3.0 / step, -1.0)):
        r = gauss_radius(sigma)
        x = np.arange(-r, r + 1)
        w = np.exp(-0.5 * (x / sigma) ** 2)
        kernel[big - r : big + r + 1] += sign * w / w.sum()
    return kernel, big


def dog(y: np.ndarray, step: float, i0: int, i1: int) -> np.ndarray:
    """The 0.6 eV - 3 eV difference of Gaussians of each row at channels ``i0:i1``.

    Equals ``(gaussian_smooth(y, 0.6 / step) - gaussian_smooth(y, 3 / step))[:, i0:i1]`` (``"nearest"``
    row ends) up to rounding: the needed segment of each row, extended by the kernel
    radius with its edge values, is convolved by FFT, which costs a fraction of two
    wide direct filters or a dense matrix product.
    """
    r = dog_kernel(float(step))[1]
    # A circular convolution of length n >= the extended segment is exact at the
    # outputs kept (each reads only channels before it, none wrapped around); the
    # segment is read n wide (a slice where it lies inside the rows), so the FFT needs no
    # padded copy.
    n = fft.next_fast_len(i1 - i0 + 2 * r, real=True)
    m = y.shape[1]
    inside = i0 - r >= 0 and i0 - r + n <= m
    if inside:
        seg = y[:, i0 - r : i0 - r + n]  # inside the rows: a view, nothing gathered
    elif i0 - r >= 0 and m > i0 - r:
        # past the rows' end: the last value repeated (a copy and a fill, no gather)
        seg = np.empty((y.shape[0], n), dtype=y.dtype)
        k = m - (i0 - r)
        seg[:, :k] = y[:, i0 - r :]
        seg[:, k:] = y[:, -1:]
    else:
        seg = y[:, np.clip(np.arange(i0 - r, i0 - r + n), 0, m - 1)]
    # the transforms may work in place on what is ours (the gathered copy, the spectrum)
    spec = fft.rfft(seg, n, axis=1, overwrite_x=not inside)
    spec *= _kernel_spectrum(float(step), n, spec.dtype.str)  # single stays single
    return fft.irfft(spec, n, axis=1, overwrite_x=True)[:, 2 * r : 2 * r + (i1 - i0)]


@lru_cache(maxsize=32)
def _kernel_spectrum(step: float, n: int, dtype: str) -> np.ndarray:
    """The difference-of-Gaussians kernel's transform at FFT length ``n``."""
    out = fft.rfft(dog_kernel(step)[0], n).astype(dtype)
    out.setflags(write=False)  # shared by every call
    return out


def gaussian_smooth_at(
    y: np.ndarray, local_idx: np.ndarray, first: np.ndarray, width: int, sigma_ch: float
) -> np.ndarray:
    """``gaussian_smooth(y, sigma_ch)`` evaluated only near a few channels of each row.

    Gathers channels ``first - R ... first + width + R`` of each row (clipped to the
    row, which is exactly the ``"nearest"`` extension), filters that short segment,
    and returns its values at ``local_idx`` (indices relative to ``first``). Every
    returned value equals the full-row filter's value at that channel, as long as the
    channel itself is inside the row.
    """
    r = gauss_radius(sigma_ch)
    pos = np.clip(first[:, None] + np.arange(-r, width + r)[None, :], 0, y.shape[1] - 1)
    seg = gaussian_smooth(np.take_along_axis(y, pos, axis=1), sigma_ch)
    return np.take_along_axis(seg, local_idx + r, axis=1)
