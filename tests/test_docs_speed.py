"""Speed figures are stated once, from one recorded benchmark run (issue 18): the
reference section of ``benchmarks/RESULTS.md`` is consistent with itself, the README's
table quotes it, and no other page of the documentation states a speed figure of its
own (the drift the issue found: three different ``lite``/``fast`` ratios)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Rows of the reference table, in the order the README quotes them.
ROWS = (
    "ensemble",
    '`model="fast"`',
    '`model="lite"`',
    '`model="acquisition"`',
    "fractions",
    "exspy",
)


def _reference() -> tuple[str, int, dict[str, tuple[float, int]]]:
    """The reference section, its number of spectra and ``{row: (CPU s, rate)}``."""
    m = re.search(r"^## Reference run.*?(?=^## )", RESULTS, flags=re.S | re.M)
    assert m, "benchmarks/RESULTS.md has no reference-run section"
    section = m.group(0)
    assert RESULTS.index("## Reference run") < RESULTS.index("## 2026-11-25")  # the first run
    n = int(re.search(r"\(([\d,]+) spectra of 2,048 channels\)", section).group(1).replace(",", ""))
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[\d.]+", cells[1]):
            key = next(k for k in ROWS if cells[0].startswith(k))
            rows[key] = (float(cells[1]), int(cells[3].replace(",", "")))
    assert list(rows) == list(ROWS)
    return section, n, rows


def _two_figures(x: float) -> int:
    return int(float(f"{x:.2g}"))


def test_reference_run_is_consistent_with_itself():
    section, n, rows = _reference()
    for key, (cpu, rate) in rows.items():
        assert rate == _two_figures(n / cpu), key  # spectra per CPU second, 2 figures
    cpu = {k: v[0] for k, v in rows.items()}
    # every ratio the section states follows from its table
    stated = {
        r"`fast` costs 1/([\d.]+) of the ensemble": cpu["ensemble"] / cpu['`model="fast"`'],
        r"`lite` 1/([\d.]+) of\s+`fast`": cpu['`model="fast"`'] / cpu['`model="lite"`'],
        r"the ensemble costs ([\d.]+) times": cpu["ensemble"] / cpu["exspy"],
        r"`fast` ([\d.]+), `lite`": cpu['`model="fast"`'] / cpu["exspy"],
        r"`lite` ([\d.]+) and the fraction": cpu['`model="lite"`'] / cpu["exspy"],
        r"fraction model ([\d.]+)\.": cpu["fractions"] / cpu["exspy"],
    }
    text = " ".join(section.split())
    for pattern, ratio in stated.items():
        m = re.search(pattern, text)
        assert m, pattern
        assert float(m.group(1)) == pytest.approx(ratio, rel=0.03), pattern


def test_readme_quotes_the_reference_run():
    _, _, rows = _reference()
    (row,) = [ln for ln in README.splitlines() if ln.startswith("| speed")]
    assert "reference run" in row and "benchmarks/RESULTS.md#reference-run" in row
    figures = row.rstrip(" |").rsplit("|", 1)[1].strip()
    assert figures == " / ".join(f"{rate:,}" for _, rate in rows.values())


#: How a speed figure reads: "N spectra per second", "Nx / N times faster", "a map in N s".
SPEED = re.compile(
    r"[\d,]+\s+spectra\s+(per|/)\s*(CPU\s+)?s(econd)?"
    r"|[\d.]+\s*(x|×|times)\s+(faster|slower)"
    r"|(faster|slower)\s+by\s+[\d.]+"
    r"|\bmap\s+in\s+[\d.]+\s*s\b",
    flags=re.I,
)


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "docs").glob("*.rst"), *(ROOT / "docs").glob("*.md"), ROOT / "README.md"]),
    ids=lambda p: p.name,
)
def test_no_page_states_a_speed_figure_of_its_own(path):
    text = path.read_text(encoding="utf-8")
    if path.name == "README.md":  # its one speed row quotes the reference run
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("| speed"))
    found = [m.group(0) for m in SPEED.finditer(" ".join(text.split()))]
    assert not found, f"{path.name} states speed figures {found}: quote benchmarks/RESULTS.md"
