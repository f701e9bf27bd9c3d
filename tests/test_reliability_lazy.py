"""The lazy path: no copy or hash of in-memory data, a cache keyed on the call, and one
BLAS thread that holds in dask's worker threads (issue 15, defects 6 and 7)."""

from __future__ import annotations

import os

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
    blocks = [v for v in graph.values() if isinstance(v, np.ndarray) and v.ndim == 3]
    assert blocks, "the input's blocks are in the graph"
    assert all(np.shares_memory(b, s.data) for b in blocks)
    assert sum(b.size for b in blocks) == s.data.size


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


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS has one thread anyway")
def test_one_blas_thread_in_dask_worker_threads(monkeypatch):
    from threadpoolctl import threadpool_info

    seen = []
    real = classification.classify_spectra

    def recording(*args, **kwargs):
        seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return real(*args, **kwargs)

    monkeypatch.setattr(classification, "classify_spectra", recording)
    s = _edge_signal(nav=(32, 32))
    lz = s.as_lazy()
    lz.data = lz.data.rechunk((8, 8, -1))
    p = mnv.compute_result(mnv.classify_mn_valence(lz, model="lite"), False)
    assert len(seen) == 16
    assert seen == [1] * 16
    assert p.data.shape == (3, 32, 32)
