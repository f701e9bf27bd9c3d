"""Broken models must fail the model-level checks: a guard on the tests themselves.

For each kind of mutant (:data:`mutants.build.MUTANTS`), a broken classifier and a broken
fraction model are built from the shipped graphs and every model-level check of
``mutants/checks.py`` is run against them in-process. Each mutant must fail at least one
check of each category (classification accuracy, invariance, fractions, command line);
a change that weakens the checks until a broken model slips through fails here. The
shipped models pass the same checks in test_plugin.py, test_mixed.py and
test_realdata.py.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from hyperspy_mnvalence.datasets import data_dir
from hyperspy_mnvalence.model import FRACTIONS_MODEL, default_model_path, load_model
from mutants import checks
from mutants.build import MUTANTS, make_mutant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mutant_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mutants")


def _mutants(folder, kind):
    clf = make_mutant(default_model_path(), kind, folder / f"{kind}.onnx")
    frac = make_mutant(default_model_path(FRACTIONS_MODEL), kind, folder / f"{kind}_fractions.onnx")
    return clf, frac


def _real_data():
    """The labelled data if present (CI has them); the synthetic checks need none."""
    from hyperspy_mnvalence.datasets import load_digitized_references, load_titan_mn2_wide

    root = data_dir()
    if not (root / "test" / "digitized_references.csv").is_file():
        return None, None
    if not (root / "train" / "titan_mn2_wide.npz").is_file():
        return load_digitized_references(), None
    d = load_titan_mn2_wide()
    return load_digitized_references(), (d["spectra"], d["energy"])


def _checks(demo, clf, frac, tmp_path):
    """Every model-level check, by category, as zero-argument callables."""
    refs, wide = _real_data()
    c = checks
    out = {
        "classification": {
            "pure_spectra": lambda: c.check_pure_spectra(clf),
            "noisy_spectra": lambda: c.check_noisy_spectra(clf),
            "demo_map": lambda: c.check_demo_map(demo, clf),
        },
        "invariance": {
            "offset": lambda: c.check_offset_invariance(clf),
            "dispersion": lambda: c.check_dispersion_invariance(clf),
            "scale_and_background": lambda: c.check_scale_and_background(clf),
            "demo_drift": lambda: c.check_demo_drift(demo, clf),
            "fraction_offset": lambda: c.check_fraction_offset_invariance(frac),
            "fraction_dispersion": lambda: c.check_fraction_dispersion_invariance(frac),
        },
        "fractions": {
            "synthetic_mixtures": lambda: c.check_synthetic_mixtures(frac),
            "pure_fractions": lambda: c.check_pure_fractions(frac),
            "demo_fractions": lambda: c.check_demo_fractions(demo, frac),
        },
        "cli": {
            "classify": lambda: c.check_cli_classify(demo, tmp_path / "classify", clf),
            "decompose": lambda: c.check_cli_decompose(demo, tmp_path / "decompose", frac),
            "demo": lambda: c.check_cli_demo(tmp_path / "demo", clf),
        },
    }
    if refs is not None:
        out["classification"]["digitized"] = lambda: c.check_digitized_references(refs, clf)
        out["fractions"]["digitized"] = lambda: c.check_digitized_fractions(refs, frac)
    if wide is not None:
        out["classification"]["mn2_line_scan"] = lambda: c.check_mn2_line_scan(*wide, clf)
    assert set(out) == set(checks.CATEGORIES)
    return out


@pytest.mark.parametrize("kind", MUTANTS)
def test_every_mutant_fails_each_category(kind, demo_small, mutant_dir, tmp_path):
    clf, frac = _mutants(mutant_dir, kind)
    for sub in ("classify", "decompose", "demo"):
        (tmp_path / sub).mkdir()
    failed = {}
    for category, named in _checks(demo_small, clf, frac, tmp_path).items():
        failed[category] = []
        for name, check in named.items():
            try:
                check()
            except AssertionError:
                failed[category].append(name)
    print(f"{kind}: failed checks {json.dumps(failed)}")
    missed = [cat for cat, names in failed.items() if not names]
    assert not missed, f"the {kind} mutant passes every check of {missed}: {failed}"


@pytest.mark.parametrize("kind", MUTANTS)
def test_mutants_load_and_run_like_the_shipped_model(kind, mutant_dir):
    """A mutant is a working model with the shipped contract, only wrong: so a check that
    fails on it fails on its answers, not on a load error."""
    clf, frac = _mutants(mutant_dir, kind)
    for path, task in ((clf, "classification"), (frac, "fractions")):
        m = load_model(path)
        assert m.task == task
        n = int(round(np.ptp(m.preprocessing["window_eV"]) / m.preprocessing["energy_step_eV"]))
        x = np.random.default_rng(0).normal(size=(4, n)).astype(np.float32)
        p, sd = m.predict(x)
        assert p.shape == sd.shape == (4, 3)
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    # the mutation itself, read off the raw graphs: columns swapped, or constant 1/3
    x = {load_model(clf).metadata["input_name"]: np.random.default_rng(1).normal(size=(5, n))}
    x = {k: v.astype(np.float32) for k, v in x.items()}

    def run(path):
        return ort.InferenceSession(str(path)).run(["probabilities"], x)[0]

    orig = run(default_model_path())
    if kind == "swapped":
        np.testing.assert_allclose(run(clf), orig[:, ::-1], atol=1e-6)
    elif kind == "constant":
        np.testing.assert_allclose(run(clf), 1 / 3, atol=1e-7)
    else:
        assert np.abs(run(clf) - orig).max() > 1e-3
