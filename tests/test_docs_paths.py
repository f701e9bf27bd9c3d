"""Every report the documentation points to is in the checkout.

``training/reports/`` holds the shipped models' reports only; history lives in git.
A report that left the folder is cited as ``COMMIT:training/reports/NAME``, which
``git show`` opens, so a bare ``reports/NAME`` must name a file that is here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [
    "training/README.md",
    "README.md",
    *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.rst")),
]
# a path to reports/, with the "COMMIT:" of a git citation when there is one
REPORT = re.compile(r"(?<![\w/])([\w^~]+:)?(?:training/)?reports/([\w.*/-]+)")


def cited_reports(text: str) -> list[str]:
    """Names under ``training/reports/`` cited as present in ``text``."""
    return [m.group(2).rstrip(".") for m in REPORT.finditer(text) if not m.group(1)]


def _exists(name: str) -> bool:
    base = REPO / "training" / "reports"
    return any(base.glob(name)) if "*" in name else (base / name.rstrip("/")).exists()


@pytest.mark.parametrize("doc", DOCS)
def test_cited_reports_exist(doc):
    path = REPO / doc
    if not path.exists():
        pytest.skip(f"{doc} is not in this checkout")
    missing = [n for n in cited_reports(path.read_text(encoding="utf-8")) if not _exists(n)]
    assert missing == []


def test_citation_pattern():
    text = (
        "see `reports/limits.json`, `training/reports/thin/suite.json`, in git at "
        "`cbc97d6^:training/reports/gone.json` and `3358875:training/reports/old.json`"
    )
    assert cited_reports(text) == ["limits.json", "thin/suite.json"]
    assert not _exists("no_such_report.json")
