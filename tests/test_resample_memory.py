"""Resampling builds its operator from the channels it reads only (issue 15, defect 6)."""

from __future__ import annotations

import tracemalloc

import numpy as np

from hyperspy_mnvalence.preprocessing import resampling_matrix, to_uniform_grid
from hyperspy_mnvalence.preprocessing._resample import _resampler


def test_long_spectrum_resamples_in_small_memory():
    n = 400_000  # 0.001 eV channels over 400 eV
    energy = 450.0 + 0.001 * np.arange(n)
    y = np.sin(energy / 3.0)[None, :]
    _resampler.cache_clear()
    tracemalloc.start()
    out, grid = to_uniform_grid(y, energy, 0.1, (618.0, 680.0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # a dense (n_in x n_out) operator would take 400k x 621 x 8 B = 2 GB
    assert peak < 200e6
    assert grid[0] >= 618.0 and grid[-1] <= 680.0
    # box average of a smooth function: close to the function itself
    assert np.allclose(out[0], np.sin(grid / 3.0), atol=2e-3)


def test_windowed_operator_equals_the_full_one():
    rng = np.random.default_rng(0)
    energy = np.cumsum(rng.uniform(0.02, 0.3, 3000)) + 500.0
    y = rng.normal(size=(4, energy.size))
    _resampler.cache_clear()
    out, grid = to_uniform_grid(y, energy, 0.1, (600.0, 700.0))
    full = y @ resampling_matrix(energy, grid)
    np.testing.assert_allclose(out, full, rtol=1e-10, atol=1e-10)
