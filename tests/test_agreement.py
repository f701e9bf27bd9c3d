"""model_disagreement: classifier vs fraction model, pixel by pixel, one warning."""

import warnings

import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.decisions import DISAGREEMENT_MARGIN


@pytest.fixture(scope="module")
def results(demo_small):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = mnv.classify_mn_valence(demo_small, model="fast", show_progressbar=False)
        f = mnv.decompose_mn_valence(demo_small, show_progressbar=False)
    return p, f


def _recompute(p, f, margin):
    # the rule as documented, pixel by pixel
    out = np.zeros(p.data.shape[1:], dtype=bool)
    for idx in np.ndindex(*p.data.shape[1:]):
        pp, ff = p.data[(slice(None), *idx)], f.data[(slice(None), *idx)]
        if np.all(np.isfinite(pp)) and np.all(np.isfinite(ff)):
            out[idx] = ff.max() - ff[np.argmax(pp)] > margin
    return out


def test_demo_mostly_agrees_and_the_map_follows_the_rule(results):
    p, f = results
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        d = mnv.model_disagreement(p, f)
    assert not [w for w in rec if "disagree" in str(w.message)]  # pure grains: no warning
    assert d.data.dtype == bool and d.data.shape == p.data.shape[1:]
    np.testing.assert_array_equal(d.data, _recompute(p, f, DISAGREEMENT_MARGIN))
    edge = np.isfinite(p.data[0]) & np.isfinite(f.data[0])
    assert edge.sum() > 100
    assert d.data.sum() / edge.sum() < 0.05
    assert not d.data[~edge].any()


def test_swapped_fractions_warn_with_the_share(results):
    p, f = results
    g = f.deepcopy()
    # turn every other row's fractions around (Mn2+ <-> Mn4+): those pixels disagree
    # wherever the fraction model was clear
    g.data[:, ::2] = g.data[::-1, ::2]
    expected = _recompute(p, g, DISAGREEMENT_MARGIN)
    edge = np.isfinite(p.data[0]) & np.isfinite(g.data[0])
    share = expected.sum() / edge.sum()
    assert share > 0.2
    with pytest.warns(UserWarning, match=f"disagree in {100 * share:.1f} %") as rec:
        d = mnv.model_disagreement(p, g)
    assert len(rec) == 1
    np.testing.assert_array_equal(d.data, expected)
    # a larger margin counts fewer pixels, and never more
    d2 = mnv.model_disagreement(p, g, margin=0.6, warn_share=1.0)
    assert d2.data.sum() < d.data.sum() and not (d2.data & ~d.data).any()


def test_lazy_slices_and_errors(results):
    p, f = results
    d = mnv.model_disagreement(p, f, warn_share=1.0)
    dl = mnv.model_disagreement(p.as_lazy(), f.as_lazy(), warn_share=1.0)
    assert not dl._lazy
    np.testing.assert_array_equal(dl.data, d.data)
    ds = mnv.model_disagreement(p.isig[2:10, 3:7], f.isig[2:10, 3:7], warn_share=1.0)
    np.testing.assert_array_equal(ds.data, d.data[3:7, 2:10])
    with pytest.raises(ValueError, match="classification result first"):
        mnv.model_disagreement(f, p)
    with pytest.raises(ValueError, match="same pixels"):
        mnv.model_disagreement(p.isig[:5], f)
    with pytest.raises(ValueError, match="margin"):
        mnv.model_disagreement(p, f, margin=1.5)
