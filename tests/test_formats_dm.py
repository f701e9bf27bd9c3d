"""Gatan DigitalMicrograph files (.dm3, .dm4) read with ``hs.load`` and classified.

RosettaSciIO reads these files but cannot write them: ``tests/_dm_writer.py`` writes
minimal ones (from the format's public description) holding spectra of the package's
simulator. Checked: the spectrum image of a .dm3 and a .dm4 file, eager and lazy, in
Python and from the command line, gives the classification of the same spectra in
memory and the simulator's truth; a line scan; a single spectrum; a dual-EELS-like file with a
low-loss and a core-loss spectrum image (two images in its ``ImageList``), which
``hs.load`` returns as a list and of which the core loss is classified.
"""

from __future__ import annotations

import struct

import hyperspy.api as hs
import numpy as np
import pytest
from _dm_writer import write_dm

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.cli import main

SHAPE = (8, 10)


@pytest.fixture(scope="module")
def core():
    """A demo spectrum image (seed 4; float32, as DigitalMicrograph records), its
    classification in memory and the simulator's truth (fractions)."""
    s = mnv.make_demo_spectrum_image(shape=SHAPE, seed=4)
    s.change_dtype("float32")
    s.metadata.General.title = "Core-loss"
    p = mnv.classify_mn_valence(s, show_progressbar=False)
    return s, np.asarray(p.data), np.asarray(s.metadata.Sample.mn_fractions_truth)


def _same(p, expected):
    got = np.asarray(p.data)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, atol=1e-5, equal_nan=True)


def _matches_truth(p, frac):
    """The most likely valence is the simulator's on the pixels of one valence, and the
    pixels without Mn (vacuum, substrate) have no Mn edge."""
    got = np.asarray(p.data)
    ml = np.asarray(mnv.most_likely_valence(p).data)
    pure = frac.max(0) >= 0.999
    assert pure.sum() >= 20
    assert np.mean(ml[pure] == frac.argmax(0)[pure] + 2) > 0.95
    no_mn = frac.sum(0) == 0
    assert no_mn.sum() >= 10
    assert np.mean(np.isnan(got[0][no_mn])) > 0.9


@pytest.mark.parametrize("version", [3, 4])
def test_header(core, tmp_path, version):
    s, _, _ = core
    path = write_dm(tmp_path / f"core.dm{version}", s)
    raw = path.read_bytes()
    word = ">I" if version == 3 else ">Q"
    n = struct.calcsize(word)
    assert struct.unpack(">I", raw[:4]) == (version,)
    assert struct.unpack(word, raw[4 : 4 + n]) == (len(raw) - 8 - n,)  # the rest of the file
    assert struct.unpack(">I", raw[4 + n : 8 + n]) == (1,)  # little-endian values
    assert len(raw) > s.data.nbytes  # the spectra are all there


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize("version", [3, 4])
def test_spectrum_image(core, tmp_path, version, lazy):
    s, expected, frac = core
    path = write_dm(tmp_path / f"core.dm{version}", s)
    t = hs.load(path, signal_type="EELS_MnValence", lazy=lazy)
    assert t._lazy is lazy
    assert t.data.shape == s.data.shape
    (energy,) = t.axes_manager.signal_axes
    assert energy.units == "eV"
    assert (energy.offset, energy.scale) == pytest.approx((580.0, 0.25))
    assert [a.scale for a in t.axes_manager.navigation_axes] == pytest.approx([0.5, 0.5])
    np.testing.assert_array_equal(np.asarray(t.data), s.data)
    p = t.classify_mn_valence(show_progressbar=False)
    if lazy:
        p.compute()
    _same(p, expected)
    _matches_truth(p, frac)


@pytest.mark.parametrize("version", [3, 4])
def test_spectrum_image_from_the_command_line(core, tmp_path, version):
    s, expected, frac = core
    path = write_dm(tmp_path / f"core.dm{version}", s)
    out = tmp_path / "p.hspy"
    assert main(["classify", str(path), "-o", str(out), "--no-progress"]) == 0
    p = hs.load(out)
    _same(p, expected)
    _matches_truth(p, frac)


@pytest.mark.parametrize("version", [3, 4])
def test_line_scan(core, tmp_path, version):
    """A line scan (one navigation axis, stored energy-fastest)."""
    s, expected, frac = core
    line = s.inav[:, 3]
    t = hs.load(write_dm(tmp_path / f"line.dm{version}", line), signal_type="EELS_MnValence")
    assert t.axes_manager.navigation_shape == (SHAPE[1],)
    np.testing.assert_array_equal(t.data, line.data)
    p = t.classify_mn_valence(show_progressbar=False)
    _same(p, expected[:, 3])
    ml = np.asarray(mnv.most_likely_valence(p).data)
    pure = frac[:, 3].max(0) >= 0.999
    np.testing.assert_array_equal(ml[pure], frac[:, 3].argmax(0)[pure] + 2)


def test_single_spectrum(core, tmp_path):
    s, expected, frac = core
    pure = np.argwhere(frac.max(0) >= 0.999)
    row, col = (int(i) for i in pure[len(pure) // 2])
    one = s.inav[col, row]
    one.metadata.General.title = "one spectrum"
    t = hs.load(write_dm(tmp_path / "one.dm3", one), signal_type="EELS_MnValence")
    assert t.axes_manager.navigation_dimension == 0
    p = t.classify_mn_valence(show_progressbar=False)
    assert p.data.shape == (3,)
    np.testing.assert_allclose(p.data, expected[:, row, col], atol=1e-5)
    assert int(np.argmax(p.data)) == int(np.argmax(frac[:, row, col]))


@pytest.fixture
def dual_eels(core, tmp_path):
    """A dual-EELS-like .dm4: a low-loss (zero loss and plasmon) and the core-loss
    spectrum image of the same pixels, two images of one file."""
    s, _, _ = core
    e = np.arange(-20.0, 200.0, 0.25)
    zlp = 1e5 * np.exp(-0.5 * (e / 0.4) ** 2) + 2e3 * np.exp(-0.5 * ((e - 15.0) / 4.0) ** 2)
    ll = hs.signals.Signal1D(np.broadcast_to(zlp, s.data.shape[:-1] + e.shape).astype("float32"))
    for dst, src in zip(
        ll.axes_manager.navigation_axes, s.axes_manager.navigation_axes, strict=True
    ):
        dst.scale, dst.offset, dst.units = src.scale, src.offset, src.units
    ax = ll.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = -20.0, 0.25, "eV"
    ll.metadata.General.title = "Low-loss"
    return write_dm(tmp_path / "dual.dm4", [ll, s])


def test_dual_eels_file_in_python(core, dual_eels):
    _, expected, frac = core
    loaded = hs.load(dual_eels, signal_type="EELS_MnValence")
    assert isinstance(loaded, list) and len(loaded) == 2
    by_title = {x.metadata.General.title: x for x in loaded}
    assert set(by_title) == {"Low-loss", "Core-loss"}
    assert by_title["Low-loss"].axes_manager.signal_axes[0].offset == pytest.approx(-20.0)
    with pytest.raises(ValueError, match=r"Mn L(2,)?3 edge"):  # the low loss has none
        mnv.classify_mn_valence(by_title["Low-loss"])
    p = mnv.classify_mn_valence(by_title["Core-loss"], show_progressbar=False)
    _same(p, expected)
    _matches_truth(p, frac)


def test_dual_eels_file_from_the_command_line(core, dual_eels, tmp_path, capsys):
    _, expected, _ = core
    out = tmp_path / "p.hspy"
    assert main(["classify", str(dual_eels), "-o", str(out), "--no-progress"]) == 0
    _same(hs.load(out), expected)  # the core loss was classified, the low loss left out
    assert sorted(p.name for p in tmp_path.glob("p*.hspy")) == ["p.hspy"]
    assert str(out) in capsys.readouterr().out
