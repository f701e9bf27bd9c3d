"""The edge decision's ROC in the robustness suite: detection and false Mn as min_snr
sweeps, equal to what preprocess(min_snr=x) decides."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence.preprocessing import preprocess

pytest.importorskip("matplotlib")
from hyperspy_mnvalence.training.suite import (  # noqa: E402
    SEED,
    SUITE,
    _record,
    edge_roc,
    roc_figure,
)


def test_roc_matches_the_decision_and_falls_with_the_threshold(clean_titan_like, tmp_path):
    spectra, _, e = clean_titan_like
    th = (0.0, 5.0, 7.5, 16.0)
    roc = edge_roc(spectra, e, thresholds=th, copies=1, n_negatives=40)
    assert roc["thresholds"] == list(th)
    names = [n for n, g, _ in SUITE if g in ("l3_over_background", "white")]
    assert list(roc["detection"]) == names
    for d in roc["detection"].values():
        assert d["n"] == len(spectra)
        assert np.all(np.diff(d["rate"]) <= 0)
    for dets in roc["false_mn"].values():
        for rates in dets.values():
            assert np.all(np.diff(rates) <= 0)
    # detection rises with the L3 height at the default threshold
    k = th.index(7.5)
    corr = [roc["detection"][f"l3bg_{r}"]["rate"][k] for r in (3, 6, 12, 25)]
    assert corr[0] < corr[-1] and corr[-1] > 0.9
    # the same share as preprocess(min_snr=7.5) on the same recording
    i = next(j for j, (n, _, _) in enumerate(SUITE) if n == "l3bg_6")
    _, acq = _record(spectra, e, SUITE[i][2], SEED + i, 1)
    direct = preprocess(acq.spectra, acq.energy, min_snr=7.5).valid.mean()
    assert roc["detection"]["l3bg_6"]["rate"][k] == pytest.approx(direct)
    assert max(roc["worst_false_mn"]) <= 1.0 and roc["worst_false_mn"][-1] <= 0.05
    roc_figure(roc, tmp_path / "roc.png", default=7.5)
    assert (tmp_path / "roc.png").stat().st_size > 10_000
