"""Resampling to the model's uniform grid (one banded linear operator) and BLAS thread control."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from ._params import check_energy


def resampling_matrix(energy: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear operator that resamples spectra from ``energy`` onto ``grid``.

    Linear interpolation; where the input is sampled more finely than the grid, each
    output is the mean of the interpolant at several points spread over one grid step
    (a box average, for anti-aliasing), so noise is averaged rather than picked.
    Both are exact for linear functions. Points outside the input range take the
    edge values.

    Parameters
    ----------
    energy : numpy.ndarray
        Increasing input energies, shape ``(n_in,)``; need not be uniform.
    grid : numpy.ndarray
        Uniform output energies, shape ``(n_out,)``.

    Returns
    -------
    numpy.ndarray
        Matrix ``M`` of shape ``(n_in, n_out)`` such that ``spectra @ M`` resamples.
    """
    energy = np.asarray(energy, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    step = grid[1] - grid[0] if grid.size > 1 else 1.0
    return _matrix(energy, grid, step, _points_per_step(energy, step))


def _points_per_step(energy: np.ndarray, step: float) -> int:
    """Interpolant points averaged per output (1: plain interpolation)."""
    ratio = step / float(np.median(np.diff(energy)))
    return 1 if ratio <= 1.5 else 2 * int(np.ceil(ratio)) + 1


def _matrix(energy: np.ndarray, grid: np.ndarray, step: float, k: int) -> np.ndarray:
    """The dense operator of :func:`resampling_matrix` for ``k`` points per step."""
    n_in = energy.size
    offs = np.linspace(-step / 2, step / 2, k) if k > 1 else np.zeros(1)
    pts = np.clip((grid[:, None] + offs[None, :]).ravel(), energy[0], energy[-1])
    hi = np.clip(np.searchsorted(energy, pts, side="right"), 1, n_in - 1)
    lo = hi - 1
    w_hi = np.clip((pts - energy[lo]) / (energy[hi] - energy[lo]), 0.0, 1.0)
    cols = np.repeat(np.arange(grid.size), k)
    m = np.zeros((n_in, grid.size))
    np.add.at(m, (lo, cols), (1.0 - w_hi) / k)
    np.add.at(m, (hi, cols), w_hi / k)
    return m


def to_uniform_grid(
    spectra: np.ndarray,
    energy: np.ndarray,
    step: float = 0.1,
    energy_range: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample spectra to a uniform grid of ``step`` eV.

    Parameters
    ----------
    spectra : numpy.ndarray
        Shape ``(n, n_channels)``.
    energy : numpy.ndarray
        Monotonic energy axis, shape ``(n_channels,)``, uniform or not.
    step : float
        Output step in eV.
    energy_range : tuple of float, optional
        Limit the output grid to this range (intersected with the data's range).

    Returns
    -------
    resampled : numpy.ndarray
        Shape ``(n, n_out)``: float32 for single-precision (or 8/16-bit integer)
        input, float64 otherwise.
    grid : numpy.ndarray
        The output energies, multiples of ``step``.
    """
    spectra = np.asarray(spectra)
    energy = check_energy(energy, spectra.shape[-1])
    if energy[0] > energy[-1]:
        energy = energy[::-1]
        spectra = spectra[..., ::-1]
    lo, hi = energy[0], energy[-1]
    if energy_range is not None:
        lo, hi = max(lo, energy_range[0]), min(hi, energy_range[1])
    if hi - lo < 10 * step:
        raise ValueError(
            f"Only {hi - lo:.2f} eV of the spectrum lie in the range used to look for the "
            "Mn L2,3 edge; the energy range does not contain it."
        )
    start = np.ceil(lo / step - 1e-6) * step
    grid = start + step * np.arange(int(np.floor((hi - start) / step + 1e-6)) + 1)
    # single precision stays single (half the memory traffic; counts are exact in it)
    dtype = np.float32 if spectra.dtype in SINGLE_DTYPES else np.float64
    blocks = _resampler(energy.tobytes(), grid.tobytes(), np.dtype(dtype).str)
    lead = spectra.shape[:-1]
    x = spectra.reshape(-1, spectra.shape[-1])
    first = 0
    if x.dtype != dtype:  # convert only the channels used
        first, last = blocks[0][2], max(b[3] for b in blocks)
        x = x[:, first:last].astype(dtype)
    out = np.empty((x.shape[0], grid.size), dtype)
    for j0, j1, r0, r1, m in blocks:
        np.matmul(x[:, r0 - first : r1 - first], m, out=out[:, j0:j1])
    return out.reshape(lead + (grid.size,)), grid


#: Input dtypes resampled in single precision.
SINGLE_DTYPES = tuple(
    np.dtype(t) for t in (np.float16, np.float32, np.int8, np.uint8, np.int16, np.uint16)
)


@lru_cache(maxsize=32)
def _resampler(energy_bytes: bytes, grid_bytes: bytes, dtype: str = "<f8") -> tuple:
    """Resampling operator for one (energy axis, grid, dtype), built once, as bands.

    The operator is banded (each output reads a few neighbouring inputs), so it is
    stored as dense blocks: outputs ``j0:j1`` are ``x[:, r0:r1] @ m`` for each
    ``(j0, j1, r0, r1, m)`` returned. Dense products of these narrow bands run several
    times faster than a sparse product and read the input in place. Cached, so
    batches and dask blocks sharing an energy axis (every block of a spectrum image)
    reuse it.
    """
    energy = np.frombuffer(energy_bytes, dtype=np.float64)
    grid = np.frombuffer(grid_bytes, dtype=np.float64)
    # each band of outputs is built from the input channels it reads only (those within
    # half a grid step, and the bracketing ones): no dense operator over all channels,
    # so a 1 M-channel spectrum costs a few MB, not GB
    step = grid[1] - grid[0] if grid.size > 1 else 1.0
    k = _points_per_step(energy, step)
    blocks = []
    for j0 in range(0, grid.size, _BAND):
        j1 = min(j0 + _BAND, grid.size)
        a = max(int(np.searchsorted(energy, grid[j0] - step, side="right")) - 2, 0)
        b = min(int(np.searchsorted(energy, grid[j1 - 1] + step, side="left")) + 2, energy.size)
        if b - a < 2:
            a, b = max(min(a, energy.size - 2), 0), min(max(b, 2), energy.size)
        m = _matrix(energy[a:b], grid[j0:j1], step, k).astype(dtype)
        # points clipped at a sub-range end are clipped at the data's end too: the
        # sub-range reaches a step beyond the band, or ends where the data end
        used = np.nonzero(np.any(m != 0, axis=1))[0]
        r0, r1 = int(used[0]), int(used[-1]) + 1
        blocks.append((j0, j1, a + r0, a + r1, np.ascontiguousarray(m[r0:r1])))
    return tuple(blocks)


_blas_lock = threading.Lock()
_blas_users = [0, None]  # calls inside, their limiter


@lru_cache(maxsize=1)
def _blas_controller(n_modules: int):
    # found again after imports (a BLAS library loaded since would be missed):
    # scanning the loaded libraries costs milliseconds, so not on every call
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _release_blas_control() -> None:
    """Let any thread set OpenBLAS's (process-wide) thread count next.

    threadpoolctl (3.8) lets only the first thread that sets a pthreads OpenBLAS
    limit change it again, until that thread leaves a ``threadpool_limits`` block; a
    limit taken with ``ThreadpoolController.limit`` keeps it for good. A dask worker
    thread that once set the limit then silently kept every other thread from setting
    it (2 BLAS threads in the main thread's compute), and a limit set by one worker
    thread could not be lifted by another (1 thread left after the compute). Our own
    set and restore run under ``_blas_lock``, each with the control released.
    """
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:  # older threadpoolctl: any thread sets the limit
        clear(force=True)


@contextmanager
def single_threaded_blas():
    """One BLAS thread inside the block, then the user's setting again.

    For work that runs preprocessing in several threads or dask workers: the
    resampling's band products are small, so BLAS threads would only spin and take
    the cores from the other batches (classification on 2 cores was about 1.7x
    slower). Concurrent blocks share one limit, lifted when the last one leaves,
    from whichever thread (dask's worker threads included) enters or leaves.
    """
    with _blas_lock:
        if _blas_users[0] == 0:
            _release_blas_control()
            try:
                _blas_users[1] = _blas_controller(len(sys.modules)).limit(limits=1, user_api="blas")
            finally:
                _release_blas_control()
        _blas_users[0] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users[0] -= 1
            if _blas_users[0] == 0:
                _release_blas_control()
                try:
                    _blas_users[1].restore_original_limits()
                finally:
                    _release_blas_control()
                    _blas_users[1] = None


#: Outputs per dense band of the resampling operator (fastest of 32-256 on 2 cores).
_BAND = 32
