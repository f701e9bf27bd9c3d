"""API friction a new user meets (issue 18): errors that say the exact next step (the
signal type that gives the method, energies in keV without units), single-pixel results
usable as numbers, and the derived maps of lazy results computed on demand."""

from __future__ import annotations

import hyperspy.api as hs
import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.simulations import synthetic_spectra

#: Energy axis of the spectra below: 600-690 eV at 0.2 eV per channel.
OFFSET, SCALE, N_CH = 600.0, 0.2, 450


def _spectra(valence: int, nav: tuple[int, ...], seed: int = 0) -> np.ndarray:
    e = OFFSET + SCALE * np.arange(N_CH)
    n = int(np.prod(nav))
    y = synthetic_spectra(e, valence, counts=np.full(n, 400.0), rng=seed)
    return y.reshape(*nav, N_CH)


def _signal(data, signal_type="EELS_MnValence", offset=OFFSET, scale=SCALE, units="eV"):
    s = hs.signals.Signal1D(np.array(data))
    if signal_type:
        s.set_signal_type(signal_type)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = offset, scale, units
    return s


# -- errors that say the exact next step ------------------------------------------------


def test_plain_signal1d_is_told_the_signal_type_that_gives_the_method():
    data = _spectra(4, (2,))
    plain = _signal(data, signal_type="")
    with pytest.raises(TypeError, match=r"set_signal_type\('EELS_MnValence'\)") as err:
        mnv.classify_mn_valence(plain)
    assert "s.classify_mn_valence()" in str(err.value)
    assert not hasattr(plain, "classify_mn_valence")
    # doing what the message says gives the method, and the right answer
    plain.set_signal_type("EELS_MnValence")
    p = plain.classify_mn_valence(model="lite", show_progressbar=False)
    np.testing.assert_array_equal(mnv.most_likely_valence(p).data, [4.0, 4.0])
    # an array is told the same path, from the start
    with pytest.raises(TypeError, match=r"Signal1D\(data\).*set_signal_type\('EELS_MnValence'\)"):
        mnv.classify_mn_valence(data)


def test_exspy_eels_signal_works_through_the_function_not_the_method():
    """The limit the docs state: exspy's EELSSpectrum has no ``classify_mn_valence``
    method (Python's own AttributeError, which the package cannot change), but the
    function form classifies it."""
    s = _signal(_spectra(2, (2,)), signal_type="EELS")
    assert type(s).__name__ == "EELSSpectrum"
    with pytest.raises(AttributeError, match="classify_mn_valence"):
        s.classify_mn_valence()
    p = mnv.classify_mn_valence(s, model="lite", show_progressbar=False)
    np.testing.assert_array_equal(mnv.most_likely_valence(p).data, [2.0, 2.0])


@pytest.mark.parametrize("units", ["", "eV"])
def test_energy_axis_in_kev_without_units_gets_the_units_hint(units):
    data = _spectra(3, (2,), seed=1)
    s = _signal(data, offset=OFFSET / 1000, scale=SCALE / 1000, units=units)
    with pytest.raises(ValueError, match="looks like keV") as err:
        mnv.classify_mn_valence(s, model="lite")
    msg = str(err.value)
    assert "s.axes_manager.signal_axes[0].units = 'keV'" in msg
    assert "from 0.6 to 0.6898" in msg and "does not contain" not in msg
    # following the hint gives the classification of the same spectra in eV
    s.axes_manager.signal_axes[0].units = "keV"
    got = mnv.classify_mn_valence(s, model="lite", show_progressbar=False)
    ref = mnv.classify_mn_valence(_signal(data), model="lite", show_progressbar=False)
    np.testing.assert_allclose(got.data, ref.data, rtol=1e-5)
    np.testing.assert_array_equal(mnv.most_likely_valence(got).data, [3.0, 3.0])


def test_energy_axis_in_mev_read_as_ev_gets_the_units_hint():
    s = _signal(_spectra(3, (2,)), offset=OFFSET * 1000, scale=SCALE * 1000, units="eV")
    with pytest.raises(ValueError, match=r"looks like meV.*units = 'meV'"):
        mnv.classify_mn_valence(s, model="lite")
    s.axes_manager.signal_axes[0].units = "meV"
    p = mnv.classify_mn_valence(s, model="lite", show_progressbar=False)
    np.testing.assert_array_equal(mnv.most_likely_valence(p).data, [3.0, 3.0])


@pytest.mark.parametrize("wrong", ["keV", "meV"])
def test_an_ev_axis_labelled_kev_or_mev_is_told_to_say_ev(wrong):
    """The hint quotes the axis as written and names the units that fit it; following
    it classifies (it used to send a keV-labelled eV axis to meV and back)."""
    data = _spectra(3, (2,), seed=2)
    s = _signal(data, units=wrong)
    with pytest.raises(ValueError, match=rf"in {wrong}: that looks like eV") as err:
        mnv.classify_mn_valence(s, model="lite")
    assert "units = 'eV'" in str(err.value)
    s.axes_manager.signal_axes[0].units = "eV"
    got = mnv.classify_mn_valence(s, model="lite", show_progressbar=False)
    ref = mnv.classify_mn_valence(_signal(data), model="lite", show_progressbar=False)
    np.testing.assert_array_equal(got.data, ref.data)


@pytest.mark.parametrize(
    ("offset", "scale"),
    [(100.0, 0.1), (-20.0, 0.44), (0.0, 0.2)],
    ids=["100-150 eV", "low loss -20-200 eV", "0-100 eV"],
)
def test_an_axis_far_from_the_edge_in_any_unit_keeps_the_range_error(offset, scale):
    """Only an axis that would be a core-loss axis in keV (or meV) gets the units hint:
    a low loss from -20 eV is 20 keV below zero in 'keV', not a keV axis."""
    s = _signal(np.ones((2, 500)), offset=offset, scale=scale)
    with pytest.raises(ValueError, match="does not contain the Mn L2,3 edge") as err:
        mnv.classify_mn_valence(s, model="lite")
    assert "looks like" not in str(err.value)


# -- single-pixel results usable as numbers ---------------------------------------------

ONE_PIXEL = [(), (1,), (1, 1)]


@pytest.fixture(scope="module")
def one_pixel_results():
    """``{(nav, lazy): (classification, fractions)}`` of one Mn3+ spectrum."""
    out = {}
    for nav in ONE_PIXEL:
        for lazy in (False, True):
            s = _signal(_spectra(3, nav, seed=2))
            if lazy:
                s = s.as_lazy()
            kw = dict(show_progressbar=False, lazy_output=lazy or None)
            p = mnv.classify_mn_valence(s, model="fast", **kw)
            f = mnv.decompose_mn_valence(s, **kw)
            out[nav, lazy] = p, f
    return out


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize("nav", ONE_PIXEL, ids=["single", "(1,)", "(1,1)"])
def test_one_pixel_maps_convert_to_numbers(one_pixel_results, nav, lazy):
    p, f = one_pixel_results[nav, lazy]
    assert p._lazy == lazy and p.data.shape == (3, *nav)
    probs = np.asarray(p.data, dtype=float).reshape(3)
    assert float(mnv.most_likely_valence(p)) == 3.0
    assert int(mnv.most_likely_valence(p)) == 3
    assert float(mnv.confidence(p)) == pytest.approx(probs.max(), rel=1e-6)
    h = -(probs * np.log(np.clip(probs, 1e-12, 1))).sum() / np.log(3)
    assert float(mnv.uncertainty(p)) == pytest.approx(h, rel=1e-4, abs=1e-6)
    assert float(mnv.mean_valence(p)) == pytest.approx(probs @ [2, 3, 4], rel=1e-5)
    assert float(mnv.no_edge_mask(p)) == 0.0
    fr = np.asarray(f.data, dtype=float).reshape(3)
    mos = float(mnv.mean_oxidation_state(f))
    assert mos == pytest.approx(fr @ [2, 3, 4], rel=1e-5) and 2.5 < mos < 3.5
    spread = np.asarray(f.metadata.MnValence.probability_std.data, dtype=float).reshape(3)
    assert float(mnv.mean_valence_uncertainty(f)) == pytest.approx(spread[0] + spread[2], rel=1e-5)
    for m in mnv.valence_maps(p).values():
        if m.data.size == 1:
            float(m)


def test_one_pixel_map_stays_a_number_through_compute_and_copies(one_pixel_results):
    p, _ = one_pixel_results[(1, 1), True]
    m = mnv.most_likely_valence(p)
    assert m._lazy and type(m).__name__ == "LazySignal2D"
    m.compute()  # HyperSpy swaps the class here
    assert not m._lazy and float(m) == 3.0 and type(m).__name__ == "Signal2D"
    assert float(m.deepcopy()) == 3.0
    assert float(m.as_lazy()) == 3.0


def test_a_map_of_several_pixels_names_data_instead_of_a_number():
    p = mnv.classify_mn_valence(_signal(_spectra(4, (2, 3))), model="lite")
    ml = mnv.most_likely_valence(p)
    with pytest.raises(TypeError, match=r"one pixel, but this one has 6 .*\.data"):
        float(ml)
    assert float(mnv.most_likely_valence(p.isig[1, 0])) == 4.0  # of one pixel of the result
    assert float(ml.isig[1:2, 0:1]) == 4.0  # a one-pixel slice of the map
    assert isinstance(ml, hs.signals.Signal2D)


# -- maps of lazy results ---------------------------------------------------------------

#: Every derived map, by name: a function of the classification or of the fractions.
MAP_FUNCTIONS = {
    "most_likely_valence": ("p", mnv.most_likely_valence),
    "mean_valence": ("p", mnv.mean_valence),
    "confidence": ("p", mnv.confidence),
    "uncertainty": ("p", mnv.uncertainty),
    "no_edge_mask": ("p", mnv.no_edge_mask),
    "mean_oxidation_state": ("f", mnv.mean_oxidation_state),
    "mean_valence_uncertainty": ("f", mnv.mean_valence_uncertainty),
}


@pytest.fixture(scope="module")
def demo_results(demo_small, tmp_path_factory):
    """Eager and lazy results of the demo: lazy_output, lazy input in several dask
    blocks, and a lazy result loaded from a file."""
    s = demo_small
    kw = dict(show_progressbar=False)
    eager = {"p": s.classify_mn_valence(model="lite", **kw), "f": mnv.decompose_mn_valence(s, **kw)}
    lazy_in = s.as_lazy()
    lazy_in.data = lazy_in.data.rechunk((7, 9, -1))
    lazy = {
        "lazy_output": {
            "p": s.classify_mn_valence(model="lite", lazy_output=True, **kw),
            "f": mnv.decompose_mn_valence(s, lazy_output=True, **kw),
        },
        "lazy_input": {
            "p": mnv.classify_mn_valence(lazy_in, model="lite", **kw),
            "f": mnv.decompose_mn_valence(lazy_in, **kw),
        },
    }
    folder = tmp_path_factory.mktemp("lazy_results")
    loaded = {}
    for k, r in eager.items():
        r.save(folder / f"{k}.hspy")
        loaded[k] = hs.load(folder / f"{k}.hspy", lazy=True)
    lazy["loaded_lazily"] = loaded
    return eager, lazy


@pytest.mark.parametrize("how", ["lazy_output", "lazy_input", "loaded_lazily"])
@pytest.mark.parametrize("name", list(MAP_FUNCTIONS))
def test_every_map_of_a_lazy_result_is_computed_on_demand(demo_results, name, how):
    eager, lazy = demo_results
    which, fn = MAP_FUNCTIONS[name]
    r = lazy[how][which]
    assert r._lazy
    m = fn(r)
    assert m._lazy  # nothing computed yet
    expected = np.asarray(fn(eager[which]).data)
    assert np.isnan(expected).any() or name == "no_edge_mask"  # the demo has no-edge pixels
    m.compute()
    np.testing.assert_allclose(np.asarray(m.data), expected, rtol=1e-5, equal_nan=True)
    # a slice of the lazy result gives the same pixels
    got = np.asarray(fn(r.isig[3:17:2, 2:9]).data)
    np.testing.assert_allclose(got, expected[2:9, 3:17:2], rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("how", ["lazy_output", "lazy_input", "loaded_lazily"])
def test_valence_maps_of_a_lazy_result_equal_the_eager_ones(demo_results, how):
    eager, lazy = demo_results
    want = mnv.valence_maps(eager["p"])
    got = mnv.valence_maps(lazy[how]["p"])
    assert sorted(got) == sorted(want) and {"spread", "l3_peak_eV"} <= set(got)
    for key, m in got.items():
        np.testing.assert_allclose(
            np.asarray(m.data), np.asarray(want[key].data), rtol=1e-5, equal_nan=True, err_msg=key
        )
