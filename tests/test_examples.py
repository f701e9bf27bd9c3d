"""The examples users read run: the README's Python example and every docstring example."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import numpy as np
import pytest

import hyperspy_mnvalence as mnv

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(mnv.__file__).resolve().parent


def _readme_python() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) == 1, f"expected one ```python block in README.md, found {len(blocks)}"
    return blocks[0]


def test_readme_python_example_runs_on_the_demo(tmp_path, monkeypatch):
    code = _readme_python()
    # the one line that needs a user's file: the demo spectrum image instead
    load = re.compile(r"^(\w+)\s*=\s*hs\.load\(.*$", flags=re.M)
    assert len(load.findall(code)) == 1, code
    code = load.sub(r"\1 = mnv.make_demo_spectrum_image(shape=(16, 24), seed=2)", code)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # noqa: S102
    # what the example promises, checked against the demo's truth
    s = ns["s"]
    region = np.asarray(s.metadata.Sample.region_truth)
    ml = np.asarray(ns["ml"].data)
    assert np.all(np.isnan(ml[region <= 1]))
    assert np.mean(ml[region >= 2] == region[region >= 2]) >= 0.85
    unc = np.asarray(ns["unc"].data)
    assert np.all((unc[region >= 2] >= 0) & (unc[region >= 2] <= 1))
    drift = np.asarray(ns["drift"].data)
    assert np.isfinite(drift[region >= 2]).all()
    assert np.all((drift[region >= 2] > 618) & (drift[region >= 2] < 672))
    truth = np.tensordot([2.0, 3.0, 4.0], s.metadata.Sample.mn_fractions_truth, axes=1)
    mos = np.asarray(ns["mos"].data)
    ok = (region >= 2) & np.isfinite(mos)
    assert np.mean(np.abs(mos[ok] - truth[ok])) <= 0.25
    fast = mnv.most_likely_valence(ns["p_fast"]).data
    assert np.mean(fast[region >= 2] == region[region >= 2]) >= 0.85
    for name in ("valence_maps.png", "valence.hspy"):
        assert (tmp_path / name).stat().st_size > 1000, name


def _modules_with_examples() -> list[str]:
    """Package modules whose source holds a docstring example (found without importing)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            rel = path.relative_to(PACKAGE.parent).with_suffix("")
            names.append(".".join(p for p in rel.parts if p != "__init__"))
    return names


def test_there_are_docstring_examples():
    assert len(_modules_with_examples()) >= 2


@pytest.mark.parametrize("module", _modules_with_examples())
def test_docstring_examples(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    tests = [t for t in finder.find(mod, module) if t.examples]
    assert tests, f"{module} has '>>>' in its source but no docstring example was found"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
