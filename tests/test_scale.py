"""Large-data paths: lazy (dask) and distributed classification equal the eager one.

Small synthetic maps only (a few hundred pixels). The model is the shipped classifier;
``MNVALENCE_TEST_MODEL`` may point at another model file with the same contract.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
exspy = pytest.importorskip("exspy")

from hyperspy_mnvalence.blocks import navigation_chunks  # noqa: E402
from hyperspy_mnvalence.classification import (  # noqa: E402
    classify_mn_valence,
    classify_spectra,
)
from hyperspy_mnvalence.model import default_model_path, load_model  # noqa: E402

NAV = (12, 17)  # (rows, columns) of the synthetic map: 204 pixels


@pytest.fixture(scope="module")
def model_path() -> str:
    path = os.environ.get("MNVALENCE_TEST_MODEL") or str(default_model_path())
    if not os.path.isfile(path):
        pytest.skip(
            f"model file {path} not found: the shipped model has not been built yet "
            "(set MNVALENCE_TEST_MODEL to a model file to run these tests)"
        )
    return path


def _spectra(n: int, energy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Varied spectra: Mn edges at random valence, calibration offset and dose, plus
    pixels without an edge (power law only), a NaN pixel and an all-zero pixel."""
    try:
        from hyperspy_mnvalence.synthetic import synthetic_spectra
    except ImportError:  # pragma: no cover - the synthetic module ships with the package
        synthetic_spectra = None
    if synthetic_spectra is not None:
        s = synthetic_spectra(
            energy,
            fractions=rng.dirichlet([0.7, 0.7, 0.7], size=n),
            counts=10 ** rng.uniform(1.3, 3.0, size=n),
            offset_eV=rng.uniform(-6.0, 6.0, size=n),
            rng=rng,
        )
    else:  # pragma: no cover
        g = np.exp(-0.5 * ((energy[None, :] - 640.0 - rng.uniform(-6, 6, (n, 1))) / 1.0) ** 2)
        s = rng.poisson(1e3 * (energy / 600.0) ** -3 + 300 * g).astype(float)
    s = np.asarray(s, dtype=np.float64)
    no_edge = rng.random(n) < 0.2
    s[no_edge] = rng.poisson(2e3 * (energy / 600.0) ** -3.0, size=(int(no_edge.sum()), energy.size))
    s[3, 100] = np.nan
    s[5] = 0.0
    return s.astype(np.float32)


@pytest.fixture(scope="module")
def spectrum_image():
    rng = np.random.default_rng(42)
    energy = 590.0 + 0.1 * np.arange(700)
    data = _spectra(NAV[0] * NAV[1], energy, rng).reshape(NAV + (energy.size,))
    s = exspy.signals.EELSSpectrum(data)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = 590.0, 0.1, "eV"
    return s


@pytest.fixture(scope="module")
def eager_result(spectrum_image, model_path):
    return classify_mn_valence(spectrum_image, model=model_path, show_progressbar=False)


def _assert_same(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=0, atol=atol, equal_nan=True)


def _lazy(s, chunks):
    lz = s.as_lazy()
    lz.data = lz.data.rechunk(chunks)
    return lz


def test_map_has_valid_and_invalid_pixels(eager_result):
    # guards the comparisons below against a trivially all-NaN (or all-valid) result
    valid = np.isfinite(eager_result.data[0])
    assert 0.3 * valid.size < valid.sum() < valid.size


def test_threads_and_batches_do_not_change_results(spectrum_image, model_path):
    flat = spectrum_image.data.reshape(-1, spectrum_image.data.shape[-1])
    energy = spectrum_image.axes_manager.signal_axes[0].axis
    one = classify_spectra(flat, energy, model=model_path, batch_size=10_000, n_threads=1)
    many = classify_spectra(flat, energy, model=model_path, batch_size=37, n_threads=3)
    _assert_same(one, many)


def test_lazy_equals_eager_and_stays_lazy(spectrum_image, eager_result, model_path):
    lz = _lazy(spectrum_image, (5, 7, -1))
    p = classify_mn_valence(lz, model=model_path, show_progressbar=False)
    assert p._lazy
    assert isinstance(p.data, da.Array)
    reason = p.metadata.MnValence.reason
    assert reason._lazy
    _assert_same(p.data.compute(), eager_result.data)
    _assert_same(reason.data.compute(), eager_result.metadata.MnValence.reason.data)
    _assert_same(
        p.metadata.MnValence.l3_peak_eV.data.compute(),
        eager_result.metadata.MnValence.l3_peak_eV.data,
    )


def test_lazy_graph_one_task_per_navigation_chunk(spectrum_image, model_path):
    lz = _lazy(spectrum_image, (5, 7, -1))
    n_chunks = int(np.prod(lz.data.numblocks[:-1]))
    assert n_chunks > 1
    p = classify_mn_valence(lz, model=model_path, show_progressbar=False)
    graph = dict(p.data.__dask_graph__())
    kernel = [k for k in graph if isinstance(k, tuple) and str(k[0]).startswith("mn-valence-")]
    assert len(kernel) == n_chunks
    # the result keeps the input's navigation chunks: nothing was gathered whole
    assert p.data.chunks[1:] == lz.data.chunks[:-1]


def test_signal_axis_split_input_equals_eager(spectrum_image, eager_result, model_path):
    lz = _lazy(spectrum_image, (6, 5, 100))  # the energy axis split in 7 chunks
    p = classify_mn_valence(lz, model=model_path, show_progressbar=False)
    assert p._lazy
    assert p.data.shape == (3,) + NAV
    _assert_same(p.data.compute(), eager_result.data)


def test_navigation_chunks_bounded():
    x = da.zeros((300, 200, 1024), dtype=np.float32, chunks=(300, 200, 256))
    y = navigation_chunks(x, block_spectra=4096, block_bytes=64 * 2**20)
    assert y.chunks[-1] == (1024,)
    biggest = max(y.chunks[0]) * max(y.chunks[1])
    assert biggest <= 4096
    assert y.numblocks[0] * y.numblocks[1] > 1
    # already good chunks are kept as they are
    z = da.zeros((64, 64, 1024), dtype=np.float32, chunks=(32, 64, 1024))
    assert navigation_chunks(z) is z


@pytest.mark.parametrize("lazy", [False, True])
def test_crop_equals_same_pixels_of_full_result(spectrum_image, eager_result, model_path, lazy):
    s = _lazy(spectrum_image, (4, 9, -1)) if lazy else spectrum_image
    crop = s.inav[3:11, 2:9]  # x (columns) 3:11, y (rows) 2:9
    p = classify_mn_valence(crop, model=model_path, show_progressbar=False)
    got = p.data.compute() if lazy else p.data
    _assert_same(got, eager_result.data[:, 2:9, 3:11])


@pytest.fixture
def classified(monkeypatch) -> list:
    """The number of spectra of each classify_spectra call, from an empty block cache."""
    from hyperspy_mnvalence import classification

    seen = []
    real = classification.classify_spectra

    def counting(x, *args, **kwargs):
        seen.append(x.size // x.shape[-1])
        return real(x, *args, **kwargs)

    monkeypatch.setattr(classification, "classify_spectra", counting)
    monkeypatch.setattr(classification, "_BLOCK_CACHE", type(classification._BLOCK_CACHE)())
    return seen


def test_lazy_maps_and_save_classify_each_spectrum_once(
    spectrum_image, eager_result, model_path, tmp_path, classified
):
    import hyperspy.api as hs

    from hyperspy_mnvalence import most_likely_valence, valence_maps

    p = classify_mn_valence(_lazy(spectrum_image, (6, 9, -1)), model=model_path)
    # the probabilities, spread, L3 peak and reason are saved from one classification
    p.save(tmp_path / "p.hspy")
    assert sum(classified) == NAV[0] * NAV[1]
    saved = hs.load(tmp_path / "p.hspy")
    _assert_same(saved.data, eager_result.data)
    _assert_same(
        saved.metadata.MnValence.l3_peak_eV.data, eager_result.metadata.MnValence.l3_peak_eV.data
    )
    # derived maps of a lazy 2D result (a lookup dask cannot do by fancy indexing)
    ml = most_likely_valence(p)
    assert ml._lazy
    _assert_same(ml.data.compute(), most_likely_valence(eager_result).data)
    assert valence_maps(p)["spread"].data.shape == (3,) + NAV
    assert sum(classified) == NAV[0] * NAV[1]  # still nothing classified twice


def test_compute_result_of_a_crop_computes_only_its_pixels(
    spectrum_image, eager_result, model_path, classified
):
    from hyperspy_mnvalence import compute_result

    p = classify_mn_valence(_lazy(spectrum_image, (6, 9, -1)), model=model_path)
    crop = p.isig[0:9, 0:6]  # exactly the first navigation block
    compute_result(crop, show_progressbar=False)
    assert sum(classified) == 6 * 9
    _assert_same(crop.data, eager_result.data[:, 0:6, 0:9])
    peak = crop.metadata.MnValence.l3_peak_eV
    assert not peak._lazy
    _assert_same(peak.data, eager_result.metadata.MnValence.l3_peak_eV.data[0:6, 0:9])
    # an eager result whose maps are still lazy (p.compute() alone) gets them computed
    q = classify_mn_valence(_lazy(spectrum_image, (6, 9, -1)), model=model_path)
    q.compute()
    assert q.metadata.MnValence.reason._lazy
    compute_result(q, show_progressbar=False)
    assert not q.metadata.MnValence.reason._lazy
    # a row cut with an integer index: the maps are cut with it (by index)
    row = classify_mn_valence(_lazy(spectrum_image, (6, 9, -1)), model=model_path).isig[:, 4]
    compute_result(row, show_progressbar=False)
    _assert_same(row.data, eager_result.data[:, 4, :])
    _assert_same(
        row.metadata.MnValence.l3_peak_eV.data, eager_result.metadata.MnValence.l3_peak_eV.data[4]
    )


def test_lazy_result_with_nothing_classified_warns_when_computed(spectrum_image, model_path):
    from hyperspy_mnvalence import compute_result

    zeros = spectrum_image.deepcopy()
    zeros.data[:] = 0
    p = classify_mn_valence(_lazy(zeros, (6, 9, -1)), model=model_path)
    with pytest.warns(UserWarning, match=r"No spectrum was classified \(all zero"):
        compute_result(p, show_progressbar=False)


def test_maps_of_a_sliced_result_are_sliced_too(eager_result):
    from hyperspy_mnvalence import valence_maps

    crop = eager_result.isig[3:11:2, 2:9]  # x (columns) 3:11 every 2nd, y (rows) 2:9
    maps = valence_maps(crop)
    full = eager_result.metadata.MnValence
    _assert_same(maps["l3_peak_eV"].data, full.l3_peak_eV.data[2:9, 3:11:2])
    _assert_same(maps["spread"].data, full.probability_std.data[:, 2:9, 3:11:2])
    # a row cut out with an integer index: its maps are cut with it, by index
    row = valence_maps(eager_result.isig[:, 4])
    _assert_same(row["l3_peak_eV"].data, full.l3_peak_eV.data[4])


def test_model_pickles_into_working_model(model_path):
    from hyperspy_mnvalence.preprocessing import preprocess
    from hyperspy_mnvalence.synthetic import synthetic_spectra

    m = load_model(model_path)
    energy = np.arange(590.0, 700.0, 0.1)
    truth = np.repeat([2, 3, 4], 5)
    spectra = np.concatenate(
        [synthetic_spectra(energy, v, counts=np.full(5, 500.0), rng=v) for v in (2, 3, 4)]
    )
    x = preprocess(spectra, energy, params=m.preprocessing).x.astype(np.float32)
    probs, spread = m.predict(x)
    # a working model, not just any graph: the simulated valences come out
    np.testing.assert_array_equal(np.asarray(m.classes)[probs.argmax(1)], truth)
    clone = pickle.loads(pickle.dumps(m))
    assert clone is not m
    assert clone.path == m.path and clone.classes == m.classes
    probs2, spread2 = clone.predict(x)
    np.testing.assert_allclose(probs2, probs, atol=1e-6)
    np.testing.assert_allclose(spread2, spread, atol=1e-6)
    np.testing.assert_allclose(probs2.sum(1), 1.0, atol=1e-4)


@pytest.mark.slow
def test_distributed_two_processes_equals_eager(spectrum_image, eager_result, model_path, tmp_path):
    import hyperspy.api as hs

    from hyperspy_mnvalence import compute_result

    distributed = pytest.importorskip("distributed")
    lz = _lazy(spectrum_image, (6, 9, -1))
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            memory_limit="2GiB",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        p = classify_mn_valence(lz, model=model_path, show_progressbar=False)
        assert p._lazy
        got = client.compute(p.data).result()
        reason = client.compute(p.metadata.MnValence.reason.data).result()
        # both worker processes took part
        workers = client.run(lambda: os.getpid())
        assert len(set(workers.values())) == 2
        # the documented way to save under a client: compute the result, maps included
        compute_result(p, show_progressbar=False)
        assert not p._lazy and not p.metadata.MnValence.l3_peak_eV._lazy
        p.save(tmp_path / "distributed.hspy")
    _assert_same(got, eager_result.data)
    _assert_same(reason, eager_result.metadata.MnValence.reason.data)
    saved = hs.load(tmp_path / "distributed.hspy")
    _assert_same(saved.data, eager_result.data)
    _assert_same(
        saved.metadata.MnValence.l3_peak_eV.data, eager_result.metadata.MnValence.l3_peak_eV.data
    )


# ---------------------------------------------------------------------------------------
# The fast preprocessing kernels equal their straightforward definitions
# ---------------------------------------------------------------------------------------


def test_row_median_equals_numpy_median():
    from hyperspy_mnvalence.preprocessing import row_median

    rng = np.random.default_rng(3)
    for k in (1, 2, 7, 10, 1671):
        a = rng.normal(size=(50, k))
        a[:5] = np.round(a[:5])  # ties
        np.testing.assert_array_equal(row_median(a.copy()), np.median(a, axis=1))


def test_dog_and_local_smoothing_equal_whole_row_filters():
    from hyperspy_mnvalence.preprocessing import dog, gaussian_smooth, gaussian_smooth_at

    rng = np.random.default_rng(4)
    y = rng.normal(size=(40, 400)).cumsum(axis=1)
    for step in (0.1, 0.05):
        for i0, i1 in ((0, 400), (150, 260), (390, 400)):
            want = (gaussian_smooth(y, 0.6 / step) - gaussian_smooth(y, 3.0 / step))[:, i0:i1]
            np.testing.assert_allclose(dog(y, step, i0, i1), want, rtol=0, atol=1e-9)
    # segments near both ends of the rows, where the "nearest" extension matters
    first = rng.integers(-20, 400, size=40)
    local = np.broadcast_to(np.arange(25), (40, 25))
    got = gaussian_smooth_at(y, local, first, 25, 3.0)
    full = gaussian_smooth(y, 3.0)
    pos = first[:, None] + local
    inside = (pos >= 0) & (pos < 400)
    want = np.take_along_axis(full, np.clip(pos, 0, 399), axis=1)
    np.testing.assert_array_equal(got[inside], want[inside])


def test_background_fit_recovers_the_edge_under_a_power_law():
    # ground truth: a known edge (nothing before its onset) on a known power law; what
    # subtract_background leaves must be the edge, whatever window it chose
    from hyperspy_mnvalence.preprocessing import subtract_background

    rng = np.random.default_rng(5)
    grid = 600.0 + 0.1 * np.arange(500)
    n = 30
    amp = rng.uniform(1e3, 1e4, (n, 1))
    r = rng.uniform(2.0, 4.0, (n, 1))
    peak = rng.integers(250, 420, size=n)  # room for a pre-edge fit window
    ep = grid[peak][:, None]
    h = rng.uniform(50.0, 300.0, (n, 1))
    edge = h * np.exp(-0.5 * ((grid - ep) / 0.5) ** 2) + 0.3 * h * np.clip(grid - ep + 2, 0, 1)
    background = amp * (grid / 600.0) ** -r
    got = subtract_background(background + edge, grid, peak)
    np.testing.assert_allclose(got, edge, rtol=0, atol=1e-6 * background.max())
    # with noise: the edge region is recovered to a few % of the edge height
    noisy = background + edge + rng.normal(0, 1.0, (n, 500))
    got = subtract_background(noisy, grid, peak)
    for i in range(n):
        sel = slice(peak[i] - 30, peak[i] + 50)
        # the error of the extrapolated background alone (the noise itself stays)
        err = got[i, sel] - (noisy - background)[i, sel]
        assert np.abs(err).max() < 0.03 * h[i, 0], (i, np.abs(err).max())


def test_background_fit_falls_back_to_a_constant():
    # already background-subtracted data (values <= 0 in the window) and a background
    # rising with energy get the window's mean subtracted, not a power law
    from hyperspy_mnvalence.preprocessing import subtract_background

    rng = np.random.default_rng(6)
    grid = 600.0 + 0.1 * np.arange(500)
    peak = np.array([350, 350])
    edge = 100.0 * np.exp(-0.5 * ((grid - grid[350]) / 0.5) ** 2)
    subtracted = edge - 10.0 + rng.normal(0, 0.5, 500)  # negative before the edge
    rising = 5.0 + 0.05 * (grid - 600.0) + edge
    got = subtract_background(np.stack([subtracted, rising]), grid, peak)
    np.testing.assert_allclose(got[0, 300:400], edge[300:400], atol=2.5)
    # the rising line minus the window's mean: the edge on a small residual slope
    np.testing.assert_allclose(got[1, 340:360], edge[340:360], atol=1.5)
    # a peak at the very start leaves no window: still a finite answer
    early = subtract_background(rising[None], grid, np.array([1]))
    assert early.shape == (1, 500) and np.all(np.isfinite(early))
