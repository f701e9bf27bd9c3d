"""What the command line does with the inputs it is given: a folder, and files of the
same name in different folders.

* A folder is not an input: ``mnvalence classify data/`` says so in one error line and
  writes nothing; with other inputs beside it, they are still classified (exit status
  1). The shell's ``data/*.hspy`` is the way to classify a folder's files.
* Two inputs with the same file name in different folders get different output files
  (``x_mn_valence.hspy`` and ``x_1_mn_valence.hspy``), each holding its own input's
  result, and the output lines say which input went where.
"""

from __future__ import annotations

import re
from pathlib import Path

import hyperspy.api as hs
import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.cli import main

SHAPE = (8, 10)
SEEDS = (11, 12, 13)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A folder of three demo spectrum images (seeds 11-13, the 2nd mirrored so that the
    files differ in layout too), with each one's in-memory probabilities and truth."""
    root = tmp_path_factory.mktemp("cli_inputs") / "data"
    root.mkdir()
    expected = {}
    for k, seed in enumerate(SEEDS):
        s = mnv.make_demo_spectrum_image(shape=SHAPE, seed=seed)
        region = np.asarray(s.metadata.Sample.region_truth)
        if k == 1:
            s.data = s.data[:, ::-1].copy()
            del s.metadata.Sample  # its truth is the unmirrored one
            region = region[:, ::-1]
        name = f"area_{k}.hspy"
        s.save(root / name)
        p = mnv.classify_mn_valence(s, show_progressbar=False)
        expected[name] = (np.asarray(p.data), region)
    return root, expected


def _check(path: Path, expected: np.ndarray, region: np.ndarray) -> None:
    got = np.asarray(hs.load(path).data)
    np.testing.assert_array_equal(np.isnan(got[0]), np.isnan(expected[0]))
    np.testing.assert_allclose(got, expected, atol=1e-5, equal_nan=True)
    ml = np.nanargmax(np.nan_to_num(got, nan=-1.0), axis=0) + 2
    grain = region >= 2
    assert np.mean(ml[grain] == region[grain]) > 0.9  # against the simulator's truth


def test_a_folder_input_is_one_clear_error(folder, tmp_path, capsys):
    root, _ = folder
    out = tmp_path / "res"
    rc = main(["classify", str(root), "-o", str(out), "--no-progress"])
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mnvalence: error: ")
    assert f"{root} is a folder" in err[0]
    assert "Traceback" not in err[0]
    assert not out.exists() or not list(out.iterdir())


def test_a_folder_beside_files_does_not_stop_them(folder, tmp_path, capsys):
    root, expected = folder
    out = tmp_path / "res"
    first = root / "area_0.hspy"
    rc = main(["classify", str(first), str(root), "-o", str(out), "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"{root} is a folder" in err and "1 of 2 inputs failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["area_0_mn_valence.hspy"]
    _check(out / "area_0_mn_valence.hspy", *expected["area_0.hspy"])


def test_the_files_of_a_folder(folder, tmp_path, capsys):
    """``mnvalence classify data/*.hspy -o res/``: one result per file, each its own."""
    root, expected = folder
    out = tmp_path / "res"
    inputs = sorted(str(p) for p in root.glob("*.hspy"))
    assert len(inputs) == len(SEEDS)
    assert main(["classify", *inputs, "-o", str(out), "--no-progress"]) == 0
    names = sorted(p.name for p in out.glob("*.hspy"))
    assert names == [f"area_{k}_mn_valence.hspy" for k in range(len(SEEDS))]
    for name, (p, region) in expected.items():
        _check(out / f"{Path(name).stem}_mn_valence.hspy", p, region)


def test_same_name_in_two_folders_gives_two_outputs(folder, tmp_path, capsys):
    root, expected = folder
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    # the same file name, different data: area_0's and area_1's spectra
    (a / "x.hspy").write_bytes((root / "area_0.hspy").read_bytes())
    (b / "x.hspy").write_bytes((root / "area_1.hspy").read_bytes())
    out = tmp_path / "res"
    rc = main(["classify", str(a / "x.hspy"), str(b / "x.hspy"), "-o", str(out), "--no-progress"])
    assert rc == 0
    assert sorted(p.name for p in out.glob("*.hspy")) == [
        "x_1_mn_valence.hspy",
        "x_mn_valence.hspy",
    ]
    lines = capsys.readouterr().out
    # each input is named with the output it went to
    assert re.search(
        rf"{re.escape(str(a / 'x.hspy'))} -> {re.escape(str(out / 'x_mn_valence.hspy'))}", lines
    )
    assert re.search(
        rf"{re.escape(str(b / 'x.hspy'))} -> {re.escape(str(out / 'x_1_mn_valence.hspy'))}", lines
    )
    _check(out / "x_mn_valence.hspy", *expected["area_0.hspy"])
    _check(out / "x_1_mn_valence.hspy", *expected["area_1.hspy"])
    # run again without --overwrite: both outputs exist, so nothing is replaced
    before = {p.name: p.read_bytes() for p in out.glob("*.hspy")}
    rc = main(["classify", str(a / "x.hspy"), str(b / "x.hspy"), "-o", str(out), "--no-progress"])
    assert rc != 0
    assert {p.name: p.read_bytes() for p in out.glob("*.hspy")} == before


def test_a_file_name_for_several_inputs_is_refused(folder, tmp_path, capsys):
    root, _ = folder
    out = tmp_path / "two.hspy"
    rc = main(["classify", str(root / "area_0.hspy"), str(root / "area_2.hspy"), "-o", str(out),
               "--no-progress"])  # fmt: skip
    assert rc == 1
    assert not out.exists()  # it used to become a folder of that name
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names a file, but there are 2 inputs" in err[0]


def test_demo_output_format_checked_before_the_work(tmp_path, capsys):
    rc = main(["demo", "-o", str(tmp_path / "demo.txt"), "--shape", "8", "8"])
    assert rc == 1
    captured = capsys.readouterr()
    assert "demo spectrum image" not in captured.out  # nothing was built
    assert "give a name ending in .png, .pdf or .svg" in captured.err
