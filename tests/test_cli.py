"""Tests of the ``mnvalence`` command line (in-process through ``main`` and one subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hyperspy_mnvalence.cli import main
from hyperspy_mnvalence.model import default_model_path

SHAPE = (12, 16)


@pytest.fixture(scope="module")
def model_path() -> Path:
    path = default_model_path()
    if not path.is_file():
        pytest.skip(
            f"the shipped model {path} is absent (not trained/exported yet); the CLI tests need it"
        )
    return path


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory, model_path) -> Path:
    from hyperspy_mnvalence.synthetic import make_demo_spectrum_image

    path = tmp_path_factory.mktemp("cli") / "demo_si.hspy"
    make_demo_spectrum_image(shape=SHAPE, seed=3).save(str(path))
    return path


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    from hyperspy_mnvalence.synthetic import demo_ground_truth

    return demo_ground_truth(SHAPE, seed=3)["region"]


def _load(path: Path):
    import hyperspy.api as hs

    return hs.load(str(path))


def _assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("mnvalence: error: ")
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], lines[0]


# --- classify ---------------------------------------------------------------------------


def test_classify_one_file_writes_hspy_and_png(tmp_path, demo_file, truth, capsys):
    out = tmp_path / "result.hspy"
    rc = main(["classify", str(demo_file), "-o", str(out), "--png", "--no-progress"])
    assert rc == 0
    assert out.is_file()
    assert out.with_suffix(".png").is_file()
    assert out.with_suffix(".png").stat().st_size > 1000
    p = _load(out)
    assert p.data.shape == (3,) + SHAPE
    # the written probabilities are the classification: compare with the demo's truth
    grain = truth >= 2
    ml = 2 + np.argmax(np.nan_to_num(p.data, nan=-1.0), axis=0)
    assert np.mean(ml[grain] == truth[grain]) > 0.8
    assert np.all(np.isnan(p.data[:, truth == 0]))  # vacuum: no edge
    assert p.metadata.has_item("MnValence.l3_peak_eV")
    stdout = capsys.readouterr().out
    assert str(out) in stdout and "Mn2+:" in stdout


def test_out_of_range_warning_reaches_the_shell_once(tmp_path, demo_file, capsys):
    # the 1ev model on 0.25 eV/channel data: the API warns; the command line, which
    # silences the libraries' warnings, must print the package's own on stderr
    rc = main(["classify", str(demo_file), "-o", str(tmp_path / "r.hspy"), "--model", "1ev",
               "--no-progress"])  # fmt: skip
    assert rc == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("mnvalence: warning:")]
    assert len(lines) == 1
    assert str(demo_file) in lines[0] and "1 eV per channel the model was trained on" in lines[0]


def test_warning_words_are_the_command_line_s():
    from hyperspy_mnvalence.cli._messages import cli_speak

    msg = (
        "pass the low-loss spectrum image (low_loss=) to deconvolve it, or use model='acquisition'"
    )
    assert cli_speak(msg) == (
        "pass the low-loss spectrum image (--low-loss FILE) to deconvolve it, or use "
        "--model acquisition"
    )


def test_classify_several_inputs_into_folder(tmp_path, demo_file):
    second = tmp_path / "other.hspy"
    shutil.copy(demo_file, second)
    folder = tmp_path / "results"
    rc = main(["classify", str(demo_file), str(second), "-o", str(folder), "--no-progress"])
    assert rc == 0
    written = sorted(f.name for f in folder.glob("*.hspy"))
    assert written == ["demo_si_mn_valence.hspy", "other_mn_valence.hspy"]


def test_classify_lazy_matches_eager(tmp_path, demo_file):
    eager, lazy = tmp_path / "eager.hspy", tmp_path / "lazy.hspy"
    assert main(["classify", str(demo_file), "-o", str(eager), "--no-progress"]) == 0
    assert main(["classify", str(demo_file), "-o", str(lazy), "--lazy", "--no-progress"]) == 0
    np.testing.assert_allclose(_load(lazy).data, _load(eager).data, atol=1e-5)


def test_classify_options_reach_the_library(tmp_path, demo_file):
    out = tmp_path / "opts.hspy"
    rc = main(
        [
            "classify",
            str(demo_file),
            "-o",
            str(out),
            "--energy-window",
            "625",
            "665",
            "--no-progress",
        ]
    )
    assert rc == 0
    params = _load(out).metadata.MnValence.parameters.as_dictionary()
    assert params["energy_window"] == [625.0, 665.0]
    assert params["background"] == "auto"
    out2 = tmp_path / "nobg.hspy"
    assert main(["classify", str(demo_file), "-o", str(out2), "--no-background"]) == 0
    assert _load(out2).metadata.MnValence.parameters.background == "none"


# --- decompose (mixed valence) ------------------------------------------------------------


def test_decompose_writes_fractions_and_mean_oxidation_state(tmp_path, demo_file, capsys):
    out = tmp_path / "fractions.hspy"
    rc = main(["decompose", str(demo_file), "-o", str(out), "--png", "--no-progress"])
    assert rc == 0
    assert out.with_suffix(".png").stat().st_size > 1000
    f = _load(out)
    assert f.data.shape == (3,) + SHAPE
    assert f.metadata.MnValence.task == "fractions"
    from hyperspy_mnvalence.synthetic import demo_ground_truth

    truth = demo_ground_truth(SHAPE, seed=3)
    mos = f.metadata.MnValence.mean_valence.data
    mn = (truth["region"] >= 2) & np.isfinite(mos)
    assert mn.sum() > 0.9 * (truth["region"] >= 2).sum()  # edge found on most Mn pixels
    np.testing.assert_allclose(f.data.sum(axis=0)[mn], 1.0, atol=1e-5)
    true_mos = np.tensordot([2.0, 3.0, 4.0], truth["fractions"], axes=1)
    assert np.mean(np.abs(mos - true_mos)[mn]) < 0.3
    assert np.all(np.isnan(mos[truth["region"] == 0]))  # vacuum: no edge
    assert f.metadata.MnValence.mean_valence_std.data.shape == SHAPE
    stdout = capsys.readouterr().out
    median = float(stdout.split("median ")[1].split(" ")[0])
    assert median == pytest.approx(np.nanmedian(mos), abs=0.005)


def test_decompose_lazy_matches_eager_and_names_outputs(tmp_path, demo_file):
    eager, folder = tmp_path / "eager.hspy", tmp_path / "lazy"
    second = tmp_path / "other.hspy"
    shutil.copy(demo_file, second)
    assert main(["decompose", str(demo_file), "-o", str(eager), "--no-progress"]) == 0
    rc = main(["decompose", str(demo_file), str(second), "-o", str(folder), "--lazy"])
    assert rc == 0
    assert sorted(p.name for p in folder.glob("*.hspy")) == [
        "demo_si_mn_fractions.hspy",
        "other_mn_fractions.hspy",
    ]
    lazy = _load(folder / "demo_si_mn_fractions.hspy")
    np.testing.assert_allclose(lazy.data, _load(eager).data, atol=1e-5)
    np.testing.assert_allclose(
        lazy.metadata.MnValence.mean_valence.data,
        _load(eager).metadata.MnValence.mean_valence.data,
        atol=1e-5,
    )


def test_decompose_rejects_a_classification_model(tmp_path, demo_file, capsys):
    out = tmp_path / "x.hspy"
    assert main(["decompose", str(demo_file), "-o", str(out), "--model", "fast"]) == 1
    _assert_one_error_line(capsys.readouterr().err, "not a fraction model")
    assert not out.exists()


# --- errors: one line on stderr, non-zero exit ------------------------------------------


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.dm4"
    rc = main(["classify", str(missing), "-o", str(tmp_path / "x.hspy")])
    assert rc == 1
    _assert_one_error_line(capsys.readouterr().err, str(missing), "no such file")
    assert not (tmp_path / "x.hspy").exists()


def test_unreadable_file(tmp_path, capsys):
    bad = tmp_path / "broken.hspy"
    bad.write_bytes(b"this is not HDF5")
    rc = main(["classify", str(bad), "-o", str(tmp_path / "x.hspy")])
    assert rc == 1
    _assert_one_error_line(capsys.readouterr().err, str(bad), "could not be read")


def test_low_loss_spectrum_has_no_mn_edge(tmp_path, capsys, model_path):
    import exspy

    energy = np.linspace(-5.0, 45.0, 500)
    zlp = np.exp(-0.5 * (energy / 0.4) ** 2) + 0.05 * np.exp(-0.5 * ((energy - 22) / 5) ** 2)
    s = exspy.signals.EELSSpectrum(np.tile(zlp, (3, 4, 1)).astype(np.float32))
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = -5.0, float(energy[1] - energy[0]), "eV"
    path = tmp_path / "low_loss.hspy"
    s.save(str(path))
    rc = main(["classify", str(path), "-o", str(tmp_path / "x.hspy")])
    assert rc == 1
    _assert_one_error_line(capsys.readouterr().err, str(path), "Mn L2,3")
    assert not (tmp_path / "x.hspy").exists()


def test_image_is_not_a_spectrum(tmp_path, capsys, model_path):
    import hyperspy.api as hs

    path = tmp_path / "haadf.hspy"
    hs.signals.Signal2D(np.ones((8, 8), np.float32)).save(str(path))
    rc = main(["classify", str(path), "-o", str(tmp_path / "x.hspy")])
    assert rc == 1
    _assert_one_error_line(capsys.readouterr().err, "no EELS spectrum")


def test_energy_window_without_mn(tmp_path, demo_file, capsys):
    rc = main(
        [
            "classify",
            str(demo_file),
            "-o",
            str(tmp_path / "x.hspy"),
            "--energy-window",
            "690",
            "715",
            "--no-progress",
        ]
    )
    assert rc == 1
    _assert_one_error_line(capsys.readouterr().err, "no pixel has a Mn L2,3 edge")
    assert not (tmp_path / "x.hspy").exists()


def test_missing_model_file(tmp_path, demo_file, capsys):
    rc = main(["classify", str(demo_file), "-o", str(tmp_path / "x.hspy"), "--model", "no.onnx"])
    assert rc == 1
    _assert_one_error_line(capsys.readouterr().err, "no.onnx")


def test_output_format_and_model_name_checked_before_any_work(
    tmp_path, demo_file, capsys, monkeypatch
):
    from hyperspy_mnvalence import classification

    def must_not_run(*args, **kwargs):
        raise AssertionError("classified before the arguments were checked")

    monkeypatch.setattr(classification, "classify_spectra", must_not_run)
    assert main(["classify", str(demo_file), "-o", str(tmp_path / "maps.png")]) == 1
    _assert_one_error_line(capsys.readouterr().err, "written as .hspy")
    assert main(["classify", str(demo_file), "-o", str(tmp_path / "x.hspy"), "--model", "FAST"])
    _assert_one_error_line(
        capsys.readouterr().err,
        "ensemble, fast, lite, acquisition, thin, broad, 1ev, weak, fractions",
    )
    assert not list(tmp_path.iterdir())


def test_model_of_the_other_task_and_demo_outputs_refused_up_front(
    tmp_path, demo_file, capsys, monkeypatch
):
    from hyperspy_mnvalence import classification

    def must_not_run(*args, **kwargs):
        raise AssertionError("classified before the arguments were checked")

    monkeypatch.setattr(classification, "classify_spectra", must_not_run)
    out = str(tmp_path / "x.hspy")
    assert main(["classify", str(demo_file), "-o", out, "--model", "fractions"]) == 1
    _assert_one_error_line(capsys.readouterr().err, "use it with 'mnvalence decompose'")
    assert main(["demo", "--fractions", "--model", "fast", "-o", str(tmp_path / "d.png")]) == 1
    _assert_one_error_line(capsys.readouterr().err, "not a fraction model")
    assert main(["demo", "--hspy", str(tmp_path / "p.tif"), "-o", str(tmp_path / "d.png")]) == 1
    _assert_one_error_line(capsys.readouterr().err, "--hspy", "give a .hspy file")
    assert not list(tmp_path.iterdir())


def test_output_with_a_trailing_slash_is_a_folder(tmp_path, demo_file):
    rc = main(["classify", str(demo_file), "-o", f"{tmp_path / 'results'}/", "--no-progress"])
    assert rc == 0
    assert (tmp_path / "results" / "demo_si_mn_valence.hspy").is_file()


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["classify"]) == 2
    assert main(["classify", "a.hspy", "-o", "b.hspy", "--energy-window", "1"]) == 2
    assert main(["--version"]) == 0
    assert "mnvalence" in capsys.readouterr().out


# --- demo and info ----------------------------------------------------------------------


def test_demo_writes_maps_and_summary(tmp_path, capsys, model_path):
    png, h5 = tmp_path / "maps.png", tmp_path / "demo_p.hspy"
    rc = main(["demo", "-o", str(png), "--hspy", str(h5), "--shape", "12", "16", "--no-progress"])
    assert rc == 0
    assert png.is_file() and png.stat().st_size > 1000
    assert _load(h5).data.shape == (3, 12, 16)
    out = capsys.readouterr().out
    assert "accuracy on Mn pixels" in out
    assert "no Mn edge" in out
    acc = float(
        out.split("accuracy on Mn pixels (majority valence of the grain): ")[1].split("%")[0]
    )
    assert acc > 80.0


def test_demo_fractions_reports_the_error_against_the_truth(tmp_path, capsys, model_path):
    png = tmp_path / "fractions.png"
    rc = main(["demo", "--fractions", "-o", str(png), "--shape", "12", "16", "--no-progress"])
    assert rc == 0
    assert png.stat().st_size > 1000
    out = capsys.readouterr().out
    mae = float(out.split("vs the demo's truth: MAE ")[1].split(" ")[0])
    constant = float(out.split("a constant 3 would score ")[1].split(")")[0])
    assert mae < 0.3 < constant


def test_info_prints_model_card(capsys, model_path):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cv_accuracy" in out
    assert "Mn2+, Mn3+, Mn4+" in out
    assert "titan_mn_valence.npz" in out
    assert main(["info", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["classes"] == [2, 3, 4]
    assert 0.0 < card["metrics"]["cv_accuracy"] <= 1.0


# --- the installed console script -------------------------------------------------------


def test_console_script_error_is_one_line(tmp_path):
    script = Path(sys.executable).parent / "mnvalence"
    if not script.is_file():
        script_on_path = shutil.which("mnvalence")
        if script_on_path is None:
            pytest.skip("the mnvalence console script is not installed (pip install the package)")
        script = Path(script_on_path)
    bad = tmp_path / "broken.dm4"
    bad.write_bytes(b"\x00" * 64)
    res = subprocess.run(
        [str(script), "classify", str(bad), "-o", str(tmp_path / "out.hspy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    # a real process: HyperSpy's import-time and load-error log lines must not leak
    _assert_one_error_line(res.stderr, str(bad))
