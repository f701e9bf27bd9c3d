"""Training entry points fail with named errors (issue 15, defect 8)."""

from __future__ import annotations

import sys

import pytest


def test_training_command_without_the_extra_names_it(monkeypatch, capsys, tmp_path):
    from hyperspy_mnvalence.training.__main__ import main

    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were absent
    rc = main(["--smoke", "--out", str(tmp_path / "m.onnx")])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "'training' extra" in err[0] and "scikit-learn" in err[0]
    assert "pip install 'hyperspy_mnvalence[training]'" in err[0]
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("step", [0, -0.1, float("nan"), "abc"])
def test_load_labelled_folder_bad_step_is_named(tmp_path, step):
    from hyperspy_mnvalence.training.userdata import load_labelled_folder

    with pytest.raises(ValueError, match="step must be a positive number"):
        load_labelled_folder(tmp_path, step=step)
