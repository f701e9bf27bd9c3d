"""The HyperSpy plugin: registration, result layout, invariances, bad input."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import exspy
import hyperspy.api as hs
import numpy as np
import pytest
from mutants import checks

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.model import ModelError
from hyperspy_mnvalence.signals import LazyMnValenceEELSSpectrum, MnValenceEELSSpectrum
from hyperspy_mnvalence.synthetic import synthetic_spectra

pytestmark = pytest.mark.usefixtures("shipped_model")


def eels(data, energy, nav_scale=1.0, nav_units="nm"):
    """Wrap spectra as an exspy EELS signal with a uniform energy axis."""
    s = exspy.signals.EELSSpectrum(np.asarray(data, dtype=np.float32))
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = (
        float(energy[0]),
        float(energy[1] - energy[0]),
        "eV",
        "Energy loss",
    )
    for i, nav in enumerate(s.axes_manager.navigation_axes):
        nav.scale, nav.units, nav.offset, nav.name = (
            nav_scale * (i + 1),
            nav_units,
            10.0 * i,
            "xyz"[i],
        )
    return s


@pytest.fixture(scope="module")
def spectra3():
    """Noise-free synthetic Mn2+, Mn3+, Mn4+ spectra on a 0.1 eV axis."""
    e = np.arange(590.0, 700.0, 0.1)
    return e, np.stack([synthetic_spectra(e, v, counts=500, noise=False) for v in (2, 3, 4)])


# -- registration ------------------------------------------------------------------------


def test_extension_is_registered():
    eps = importlib.metadata.entry_points(group="hyperspy.extensions")
    assert "hyperspy_mnvalence" in {ep.name for ep in eps}
    (ep,) = [ep for ep in eps if ep.name == "hyperspy_mnvalence"]
    assert ep.load() is mnv
    assert (Path(mnv.__file__).parent / "hyperspy_extension.yaml").is_file()
    # the version users see is the installed distribution's
    assert mnv.__version__ == importlib.metadata.version("hyperspy_mnvalence")
    from hyperspy.extensions import ALL_EXTENSIONS

    registered = ALL_EXTENSIONS["signals"]["MnValenceEELSSpectrum"]
    assert registered["signal_type"] == "EELS_MnValence"
    assert registered["module"] == "hyperspy_mnvalence.signals"


def test_set_signal_type_eager_lazy_and_reload(tmp_path, spectra3):
    e, y = spectra3
    s = eels(y, e)
    s.set_signal_type("EELS_MnValence")
    assert type(s) is MnValenceEELSSpectrum
    assert isinstance(s, exspy.signals.EELSSpectrum)
    assert type(s.as_lazy()) is LazyMnValenceEELSSpectrum
    s.save(tmp_path / "s.hspy")
    assert type(hs.load(tmp_path / "s.hspy")) is MnValenceEELSSpectrum
    assert type(hs.load(tmp_path / "s.hspy", lazy=True)) is LazyMnValenceEELSSpectrum
    # a plain EELS file loaded with our signal type
    eels(y, e).save(tmp_path / "plain.hspy")
    t = hs.load(tmp_path / "plain.hspy", signal_type="EELS_MnValence")
    assert type(t) is MnValenceEELSSpectrum
    np.testing.assert_array_equal(t.classify_mn_valence().data, mnv.classify_mn_valence(s).data)


# -- layout ------------------------------------------------------------------------------


@pytest.mark.parametrize("nav_shape", [(), (3,), (2, 3), (2, 1, 3)])
def test_output_shape_and_axes(nav_shape, spectra3):
    e, y = spectra3
    data = np.broadcast_to(y[1], nav_shape + (e.size,)).copy()
    s = eels(data, e, nav_scale=0.5)
    p = mnv.classify_mn_valence(s)
    assert p.data.shape == (3,) + s.data.shape[:-1]
    valence_axis = p.axes_manager[-1] if not nav_shape else p.axes_manager.navigation_axes[0]
    assert valence_axis.name == "Mn valence"
    assert (valence_axis.size, valence_axis.offset, valence_axis.scale) == (3, 2.0, 1.0)
    if nav_shape:
        assert p.axes_manager.navigation_dimension == 1
        for src, dst in zip(
            s.axes_manager.navigation_axes, p.axes_manager.signal_axes, strict=True
        ):
            assert (dst.name, dst.units, dst.scale, dst.offset) == (
                src.name,
                src.units,
                src.scale,
                src.offset,
            )
    np.testing.assert_allclose(np.nansum(p.data, axis=0), 1.0, atol=1e-5)
    assert p.metadata.MnValence.classes == [2, 3, 4]
    assert p.metadata.MnValence.probability_std.data.shape == p.data.shape


def test_method_and_function_agree_and_input_is_untouched(spectra3):
    e, y = spectra3
    s = eels(y, e)
    s.set_signal_type("EELS_MnValence")
    before = s.deepcopy()
    a = s.classify_mn_valence()
    b = mnv.classify_mn_valence(s)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(s.data, before.data)
    assert s.metadata.as_dictionary() == before.metadata.as_dictionary()
    assert s.axes_manager.signal_axes[0].offset == before.axes_manager.signal_axes[0].offset


def test_lazy_in_lazy_out_equals_eager(spectra3):
    e, y = spectra3
    s = eels(np.tile(y, (4, 1, 1)), e)
    eager = mnv.classify_mn_valence(s)
    lazy = mnv.classify_mn_valence(s.as_lazy())
    assert lazy._lazy
    lazy.compute()
    np.testing.assert_allclose(lazy.data, eager.data, atol=1e-6)
    forced = mnv.classify_mn_valence(s, lazy_output=True)
    assert forced._lazy
    back = mnv.classify_mn_valence(s.as_lazy(), lazy_output=False)
    assert not back._lazy
    np.testing.assert_allclose(back.data, eager.data, atol=1e-6)


def test_synthetic_valences_are_classified(spectra3):
    e, y = spectra3
    p = mnv.classify_mn_valence(eels(y, e))
    assert mnv.most_likely_valence(p).data.tolist() == [2.0, 3.0, 4.0]
    checks.check_pure_spectra()


def test_derived_maps(spectra3):
    e, y = spectra3
    data = np.concatenate([y, np.zeros((1, e.size))])  # last pixel: no edge
    p = mnv.classify_mn_valence(eels(data, e))
    maps = mnv.valence_maps(p)
    conf = maps["confidence"].data
    assert np.all(conf[:3] > 0.5) and np.isnan(conf[3])
    assert maps["no_edge"].data.tolist() == [False, False, False, True]
    mv = maps["mean_valence"].data
    np.testing.assert_allclose(mv[:3], (p.data[:, :3] * [[2], [3], [4]]).sum(0), rtol=1e-6)
    np.testing.assert_allclose(mv[:3], [2.0, 3.0, 4.0], atol=0.2)  # the simulated valences
    u = maps["uncertainty"].data
    assert np.all((u[:3] >= 0) & (u[:3] <= 1))
    peak = maps["l3_peak_eV"].data
    assert peak[0] < peak[2]  # Mn4+ L3 sits above Mn2+ on the same calibration


# -- invariances -------------------------------------------------------------------------


def _probs(energy, data, **kw):
    return mnv.classify_mn_valence(eels(data, energy), **kw).data


# Each check compares with the simulated valence first, then bounds the change from the
# unshifted answer (mutants/checks.py; test_mutants.py shows broken models fail them).


def test_invariant_to_energy_offset():
    checks.check_offset_invariance()


def test_invariant_to_dispersion():
    checks.check_dispersion_invariance()


def test_invariant_to_count_scale_and_background():
    checks.check_scale_and_background()


def test_noisy_spectra_keep_their_class():
    checks.check_noisy_spectra()


def test_demo_grains_keep_their_valence_across_the_calibration_drift(demo_small):
    checks.check_demo_drift(demo_small)


# -- bad input ---------------------------------------------------------------------------


def test_non_eels_signal_is_rejected(spectra3):
    e, y = spectra3
    plain = hs.signals.Signal1D(y)
    with pytest.raises(TypeError, match="set_signal_type\\('EELS'\\)"):
        mnv.classify_mn_valence(plain)
    with pytest.raises(TypeError, match="HyperSpy EELS signal"):
        mnv.classify_mn_valence(y)
    img = hs.signals.Signal2D(np.ones((3, 10, 10)))
    with pytest.raises(ValueError, match="signal dimension 2"):
        mnv.classify_mn_valence(img)


def test_energy_range_without_mn(spectra3):
    s = eels(np.ones((2, 500)), np.arange(100.0, 150.0, 0.1))
    with pytest.raises(ValueError, match="does not contain the Mn L2,3 edge"):
        mnv.classify_mn_valence(s)


def test_missing_or_broken_model(tmp_path, spectra3):
    e, y = spectra3
    s = eels(y, e)
    with pytest.raises(ModelError, match="does not exist"):
        mnv.classify_mn_valence(s, model=tmp_path / "nope.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    with pytest.raises(ModelError):
        mnv.classify_mn_valence(s, model=tmp_path / "bad.onnx")


def test_bad_pixels_give_nan_not_errors(spectra3):
    e, y = spectra3
    data = np.stack([y[0], y[0], y[0], y[0], y[0], -y[0], y[0]])
    data[1, 500] = np.nan  # 640 eV: at the edge
    data[2, 350] = np.inf  # 625 eV: in the pre-edge fit
    data[3] = 0.0
    data[4] = 7.0
    data[6, :40] = np.nan  # 590-594 eV, far below what is read (drift-correction padding)
    s = eels(data, e)
    copy = s.data.copy()
    p = mnv.classify_mn_valence(s)
    valid = np.isfinite(p.data).all(0)
    assert valid.tolist() == [True, False, False, False, False, False, True]
    assert p.metadata.MnValence.reason.data.tolist() == [0, 1, 1, 2, 2, 3, 0]
    np.testing.assert_allclose(p.data[:, 6], p.data[:, 0], atol=1e-6)
    np.testing.assert_array_equal(s.data, copy)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.float16])
def test_integer_and_half_precision_counts(spectra3, dtype):
    # raw counts often come as (unsigned) integers; differences of unsigned values
    # must not wrap around
    e, y = spectra3
    counts = np.round(y).astype(dtype)
    p = mnv.classify_mn_valence(eels(counts.astype(np.float32), e))
    s = eels(counts.astype(np.float32), e)
    s.data = counts
    q = mnv.classify_mn_valence(s)
    atol = 0.05 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(q.data, p.data, atol=atol)
    assert np.all(np.isfinite(q.data))


def test_nothing_classified_warns_with_the_reasons(spectra3):
    e, y = spectra3
    data = y.copy()
    data[:, 500] = np.nan  # every pixel bad at the edge
    with pytest.warns(UserWarning, match=r"No spectrum was classified \(non-finite.*: 3\)"):
        p = mnv.classify_mn_valence(eels(data, e))
    assert np.all(np.isnan(p.data))


def test_dead_channels_cost_only_the_pixels_that_read_them():
    # a dead detector column (NaN in every pixel) used to blank the whole map whenever it
    # fell anywhere between about 599 and 694 eV; now a pixel is lost only if the column
    # lies in what it reads (its pre-edge fit to its edge tests)
    s = mnv.make_demo_spectrum_image(shape=(8, 12), seed=1)
    ref = mnv.classify_mn_valence(s, show_progressbar=False)
    e = s.axes_manager.signal_axes[0].axis
    grain = np.isfinite(ref.data[0])
    for at in (605.0, 680.0):  # far below and above every pixel's L3 (636-650 eV)
        t = s.deepcopy()
        k = int(np.argmin(np.abs(e - at)))
        t.data[..., k : k + 2] = np.nan
        p = mnv.classify_mn_valence(t, show_progressbar=False)
        np.testing.assert_array_equal(np.isfinite(p.data[0]), grain)
        np.testing.assert_allclose(p.data[:, grain], ref.data[:, grain], atol=1e-6)
    t = s.deepcopy()
    t.data[..., int(np.argmin(np.abs(e - 642.0)))] = np.nan  # at the edge: every pixel
    with pytest.warns(UserWarning, match=r"No spectrum was classified \(non-finite"):
        p = mnv.classify_mn_valence(t, show_progressbar=False)
    assert np.all(np.isnan(p.data))
    assert np.all(p.metadata.MnValence.reason.data[grain] == 1)


def test_misuse_gets_clear_errors(spectra3):
    e, y = spectra3
    s = eels(y, e)
    with pytest.raises(ValueError, match="lo < hi"):
        mnv.classify_mn_valence(s, energy_window=(660, 630))
    with pytest.raises(ValueError, match="pair of energies"):
        mnv.classify_mn_valence(s, energy_window=640)
    with pytest.raises(ValueError, match="background_window must be"):
        mnv.classify_mn_valence(s, background_window=(630, 610))
    with pytest.raises(ValueError, match="not a Mn valence result"):
        mnv.most_likely_valence(s)
    fractions = mnv.model.default_model_path(mnv.model.FRACTIONS_MODEL)
    with pytest.raises(ValueError, match="use decompose_mn_valence"):
        mnv.classify_mn_valence(s, model=fractions)
    with pytest.raises(ValueError, match="probabilities are not fractions"):
        mnv.mean_oxidation_state(mnv.classify_mn_valence(s))


def test_energy_in_kev_is_understood(spectra3):
    e, y = spectra3
    s = eels(y, e)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = ax.offset / 1000, ax.scale / 1000, "keV"
    np.testing.assert_allclose(mnv.classify_mn_valence(s).data, _probs(e, y), atol=1e-5)


def test_non_uniform_energy_axis(spectra3):
    e, y = spectra3
    rng = np.random.default_rng(2)
    en = np.sort(rng.uniform(e[0], e[-1], e.size))
    yn = np.stack([np.interp(en, e, row) for row in y])
    s = exspy.signals.EELSSpectrum(
        yn, axes=[{"size": 3, "navigate": True}, {"axis": en, "units": "eV", "navigate": False}]
    )
    assert not s.axes_manager.signal_axes[0].is_uniform
    p = mnv.classify_mn_valence(s)
    assert mnv.most_likely_valence(p).data.tolist() == [2.0, 3.0, 4.0]


# -- demo --------------------------------------------------------------------------------


def test_demo_spectrum_image_is_mapped_correctly(demo_small):
    assert demo_small.metadata.Signal.signal_type == "EELS_MnValence"
    checks.check_demo_map(demo_small)


# -- command line, against the demo's truth ----------------------------------------------


def test_cli_classify_maps_the_demo(demo_small, tmp_path):
    checks.check_cli_classify(demo_small, tmp_path)


def test_cli_demo_reports_its_accuracy(tmp_path):
    checks.check_cli_demo(tmp_path)


# -- paths users take that had no test ----------------------------------------------------


def test_background_window_given_explicitly(spectra3):
    e, y = spectra3
    bg = 3000.0 * (e / e[0]) ** -3.2  # a strong power law under the edges
    s = eels(y + bg, e)
    p = mnv.classify_mn_valence(s, background_window=(615.0, 632.0))
    assert mnv.most_likely_valence(p).data.tolist() == [2.0, 3.0, 4.0]
    auto = mnv.classify_mn_valence(s)
    np.testing.assert_allclose(p.data, auto.data, atol=0.05)


def test_lazy_single_spectrum(spectra3):
    e, y = spectra3
    p = mnv.classify_mn_valence(eels(y[2], e).as_lazy())
    assert p._lazy
    p.compute()
    assert p.data.shape == (3,)
    assert int(np.argmax(p.data)) == 2  # Mn4+
    np.testing.assert_allclose(p.data, mnv.classify_mn_valence(eels(y[2], e)).data, atol=1e-6)


def test_python_dash_m_runs_the_command_line():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "hyperspy_mnvalence", "--version"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert mnv.__version__ in out.stdout
