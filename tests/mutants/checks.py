"""Model-level checks against ground truth, shared by the ordinary tests and the mutants.

Every check compares a model's answer with a truth that does not come from the model:
the valence a synthetic spectrum was simulated with, the demo's ``metadata.Sample``
truth, the labels of the real spectra. A check returns what it measured and raises
``AssertionError`` when the model fails it. The ordinary tests call the checks with the
shipped models (``model=None``); ``test_mutants.py`` calls them with broken models and
requires every mutant to fail at least one check of each :data:`CATEGORIES`.

Thresholds: the shipped models' measured values are noted beside each one; a threshold
leaves a margin for a retrained model of the same quality, and the mutants miss it by far.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import exspy
import hyperspy.api as hs
import numpy as np

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.synthetic import synthetic_spectra

VALENCES = np.array([2.0, 3.0, 4.0])
#: The categories of checks; each mutant must fail at least one check of each.
CATEGORIES = ("classification", "invariance", "fractions", "cli")

# fractions (see test_mixed.py for what the shipped model measured)
SYNTHETIC_MAE_TOL = 0.2  # shipped 0.167
SYNTHETIC_MAX_TOL = 0.6  # shipped 0.522
OFFSET_TOL = 0.02  # shipped 0.014 (change of the mean valence, noise-free)
DISPERSION_TOL = 0.05  # shipped 0.039
DIGITIZED_MIN_WITHIN = 29  # shipped 31/31 within 0.35 of the truth
DEMO_MOS_MAE_TOL = 0.25  # shipped 0.156-0.165 on the demo's Mn pixels
# classifier
GRAIN_ACCURACY = 0.85  # shipped >= 0.90 in each grain of the 24 x 32 demo


def eels(data, energy) -> exspy.signals.EELSSpectrum:
    """Spectra as an exspy EELS signal on the energies given (uniform or not)."""
    energy = np.asarray(energy, dtype=float)
    data = np.asarray(data, dtype=np.float32)
    steps = np.diff(energy)
    if np.allclose(steps, steps[0], rtol=1e-6):
        s = exspy.signals.EELSSpectrum(data)
        ax = s.axes_manager.signal_axes[0]
        ax.offset, ax.scale = float(energy[0]), float(steps[0])
        ax.units, ax.name = "eV", "Energy loss"
        return s
    nav = [{"size": n, "navigate": True} for n in data.shape[:-1]]
    axes = nav + [{"axis": energy, "name": "Energy loss", "units": "eV", "navigate": False}]
    return exspy.signals.EELSSpectrum(data, axes=axes)


def _probabilities(model, data, energy) -> np.ndarray:
    return mnv.classify_mn_valence(eels(data, energy), model=model, show_progressbar=False).data


def _assert_classes(p: np.ndarray, truth, what: str) -> None:
    """Each column's true class strictly more probable than both others (no argmax tie)."""
    truth = np.asarray(truth)
    assert np.all(np.isfinite(p)), f"{what}: NaN where every spectrum has a Mn edge"
    cols = np.arange(p.shape[1])
    idx = truth - 2
    right = p[idx, cols]
    others = np.where(np.arange(3)[:, None] == idx[None, :], -np.inf, p).max(0)
    wrong = np.flatnonzero(right <= others)
    assert wrong.size == 0, (
        f"{what}: {wrong.size}/{cols.size} spectra not classified as their true valence "
        f"(first: truth Mn{truth[wrong[0]]}+, p = {np.round(p[:, wrong[0]], 3)})"
    )


def _pure_spectra(energy, counts=500.0, offset=0.0) -> np.ndarray:
    """Noise-free Mn2+, Mn3+, Mn4+ (in this order) at two doses and backgrounds."""
    rows = []
    for v in (2, 3, 4):
        for ratio in (0.5, 2.0):
            rows.append(
                synthetic_spectra(
                    energy, v, counts=counts, offset_eV=offset, background_ratio=ratio, noise=False
                )
            )
    return np.stack(rows)


_PURE_TRUTH = np.repeat([2, 3, 4], 2)


def _grain_accuracy(ml: np.ndarray, region: np.ndarray, mask=None) -> dict[int, float]:
    out = {}
    for v in (2, 3, 4):
        sel = region == v if mask is None else (region == v) & mask
        out[v] = float(np.mean(ml[sel] == v))
    return out


# -- classification accuracy -------------------------------------------------------------


def check_pure_spectra(model=None) -> None:
    """Noise-free Mn2+/3+/4+ spectra are classified as their valence (shipped: all)."""
    e = np.arange(590.0, 700.0, 0.1)
    _assert_classes(_probabilities(model, _pure_spectra(e), e), _PURE_TRUTH, "pure spectra")


def check_noisy_spectra(model=None) -> dict[int, float]:
    """40 Poisson-noisy spectra per valence at random offsets of +-8 eV: >= 90 % right.

    Shipped: 100 % in each class.
    """
    e = np.arange(590.0, 700.0, 0.2)
    rng = np.random.default_rng(5)
    acc = {}
    for v in (2, 3, 4):
        y = synthetic_spectra(
            e, v, counts=np.full(40, 400.0), rng=rng, offset_eV=rng.uniform(-8, 8, 40)
        )
        p = _probabilities(model, y, e)
        acc[v] = float(np.mean(p.argmax(0) == v - 2) * np.all(np.isfinite(p)))
    assert min(acc.values()) >= 0.9, acc
    return acc


def check_demo_map(demo, model=None) -> dict[int, float]:
    """The demo's grains are mapped to their valence; vacuum and substrate are NaN.

    Accuracy is the share of each grain's pixels whose most likely valence is the
    grain's (majority) valence, NaN counted as wrong: >= 0.85 (shipped: 0.96, 0.99,
    0.91 on the 24 x 32 demo of seed 1; interface pixels are mixtures).
    """
    p = mnv.classify_mn_valence(demo, model=model, show_progressbar=False)
    region = np.asarray(demo.metadata.Sample.region_truth)
    ml = mnv.most_likely_valence(p).data
    assert np.all(np.isnan(ml[region <= 1])), "vacuum and substrate must be NaN"
    acc = _grain_accuracy(ml, region)
    assert min(acc.values()) >= GRAIN_ACCURACY, acc
    return acc


def check_digitized_references(refs, model=None, min_correct: int = 31) -> int:
    """The 31 digitized literature spectra (other instruments, evaluation only)."""
    truth = np.array([r["valence"] for r in refs], dtype=int)
    got = []
    for r in refs:
        p = _probabilities(model, r["intensity"], r["energy"])
        got.append(p[:, None] if p.ndim == 1 else p)
    p = np.concatenate(got, axis=1)
    ok = np.isfinite(p).all(0)
    right = ok & (p.argmax(0) == truth - 2)
    wrong = [(refs[i]["id"], int(truth[i])) for i in np.flatnonzero(~right)]
    assert right.sum() >= min_correct, f"{right.sum()}/{len(refs)}; wrong (id, truth): {wrong}"
    return int(right.sum())


def check_mn2_line_scan(spectra, energy, model=None) -> float:
    """The Titan Mn2+ line scan kept out of training: >= 99 % Mn2+ (shipped 99.8 %).

    Mn2+ must be strictly the most probable class: a constant model (1/3 each) would
    otherwise pass through argmax breaking the tie towards Mn2+.
    """
    p = _probabilities(model, spectra, energy)
    share = float(np.mean(np.isfinite(p[0]) & (p[0] > np.maximum(p[1], p[2]))))
    assert share >= 0.99, f"{share:.3f} strictly Mn2+"
    assert np.nanmean(p[0]) > 0.8, f"mean Mn2+ probability {np.nanmean(p[0]):.3f}"
    return share


# -- invariance (against the truth, not only against the model itself) -------------------


def check_offset_invariance(model=None, offsets=(-10.0, -3.3, 4.1, 10.0)) -> float:
    """At calibration offsets of up to +-10 eV every spectrum keeps its true valence and
    the probabilities change by <= 0.02 (shipped: all right, change < 0.01)."""
    e = np.arange(590.0, 700.0, 0.1)
    y = _pure_spectra(e)
    base = _probabilities(model, y, e)
    _assert_classes(base, _PURE_TRUTH, "offset 0")
    change = 0.0
    for shift in offsets:
        p = _probabilities(model, y, e + shift)
        _assert_classes(p, _PURE_TRUTH, f"offset {shift:+g} eV")
        change = max(change, float(np.abs(p - base).max()))
    assert change <= 0.02, change
    return change


def check_dispersion_invariance(model=None, dispersions=(0.05, 0.25, 0.5)) -> float:
    """At 0.05-0.5 eV per channel every spectrum keeps its true valence and the
    probabilities change by <= 0.1 (0.05 below 0.5 eV per channel)."""
    e0 = np.arange(590.0, 700.0, 0.1)
    base = _probabilities(model, _pure_spectra(e0), e0)
    _assert_classes(base, _PURE_TRUTH, "0.1 eV/channel")
    worst = 0.0
    for d in dispersions:
        e = np.arange(590.0, 700.0, d)
        p = _probabilities(model, _pure_spectra(e), e)
        _assert_classes(p, _PURE_TRUTH, f"{d} eV/channel")
        change = float(np.abs(p - base).max())
        assert change <= (0.1 if d >= 0.5 else 0.05), (d, change)
        worst = max(worst, change)
    return worst


def check_scale_and_background(model=None) -> None:
    """1000x the counts, or a strong extra power-law background: the true valence stays."""
    e = np.arange(590.0, 700.0, 0.1)
    y = _pure_spectra(e)
    _assert_classes(_probabilities(model, 1000.0 * y, e), _PURE_TRUTH, "counts x 1000")
    bg = 3000.0 * (e / e[0]) ** -3.2
    _assert_classes(_probabilities(model, y + bg, e), _PURE_TRUTH, "extra background")


def check_demo_drift(demo, model=None, offsets=(-10.0, 10.0)) -> dict:
    """The demo's grains keep their valence in each third of its calibration drift
    (-4 ... +6 eV along the rows), and with the whole energy axis moved by +-10 eV.

    Accuracy per grain and drift third >= 0.8, per grain at each axis offset >= 0.85
    (shipped: >= 0.87 and >= 0.9).
    """
    region = np.asarray(demo.metadata.Sample.region_truth)
    drift = np.asarray(demo.metadata.Sample.calibration_offset_eV)
    edges = np.quantile(drift[region >= 2], [0, 1 / 3, 2 / 3, 1])
    p = mnv.classify_mn_valence(demo, model=model, show_progressbar=False)
    ml = mnv.most_likely_valence(p).data
    out = {}
    for k in range(3):
        third = (drift >= edges[k]) & (drift <= edges[k + 1])
        out[f"drift third {k}"] = acc = _grain_accuracy(ml, region, third)
        assert min(acc.values()) >= 0.8, (k, acc)
    for shift in offsets:
        s = demo.deepcopy()
        s.axes_manager.signal_axes[0].offset += shift
        p = mnv.classify_mn_valence(s, model=model, show_progressbar=False)
        out[f"axis {shift:+g} eV"] = acc = _grain_accuracy(mnv.most_likely_valence(p).data, region)
        assert min(acc.values()) >= GRAIN_ACCURACY, (shift, acc)
    return out


# -- fractions ---------------------------------------------------------------------------


def mixture_grid(step: float = 0.25) -> np.ndarray:
    """Fractions on a grid over the simplex: pure, binary, ternary."""
    g = np.arange(0, 1.0001, step)
    rows = [(a, b, 1 - a - b) for a in g for b in g if a + b <= 1 + 1e-9]
    return np.clip(np.array(rows), 0, 1)


def synthetic_mixtures(energy, fractions, offset=0.0, seed=0, noise=True) -> np.ndarray:
    """Mixed-valence spectra from the package's simulator (400 counts, 0.3 eV resolution)."""
    return synthetic_spectra(
        energy,
        fractions=fractions,
        counts=400.0,
        offset_eV=offset,
        resolution_eV=0.3,
        noise=noise,
        rng=seed,
    )


def _mean_valence(fraction_model, data, energy) -> np.ndarray:
    f = mnv.decompose_mn_valence(eels(data, energy), model=fraction_model, show_progressbar=False)
    return np.asarray(f.metadata.MnValence.mean_valence.data)


def check_synthetic_mixtures(fraction_model=None) -> tuple[float, float]:
    """Noisy mixtures on a 0.25 simplex grid: mean-valence MAE <= 0.2, largest error <= 0.6
    (shipped 0.167 / 0.522), rising along the Mn2+ -> Mn4+ line."""
    e = np.arange(615.0, 685.0, 0.1)
    frac = np.repeat(mixture_grid(), 4, axis=0)
    mv = _mean_valence(fraction_model, synthetic_mixtures(e, frac, seed=5), e)
    assert np.all(np.isfinite(mv)), "NaN for a spectrum with a Mn edge"
    err = np.abs(mv - frac @ VALENCES)
    assert err.mean() <= SYNTHETIC_MAE_TOL, err.mean()
    assert err.max() <= SYNTHETIC_MAX_TOL, err.max()
    line = np.array([[1 - t, 0, t] for t in np.linspace(0, 1, 5)])
    ml = _mean_valence(fraction_model, synthetic_mixtures(e, line, seed=6), e)
    assert np.all(np.diff(ml) > 0), ml
    return float(err.mean()), float(err.max())


def check_pure_fractions(fraction_model=None) -> np.ndarray:
    """Single pure spectra: the true valence has the largest fraction (> 0.6) and the mean
    valence is within 0.35 of it."""
    e = np.arange(620.0, 680.0, 0.1)
    y = np.stack([synthetic_spectra(e, valence=v, rng=3 + v) for v in (2, 3, 4)])
    out = []
    for v, row in zip((2, 3, 4), y, strict=True):
        f = mnv.decompose_mn_valence(eels(row, e), model=fraction_model, show_progressbar=False)
        d = np.asarray(f.data, dtype=float)
        assert d.shape == (3,)
        assert np.isclose(d.sum(), 1.0, atol=1e-5), d
        assert d.argmax() == v - 2 and d[v - 2] > 0.6, (v, d)
        mv = float(np.ravel(f.metadata.MnValence.mean_valence.data)[0])
        assert abs(mv - v) <= 0.35, (v, mv)
        out.append(d)
    return np.array(out)


def check_demo_fractions(demo, fraction_model=None) -> float:
    """Mean oxidation state on the demo's Mn pixels against its truth: MAE <= 0.25
    (shipped ~0.16; a constant 3 scores ~0.6); NaN on vacuum and substrate."""
    f = mnv.decompose_mn_valence(demo, model=fraction_model, show_progressbar=False)
    region = np.asarray(demo.metadata.Sample.region_truth)
    truth = np.tensordot(VALENCES, demo.metadata.Sample.mn_fractions_truth, axes=1)
    mos = mnv.mean_oxidation_state(f).data
    assert np.all(np.isnan(mos[region <= 1])), "vacuum and substrate must be NaN"
    mn = region >= 2
    assert np.isfinite(mos[mn]).mean() > 0.9
    ok = mn & np.isfinite(mos)
    mae = float(np.mean(np.abs(mos[ok] - truth[ok])))
    assert mae <= DEMO_MOS_MAE_TOL, mae
    return mae


def check_fraction_offset_invariance(fraction_model=None, offsets=(-15.0, -7.33, 4.45, 15.0)):
    """Noise-free mixtures at calibration offsets of up to +-15 eV: the mean valence stays
    within MAE 0.2 of the truth and moves by <= 0.02 (shipped: 0.014)."""
    e = np.arange(600.0, 700.0, 0.1)
    frac = mixture_grid()
    truth = frac @ VALENCES
    m0 = _mean_valence(fraction_model, synthetic_mixtures(e, frac, 0.0, noise=False), e)
    worst = 0.0
    for off in offsets:
        m1 = _mean_valence(fraction_model, synthetic_mixtures(e, frac, off, noise=False), e)
        assert np.all(np.isfinite(m1)), off
        mae = float(np.abs(m1 - truth).mean())
        assert mae <= SYNTHETIC_MAE_TOL, (off, mae)
        worst = max(worst, float(np.abs(m1 - m0).max()))
    assert worst <= OFFSET_TOL, worst
    return worst


def check_fraction_dispersion_invariance(
    fraction_model=None, dispersions=(0.05, 0.1, 0.2, 0.3, 0.5)
):
    """Noise-free mixtures at 0.05-0.5 eV per channel: mean-valence MAE to the truth <= 0.2
    and a change <= 0.05 from 0.1 eV per channel (shipped: 0.039)."""
    frac = mixture_grid()
    truth = frac @ VALENCES
    e0 = np.arange(615.0, 685.0, 0.1)
    m0 = _mean_valence(fraction_model, synthetic_mixtures(e0, frac, 1.3, noise=False), e0)
    worst = 0.0
    for d in dispersions:
        e = np.arange(615.0, 685.0, d)
        m = _mean_valence(fraction_model, synthetic_mixtures(e, frac, 1.3, noise=False), e)
        assert np.all(np.isfinite(m)), d
        mae = float(np.abs(m - truth).mean())
        assert mae <= SYNTHETIC_MAE_TOL, (d, mae)
        worst = max(worst, float(np.abs(m - m0).max()))
    assert worst <= DISPERSION_TOL, worst
    return worst


def check_digitized_fractions(refs, fraction_model=None) -> int:
    """Digitized references: the mean valence within 0.35 of the truth for >= 29 of 31."""
    within = 0
    for r in refs:
        mv = _mean_valence(fraction_model, r["intensity"], r["energy"])
        within += abs(float(np.ravel(mv)[0]) - r["valence"]) <= 0.35
    assert within >= DIGITIZED_MIN_WITHIN, f"{within}/{len(refs)}"
    return within


# -- command line ------------------------------------------------------------------------


def _cli(argv: list[str]) -> str:
    from hyperspy_mnvalence.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    assert rc == 0, (argv, rc, out.getvalue())
    return out.getvalue()


def _cli_on_demo(command: str, demo, tmp_path: Path, out_name: str, model=None):
    """``mnvalence COMMAND demo.hspy -o OUT [--model M]``, then the written result."""
    tmp_path = Path(tmp_path)
    src = tmp_path / "demo.hspy"
    if not src.is_file():
        demo.save(src, overwrite=True)
    out = tmp_path / out_name
    argv = [command, str(src), "-o", str(out), "--no-progress"]
    if model is not None:
        argv += ["--model", str(model)]
    _cli(argv)
    return hs.load(out)


def check_cli_classify(demo, tmp_path: Path, model=None) -> dict[int, float]:
    """``mnvalence classify demo.hspy -o out.hspy [--model M]``: the saved probabilities map
    each grain to its valence (>= 0.85) and vacuum/substrate to NaN."""
    p = _cli_on_demo("classify", demo, tmp_path, "classified.hspy", model)
    region = np.asarray(demo.metadata.Sample.region_truth)
    ml = mnv.most_likely_valence(p).data
    assert np.all(np.isnan(ml[region <= 1])), "vacuum and substrate must be NaN"
    acc = _grain_accuracy(ml, region)
    assert min(acc.values()) >= GRAIN_ACCURACY, acc
    return acc


def check_cli_decompose(demo, tmp_path: Path, fraction_model=None) -> float:
    """``mnvalence decompose demo.hspy -o f.hspy [--model M]``: the saved mean oxidation
    state is within MAE 0.25 of the demo's truth."""
    f = _cli_on_demo("decompose", demo, tmp_path, "fractions.hspy", fraction_model)
    region = np.asarray(demo.metadata.Sample.region_truth)
    truth = np.tensordot(VALENCES, demo.metadata.Sample.mn_fractions_truth, axes=1)
    mos = np.asarray(f.metadata.MnValence.mean_valence.data)
    ok = (region >= 2) & np.isfinite(mos)
    assert ok.sum() > 0.9 * (region >= 2).sum()
    mae = float(np.mean(np.abs(mos[ok] - truth[ok])))
    assert mae <= DEMO_MOS_MAE_TOL, mae
    return mae


def check_cli_demo(tmp_path: Path, model=None) -> float:
    """``mnvalence demo [--model M]`` reports >= 85 % accuracy against the demo's truth,
    and the number it prints is the one its written probabilities give."""
    tmp_path = Path(tmp_path)
    hspy = tmp_path / "demo_p.hspy"
    argv = ["demo", "-o", str(tmp_path / "demo.png"), "--hspy", str(hspy)]
    argv += ["--shape", "24", "32", "--seed", "1", "--no-progress"]
    if model is not None:
        argv += ["--model", str(model)]
    text = _cli(argv)
    m = re.search(r"accuracy on Mn pixels[^:]*: ([\d.]+)%", text)
    assert m, text
    printed = float(m.group(1)) / 100
    truth = mnv.make_demo_spectrum_image(shape=(24, 32), seed=1).metadata.Sample.region_truth
    region = np.asarray(truth)
    ml = mnv.most_likely_valence(hs.load(hspy)).data
    grain = region >= 2
    assert abs(printed - float(np.mean(ml[grain] == region[grain]))) < 1e-3
    assert printed >= GRAIN_ACCURACY, printed
    return printed
