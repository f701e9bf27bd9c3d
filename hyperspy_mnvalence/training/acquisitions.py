"""Training inputs made the way inference sees them: simulated acquisitions, preprocessed.

Every epoch, each clean training spectrum (a Titan spectrum: background-free, the
source of real edge shapes) is recorded through
:func:`hyperspy_mnvalence.simulations.simulate_acquisition` under conditions drawn from
:data:`TRAINING_CONDITIONS` (thickness, resolution, background and its height under
the edge, offset, dispersion, dose, a white or a correlated detector, spikes), then turned
into network input by :func:`hyperspy_mnvalence.preprocessing.preprocess` - the same
function, with the same parameters, that inference runs. Spectra that ``preprocess``
would flag as having no Mn edge are left out, as inference would leave them out.
Nothing here adds an effect that cannot happen in a real acquisition.
"""

from __future__ import annotations

import copy

import numpy as np

from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.simulations import draw_conditions, simulate_acquisition

__all__ = [
    "TRAINING_CONDITIONS",
    "acquisition_epoch",
    "add_condition_arguments",
    "conditions_from_arguments",
    "record",
    "titan_training_set",
    "training_conditions",
]

#: The training distribution (stored in the model card). ``ranges`` override
#: :data:`hyperspy_mnvalence.simulations.CONDITION_RANGES`; ``dispersion_bins`` are the
#: log-spaced dispersion groups (one energy axis each); ``correlated`` the share
#: recorded by a CCD-like correlated detector (point spread ``psf_sigma_channels``,
#: gain, read-out noise), the rest by an electron-counting detector; ``clean`` the share
#: recorded at very high dose and a strong edge; ``spikes_per_spectrum`` the cosmic-ray
#: rate of half the groups; ``as_given`` the share passed as they are (background-free,
#: on their own axis shifted by one of ``as_given_offsets`` random offsets), as users pass
#: background-subtracted spectra; ``deconvolve`` records the rest as a thick sample does
#: (background scattered too) with a low loss of the same plasmons and resolution, and
#: passes them through :func:`hyperspy_mnvalence.lowloss.deconvolve_plural_scattering`,
#: as ``classify_mn_valence(s, low_loss=ll)`` does before ``preprocess``.
TRAINING_CONDITIONS: dict = {
    "ranges": {
        "t_over_lambda": [0.0, 1.5],
        "resolution_eV": [0.2, 2.0],
        "background_exponent": [2.0, 5.0],
        "l3_over_background": [0.02, 0.5],
        "offset_eV": [-20.0, 20.0],
        "dose": [2e4, 3e5],
        "gain": [2.0, 15.0],
        "read_noise": [0.0, 5.0],
        "plasmon_eV": [15.0, 25.0],
        "plasmon_fwhm_eV": [4.0, 10.0],
    },
    "dispersion_bins": [0.05, 0.1, 0.2, 0.4, 0.7, 1.0],
    "psf_sigma_channels": [0.5, 0.9],
    "correlated": 0.5,
    "clean": 0.2,
    "clean_l3_over_background": [0.2, 0.5],
    "spikes_per_spectrum": 0.5,
    "energy_range": [590.0, 720.0],
    "as_given": 0.0,
    "as_given_offsets": 8,
    "deconvolve": False,
}


def titan_training_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labelled Titan spectra as the acquisition training and its reports read them.

    Returns
    -------
    spectra : numpy.ndarray
        ``(n, k)`` float64 clean spectra.
    energy : numpy.ndarray
        Their energy axis ``(k,)`` in eV.
    labels : numpy.ndarray
        Class index per spectrum: 0, 1, 2 for Mn2+, Mn3+, Mn4+.
    """
    from hyperspy_mnvalence.datasets import load_titan_valence

    d = load_titan_valence()
    return d["spectra"].astype(np.float64), d["energy"], d["valence"].astype(int) - 2


def training_conditions(
    clean: float | None = None,
    as_given: float | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    deconvolve: bool | None = None,
) -> dict:
    """A copy of :data:`TRAINING_CONDITIONS` with the ``clean`` and ``as_given`` shares
    and some knobs' ranges replaced where given (what the training command lines expose).

    Parameters
    ----------
    clean, as_given : float, optional
        Shares recorded clean and passed as they are.
    ranges : dict, optional
        ``{knob: (min, max)}`` for knobs of ``TRAINING_CONDITIONS["ranges"]``, e.g.
        ``{"resolution_eV": (0.2, 3.0)}`` or ``{"t_over_lambda": (0, 0)}`` (fixed);
        ``"dispersion_eV"`` replaces the dispersion bins: log-uniform between its ends.
    deconvolve : bool, optional
        Record thick samples with their low loss and deconvolve them (see
        :data:`TRAINING_CONDITIONS`).

    Returns
    -------
    dict
    """
    c = copy.deepcopy(TRAINING_CONDITIONS)
    if clean is not None:
        c["clean"] = float(clean)
    if as_given is not None:
        c["as_given"] = float(as_given)
    if deconvolve is not None:
        c["deconvolve"] = bool(deconvolve)
    for knob, (lo, hi) in (ranges or {}).items():
        if knob == "dispersion_eV":
            # log-uniform between lo and hi: four log-spaced bins, the last one up to hi
            lo, hi = float(lo), float(hi)
            if not 0 < lo <= hi:
                raise ValueError(
                    f"The dispersion range must satisfy 0 < min <= max, got {lo}, {hi}."
                )
            c["dispersion_bins"] = (
                [float(v) for v in np.geomspace(lo, hi, 5)[:-1]] if lo < hi else [lo]
            )
            c["dispersion_end"] = hi
            continue
        if knob not in c["ranges"]:
            raise ValueError(f"Unknown knob {knob!r}; known: {sorted(c['ranges'])}.")
        if not float(lo) <= float(hi):
            raise ValueError(f"The range of {knob!r} must satisfy min <= max, got {lo}, {hi}.")
        c["ranges"][knob] = [float(lo), float(hi)]
    return c


def add_condition_arguments(parser) -> None:
    """``--clean``, ``--as-given``, ``--range`` and ``--deconvolve`` on a training command
    line (see :func:`training_conditions`); :func:`conditions_from_arguments` reads them."""
    parser.add_argument(
        "--clean", type=float, help="share recorded clean (default: TRAINING_CONDITIONS)"
    )
    parser.add_argument("--as-given", type=float, help="share passed as they are")
    parser.add_argument(
        "--range", nargs=3, action="append", default=[], metavar=("KNOB", "MIN", "MAX"),
        help="replace a knob's training range, e.g. --range resolution_eV 0.2 3.0 "
        "(repeatable; knobs: the ranges of TRAINING_CONDITIONS)",
    )  # fmt: skip
    parser.add_argument(
        "--deconvolve", action="store_true", default=None,
        help="record thick samples with their low loss and Fourier-ratio deconvolve them, "
        "as classify_mn_valence(s, low_loss=ll) does",
    )  # fmt: skip


def conditions_from_arguments(args) -> dict:
    """The training conditions a command line's ``--clean/--as-given/--range/--deconvolve``
    give."""
    ranges = {k: (float(a), float(b)) for k, a, b in args.range}
    return training_conditions(args.clean, args.as_given, ranges, getattr(args, "deconvolve", None))


def record(
    spectra: np.ndarray,
    energy: np.ndarray,
    rng: np.random.Generator,
    conditions: dict | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Record clean spectra under drawn training conditions.

    Parameters
    ----------
    spectra : numpy.ndarray
        Clean, background-free spectra ``(n, k)``.
    energy : numpy.ndarray
        Their energy axis ``(k,)``.
    rng : numpy.random.Generator
        Generator of every draw.
    conditions : dict, optional
        Training distribution (default :data:`TRAINING_CONDITIONS`).

    Returns
    -------
    list of tuple
        ``(indices, raw spectra, energy axis)`` per group of one dispersion and detector.
    """
    c = copy.deepcopy(TRAINING_CONDITIONS if conditions is None else conditions)
    n = spectra.shape[0]
    drawn = draw_conditions(n, rng, {**c["ranges"], "dispersion_eV": (0.05, 0.05)})
    clean = rng.random(n) < c["clean"]
    drawn["dose"][clean] = 1e7
    lo, hi = c["clean_l3_over_background"]
    drawn["l3_over_background"][clean] = rng.uniform(lo, hi, int(clean.sum()))
    bins = np.asarray(c["dispersion_bins"], dtype=np.float64)
    which = rng.integers(0, bins.size, n)
    out = []
    given = rng.random(n) < c.get("as_given", 0.0)
    which[given] = -1
    if given.any():
        k = int(c.get("as_given_offsets", 8))
        offsets = rng.uniform(*c["ranges"]["offset_eV"], k)
        pick = rng.integers(0, k, n)
        for j in range(k):
            idx = np.nonzero(given & (pick == j))[0]
            if idx.size:
                out.append((idx, spectra[idx].astype(np.float32), energy + offsets[j]))
    correlated = rng.random(n) < c["correlated"]
    spiky = rng.random(n) < 0.5
    deconvolve = bool(c.get("deconvolve", False))
    for b in range(bins.size):
        # a dispersion within the bin: between this bin's value and the next (deconvolved
        # recordings: one for the bin, so its groups are deconvolved in one call)
        nxt = bins[b + 1] if b + 1 < bins.size else float(c.get("dispersion_end", bins[b]))
        if deconvolve:
            d_bin = float(np.exp(rng.uniform(np.log(bins[b]), np.log(max(nxt, bins[b])))))
            # the bin is deconvolved as one map, and a map has one resolution (the
            # Gaussian the result is convolved with is its zero loss's width)
            members = np.nonzero(which == b)[0]
            if members.size:
                drawn["resolution_eV"][members] = drawn["resolution_eV"][members[0]]
        pending = []
        for corr in (False, True):
            for sp in (False, True):
                idx = np.nonzero((which == b) & (correlated == corr) & (spiky == sp))[0]
                if idx.size == 0:
                    continue
                if deconvolve:
                    d = d_bin
                else:
                    d = float(np.exp(rng.uniform(np.log(bins[b]), np.log(max(nxt, bins[b])))))
                kw = {
                    k: v[idx]
                    for k, v in drawn.items()
                    if k not in ("dispersion_eV", "psf_sigma_channels")
                }
                if corr:
                    psf = float(rng.uniform(*c["psf_sigma_channels"]))
                else:
                    psf = 0.0
                    kw["gain"] = np.ones(idx.size)
                    kw["read_noise"] = np.zeros(idx.size)
                acq = simulate_acquisition(
                    idx.size,
                    edges=spectra[idx],
                    edge_energy=energy,
                    dispersion_eV=d,
                    energy_range=tuple(c["energy_range"]),
                    psf_sigma_channels=psf,
                    spikes_per_spectrum=float(c["spikes_per_spectrum"]) if sp else 0.0,
                    scatter_background=deconvolve,
                    rng=rng,
                    **kw,
                )
                if deconvolve:
                    pending.append((idx, acq))
                else:
                    out.append((idx, acq.spectra, acq.energy))
        if pending:
            done = _deconvolved([a for _, a in pending], rng)
            out += [(idx, x, a.energy) for (idx, a), x in zip(pending, done, strict=True)]
    return out


def _deconvolved(recordings: list, rng: np.random.Generator) -> list[np.ndarray]:
    """Thick recordings of one energy axis deconvolved with low losses of their own
    plasmons and resolution, by the function inference runs (float32 each), in one call
    (exspy's fixed cost per call exceeds the work on a few hundred spectra)."""
    from hyperspy_mnvalence.lowloss import deconvolve_plural_scattering
    from hyperspy_mnvalence.simulations.lowloss import low_loss_signal, simulate_low_loss
    from hyperspy_mnvalence.simulations.signal import eels_signal

    def cat(key):
        return np.concatenate(
            [np.broadcast_to(a.truth[key], a.spectra.shape[:1]) for a in recordings]
        )

    first = recordings[0]
    d = float(first.truth["dispersion_eV"])
    low = simulate_low_loss(
        sum(a.spectra.shape[0] for a in recordings),
        t_over_lambda=cat("t_over_lambda"),
        plasmon_eV=cat("plasmon_eV"),
        plasmon_fwhm_eV=cat("plasmon_fwhm_eV"),
        resolution_eV=cat("resolution_eV"),
        dispersion_eV=d,
        rng=rng,
    )
    spectra = np.concatenate([a.spectra for a in recordings])
    core = eels_signal(spectra, first.energy, dispersion_eV=d)
    out, _ = deconvolve_plural_scattering(core, low_loss_signal(low))
    data = np.asarray(out.data, dtype=np.float32)
    return np.split(data, np.cumsum([a.spectra.shape[0] for a in recordings])[:-1])


def acquisition_epoch(
    spectra: np.ndarray,
    energy: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
    *,
    copies: int = 1,
    conditions: dict | None = None,
    params: dict | None = None,
    keep_all: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of network inputs: ``copies`` recordings of every clean spectrum.

    Parameters
    ----------
    spectra : numpy.ndarray
        Clean, background-free spectra ``(n, k)``.
    energy : numpy.ndarray
        ``(k,)``.
    targets : numpy.ndarray
        ``(n, t)`` targets (one-hot classes or fractions), repeated with the inputs.
    rng : numpy.random.Generator
    copies : int
        Recordings of each spectrum.
    conditions : dict, optional
        Training distribution (default :data:`TRAINING_CONDITIONS`).
    params : dict, optional
        Preprocessing parameters (the model's; default ``DEFAULT_PREPROCESSING``).
    keep_all : bool
        Keep the spectra ``preprocess`` flags (as zeros); by default they are left out.

    Returns
    -------
    x : numpy.ndarray
        float32 ``(m, L)`` network inputs, ``m <= copies * n``.
    y : numpy.ndarray
        Their targets ``(m, t)``.
    """
    xs, ys = [], []
    if (conditions or TRAINING_CONDITIONS).get("deconvolve", False):
        # all copies recorded at once: each deconvolution call has a fixed cost
        reps = np.tile(np.arange(spectra.shape[0]), int(copies))
        rounds = [(reps, record(spectra[reps], energy, rng, conditions))]
    else:
        rounds = ((None, record(spectra, energy, rng, conditions)) for _ in range(int(copies)))
    for reps, groups in rounds:
        for idx, raw, e in groups:
            pre = preprocess(raw, e, params=params)
            keep = np.ones(idx.size, bool) if keep_all else pre.valid
            xs.append(pre.x[keep])
            ys.append(targets[idx if reps is None else reps[idx]][keep])
    return np.concatenate(xs), np.concatenate(ys).astype(np.float32)
