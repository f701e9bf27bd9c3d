"""A known instrument resolution (``resolution_eV``): the model trained at it reads the
spectra, and a resolution outside the model's training is named in the warning."""

import warnings

import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.decisions import (
    TITAN_RESOLUTION_EV,
    out_of_range,
    resolution_condition,
    trained_resolution_range,
)
from hyperspy_mnvalence.model import BROAD_MODEL, BROAD_RESOLUTION_EV, load_model
from hyperspy_mnvalence.simulations import simulate_acquisition

VALENCES = np.repeat([2, 3, 4], 16)


def _map(resolution_eV, seed=0):
    """48 Mn spectra (16 of each valence) at one resolution, L3 25 % above the
    background, 8e4 electrons per eV, 0.25 eV per channel."""
    acq = simulate_acquisition(
        valence=VALENCES, resolution_eV=resolution_eV, l3_over_background=0.25, dose=8e4,
        dispersion_eV=0.25, rng=seed,
    )  # fmt: skip
    return acq.to_signal(navigation_shape=(6, 8))


def _range_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "validated range" in str(w.message)]


def test_the_titan_resolution_is_the_simulators():
    from hyperspy_mnvalence.simulations.edges import REFERENCE_RESOLUTION_EV

    assert TITAN_RESOLUTION_EV == REFERENCE_RESOLUTION_EV


def test_training_resolutions_come_from_each_models_card():
    assert trained_resolution_range(load_model("acquisition").metadata) == (0.2, 2.0)
    assert trained_resolution_range(load_model("broad").metadata) == (1.4, 2.0)
    # the clean-trained ensemble: its Titan spectra's own 0.2 eV, broadened up to 1.2 eV
    lo, hi = trained_resolution_range(load_model("ensemble").metadata)
    assert lo == TITAN_RESOLUTION_EV and hi == pytest.approx(np.hypot(1.2, 0.2))
    assert trained_resolution_range({}) is None
    md = load_model("broad").metadata
    # inside, or not known: nothing to say
    for r in (1.4, 2.0, 2.2, 0.7, None):
        assert resolution_condition(r, md) is None, r
    assert resolution_condition(3.0, {}) is None
    # outside: named, with the value and the trained range
    for r in (2.3, 0.5):
        text = resolution_condition(r, md)
        assert f"{r:.3g} eV" in text and "1.4-2 eV" in text
    e = 600 + 0.25 * np.arange(400)
    assert out_of_range(e, {}, md, resolution_eV=2.5) == [resolution_condition(2.5, md)]
    assert out_of_range(e, {}, md, resolution_eV=1.8) == []


def test_a_broad_resolution_given_is_read_by_the_broad_model():
    s = _map(1.8)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        p = mnv.classify_mn_valence(s, resolution_eV=1.8, show_progressbar=False)
    assert p.metadata.MnValence.model == BROAD_MODEL
    assert p.metadata.MnValence.parameters.resolution_eV == 1.8
    assert _range_warnings(rec) == []
    assert np.mean(mnv.most_likely_valence(p).data.ravel() == VALENCES) >= 0.8
    # below the threshold, not given, or a model given: not routed
    below = mnv.classify_mn_valence(s, resolution_eV=BROAD_RESOLUTION_EV - 0.1,
                                    show_progressbar=False)  # fmt: skip
    assert below.metadata.MnValence.model == "mn_valence_fcn_acquisition.onnx"
    p = mnv.classify_mn_valence(s, show_progressbar=False)
    assert p.metadata.MnValence.model == "mn_valence_fcn_acquisition.onnx"
    assert p.metadata.MnValence.parameters.resolution_eV is None
    p = mnv.classify_mn_valence(s, resolution_eV=1.8, model="fast", show_progressbar=False)
    assert p.metadata.MnValence.model == "mn_valence_fcn_fast.onnx"


def test_a_resolution_outside_the_models_training_is_named_once():
    s = _map(3.0, seed=1)
    with pytest.warns(UserWarning, match="validated range") as rec:
        p = mnv.classify_mn_valence(s, resolution_eV=3.0, show_progressbar=False)
    (text,) = _range_warnings(rec)
    assert "the resolution, 3 eV (zero-loss FWHM)" in text and "1.4-2 eV" in text
    assert p.metadata.MnValence.model == BROAD_MODEL
    # the fraction model was trained at other resolutions: its own range is named
    with pytest.warns(UserWarning, match="validated range") as rec:
        mnv.decompose_mn_valence(s, resolution_eV=3.0, show_progressbar=False)
    (text,) = _range_warnings(rec)
    assert "the resolution, 3 eV" in text


@pytest.mark.parametrize("bad", [0, -1.0, np.nan, np.inf, True, "2"])
def test_a_bad_resolution_is_named(bad):
    s = _map(0.5)
    with pytest.raises(ValueError, match="resolution_eV must be the zero-loss peak's FWHM"):
        mnv.classify_mn_valence(s, resolution_eV=bad, show_progressbar=False)


def test_the_low_loss_gives_the_resolution():
    pytest.importorskip("exspy")
    from hyperspy_mnvalence.simulations.lowloss import simulate_thick_pair

    core, low, _ = simulate_thick_pair((3, 4), 1.0, dose=2e6, rng=3)  # 0.3 eV resolution
    p = mnv.classify_mn_valence(core, low_loss=low, show_progressbar=False)
    measured = p.metadata.MnValence.parameters.resolution_eV
    assert 0.2 <= measured <= 0.5  # sampled at 0.25 eV per channel
    assert p.metadata.MnValence.model == "mn_valence_fcn_thin.onnx"
    # a resolution given wins over the measured one, and the low loss keeps the thin model
    p = mnv.classify_mn_valence(core, low_loss=low, resolution_eV=1.8, show_progressbar=False)
    assert p.metadata.MnValence.parameters.resolution_eV == 1.8
    assert p.metadata.MnValence.model == "mn_valence_fcn_thin.onnx"


def test_the_command_line_passes_the_resolution(tmp_path, capsys):
    import hyperspy.api as hs

    from hyperspy_mnvalence.cli import main

    src = tmp_path / "broad.hspy"
    _map(1.8).save(src)
    out = tmp_path / "p.hspy"
    assert main(["classify", str(src), "-o", str(out), "--resolution", "1.8", "--no-progress"]) == 0
    p = hs.load(out)
    assert p.metadata.MnValence.model == BROAD_MODEL
    assert p.metadata.MnValence.parameters.resolution_eV == 1.8
    capsys.readouterr()
    bad = tmp_path / "q.hspy"
    assert main(["classify", str(src), "-o", str(bad), "--resolution", "-2"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resolution must be the zero-loss FWHM" in err[0]
    assert not bad.exists()


def test_spectra_at_1_ev_per_channel_are_read_by_the_1ev_model():
    from hyperspy_mnvalence.model import ONE_EV_MODEL

    def at(dispersion, seed=2):
        acq = simulate_acquisition(
            valence=VALENCES, resolution_eV=0.5, l3_over_background=0.25, dose=8e4,
            dispersion_eV=dispersion, rng=seed,
        )  # fmt: skip
        return acq.to_signal(navigation_shape=(6, 8))

    s = at(1.0)
    p = mnv.classify_mn_valence(s, show_progressbar=False)
    assert p.metadata.MnValence.model == ONE_EV_MODEL
    assert np.mean(mnv.most_likely_valence(p).data.ravel() == VALENCES) >= 0.8
    # another sampling, a coarse resolution given or a model given: not routed there
    p = mnv.classify_mn_valence(at(0.5), show_progressbar=False)
    assert p.metadata.MnValence.model == "mn_valence_fcn_acquisition.onnx"
    p = mnv.classify_mn_valence(s, resolution_eV=1.8, show_progressbar=False)
    assert p.metadata.MnValence.model == BROAD_MODEL
    p = mnv.classify_mn_valence(s, model="acquisition", show_progressbar=False)
    assert p.metadata.MnValence.model == "mn_valence_fcn_acquisition.onnx"


def test_the_1ev_model_given_for_other_samplings_is_named_in_the_warning():
    from hyperspy_mnvalence.decisions._range import trained_dispersion_range

    assert trained_dispersion_range(load_model("1ev").metadata) == (1.0, 1.0)
    # the models trained over every sampling keep the documented default range
    assert trained_dispersion_range(load_model("acquisition").metadata) == (0.02, 1.0)
    s = _map(0.5)  # 0.25 eV per channel
    with pytest.warns(UserWarning, match="validated range") as rec:
        mnv.classify_mn_valence(s, model="1ev", show_progressbar=False)
    (text,) = _range_warnings(rec)
    assert "the dispersion, 0.25 eV per channel, is outside the 1 eV per channel" in text
