"""The command line loses nothing: no input or existing file replaced, every input of a
batch processed, clear one-line errors (issue 15, defects 1-2; issue 18, CLI)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hyperspy_mnvalence.cli import main

SHAPE = (8, 10)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    import hyperspy_mnvalence as mnv

    path = tmp_path_factory.mktemp("cli_safety") / "si.hspy"
    mnv.make_demo_spectrum_image(shape=SHAPE, seed=5).save(str(path))
    return path


@pytest.fixture
def work(tmp_path, demo_file) -> Path:
    """A copy of the demo file in a fresh folder."""
    dst = tmp_path / "data.hspy"
    dst.write_bytes(demo_file.read_bytes())
    return dst


def _err_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("extra", [[], ["--lazy"], ["--overwrite"], ["--lazy", "--overwrite"]])
def test_output_onto_the_input_is_refused_even_with_overwrite(work, capsys, extra):
    before = _sha(work)
    same = work.parent / "." / work.name  # the same file, spelt differently
    rc = main(["classify", str(work), "-o", str(same), "--no-progress", *extra])
    assert rc == 1
    (line,) = _err_lines(capsys)
    assert "is the input file" in line and "--overwrite" in line
    assert _sha(work) == before


def test_existing_output_and_png_kept_unless_overwrite(work, tmp_path, capsys):
    out = tmp_path / "out.hspy"
    out.write_bytes(b"precious results")
    rc = main(["classify", str(work), "-o", str(out), "--no-progress", "--model", "lite"])
    assert rc == 1
    assert "exists; pass --overwrite" in _err_lines(capsys)[0]
    assert out.read_bytes() == b"precious results"
    # the PNG next to it is checked too, before any work
    out2, png = tmp_path / "out2.hspy", tmp_path / "out2.png"
    png.write_bytes(b"precious figure")
    rc = main(["classify", str(work), "-o", str(out2), "--png", "--model", "lite"])
    assert rc == 1
    assert "--png" in _err_lines(capsys)[0]
    assert png.read_bytes() == b"precious figure" and not out2.exists()
    # --overwrite replaces them
    rc = main(["classify", str(work), "-o", str(out2), "--png", "--overwrite", "--model", "lite"])
    assert rc == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and out2.stat().st_size > 1000


def test_existing_batch_output_kept(work, tmp_path, capsys):
    folder = tmp_path / "res"
    folder.mkdir()
    old = folder / "data_mn_valence.hspy"
    old.write_bytes(b"earlier run")
    second = tmp_path / "second.hspy"
    second.write_bytes(work.read_bytes())
    rc = main(["classify", str(work), str(second), "-o", str(folder), "--model", "lite"])
    assert rc == 1
    err = _err_lines(capsys)
    assert any("data_mn_valence.hspy exists" in e for e in err)
    assert old.read_bytes() == b"earlier run"
    assert (folder / "second_mn_valence.hspy").is_file()  # the other input still done


def test_batch_goes_on_after_a_bad_file(work, tmp_path, capsys):
    import hyperspy.api as hs

    zeros = hs.load(str(work))
    zeros.data[:] = 0
    bad = tmp_path / "zeros.hspy"
    zeros.save(str(bad))
    missing = tmp_path / "missing.hspy"
    good2 = tmp_path / "good2.hspy"
    good2.write_bytes(work.read_bytes())
    out = tmp_path / "out"
    args = [str(work), str(bad), str(missing), str(good2)]
    rc = main(["classify", *args, "-o", str(out), "--model", "lite", "--no-progress"])
    assert rc == 1
    err = _err_lines(capsys)
    assert len(err) == 3, err  # one line per failure, then the summary
    assert str(bad) in err[0] and "Mn L2,3 edge" in err[0]
    assert str(missing) in err[1] and "no such file" in err[1]
    assert err[2].startswith("mnvalence: 2 of 4 inputs failed")
    assert (out / "data_mn_valence.hspy").is_file()
    assert (out / "good2_mn_valence.hspy").is_file()
    assert not (out / "zeros_mn_valence.hspy").exists()


def test_demo_outputs_never_written_twice_or_over_a_file(tmp_path, capsys):
    x = tmp_path / "x.hspy"
    png = tmp_path / "d.png"
    rc = main(["demo", "-o", str(png), "--save-input", str(x), "--hspy", str(x)])
    assert rc == 1
    assert "written twice" in _err_lines(capsys)[0]
    assert not x.exists() and not png.exists()
    png.write_bytes(b"keep")
    assert main(["demo", "-o", str(png), "--shape", "8", "8"]) == 1
    assert "exists; pass --overwrite" in _err_lines(capsys)[0]
    assert png.read_bytes() == b"keep"


def test_demo_too_large_is_one_line(tmp_path, capsys):
    rc = main(["demo", "-o", str(tmp_path / "d.png"), "--shape", "300000", "300000"])
    assert rc == 1
    (line,) = _err_lines(capsys)
    assert "--shape 300000 300000 needs about" in line and "GiB" in line
    assert not list(tmp_path.iterdir())


def test_background_min_snr_options_reach_the_library(work, tmp_path):
    import hyperspy.api as hs

    out = tmp_path / "o.hspy"
    rc = main(
        [
            "classify", str(work), "-o", str(out), "--model", "lite", "--background",
            "constant", "--background-window", "600", "625", "--min-snr", "3",
        ]
    )  # fmt: skip
    assert rc == 0
    par = hs.load(str(out)).metadata.MnValence.parameters.as_dictionary()
    assert par["background"] == "constant"
    assert par["background_window"] == [600.0, 625.0]
    assert par["min_snr"] == 3.0


def test_errors_speak_cli(work, tmp_path, capsys):
    rc = main(["classify", str(work), "-o", str(tmp_path / "o.hspy"), "--min-snr", "-1"])
    assert rc == 1
    assert "--min-snr" in _err_lines(capsys)[0]
    bw = ["--background-window", "700", "720"]
    rc = main(["classify", str(work), "-o", str(tmp_path / "o.hspy"), *bw])
    assert rc == 1
    (line,) = _err_lines(capsys)
    assert "--background-window" in line and "background_window" not in line
    rc = main(["classify", str(work), "-o", str(tmp_path / "o.hspy"), "--energy-window", "1", "2"])
    assert rc == 1
    (line,) = _err_lines(capsys)
    assert "--energy-window LO HI" in line and "energy_window" not in line


def test_decompose_prints_mean_and_median(work, tmp_path, capsys):
    import hyperspy.api as hs

    out = tmp_path / "f.hspy"
    assert main(["decompose", str(work), "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    mos = np.asarray(hs.load(str(out)).metadata.MnValence.mean_valence.data, dtype=float)
    mos = mos[np.isfinite(mos)]
    assert f"mean {np.mean(mos):.2f}, median {np.median(mos):.2f}" in text


def test_closed_pipe_exits_cleanly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperspy_mnvalence", "info", "--full"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Broken pipe" not in err and "Traceback" not in err, err


def test_batch_size_and_export_options(work, tmp_path, capsys):
    out = tmp_path / "e.hspy"
    rc = main(
        ["classify", str(work), "-o", str(out), "--model", "lite", "--batch-size", "7",
         "--export", "tiff", "csv"]
    )  # fmt: skip
    assert rc == 0
    assert (tmp_path / "e.csv").is_file()
    assert (tmp_path / "e_most_likely.tif").is_file() or list(tmp_path.glob("e_*.tif"))
    csv = (tmp_path / "e.csv").read_bytes()
    # again: the export files exist, so nothing is replaced without --overwrite
    out.unlink()
    assert main(["classify", str(work), "-o", str(out), "--model", "lite", "--export", "csv"]) == 1
    assert "exist" in _err_lines(capsys)[-1]
    assert (tmp_path / "e.csv").read_bytes() == csv and not out.exists()
    assert main(["classify", str(work), "-o", str(out), "--batch-size", "0"]) == 1
    assert "--batch-size" in _err_lines(capsys)[-1]
