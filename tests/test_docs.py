"""The documentation builds without warnings (``sphinx-build -W``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
_NEEDED = ("sphinx", "pydata_sphinx_theme", "numpydoc", "myst_parser")


@pytest.mark.slow
def test_sphinx_build_without_warnings(tmp_path):
    missing = [m for m in _NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"documentation tools not installed ({', '.join(missing)}): pip install -e '.[docs]'"
        )
    out = tmp_path / "html"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, (
        f"sphinx-build -W failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
    )
    for page in (
        "index",
        "getting_started",
        "user_guide",
        "api",
        "training",
        "model_card",
        "cluster",
    ):
        assert (out / f"{page}.html").is_file(), page
    api = (out / "api.html").read_text(encoding="utf-8")
    assert "classify_mn_valence" in api and "no_edge_mask" in api
