"""The weak-edge model (``model="weak"``): trained on edges 2-5 % above the background."""

from __future__ import annotations

import numpy as np

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.classification import classify_spectra
from hyperspy_mnvalence.model import WEAK_CONTRAST, load_model
from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.simulations.edge_cases import edge_positives


def _accuracy(model: str, ratio: float) -> float:
    right = []
    for seed in (5, 6):
        acq = edge_positives(600, l3_over_background=ratio, rng=seed)
        p = classify_spectra(acq.spectra, acq.energy, model=model)
        truth = np.asarray(acq.truth["valence"]).astype(int) - 2
        right.append(np.isfinite(p[:, 0]) & (np.nan_to_num(p[:, :3]).argmax(1) == truth))
    return float(np.concatenate(right).mean())


def test_weak_model_card_records_its_training_and_its_route():
    card = mnv.model_card("weak")
    ranges = card["augmentation"]["acquisition_conditions"]["ranges"]
    assert ranges["l3_over_background"] == [0.02, 0.05]
    assert card["n_members"] == 5
    routed = card["metrics"]["routed_with_default"]
    alone = card["metrics"]["acquisition"]
    # read only where the contrast is weak (the rule's route, beside the default) it
    # keeps its weak-edge rows and the default's clean accuracy; alone it loses on clean
    assert routed["conditions"]["white_l3bg_3"] == alone["conditions"]["white_l3bg_3"]
    assert routed["clean"] > alone["clean"] + 0.03
    assert routed["score"] > alone["score"]
    assert load_model("weak").preprocessing == load_model("acquisition").preprocessing


def test_weak_model_reads_weak_edges_at_least_as_well_as_the_default():
    # edges 3 % above the background: the weak model is the better reader (about +2
    # points on these parametric edges, +3 on the suite's Titan spectra); on 12 % edges
    # it stays within a point of the default
    assert _accuracy("weak", 0.03) >= _accuracy("acquisition", 0.03)
    assert _accuracy("weak", 0.12) >= _accuracy("acquisition", 0.12) - 0.01
    # and those 3 % edges measure below the contrast from which it reads better
    acq = edge_positives(300, l3_over_background=0.03, rng=7)
    pre = preprocess(acq.spectra, acq.energy)
    assert np.median(pre.l3_over_background[pre.valid]) < WEAK_CONTRAST
