"""The lazy path: no copy or hash of in-memory data, a cache keyed on the call, and one
BLAS thread that holds in dask's worker threads (issue 15, defects 6 and 7)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence import classification


def _edge_signal(nav=(16, 16), l3=640.0, seed=0):
    import exspy

    e = 560.0 + 0.25 * np.arange(600)
    g = lambda c, w: np.exp(-0.5 * ((e - c) / w) ** 2)  # noqa: E731
    y = 1000 * (e / 600.0) ** -3 + 300 * (g(l3, 0.9) + 0.45 * g(l3 + 11, 1.1))
    rng = np.random.default_rng(seed)
    data = rng.poisson(np.broadcast_to(y, (*nav, e.size)) * 5).astype(np.float32)
    s = exspy.signals.EELSSpectrum(data)
    s.set_signal_type("EELS_MnValence")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = 560.0, 0.25, "eV"
    return s


def test_in_memory_data_are_viewed_not_copied():
    s = _edge_signal()
    p = mnv.classify_mn_valence(s, model="lite", lazy_output=True)
    graph = dict(p.data.__dask_graph__())
    blocks = [v for v in graph.values() if isinstance(v, np.ndarray) and v.size >= 600]
    assert blocks, "the input's blocks are in the graph"
    assert all(np.shares_memory(b, s.data) for b in blocks)
    assert sum(b.size for b in blocks) == s.data.size


def test_lazy_output_of_in_memory_data_equals_eager():
    """Blocks are runs of the eager path's batches: the edge decision pools the noise
    over a batch, so dask's own square blocks (64x16 of an 80x70 map) flipped 9
    near-threshold pixels against the eager result."""
    s = _edge_signal(nav=(80, 70))
    eager = mnv.classify_mn_valence(s, model="lite")
    lazy = mnv.classify_mn_valence(s, model="lite", lazy_output=True)
    assert len(lazy.data.chunks[1]) > 1  # several blocks
    mnv.compute_result(lazy, False)
    assert np.isnan(eager.data).any() and np.isfinite(eager.data).any()
    np.testing.assert_array_equal(lazy.data, eager.data)
    for key in ("probability_std", "l3_peak_eV", "reason", "n_spikes", "range_flags"):
        np.testing.assert_array_equal(
            lazy.metadata.MnValence[key].data, eager.metadata.MnValence[key].data
        )


def test_block_cache_is_not_shared_by_arrays_that_share_a_dask_name():
    a, b = _edge_signal(nav=(4, 4)), _edge_signal(nav=(4, 4))
    b.data[:] = 0  # no edge anywhere
    la = a.as_lazy()
    lb = b.as_lazy()
    la.data = da.from_array(a.data, chunks=(2, 4, -1), name="same-name")
    lb.data = da.from_array(b.data, chunks=(2, 4, -1), name="same-name")
    pa = mnv.compute_result(mnv.classify_mn_valence(la, model="lite"), False)
    with pytest.warns(UserWarning, match="No spectrum was classified"):
        pb = mnv.compute_result(mnv.classify_mn_valence(lb, model="lite"), False)
    eager = mnv.classify_mn_valence(a, model="lite")
    np.testing.assert_array_equal(pa.data, eager.data)  # a's own numbers
    assert np.isfinite(pa.data).any()
    assert np.isnan(pb.data).all()  # not a's, served from the cache under the same name


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def _record_blas_threads(monkeypatch) -> list[int]:
    """BLAS threads seen inside every preprocessing batch (where the BLAS products run)."""
    seen = []
    real = classification.preprocess

    def recording(*args, **kwargs):
        seen.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(classification, "preprocess", recording)
    return seen


@pytest.fixture
def main_thread_holds_blas_control():
    """This thread once set a BLAS limit without a ``with`` block (as this package's
    own code did): with threadpoolctl >= 3.8 it then stays the only thread allowed to
    change a pthreads OpenBLAS limit, and every other thread's limit silently does
    nothing. Control is released afterwards."""
    from threadpoolctl import OpenBLASController, ThreadpoolController

    before = _blas_threads()
    if before < 2:
        pytest.skip("BLAS has one thread here: nothing to limit")
    ThreadpoolController().limit(limits=before, user_api="blas")
    yield before
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def _lazy_map():
    s = _edge_signal(nav=(32, 32))
    lz = s.as_lazy()
    lz.data = lz.data.rechunk((8, 8, -1))  # 16 blocks
    return s, lz


def test_one_blas_thread_in_dask_worker_threads(monkeypatch, main_thread_holds_blas_control):
    """compute_result, and p.save() of a lazy result, where only dask's worker threads
    run the blocks (no limit from this thread): one BLAS thread in every batch, and the
    user's setting back afterwards (it stayed at 1 when the last block to finish was
    not the one that set the limit)."""
    before = main_thread_holds_blas_control
    seen = _record_blas_threads(monkeypatch)
    _, lz = _lazy_map()
    p = mnv.compute_result(mnv.classify_mn_valence(lz, model="lite"), False)
    assert len(seen) == 16
    assert seen == [1] * 16
    assert _blas_threads() == before
    seen.clear()
    q = mnv.classify_mn_valence(lz, model="lite")
    q.data.compute()  # dask's threads, no limit from here (as p.save() computes)
    assert len(seen) == 16
    assert seen == [1] * 16, "a limit set from a dask worker thread did not hold"
    assert _blas_threads() == before
    assert np.isfinite(p.data).mean() > 0.8  # most pixels classified


def test_one_blas_thread_when_saving_a_lazy_result(
    monkeypatch, tmp_path, main_thread_holds_blas_control
):
    import hyperspy.api as hs

    before = main_thread_holds_blas_control
    seen = _record_blas_threads(monkeypatch)
    _, lz = _lazy_map()
    p = mnv.classify_mn_valence(lz, model="lite")
    p.save(tmp_path / "p.hspy")
    assert len(seen) >= 16
    assert seen == [1] * len(seen)
    assert _blas_threads() == before
    saved = hs.load(tmp_path / "p.hspy")
    assert saved.data.shape == (3, 32, 32)
    assert np.isfinite(saved.data).mean() > 0.8


def test_one_blas_thread_in_distributed_worker_threads(monkeypatch, main_thread_holds_blas_control):
    distributed = pytest.importorskip("distributed")
    before = main_thread_holds_blas_control
    seen = _record_blas_threads(monkeypatch)
    _, lz = _lazy_map()
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        # the workers' threads alone run the blocks: no limit from this thread
        probs = mnv.classify_mn_valence(lz, model="lite").data.compute()
    assert len(seen) == 16
    assert seen == [1] * 16
    assert _blas_threads() == before
    assert np.isfinite(probs).any()
