"""Every public argument is checked up front, eager and lazy alike (issue 15, defect 5).

Each call either returns a result of the right shape with its input untouched, or raises
a ValueError/TypeError (ModelError for models) whose message names the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.model import ModelError


def _edge_signal(nav=(3, 4), dtype=np.float32, step=0.25, units="eV", offset=600.0):
    """Spectra of a power-law background and an L3/L2 white-line pair at 640 eV."""
    import exspy

    n = int(round(100 / step))
    e = offset + step * np.arange(n)
    e_ev = e * {"eV": 1.0, "keV": 1000.0}.get(units, 1.0)
    g = lambda c, w: np.exp(-0.5 * ((e_ev - c) / w) ** 2)  # noqa: E731
    y = 1000 * (e_ev / 600.0) ** -3 + 300 * (g(640, 0.9) + 0.45 * g(651, 1.1))
    data = np.broadcast_to(y, (*nav, n)).astype(dtype)
    s = exspy.signals.EELSSpectrum(np.array(data))
    s.set_signal_type("EELS_MnValence")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = offset, step, units
    return s


@pytest.fixture(scope="module")
def sig():
    return _edge_signal()


BAD = [
    ({"batch_size": None}, "batch_size"),
    ({"batch_size": "abc"}, "batch_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"min_snr": "high"}, "min_snr"),
    ({"min_snr": -1}, "min_snr"),
    ({"min_snr": float("nan")}, "min_snr"),
    ({"model": 123}, "model"),
    ({"background": "linear"}, "background"),
    ({"background_window": (700.0, 720.0)}, "background_window"),
    ({"background_window": (100.0, 110.0)}, "background_window"),
    ({"background_window": (630.0, 620.0)}, "background_window"),
    ({"energy_window": (float("nan"), 650.0)}, "energy_window"),
    ({"show_progressbar": "yes"}, "show_progressbar"),
    ({"lazy_output": 1}, "lazy_output"),
]


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize(("kwargs", "name"), BAD)
def test_bad_argument_is_named_before_any_work(sig, kwargs, name, lazy):
    s = sig.as_lazy() if lazy else sig
    with pytest.raises((ValueError, TypeError)) as info:
        mnv.classify_mn_valence(s, model="lite", **kwargs)  # raises at the call, not compute
    assert name in str(info.value)
    with pytest.raises((ValueError, TypeError)) as info:
        mnv.decompose_mn_valence(s, **kwargs)
    assert name in str(info.value)


def test_model_folder_is_named(sig, tmp_path):
    with pytest.raises(ModelError, match="is a folder"):
        mnv.classify_mn_valence(sig, model=str(tmp_path))


@pytest.mark.parametrize("dtype", [np.complex64, object])
def test_complex_and_object_data_refused(dtype):
    import exspy

    s = exspy.signals.EELSSpectrum(np.ones((2, 400)).astype(dtype))
    s.set_signal_type("EELS_MnValence")
    s.axes_manager.signal_axes[0].offset = 600.0
    with pytest.raises(TypeError, match=str(np.dtype(dtype))):
        mnv.classify_mn_valence(s)


def test_energy_units_joule_refused_kev_converted():
    s = _edge_signal(units="J")
    with pytest.raises(ValueError, match="units 'J'"):
        mnv.classify_mn_valence(s, model="lite")
    kev = _edge_signal(units="keV", offset=0.600, step=0.00025, nav=(2,))
    p = mnv.classify_mn_valence(kev, model="lite")
    peak = np.asarray(p.metadata.MnValence.l3_peak_eV.data)
    assert np.all(np.abs(peak - 640.0) < 1.0)  # read in eV, not as 0.64


def test_energy_window_in_kev_reported_in_its_own_numbers(sig):
    with pytest.raises(ValueError) as info:
        mnv.classify_mn_valence(sig, energy_window=(0.62, 0.67), model="lite")
    msg = str(info.value)
    assert "between 0.62 and 0.67 eV" in msg and "(620, 670)" in msg


def test_compute_result_of_spectra_refused(sig):
    with pytest.raises(ValueError, match="not a Mn valence result"):
        mnv.compute_result(sig.as_lazy())


# ------------------------------------------------------------------------------------
# property-based: argument values, shapes, dtypes, NaN/Inf/spikes
# ------------------------------------------------------------------------------------

_NAMES = ("batch_size", "min_snr", "background", "background_window", "energy_window")
_energy = st.one_of(st.floats(560.0, 760.0), st.floats(-1e4, 1e4), st.just(float("nan")))
_windows = st.one_of(st.none(), st.tuples(_energy, _energy))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch_size=st.one_of(st.integers(-3, 5000), st.none(), st.floats(-2, 10), st.text(max_size=3)),
    min_snr=st.one_of(st.floats(allow_nan=True), st.integers(-5, 50), st.none()),
    background=st.one_of(
        st.sampled_from(["auto", "power_law", "constant", "none", "x"]), st.booleans()
    ),
    background_window=_windows,
    energy_window=_windows,
    lazy=st.booleans(),
)
def test_any_argument_values_give_a_result_or_a_named_error(
    sig, batch_size, min_snr, background, background_window, energy_window, lazy
):
    s = sig.as_lazy() if lazy else sig
    before = np.array(sig.data)
    kwargs = dict(
        batch_size=batch_size,
        min_snr=min_snr,
        background=background,
        background_window=background_window,
        energy_window=energy_window,
    )
    try:
        with np.errstate(all="ignore"), _no_raise():
            p = mnv.classify_mn_valence(s, model="lite", **kwargs)
            if lazy:
                mnv.compute_result(p)
    except (ValueError, TypeError) as exc:
        assert any(n in str(exc) for n in _NAMES) or "energy range" in str(exc), str(exc)
    else:
        assert p.data.shape == (3, *sig.data.shape[:-1])
    np.testing.assert_array_equal(np.asarray(sig.data), before)


class _no_raise:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
        return False


_DTYPES = [np.float16, np.float32, np.float64, np.int16, np.uint16, np.int32]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nav=st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple),
    dtype=st.sampled_from(_DTYPES),
    step=st.sampled_from([0.05, 0.1, 0.25, 0.5, 1.0]),
    offset=st.floats(560.0, 650.0),
    pattern=st.sampled_from(["clean", "nan", "inf", "spike", "zeros", "constant"]),
    lazy=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_any_shape_dtype_and_bad_values_give_a_result_or_a_named_error(
    nav, dtype, step, offset, pattern, lazy, seed
):
    s = _edge_signal(nav=nav, dtype=np.float64, step=step, offset=offset)
    data = s.data
    rng = np.random.default_rng(seed)
    flat = data.reshape(-1, data.shape[-1])
    k = rng.integers(0, flat.shape[1], size=3)
    row = rng.integers(0, flat.shape[0])
    if pattern == "nan":
        flat[row, k] = np.nan
    elif pattern == "inf":
        flat[row, k] = np.inf
    elif pattern == "spike":
        flat[row, k] = 1e6
    elif pattern == "zeros":
        flat[row] = 0
    elif pattern == "constant":
        flat[:] = 5.0
    if np.dtype(dtype).kind in "iu":
        data = np.nan_to_num(data, nan=0, posinf=30000, neginf=0).clip(0, 30000)
    s.data = data.astype(dtype)
    before = np.array(s.data)
    t = s.as_lazy() if lazy else s
    try:
        with _no_raise():
            p = mnv.classify_mn_valence(t, model="lite")
            if lazy:
                mnv.compute_result(p)
    except ValueError as exc:  # only the named energy-range error is expected
        assert "energy range" in str(exc), str(exc)
    else:
        assert p.data.shape == (3, *s.data.shape[:-1])
        # one value per pixel (a single spectrum's map is HyperSpy's shape (1,))
        reason = np.asarray(p.metadata.MnValence.reason.data).reshape(s.data.shape[:-1])
        if pattern == "constant":
            assert np.all(reason == 2)
    np.testing.assert_array_equal(np.asarray(s.data), before)


def test_a_bad_model_argument_lists_every_shipped_name(sig):
    from hyperspy_mnvalence.model import SHIPPED_MODELS

    with pytest.raises(TypeError) as err:
        mnv.classify_mn_valence(sig, model=3.5)
    for name in SHIPPED_MODELS:
        assert repr(name) in str(err.value)
