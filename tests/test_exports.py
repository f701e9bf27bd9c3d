"""Export of results and maps to TIFF and CSV (issue 18)."""

from __future__ import annotations

import csv

import hyperspy.api as hs
import numpy as np
import pytest

import hyperspy_mnvalence as mnv


@pytest.fixture(scope="module")
def small():
    s = mnv.make_demo_spectrum_image((8, 12), seed=2)
    p = s.classify_mn_valence(show_progressbar=False)
    return s, p


def _read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


def test_map_result_to_tiff_and_csv(small, tmp_path):
    s, p = small
    files = mnv.export_result(p, tmp_path / "out" / "si", formats=("tiff", "csv"))
    names = {f.name for f in files}
    expected = {
        "p_mn2",
        "p_mn3",
        "p_mn4",
        "most_likely_valence",
        "mean_valence",
        "confidence",
        "uncertainty",
        "no_edge",
        "spread_mn2",
        "spread_mn3",
        "spread_mn4",
        "l3_peak_eV",
        "reason",
        "range_flags",
    }
    assert names == {f"si_{k}.tif" for k in expected} | {"si.csv"}
    # TIFF: the values and the spatial calibration come back through hs.load
    t = hs.load(tmp_path / "out" / "si_p_mn3.tif")
    np.testing.assert_array_equal(t.data, p.data[1].astype(np.float32))
    ax_p = p.axes_manager.signal_axes[0]
    ax_t = t.axes_manager.signal_axes[0]
    assert ax_t.units == ax_p.units and ax_t.scale == pytest.approx(ax_p.scale)
    ml = hs.load(tmp_path / "out" / "si_most_likely_valence.tif").data
    np.testing.assert_array_equal(ml, mnv.most_likely_valence(p).data)
    ne = hs.load(tmp_path / "out" / "si_no_edge.tif").data
    assert ne.dtype == np.uint8
    np.testing.assert_array_equal(ne.astype(bool), np.isnan(p.data[0]))
    # CSV: one row per pixel, x fastest, calibrated positions, every map
    header, table = _read_csv(tmp_path / "out" / "si.csv")
    assert header[:4] == ["index_x", "index_y", "x (nm)", "y (nm)"]
    assert table.shape == (8 * 12, 4 + len(expected))
    col = {h: table[:, i] for i, h in enumerate(header)}
    np.testing.assert_array_equal(col["index_x"][:3], [0, 1, 2])
    np.testing.assert_allclose(
        col["x (nm)"], p.axes_manager.signal_axes[0].axis[col["index_x"].astype(int)]
    )
    np.testing.assert_allclose(col["p_mn2"], p.data[0].ravel(), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(
        col["mean_valence"], mnv.mean_valence(p).data.ravel(), rtol=1e-6, equal_nan=True
    )
    # nothing is overwritten unless asked
    with pytest.raises(FileExistsError, match="overwrite=True"):
        mnv.export_result(p, tmp_path / "out" / "si", formats=("csv",))
    assert mnv.export_result(p, tmp_path / "out" / "si", formats=("csv",), overwrite=True)


def test_line_scan_stack_and_white_line(small, tmp_path):
    s, p = small
    line = p.isig[:, 3]
    files = mnv.export_result(line, tmp_path / "line", formats=("tiff",))
    t = hs.load(tmp_path / "line_p_mn2.tif")
    assert t.data.shape == (1, 12)  # 1 x n, as documented
    np.testing.assert_array_equal(t.data[0], line.data[0].astype(np.float32))
    # the metadata maps are cut with an integer slice too: the same files as for the map
    assert len(files) == len(mnv.export_result(p, tmp_path / "whole", formats=("tiff",)))
    # a stack of maps: multi-page TIFF
    stack = hs.stack([s.inav[:, :4], s.inav[:, 4:]])
    ps = stack.classify_mn_valence(model="fast", show_progressbar=False)
    mnv.export_result(ps, tmp_path / "stack", formats=("tiff", "csv"))
    t = hs.load(tmp_path / "stack_uncertainty.tif")
    assert t.data.shape == (2, 4, 12)
    np.testing.assert_allclose(t.data, mnv.uncertainty(ps).data, rtol=1e-6, equal_nan=True)
    header, table = _read_csv(tmp_path / "stack.csv")
    assert header[:3] == ["index_x", "index_y", "index_stack_element"]
    assert table.shape[0] == 2 * 4 * 12
    # with the white-line cross-check
    r = mnv.white_line_ratio(s)
    mnv.export_result(p, tmp_path / "wl", formats=("csv",), white_line=r)
    header, table = _read_csv(tmp_path / "wl.csv")
    col = {h: table[:, i] for i, h in enumerate(header)}
    np.testing.assert_allclose(col["white_line_ratio"], r.data.ravel(), rtol=1e-6, equal_nan=True)
    assert "white_line_l3_eV" in col
    # one map of its own
    (f,) = mnv.export_result(r, tmp_path / "ratio", formats=("tiff",))
    assert f.name == "ratio_mn_l3_l2_white_line_ratio.tif"
    with pytest.raises(ValueError, match="formats must name"):
        mnv.export_result(p, tmp_path / "x", formats=("png",))


def test_spectra_are_refused_before_anything_is_written(small, tmp_path):
    # the input spectrum image instead of its result: one row per pixel and channel
    # (millions for a real map) used to be written
    s, _ = small
    plain = hs.signals.Signal1D(np.asarray(s.data))
    ax = plain.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = 600.0, 0.25, "eV"
    for spectra in (s, plain):
        with pytest.raises(ValueError, match="holds spectra .* not a Mn valence result"):
            mnv.export_result(spectra, tmp_path / "x" / "input")
    assert not (tmp_path / "x").exists()
