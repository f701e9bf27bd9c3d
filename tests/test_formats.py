"""Microscope file formats: the demo written through RosettaSciIO, read back with
``hs.load`` and classified, in Python and from the command line.

RosettaSciIO cannot write .dm3/.dm4 (it reads them only): Gatan files are written by
a test-only writer and covered in ``test_formats_dm.py``. Covered here: .msa (single spectrum), .hspy, .rpl/.raw (Ripple), .nxs (NeXus,
which loads as several signals), .emd (loads with every axis a signal axis), .zspy (when
zarr is installed) and a dual-EELS-like .hspy holding a low-loss and a core-loss
spectrum image.
"""

from __future__ import annotations

import h5py
import hyperspy.api as hs
import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.cli import main


@pytest.fixture(scope="module")
def core():
    """A small demo spectrum image and its classification in memory."""
    s = mnv.make_demo_spectrum_image(shape=(8, 10), seed=4)
    s.metadata.General.title = "High-loss"
    return s, mnv.classify_mn_valence(s, show_progressbar=False).data


def _same(p, expected):
    got = np.asarray(p.data)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, atol=1e-5, equal_nan=True)


def _plain(s):
    """The signal without the demo's truth (arrays some writers cannot store)."""
    t = s.deepcopy()
    del t.metadata.Sample
    return t


@pytest.mark.parametrize("ext", ["hspy", "rpl", "zspy"])
def test_spectrum_image_formats(core, tmp_path, ext):
    if ext == "zspy":
        pytest.importorskip("zarr")
        pytest.importorskip("numcodecs")
    s, expected = core
    path = tmp_path / f"core.{ext}"
    (s if ext == "hspy" else _plain(s)).save(path)
    t = hs.load(path, signal_type="EELS_MnValence")
    assert t.data.shape == s.data.shape
    ax = t.axes_manager.signal_axes[0]
    assert ax.units == "eV" and ax.offset == pytest.approx(580.0)
    _same(t.classify_mn_valence(show_progressbar=False), expected)


def test_single_spectrum_msa(core, tmp_path):
    s, expected = core
    # a pixel well inside a grain (pure valence), not on an interface
    frac = np.asarray(s.metadata.Sample.mn_fractions_truth)
    pure = np.argwhere(np.nan_to_num(frac).max(0) >= 0.999)
    row, col = (int(i) for i in pure[len(pure) // 2])
    valence = int(np.nanargmax(frac[:, row, col])) + 2
    path = tmp_path / "one.msa"
    s.inav[col, row].save(path)
    t = hs.load(path, signal_type="EELS_MnValence")
    p = t.classify_mn_valence(show_progressbar=False)
    assert p.data.shape == (3,)
    np.testing.assert_allclose(p.data, expected[:, row, col], atol=1e-4)
    assert int(np.argmax(p.data)) + 2 == valence


def test_nexus_file_loads_as_several_signals(core, tmp_path):
    """A NeXus file reads back as the spectrum image plus its axes as signals: the
    classifier takes the EELS spectrum image, from Python and from the command line."""
    s, expected = core
    path = tmp_path / "core.nxs"
    _plain(s).save(path)
    loaded = hs.load(path, signal_type="EELS_MnValence")
    assert isinstance(loaded, list) and len(loaded) > 1
    spectra = [x for x in loaded if x.axes_manager.signal_dimension == 1 and x.data.ndim == 3]
    assert len(spectra) == 1
    _same(mnv.classify_mn_valence(spectra[0], show_progressbar=False), expected)
    out = tmp_path / "p.hspy"
    assert main(["classify", str(path), "-o", str(out), "--no-progress"]) == 0
    _same(hs.load(out), expected)


def test_emd_needs_its_energy_axis_named(core, tmp_path, capsys):
    """.emd (NCEM) loads with every axis a signal axis: the CLI says what to do, and
    doing it in Python gives the same result."""
    s, expected = core
    path = tmp_path / "core.emd"
    _plain(s).save(path)
    t = hs.load(path)
    assert t.axes_manager.signal_dimension == 3
    rc = main(["classify", str(path), "-o", str(tmp_path / "p.hspy"), "--no-progress"])
    assert rc != 0
    assert "as_signal1D" in capsys.readouterr().err
    (energy,) = [ax for ax in t.axes_manager.signal_axes if ax.units == "eV"]
    u = t.as_signal1D(energy)
    u.set_signal_type("EELS_MnValence")
    _same(u.classify_mn_valence(show_progressbar=False), expected)


@pytest.fixture
def dual_eels(core, tmp_path):
    """A dual-EELS-like .hspy: a low-loss (zero loss and plasmon) and the core-loss
    spectrum image, two experiments in one file (hs.load returns both)."""
    s, _ = core
    e = np.arange(-20.0, 200.0, 0.25)
    zlp = 1e5 * np.exp(-0.5 * (e / 0.4) ** 2) + 2e3 * np.exp(-0.5 * ((e - 15.0) / 4.0) ** 2)
    ll = hs.signals.Signal1D(np.broadcast_to(zlp, s.data.shape[:-1] + e.shape).copy())
    ll.set_signal_type("EELS")
    ax = ll.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = -20.0, 0.25, "eV", "Energy loss"
    ll.metadata.General.title = "Low-loss"
    path = tmp_path / "dual.hspy"
    ll.save(path)
    s.save(tmp_path / "core_only.hspy")
    with h5py.File(path, "a") as dst, h5py.File(tmp_path / "core_only.hspy") as src:
        src.copy(src["Experiments/High-loss"], dst["Experiments"], "High-loss")
    return path


def test_dual_eels_file_in_python(core, dual_eels):
    _, expected = core
    loaded = hs.load(dual_eels, signal_type="EELS_MnValence")
    assert isinstance(loaded, list) and len(loaded) == 2
    by_title = {x.metadata.General.title: x for x in loaded}
    with pytest.raises(ValueError, match="does not contain the Mn L2,3 edge"):
        mnv.classify_mn_valence(by_title["Low-loss"])
    _same(mnv.classify_mn_valence(by_title["High-loss"], show_progressbar=False), expected)


def test_dual_eels_file_from_the_command_line(core, dual_eels, tmp_path, capsys):
    _, expected = core
    out = tmp_path / "p.hspy"
    assert main(["classify", str(dual_eels), "-o", str(out), "--no-progress"]) == 0
    _same(hs.load(out), expected)  # the core loss was classified, the low loss left out
    assert str(out) in capsys.readouterr().out
