"""Unit tests of the preprocessing chain on small synthetic spectra."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence import preprocessing as P
from hyperspy_mnvalence.decisions import noise_lag, raw_channel_noise


def test_resampling_matrix_reproduces_linear_functions_and_averages_fine_data():
    e = np.arange(600.0, 700.0, 0.05)
    grid = np.arange(610.0, 690.0, 0.1)
    m = P.resampling_matrix(e, grid)
    # a linear function is reproduced exactly
    np.testing.assert_allclose((2 * e + 3) @ m, 2 * grid + 3, rtol=0, atol=1e-9)
    # each output is a convex combination of inputs
    np.testing.assert_allclose(m.sum(0), 1.0, atol=1e-12)
    # finer input than the grid: more than two inputs contribute (box average)
    assert np.all((m > 0).sum(0) >= 2)


def test_to_uniform_grid_accepts_non_uniform_and_decreasing_axes():
    rng = np.random.default_rng(1)
    e = np.sort(600 + 80 * rng.random(500))
    y = np.sin(e / 5.0)
    out, grid = P.to_uniform_grid(y[None], e, 0.1)
    np.testing.assert_allclose(np.diff(grid), 0.1, atol=1e-9)
    np.testing.assert_allclose(out[0], np.sin(grid / 5.0), atol=5e-3)
    out2, grid2 = P.to_uniform_grid(y[None, ::-1], e[::-1], 0.1)
    np.testing.assert_allclose(out2, out)


def test_non_monotonic_axis_is_a_clear_error():
    e = np.array([600.0, 601.0, 600.5, 602.0])
    with pytest.raises(ValueError, match="not monotonic"):
        P.preprocess(np.ones(4), e)


@pytest.mark.parametrize("l3", [626.0, 640.0, 655.0, 660.0])
@pytest.mark.parametrize("dispersion", [0.05, 0.1, 0.25, 0.5])
def test_l3_found_anywhere_under_power_law_background(l3, dispersion, toy_edge):
    e = np.arange(560.0, 720.0, dispersion)
    bg = 50.0 * (e / 560.0) ** -3.5
    y = toy_edge(e, l3) + bg
    out = P.preprocess(y, e)
    assert out.valid[0]
    assert abs(out.peak_eV[0] - l3) <= max(0.15, dispersion)


def test_power_law_background_is_removed(toy_edge):
    e = np.arange(580.0, 700.0, 0.1)
    bg = 40.0 * (e / 580.0) ** -4.0
    y = (toy_edge(e, 640.0) + bg)[None]
    y_u, grid = P.to_uniform_grid(y, e)
    peak = P.locate_l3(y_u, grid)
    sub = P.subtract_background(y_u, grid, peak)
    pre = (grid > 620) & (grid < 636)
    # the pre-edge is flat at zero after subtraction (to 1 % of the edge height)
    assert np.abs(sub[0, pre]).max() < 0.01 * toy_edge(e, 640).max()


def test_background_subtracted_input_falls_back_to_constant(toy_edge):
    rng = np.random.default_rng(0)
    e = np.arange(632.0, 662.0, 0.2)
    y = toy_edge(e, 640.5) + rng.normal(0, 0.003, e.size)  # pre-edge around zero
    out = P.preprocess(y, e)
    assert out.valid[0]
    assert abs(out.peak_eV[0] - 640.5) < 0.25


def test_window_is_aligned_and_normalised_whatever_the_offset(toy_edge):
    e = np.arange(580.0, 720.0, 0.1)
    xs = [P.preprocess(toy_edge(e, 632.0 + d) + 5 * (e / 580) ** -3, e).x[0] for d in (0, 7.3, 21)]
    for x in xs:
        assert x.shape == (300,)
        assert x.dtype == np.float32
        assert abs(float(x.mean())) < 1e-6
        assert np.isclose(float(x.max() - x.min()), 1.0, atol=1e-6)
        assert int(np.argmax(x)) == 100  # L3 peak at -10 eV from the window start
    np.testing.assert_allclose(xs[0], xs[1], atol=0.03)
    np.testing.assert_allclose(xs[0], xs[2], atol=0.03)


def test_bad_pixels_are_flagged_not_crashed_on(toy_edge):
    e = np.arange(600.0, 700.0, 0.2)
    good = toy_edge(e, 641.0) * 1000 + 2000 * (e / 600) ** -3
    rng = np.random.default_rng(3)
    noise_only = rng.poisson(2000 * (e / 600) ** -3).astype(float)
    nan = good.copy()
    nan[205] = np.nan  # 641 eV: at the L3 peak
    inf = good.copy()
    inf[150] = np.inf  # 630 eV: in the pre-edge fit
    data = np.stack([good, nan, inf, np.zeros_like(e), -good, noise_only])
    out = P.preprocess(data, e)
    assert out.valid.tolist() == [True, False, False, False, False, False]
    assert out.reason.tolist()[:4] == [0, 1, 1, 2]
    assert np.all(out.reason[4:] == 3)
    assert np.all(np.isnan(out.peak_eV[1:]))
    assert np.all(out.x[1:] == 0)


def test_noise_only_spectra_are_not_taken_for_edges():
    rng = np.random.default_rng(7)
    e = np.arange(550.0, 750.0, 0.25)
    for counts in (20.0, 1e3, 1e5):
        x = rng.poisson(np.tile(counts * (e / 550) ** -3, (300, 1))).astype(float)
        assert P.preprocess(x, e).valid.sum() == 0


def test_energy_range_without_mn_edge_is_a_clear_error():
    e = np.arange(100.0, 400.0, 0.5)
    with pytest.raises(ValueError, match="does not contain"):
        P.preprocess(np.ones((2, e.size)) + e, e)


def test_center_offset_shifts_the_window(toy_edge):
    e = np.arange(600.0, 700.0, 0.1)
    y = toy_edge(e, 640.0)
    a = P.preprocess(y, e).x[0]
    b = P.preprocess(y, e, center_offset_eV=2.0).x[0]
    assert int(np.argmax(a)) - int(np.argmax(b)) == 20


def test_sparse_vacuum_counts_are_not_taken_for_edges():
    """Vacuum with ~0.1-2 counts per channel: the MAD of differences collapses to 0."""
    rng = np.random.default_rng(11)
    e = np.arange(580.0, 720.0, 0.25)
    for lam in (0.1, 0.5, 2.0):
        x = rng.poisson(lam, (2000, e.size)).astype(float)
        assert P.preprocess(x, e).valid.mean() <= 0.005, lam


def _chain_by_whole_rows(spectra, e, center_offset_eV=0.0):
    """The preprocessing chain written with the public functions on whole rows."""
    p = P.DEFAULT_PREPROCESSING
    step = p["energy_step_eV"]
    y, grid = P.to_uniform_grid(spectra, e, step, (599.0, 694.0))
    peak = P.locate_l3(y, grid)
    sub = P.subtract_background(np.asarray(y, np.float64), grid, peak)
    e_in = e[(e >= grid[0]) & (e <= grid[-1])]
    raw = spectra[:, (e >= grid[0]) & (e <= grid[-1])]
    # the calibrated decision (issue 14): noise at the tested scale, pooled over the
    # batch with the raw channels' noise; no peaks at the ends of the search range
    ok = P.edge_present(
        sub,
        grid,
        peak,
        lag_eV=noise_lag(float(np.median(np.diff(e_in)))),
        raw_noise=raw_channel_noise(raw),
        search_range=tuple(p["search_range_eV"]),
    )
    start = peak + int(round((p["window_eV"][0] + center_offset_eV) / step))
    x = P.normalise(P.extract_window(sub, start, 300))
    return x, ok, grid[peak]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("center_offset_eV", [0.0, -6.0, 6.0])
def test_preprocess_equals_the_whole_row_chain(dtype, center_offset_eV, toy_edge):
    """preprocess works on per-row segments and aligned slices; the numbers must be
    those of the plain chain on whole rows, for L3 peaks anywhere in the search range
    (near the grid ends too, where rows are clipped), noisy or noise-free."""
    rng = np.random.default_rng(3)
    e = np.arange(605.0, 690.0, 0.05)  # rows with L3 below 624 or above 666 eV are clipped
    l3 = np.r_[rng.uniform(620.0, 670.0, 40), 619.0, 671.5]
    bg = 5.0 * (e / 605.0) ** -3.0
    clean = np.stack([toy_edge(e, c) for c in l3]) + bg
    noisy = rng.poisson(2000 * clean) / 2000.0
    spectra = np.concatenate([clean, noisy, np.zeros((1, e.size))]).astype(dtype)
    out = P.preprocess(spectra, e, center_offset_eV=center_offset_eV)
    x, ok, peak_eV = _chain_by_whole_rows(spectra, e, center_offset_eV)
    ok[-1] = False  # the all-zero row: reason 2 in preprocess
    np.testing.assert_array_equal(out.valid, ok)
    assert out.valid.sum() >= 80
    np.testing.assert_array_equal(out.peak_eV[ok], peak_eV[ok])
    np.testing.assert_allclose(out.x[ok], x[ok], rtol=0, atol=2e-6)
    # single precision in, single precision resampled
    assert P.to_uniform_grid(spectra[:2], e)[0].dtype == dtype


def test_long_spectra_noise_from_a_sample_of_differences():
    rng = np.random.default_rng(0)
    for m in (300, 4000):
        y = 100.0 + 0.01 * np.arange(m) + rng.normal(0.0, 3.0, (200, m))
        est = P.channel_noise(y)
        assert abs(np.median(est) / 3.0 - 1) < 0.05, (m, np.median(est))


def test_single_threaded_blas_restores_the_users_setting():
    from threadpoolctl import threadpool_info

    before = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    with P.single_threaded_blas():
        with P.single_threaded_blas():  # nested / concurrent callers share the limit
            inside = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
        still = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    after = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    assert all(n == 1 for n in inside) and all(n == 1 for n in still)
    assert after == before


@pytest.mark.parametrize("perturbed", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l3_refinement_equals_the_smoothed_rows_maximum(dtype, perturbed, monkeypatch):
    # the refinement reads the 0.3 eV-smoothed spectrum within +-1.5 eV of the coarse
    # position, detrended: computed by a product for rows away from the ends, it must pick
    # what smoothing the whole row picks, flat (saturated) tops and near-ties included.
    # "perturbed": the product's weights off by 1e-9 (another BLAS's rounding, much
    # exaggerated), which the near-tie check must absorb (a constant row ties everywhere)
    from hyperspy_mnvalence.preprocessing import _l3
    from hyperspy_mnvalence.preprocessing._filters import dog, gaussian_smooth

    if perturbed:
        exact = _l3._smoothing_matrix.__wrapped__
        wobble = np.random.default_rng(0).uniform(-1e-9, 1e-9, exact(0.1, 15).shape)
        monkeypatch.setattr(_l3, "_smoothing_matrix", lambda step, r: exact(step, r) + wobble)

    rng = np.random.default_rng(8)
    grid = 600.0 + 0.1 * np.arange(800)
    centre = rng.uniform(625, 665, 300)
    y = 1e4 * (grid / 600.0) ** -3 + 800 * np.exp(-0.5 * ((grid - centre[:, None]) / 0.7) ** 2)
    y = rng.poisson(y).astype(float)
    y[:40] = np.minimum(y[:40], np.percentile(y[:40], 99.5, axis=1, keepdims=True))  # flat tops
    y[40:60] = np.round(y[40:60] / 500) * 500  # coarse integers: many exact ties
    y[60] = 3.0
    y[61, :300] = 0.0  # the coarse maximum near the row's start
    y = y.astype(dtype)
    peak = P.locate_l3(y, grid, (618.0, 672.0))
    i0, i1 = int(np.searchsorted(grid, 618.0)), int(np.searchsorted(grid, 672.0, "right"))
    coarse = i0 + np.argmax(dog(y, 0.1, i0, i1), axis=1)
    s = gaussian_smooth(y, 3.0)
    r = 15
    for k in range(y.shape[0]):
        idx = np.clip(coarse[k] + np.arange(-r, r + 1), 0, grid.size - 1)
        seg = s[k, idx]
        t = np.arange(2 * r + 1) / (2 * r)
        seg = seg - (seg[0] * (1 - t) + seg[-1] * t)
        assert peak[k] == idx[np.argmax(seg)], k


def test_a_bad_channel_outside_what_a_spectrum_reads_is_bridged(toy_edge):
    e = np.arange(600.0, 700.0, 0.2)
    good = toy_edge(e, 641.0) * 1000 + 2000 * (e / 600) ** -3
    rows = np.stack([good] * 4)
    rows[1, 10] = np.nan  # 602 eV: below the pre-edge fit
    rows[2, 400] = np.inf  # 680 eV: past the edge tests
    rows[3, 300:305] = -np.inf  # 660-661 eV: in the edge tests
    out = P.preprocess(rows, e)
    assert out.valid.tolist() == [True, True, True, False]
    assert out.reason.tolist() == [0, 0, 0, 1]
    np.testing.assert_array_equal(out.x[1], out.x[0])
    np.testing.assert_array_equal(out.x[2], out.x[0])
    assert np.all(np.isfinite(rows[0]))  # the input is not changed
    assert np.isnan(rows[1, 10])
