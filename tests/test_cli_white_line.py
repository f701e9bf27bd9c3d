"""``mnvalence classify --white-line``: the classical cross-check from the shell."""

import hyperspy.api as hs
import numpy as np

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.cli import main


def test_white_line_map_beside_the_result(tmp_path, demo_small, capsys):
    src = tmp_path / "demo.hspy"
    demo_small.save(src)
    out = tmp_path / "out.hspy"
    assert main(["classify", str(src), "-o", str(out), "--white-line"]) == 0
    printed = capsys.readouterr().out
    wl_path = tmp_path / "out_white_line.hspy"
    assert str(wl_path) in printed and "median L3/L2" in printed
    wl, p = hs.load(wl_path), hs.load(out)
    # the same numbers as the Python function, NaN exactly where the network's map is
    np.testing.assert_allclose(wl.data, mnv.white_line_ratio(demo_small).data, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(wl.data), mnv.no_edge_mask(p).data)
    assert 1.5 < np.nanmedian(wl.data) < 5.0  # an L3/L2 ratio, not a probability


def test_an_existing_white_line_file_is_never_replaced(tmp_path, demo_small, capsys):
    src = tmp_path / "demo.hspy"
    demo_small.save(src)
    taken = tmp_path / "b_white_line.hspy"
    taken.write_bytes(b"someone's file")
    assert main(["classify", str(src), "-o", str(tmp_path / "b.hspy"), "--white-line"]) != 0
    assert "--white-line" in capsys.readouterr().err
    assert taken.read_bytes() == b"someone's file"
    assert not (tmp_path / "b.hspy").exists()  # refused before any work


def test_export_holds_the_white_line_maps_too(tmp_path, demo_small):
    src = tmp_path / "demo.hspy"
    demo_small.save(src)
    out = tmp_path / "out.hspy"
    assert main(["classify", str(src), "-o", str(out), "--white-line", "--export", "tiff", "csv",
                 "--no-progress"]) == 0  # fmt: skip
    tifs = {f.name for f in tmp_path.glob("out_*.tif")}
    assert {"out_white_line_ratio.tif", "out_white_line_l3_eV.tif"} <= tifs
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert "white_line_ratio" in header
    # the same files as the Python call with white_line=
    p = mnv.classify_mn_valence(demo_small, show_progressbar=False)
    files = mnv.export_result(
        p, tmp_path / "py" / "out", white_line=mnv.white_line_ratio(demo_small)
    )
    assert {f.name for f in files if f.suffix == ".tif"} == tifs
