"""The top-level training/ scripts are runnable entry points with --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "training").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_script_help(script):
    r = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300
    )
    if r.returncode != 0 and "training extra" in (r.stdout + r.stderr):
        pytest.skip("the training extra is not installed")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage:" in r.stdout


def test_every_script_is_listed_in_the_training_readme():
    readme = (SCRIPTS[0].parent / "README.md").read_text()
    for s in SCRIPTS:
        assert f"training/{s.name}" in readme, s.name
