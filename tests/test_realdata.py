"""Acceptance on real spectra (../shared/data, via MNVALENCE_DATA).

The digitized literature references are used for evaluation only.
"""

from __future__ import annotations

from pathlib import Path

import exspy
import hyperspy.api as hs
import numpy as np
import pytest
from mutants import checks

import hyperspy_mnvalence as mnv

pytestmark = [pytest.mark.realdata, pytest.mark.usefixtures("shipped_model", "real_data")]


@pytest.fixture(scope="module")
def references(digitized_references):
    return digitized_references


def _wrap_non_uniform(energy, intensity):
    """An EELS signal on the reference's own (non-uniform) energy grid."""
    axes = [{"axis": np.asarray(energy), "name": "Energy loss", "units": "eV", "navigate": False}]
    return exspy.signals.EELSSpectrum(np.asarray(intensity), axes=axes)


def _classify_all(refs, offset=0.0, dispersion=None):
    predicted = []
    for d in refs:
        e, y = d["energy"] + offset, d["intensity"]
        if dispersion is None:
            s = _wrap_non_uniform(e, y)
        else:
            eu = np.arange(e[0], e[-1], dispersion)
            s = exspy.signals.EELSSpectrum(np.interp(eu, e, y))
            ax = s.axes_manager.signal_axes[0]
            ax.offset, ax.scale, ax.units = float(eu[0]), float(dispersion), "eV"
        p = mnv.classify_mn_valence(s)
        v = mnv.most_likely_valence(p).data
        predicted.append(float(v.item()))
    truth = [d["valence"] for d in refs]
    return int(np.sum(np.array(predicted) == truth)), predicted


def test_digitized_references(references):
    """The 31 references, each on its own non-uniform grid.

    The references are never used for training or selection (the models were chosen by
    rules fixed before they ran), so no model is tuned to pass this. The default
    (acquisition-trained, retrained on the corrected simulator in session 8) reads 29 of
    them right (ids 18 and 37, Mn3+ references, as Mn2+; the previous default read 30);
    ``fast`` (its fold-1 network) 28 (also id 17); ``thin`` (session 9) 30 (ids 37 and 38
    wrong at some dispersions, 30 at every offset in its export); the clean-trained
    ensemble all 31.
    """
    assert len(references) == 31
    checks.check_digitized_references(references, min_correct=29)
    checks.check_digitized_references(references, model="fast", min_correct=28)
    checks.check_digitized_references(references, model="thin", min_correct=30)
    checks.check_digitized_references(references, model="ensemble", min_correct=31)


@pytest.mark.slow
def test_digitized_references_at_every_offset(references):
    results = {off: _classify_all(references, offset=float(off))[0] for off in range(-15, 16)}
    low = {k: v for k, v in results.items() if v < 29}  # 29 at every offset (default)
    assert not low, f"offsets with fewer than 29/31 correct: {low}"


@pytest.mark.parametrize("dispersion", [0.05, 0.1, 0.2, 0.3, 0.4, 0.5])
def test_digitized_references_at_other_dispersions(references, dispersion):
    correct, _ = _classify_all(references, dispersion=dispersion)
    assert correct >= 28, f"{correct}/31 at {dispersion} eV/channel"  # default: 28-30


def test_titan_mn2_wide_line_scan(titan_mn2_wide):
    # strictly Mn2+ (a constant 1/3 model used to pass through argmax ties towards Mn2+)
    spectra, energy = titan_mn2_wide
    assert spectra.shape == (659, energy.size)
    checks.check_mn2_line_scan(spectra, energy)


def _exspy_core_loss() -> Path:
    path = Path(exspy.__file__).parent / "tests" / "components" / "coreloss_spectrum.msa"
    if not path.is_file():
        pytest.skip(f"exspy's real core-loss test spectrum is not installed at {path}")
    return path


def test_real_spectrum_image_without_mn_is_all_nan():
    """A real O K edge (no Mn) moved into the Mn window, as a 6x5 Poisson map."""
    s = hs.load(_exspy_core_loss(), signal_type="EELS")
    e = s.axes_manager.signal_axes[0].axis
    below_mn = e < 620.0  # O K edge and its fine structure; Mn L starts above
    rng = np.random.default_rng(0)
    for shift in (90.0, 100.0, 110.0):  # puts the O K edge at 622-642 eV
        data = rng.poisson(np.broadcast_to(s.data[below_mn], (6, 5, below_mn.sum()))).astype(
            np.float32
        )
        m = exspy.signals.EELSSpectrum(data)
        ax = m.axes_manager.signal_axes[0]
        ax.offset, ax.scale, ax.units = float(e[0] + shift), float(e[1] - e[0]), "eV"
        p = mnv.classify_mn_valence(m)
        assert np.all(np.isnan(p.data)), f"O K edge taken for Mn at shift {shift}"
        assert np.all(mnv.no_edge_mask(p).data)


def test_real_mn_core_loss_spectrum_has_an_edge():
    """exspy's real core-loss test spectrum (O K and Mn L2,3) is classified, not NaN."""
    s = hs.load(_exspy_core_loss(), signal_type="EELS")
    p = mnv.classify_mn_valence(s)
    assert np.all(np.isfinite(p.data))
    assert p.data.max() > 0.5
