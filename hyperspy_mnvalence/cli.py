"""Command-line interface: ``mnvalence classify | decompose | demo | info``.

``mnvalence`` (or ``python -m hyperspy_mnvalence``) maps Mn oxidation states without
opening Python:

* ``mnvalence classify INPUT... -o OUTPUT`` classifies spectrum images in any format
  RosettaSciIO reads and writes the probability stacks as ``.hspy`` files (and PNG maps
  with ``--png``);
* ``mnvalence decompose INPUT... -o OUTPUT`` does the same for mixed valence: the
  fractions of Mn2+, Mn3+ and Mn4+, with the mean oxidation state and its uncertainty;
* ``mnvalence demo`` builds the synthetic demo spectrum image, classifies it, writes a
  PNG of the maps and prints a summary with the accuracy against the demo's truth;
* ``mnvalence info`` prints the model card of the shipped (or a given) model.

Errors the user can fix (missing or unreadable file, no Mn edge in the energy range,
bad model file) are reported as one ``mnvalence: error: ...`` line on stderr with a
non-zero exit status, never as a traceback. With several inputs every input is
processed; each failure is one line, and a summary line ends a run with failures (exit
status 1).

Nothing is lost: an existing file is replaced only with ``--overwrite``, an input file
never (not even with ``--overwrite``), no file is written twice in one run, and files
are written through a temporary file moved into place.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .decisions import EDGE_MIN_SNR
from .model import BROAD_RESOLUTION_EV
from .signal_checks import EELS_TYPES

__all__ = ["CLIError", "build_parser", "main"]

PROG = "mnvalence"


class CLIError(Exception):
    """An error reported to the user as a single line, without a traceback."""


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _one_line(exc: BaseException | str) -> str:
    """Collapse an error message to one line."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


#: Library argument names as the command line spells them, in the errors it prints.
_CLI_SPEAK = (
    (r"energy_window=\(lo, hi\)", "--energy-window LO HI"),
    (r"background_window=\(lo, hi\)", "--background-window LO HI"),
    (r"\benergy_window\b", "--energy-window"),
    (r"\bbackground_window\b", "--background-window"),
    (r"\bmin_snr\b", "--min-snr"),
    (r"\bresolution_eV\b", "--resolution"),
    (r"\bbackground \('none'", "--background none ("),
    (r"\bbackground=", "--background "),
    (r"^background must\b", "--background must"),
    (r"\bmodel=None\b", "no --model"),
    (r"^model must\b", "--model must"),
)


def _cli_speak(msg: str) -> str:
    """A library message with its argument names replaced by the command-line options."""
    import re

    for pattern, repl in _CLI_SPEAK:
        msg = re.sub(pattern, repl, msg)
    return msg


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _error_message(exc: BaseException, inp: Path | None = None) -> str:
    """One line for an error; resource errors with a size hint and what to do."""
    if isinstance(exc, MemoryError):
        where = f" while processing {inp}" if inp is not None else ""
        hint = ""
        if inp is not None and inp.is_file():
            hint = (
                f"; the file holds {_size(inp.stat().st_size)}: use --lazy to process it in blocks"
            )
        free = _available_memory()
        if free is not None:
            hint += f" ({_size(free)} of memory available)"
        return _one_line(f"out of memory{where} ({_one_line(exc)}){hint}")
    return _one_line(exc)


#: Errors of one input file: reported, and the next input is processed.
_PER_FILE_ERRORS = (CLIError, ValueError, TypeError, OSError, ImportError, MemoryError)


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence library warnings and log records (kept for the duration of a command).

    HyperSpy logs its own ERROR lines when a file cannot be read and warns about
    deprecated imports and a missing numba; on the command line these would bury the
    one line that matters.
    """
    previous = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.ERROR)
        try:
            yield
        finally:
            logging.disable(previous)


def _progress(args: argparse.Namespace) -> bool | None:
    """``None`` (HyperSpy's preference) unless ``--no-progress`` was given."""
    return False if getattr(args, "no_progress", False) else None


def _is_eels_spectrum(s) -> bool:
    if s.axes_manager.signal_dimension != 1:
        return False
    return s.metadata.get_item("Signal.signal_type", "") in EELS_TYPES


def _load_spectra(path: Path, lazy: bool) -> list:
    """Load a file and return its EELS spectrum (image) signals."""
    import hyperspy.api as hs

    if not path.exists():
        raise CLIError(f"{path}: no such file")
    if path.is_dir():
        raise CLIError(f"{path} is a folder; give the spectrum image files themselves")
    try:
        loaded = hs.load(str(path), signal_type="EELS_MnValence", lazy=lazy)
    except Exception as exc:  # rosettasciio raises many types for unreadable files
        raise CLIError(
            f"{path} could not be read ({_one_line(exc)}); give a file RosettaSciIO "
            "reads (.hspy, .dm3/.dm4, .emd, ...)"
        ) from exc
    signals = loaded if isinstance(loaded, list) else [loaded]
    spectra = [s for s in signals if _is_eels_spectrum(s)]
    if not spectra:
        kinds = ", ".join(
            f"{s.axes_manager.signal_dimension}D signal {s.metadata.General.title!r}"
            for s in signals
        )
        raise CLIError(
            f"{path} holds no EELS spectrum (found: {kinds or 'nothing'}); the classifier "
            "needs spectra with an energy-loss signal axis (a file whose energy axis loads "
            "as an image axis: load it in Python and use s.as_signal1D(energy_axis_index))"
        )
    return spectra


def _output_paths(inputs: list[Path], output: str, suffix: str = "mn_valence") -> list[Path]:
    """One ``.hspy`` path per input: OUTPUT itself for one input, else OUTPUT/<stem>.

    OUTPUT is a folder if it is one already or ends with a slash.
    """
    folder = str(output).endswith(("/", os.sep))
    output = Path(output)
    if len(inputs) == 1 and not output.is_dir() and not folder:
        if not output.suffix:
            return [output.with_suffix(".hspy")]
        return [_check_hspy_path("-o", output, folder_ok=True)]
    if output.exists() and not output.is_dir():
        raise CLIError(f"{output} exists and is not a folder; with several inputs -o is a folder")
    output.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for inp in inputs:
        candidate = output / f"{inp.stem}_{suffix}.hspy"
        k = 1
        while candidate in paths:
            candidate = output / f"{inp.stem}_{k}_{suffix}.hspy"
            k += 1
        paths.append(candidate)
    return paths


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (links and ``..`` resolved)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


class _Outputs:
    """The files a command may write: never an input, never twice, never an existing
    file unless ``--overwrite``; written through a temporary file, so that a failed
    write leaves what was there."""

    def __init__(self, inputs: Sequence[Path], overwrite: bool) -> None:
        self.inputs = [Path(x) for x in inputs]
        self.overwrite = overwrite
        self.claimed: list[Path] = []

    def claim(self, path: Path, option: str = "-o") -> Path:
        path = Path(path)
        for inp in self.inputs:
            if _same_file(path, inp):
                raise CLIError(
                    f"{option} {path} is the input file {inp}: refusing to write over an "
                    "input (even with --overwrite); choose another output"
                )
        for other in self.claimed:
            if _same_file(path, other):
                raise CLIError(
                    f"{option} {path} would be written twice in this run; give different "
                    "output names"
                )
        if path.is_dir():
            raise CLIError(f"{option} {path} is a folder; give a file name")
        if path.exists() and not self.overwrite:
            raise CLIError(
                f"{option} {path} exists; pass --overwrite to replace it, or choose another output"
            )
        self.claimed.append(path)
        return path

    def check(self, path: Path, option: str = "-o") -> None:
        """:meth:`claim` without claiming (a check before any work)."""
        self.claim(path, option)
        self.claimed.pop()


@contextlib.contextmanager
def _written_atomically(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix), moved onto ``path`` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _save_png(p, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import plot_valence_maps

    fig = plot_valence_maps(p)
    try:
        with _written_atomically(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _save_hspy(p, path: Path) -> None:
    with _written_atomically(path) as tmp:
        p.save(str(tmp), overwrite=True)


def _counts(p) -> dict[str, int]:
    """Pixels per most likely valence, and pixels without a Mn edge."""
    from .maps import most_likely_valence

    ml = np.asarray(most_likely_valence(p).data)
    out = {f"Mn{v}+": int(np.sum(ml == v)) for v in (2, 3, 4)}
    out["no Mn edge"] = int(np.sum(~np.isfinite(ml)))
    return out


def _format_counts(counts: dict[str, int]) -> str:
    total = max(sum(counts.values()), 1)
    return ", ".join(f"{k}: {n} ({100.0 * n / total:.0f}%)" for k, n in counts.items())


def _fraction_summary(f) -> str:
    """Mean fractions and the spread of the mean oxidation state over the Mn pixels."""
    frac = np.asarray(f.data, dtype=float).reshape(3, -1)
    mos = np.asarray(f.metadata.MnValence.mean_valence.data, dtype=float).ravel()
    mn = np.isfinite(mos)
    if not mn.any():
        return "no pixel has a Mn L2,3 edge"
    q5, q50, q95 = np.percentile(mos[mn], [5, 50, 95])
    means = ", ".join(
        f"Mn{v}+ {m:.2f}" for v, m in zip((2, 3, 4), frac[:, mn].mean(axis=1), strict=True)
    )
    return (
        f"mean oxidation state over the Mn pixels: mean {np.mean(mos[mn]):.2f}, median "
        f"{q50:.2f} (5-95%: {q5:.2f}-{q95:.2f}); mean fractions {means}; "
        f"Mn edge on {int(mn.sum())} of {mn.size} pixels"
    )


# ---------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------


def _model_kwargs(args: argparse.Namespace, fractions: bool) -> dict:
    """``{"show_progressbar": ...}`` plus the ``--model`` loaded and checked, if given.

    Loading first makes a missing file or a model for the other task fail before any
    data are read.
    """
    kw: dict = {"show_progressbar": _progress(args)}
    if args.model is not None:
        from .model import load_model

        kw["model"] = load_model(str(args.model))
        _check_model_task(args.model, kw["model"], fractions)
    return kw


def _check_model_task(name, model, fractions: bool) -> None:
    """A one-line error when --model does not fit the command."""
    if fractions and model.task != "fractions":
        raise CLIError(
            f"--model {name} is a {model.task!r} model, not a fraction model; pass a model "
            "exported by hyperspy_mnvalence.training.fractions, or leave --model out for "
            "the shipped one"
        )
    if not fractions and model.task == "fractions":
        raise CLIError(
            f"--model {name} is a fraction (mixed-valence) model: use it with 'mnvalence "
            "decompose' (or 'mnvalence demo --fractions')"
        )


def _check_hspy_path(option: str, path: str | Path, folder_ok: bool = False) -> Path:
    """``path`` as a Path if it names a .hspy file, else a one-line error (before any work)."""
    p = Path(path)
    if p.suffix.lower() != ".hspy":
        raise CLIError(
            f"{option} {path}: results are written as .hspy (the only format that keeps the "
            f"maps in their metadata); give a .hspy file{', or a folder' if folder_ok else ''}"
        )
    return p


def _classify_kwargs(args: argparse.Namespace, fractions: bool = False) -> dict:
    from .signal_checks import check_window

    kw = _model_kwargs(args, fractions)
    background = args.background
    if args.no_background:
        if background not in (None, "none"):
            raise CLIError(f"--no-background contradicts --background {background}")
        background = "none"
    if background is not None:
        kw["background"] = background
    # checked before any file is read
    if args.energy_window is not None:
        kw["energy_window"] = check_window("--energy-window", args.energy_window)
    if args.background_window is not None:
        kw["background_window"] = check_window("--background-window", args.background_window)
    if args.min_snr is not None:
        if not (np.isfinite(args.min_snr) and args.min_snr >= 0):
            raise CLIError(f"--min-snr must be a finite number >= 0, got {args.min_snr:g}")
        kw["min_snr"] = args.min_snr
    if args.resolution is not None:
        if not (np.isfinite(args.resolution) and args.resolution > 0):
            raise CLIError(
                f"--resolution must be the zero-loss FWHM in eV (> 0), got {args.resolution:g}"
            )
        kw["resolution_eV"] = args.resolution
    if getattr(args, "keep_spikes", False):
        kw["remove_spikes"] = False
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}")
        kw["batch_size"] = args.batch_size
    return kw


def _export(p, target: Path, args, outputs: _Outputs) -> list[str]:
    """TIFF/CSV files of a result beside its .hspy (``--export``); never over an input."""
    if not args.export:
        return []
    from .exports import export_result

    stem = target.with_suffix("")
    for inp in outputs.inputs:  # an export file named like an input: refused up front
        if inp.parent.resolve() == stem.parent.resolve() and (
            inp.name.startswith(f"{stem.name}_") or inp.name == f"{stem.name}.csv"
        ):
            raise CLIError(
                f"--export would write {stem}_*.tif/{stem.name}.csv beside the input {inp}; "
                "choose another -o"
            )
    files = export_result(p, stem, formats=tuple(args.export), overwrite=args.overwrite)
    return [str(f) for f in files]


def _process_one(
    inp: Path, out: Path, run, kw: dict, args, fractions: bool, outputs, low_loss=None
) -> None:
    """Classify (or decompose) one input file and write its result(s)."""
    from .maps import compute_result, no_edge_mask

    t0 = time.perf_counter()
    if not inp.exists():
        raise CLIError(f"{inp}: no such file")
    outputs.check(out)  # before any work
    if args.png:
        outputs.check(out.with_suffix(".png"), "--png")
    spectra = _load_spectra(inp, lazy=args.lazy)
    if low_loss is not None:
        lows = _load_spectra(low_loss, lazy=False)
        if len(lows) != len(spectra):
            raise CLIError(
                f"{low_loss} holds {len(lows)} EELS signals but {inp} {len(spectra)}; give "
                "the low loss recorded with each core loss"
            )
        kw = [dict(kw, low_loss=ll) for ll in lows]
    else:
        kw = [kw] * len(spectra)
    results, errors = [], []
    white = getattr(args, "white_line", False)
    for s, kw_s in zip(spectra, kw, strict=True):
        # --white-line with a low loss reads the spectra the classification deconvolved
        kept = [] if white and kw_s.get("low_loss") is not None else None
        try:
            p = compute_result(run(s, **kw_s, deconvolved_out=kept), _progress(args))
        except ValueError as exc:
            errors.append(exc)
            continue
        if np.all(np.asarray(no_edge_mask(p).data)):
            window = kw_s.get("energy_window")
            where = f" between {window[0]:g} and {window[1]:g} eV" if window else ""
            errors.append(
                ValueError(
                    f"no pixel has a Mn L2,3 edge{where}; check the energy range of the "
                    "data, --energy-window, --background and --min-snr"
                )
            )
            continue
        if kept:  # already deconvolved: the white-line ratio is read as it is
            s, kw_s = kept[0], {k: v for k, v in kw_s.items() if k != "low_loss"}
        results.append((p, s, kw_s))
    if not results:
        raise CLIError(f"{inp}: {_one_line(errors[0])}")
    targets = [out] if len(results) == 1 else [
        out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(len(results))
    ]  # fmt: skip
    for target in targets:  # all checked before the first is written
        outputs.claim(target)
        if args.png:
            outputs.claim(target.with_suffix(".png"), "--png")
        if white:
            outputs.claim(_white_line_path(target), "--white-line")
    for (p, s, kw_s), target in zip(results, targets, strict=True):
        exported = _export(p, target, args, outputs)  # first: it checks its own files
        _save_hspy(p, target)
        written = [str(target)]
        if args.png:
            written.append(str(_save_png(p, target.with_suffix(".png"))))
        if exported:
            written.append(f"{len(exported)} export files ({', '.join(args.export)})")
        if white:
            written.append(_save_white_line(s, kw_s, _white_line_path(target)))
        print(f"{inp} -> {', '.join(written)}")
        summary = _fraction_summary(p) if fractions else _format_counts(_counts(p))
        print(f"  {summary} [{time.perf_counter() - t0:.1f} s]")


def _white_line_path(target: Path) -> Path:
    return target.with_name(f"{target.stem}_white_line.hspy")


def _save_white_line(s, kw: dict, path: Path) -> str:
    """Write the white-line ratio map of the spectra ``s`` (``--white-line``; with a low
    loss, ``s`` are the spectra the classification deconvolved)."""
    from .white_line import white_line_ratio

    opts = ("background", "background_window", "energy_window", "min_snr")
    w = white_line_ratio(s, **{k: kw[k] for k in opts if k in kw})
    if w._lazy:
        w.compute()
    with _written_atomically(path) as tmp:
        w.save(tmp, overwrite=True)
    ratio = np.asarray(w.data, dtype=float)
    shown = f" (median L3/L2 {np.nanmedian(ratio):.2f})" if np.isfinite(ratio).any() else ""
    return f"{path}{shown}"


def _process_files(args: argparse.Namespace, fractions: bool) -> int:
    """Classify (or decompose) each input file and write the result maps.

    Every input is processed: a failure is reported in one line and the next input
    goes on; the exit status is 1 if any failed, with a summary line at the end.
    """
    from .classification import run_task
    from .mixed import fraction_result

    def run(s, deconvolved_out=None, **kw):
        # what classify_mn_valence / decompose_mn_valence run, and with a low loss the
        # deconvolved spectra kept for --white-line
        p = run_task(s, "fractions" if fractions else "classification", **kw,
                     deconvolved_out=deconvolved_out)  # fmt: skip
        return fraction_result(p) if fractions else p

    inputs = [Path(x) for x in args.inputs]
    paths = _output_paths(inputs, args.output, "mn_fractions" if fractions else "mn_valence")
    kw = _classify_kwargs(args, fractions)
    lows = getattr(args, "low_loss", None) or [None] * len(inputs)
    if len(lows) != len(inputs):
        raise CLIError(
            f"--low-loss gives {len(lows)} files for {len(inputs)} inputs; give one low loss "
            "per input, in the order of the inputs"
        )
    outputs = _Outputs(inputs, args.overwrite)
    if len(inputs) == 1:  # one input: its error is the command's error
        _process_one(inputs[0], paths[0], run, kw, args, fractions, outputs, lows[0])
        return 0
    failed: list[Path] = []
    for inp, out, low in zip(inputs, paths, lows, strict=True):
        try:
            _process_one(inp, out, run, kw, args, fractions, outputs, low)
        except _PER_FILE_ERRORS as exc:
            failed.append(inp)
            msg = _cli_speak(_error_message(exc, inp))
            if not msg.startswith(str(inp)):
                msg = f"{inp}: {msg}"
            print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)
    if failed:
        print(
            f"{PROG}: {len(failed)} of {len(inputs)} inputs failed: "
            f"{', '.join(str(f) for f in failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify each input file and write its probabilities."""
    return _process_files(args, fractions=False)


def cmd_decompose(args: argparse.Namespace) -> int:
    """Decompose each input file into valence fractions and write them."""
    return _process_files(args, fractions=True)


def _demo_summary(s, p) -> list[str]:
    """Pixel counts and, where the demo carries its truth, the accuracy."""
    from .maps import most_likely_valence

    lines = [f"pixels per most likely valence: {_format_counts(_counts(p))}"]
    region = s.metadata.get_item("Sample.region_truth")
    if region is None:
        return lines
    region = np.asarray(region)
    ml = np.asarray(most_likely_valence(p).data)
    grain = region >= 2
    found = np.isfinite(ml)
    if grain.any():
        acc = float(np.mean(ml[grain] == region[grain]))
        lines.append(
            f"accuracy on Mn pixels (majority valence of the grain): {100 * acc:.1f}% "
            f"of {int(grain.sum())}"
        )
        for v in (2, 3, 4):
            sel = region == v
            if sel.any():
                lines.append(
                    f"  Mn{v}+ grain: {100 * float(np.mean(ml[sel] == v)):.1f}% "
                    f"of {int(sel.sum())} pixels"
                )
        lines.append(f"Mn edge found on {100 * float(np.mean(found[grain])):.1f}% of Mn pixels")
    if (~grain).any():
        lines.append(
            f"no-edge flag on {100 * float(np.mean(~found[~grain])):.1f}% of the "
            f"{int((~grain).sum())} vacuum/substrate pixels"
        )
    peak = p.metadata.get_item("MnValence.l3_peak_eV")
    offset = s.metadata.get_item("Sample.calibration_offset_eV")
    if peak is not None and offset is not None:
        lines.append(
            f"calibration drift in the demo: {np.min(offset):+.1f} to {np.max(offset):+.1f} eV; "
            f"measured L3 peak range {np.nanmin(peak.data):.1f}-{np.nanmax(peak.data):.1f} eV"
        )
    return lines


def _demo_fraction_summary(s, f) -> list[str]:
    """Mean oxidation state summary and, where the demo carries its truth, its error."""
    lines = [_fraction_summary(f)]
    truth = s.metadata.get_item("Sample.mn_fractions_truth")
    region = s.metadata.get_item("Sample.region_truth")
    if truth is None or region is None:
        return lines
    truth, region = np.asarray(truth, dtype=float), np.asarray(region)
    mos = np.asarray(f.metadata.MnValence.mean_valence.data, dtype=float)
    ok = (region >= 2) & np.isfinite(mos)
    if not ok.any():
        return lines
    true_mos = np.tensordot([2.0, 3.0, 4.0], truth, axes=1)
    err = np.abs(mos - true_mos)
    lines.append(
        f"mean oxidation state vs the demo's truth: MAE {np.mean(err[ok]):.3f} on "
        f"{int(ok.sum())} Mn pixels (a constant 3 would score "
        f"{np.mean(np.abs(3.0 - true_mos[ok])):.2f})"
    )
    mixed = ok & (truth.max(axis=0) < 0.99)
    if mixed.any():
        lines.append(
            f"  on the {int(mixed.sum())} mixed interface pixels: MAE {np.mean(err[mixed]):.3f}"
        )
    frac = np.asarray(f.data, dtype=float)
    lines.append(f"fraction MAE on Mn pixels: {np.mean(np.abs(frac - truth)[:, ok]):.3f}")
    return lines


#: Peak memory of the demo per byte of its spectrum image (building it, float64 working
#: copies, classifying it), measured roughly; used to refuse a --shape that cannot fit.
_DEMO_MEMORY_FACTOR = 4.0


def _check_demo_size(rows: int, cols: int, make) -> None:
    """A one-line error when the demo of ``rows x cols`` pixels cannot fit in memory."""
    small = make(shape=(8, 8), seed=0)
    per_pixel = small.data.nbytes / 64
    need = per_pixel * rows * cols * _DEMO_MEMORY_FACTOR
    free = _available_memory()
    if free is not None and need > free:
        raise CLIError(
            f"--shape {rows} {cols} needs about {_size(need)} of memory (a spectrum image "
            f"of {_size(per_pixel * rows * cols)}), but {_size(free)} are available; give "
            "a smaller --shape"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo spectrum image, classify it, write the maps and a summary."""
    from .classification import classify_mn_valence
    from .mixed import decompose_mn_valence
    from .simulations import make_demo_spectrum_image

    t0 = time.perf_counter()
    rows, cols = args.shape
    if rows < 8 or cols < 8:
        raise CLIError("--shape needs at least 8 x 8 pixels")
    hspy = None if args.hspy is None else _check_hspy_path("--hspy", args.hspy)
    save_input = (
        None if args.save_input is None else _check_hspy_path("--save-input", args.save_input)
    )
    outputs = _Outputs([], args.overwrite)  # all checked before any work
    out = outputs.claim(Path(args.output))
    if hspy is not None:
        outputs.claim(hspy, "--hspy")
    if save_input is not None:
        outputs.claim(save_input, "--save-input")
    kw = _model_kwargs(args, args.fractions)
    _check_demo_size(rows, cols, make_demo_spectrum_image)
    s = make_demo_spectrum_image(shape=(rows, cols), seed=args.seed)
    print(
        f"demo spectrum image: {rows} x {cols} pixels, {s.axes_manager.signal_shape[0]} "
        "channels, Mn2+/Mn3+/Mn4+ grains, vacuum, substrate, drifting calibration"
    )
    if save_input is not None:
        _save_hspy(s, save_input)
        print(f"spectrum image written to {save_input}")
    run = decompose_mn_valence if args.fractions else classify_mn_valence
    p = run(s, **kw)
    _save_png(p, out)
    print(f"{'fraction' if args.fractions else 'valence'} maps written to {out}")
    if hspy is not None:
        _save_hspy(p, hspy)
        print(f"{'fractions' if args.fractions else 'probabilities'} written to {hspy}")
    summary = _demo_fraction_summary if args.fractions else _demo_summary
    for line in summary(s, p):
        print(line)
    print(f"done in {time.perf_counter() - t0:.1f} s (model {p.metadata.MnValence.model})")
    return 0


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple) and all(isinstance(x, int | float) for x in v):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return str(v)


def _card_lines(d, indent: int = 2) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(d, dict):
        for k, v in d.items():
            if (
                isinstance(v, dict | list)
                and v
                and not (isinstance(v, list) and all(isinstance(x, int | float | str) for x in v))
            ):
                lines.append(f"{pad}{k}:")
                lines.extend(_card_lines(v, indent + 2))
            else:
                lines.append(f"{pad}{k}: {_fmt_value(v)}")
    elif isinstance(d, list):
        for item in d:
            if isinstance(item, dict):
                sub = _card_lines(item, indent + 2)
                if sub:
                    sub[0] = pad + "- " + sub[0].lstrip()
                lines.extend(sub)
            else:
                lines.append(f"{pad}- {_fmt_value(item)}")
    return lines


def cmd_info(args: argparse.Namespace) -> int:
    """Print the model card."""
    from .model import model_card

    card = model_card(None if args.model is None else str(args.model))
    if args.json:
        print(json.dumps(card, indent=2, sort_keys=True))
        return 0
    names = card.get("class_names") or [f"Mn{c}+" for c in card.get("classes", [])]
    print(f"model: {card.get('path')}")
    if (card.get("training") or {}).get("smoke"):
        print("NOTE: a smoke-test model (a tiny pipeline check), not for use on data")
    print(f"task: {card.get('task', 'classification')}")
    print(f"classes: {', '.join(str(n) for n in names)}")
    for key in ("architecture", "n_members", "energy_step_eV", "created", "version"):
        if key in card:
            print(f"{key}: {_fmt_value(card[key])}")
    print("metrics:")
    metrics = card.get("metrics")
    print("\n".join(_card_lines(metrics)) if metrics else "  (not recorded in this model)")
    print("training data:")
    data = card.get("training_data")
    print("\n".join(_card_lines(data)) if data else "  (not recorded in this model)")
    print("preprocessing:")
    print("\n".join(_card_lines(card.get("preprocessing", {}))))
    shown = {
        "path", "task", "classes", "class_names", "architecture", "n_members",
        "energy_step_eV", "created", "version", "metrics", "training_data", "preprocessing",
    }  # fmt: skip
    rest = {k: v for k, v in card.items() if k not in shown}
    long = sorted(k for k, v in rest.items() if isinstance(v, dict))
    if not args.full:
        rest = {k: v for k, v in rest.items() if k not in long}
    if rest:
        print("other:")
        print("\n".join(_card_lines(rest)))
    if long and not args.full:
        print(f"(settings not shown: {', '.join(long)}; see --full or --json)")
    return 0


# ---------------------------------------------------------------------------------------
# parser and entry point
# ---------------------------------------------------------------------------------------


def _add_model_option(parser: argparse.ArgumentParser) -> None:
    """``--model NAME|PATH``, the same in every command."""
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="default 'acquisition': the five-network ensemble trained on simulated raw "
        "acquisitions (best on thick samples and coarse resolution/dispersion); 'ensemble' "
        "for the ten networks trained on clean spectra (a few points better on thin, clean "
        "data); 'fast' for the default's fold-1 network alone (faster, no ensemble spread); "
        "'lite' for the smaller single network (a little less accurate); 'thin' for the "
        "networks trained on thin acquisitions (used with --low-loss unless --model is "
        "given); 'broad' for those trained at 1.4-2 eV resolution (used with --resolution "
        f"{BROAD_RESOLUTION_EV:g} or more); '1ev' for those trained at 1 eV per channel "
        "(used for inputs at 0.95-1.05 eV per channel); or a retrained .onnx file",
    )


def _add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``, the same in every command that writes files."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace output files that exist (an input file is never replaced)",
    )


def _add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``, the same in every command that classifies."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_file_options(parser: argparse.ArgumentParser, fractions: bool) -> None:
    """Inputs, output and options shared by ``classify`` and ``decompose``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="spectrum image file(s)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output .hspy file for one input, or a folder for several",
    )
    parser.add_argument(
        "--png", action="store_true", help="also write PNG maps next to each output"
    )
    if fractions:
        parser.add_argument(
            "--model",
            metavar="PATH",
            help="a retrained fraction model (.onnx) (default: the shipped fraction ensemble)",
        )
    else:
        _add_model_option(parser)
        parser.add_argument(
            "--white-line",
            action="store_true",
            help="also write the classical cross-check: the L3/L2 white-line ratio map with "
            "the L3 and L2 positions (<output>_white_line.hspy; NaN where no Mn edge)",
        )
    from .signal_checks import BACKGROUNDS

    parser.add_argument(
        "--background",
        choices=BACKGROUNDS,
        help="pre-edge background: 'auto' (default) fits a power law where the pre-edge "
        "allows, else a constant; 'none' for background-subtracted spectra",
    )
    parser.add_argument(
        "--no-background",
        action="store_true",
        help="the spectra are already background-subtracted: skip the pre-edge fit "
        "(the same as --background none)",
    )
    parser.add_argument(
        "--background-window",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="a fixed pre-edge fit window (eV) for every spectrum (default: placed before "
        "each spectrum's own L3 onset)",
    )
    parser.add_argument(
        "--energy-window",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="energies (eV) between which to look for the L3 edge (default 618-672 eV)",
    )
    parser.add_argument(
        "--min-snr",
        type=float,
        metavar="X",
        help="minimum L3 height over the noise for a pixel to count as having a Mn edge "
        f"(default {EDGE_MIN_SNR:g}, calibrated on simulated negatives; see the user guide)",
    )
    parser.add_argument(
        "--low-loss",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="the low-loss spectrum image of each input's scan, one per input in the same "
        "order: plural scattering is removed by Fourier-ratio deconvolution first (and "
        "the 'thin' model reads the result unless --model is given), and the t/lambda map "
        "is stored with the result",
    )
    parser.add_argument(
        "--resolution",
        type=float,
        metavar="EV",
        help="the instrument's energy resolution, the zero-loss peak's FWHM (eV), if "
        f"known: from {BROAD_RESOLUTION_EV:g} eV up the 'broad' model (trained at "
        "1.4-2 eV) reads the spectra unless --model or --low-loss is given; with "
        "--low-loss it is measured there",
    )
    parser.add_argument(
        "--keep-spikes",
        action="store_true",
        help="do not replace cosmic-ray spikes and hot channels (replaced by default)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="spectra per preprocessing/inference batch (default 512)",
    )
    parser.add_argument(
        "--export",
        nargs="+",
        choices=("tiff", "csv"),
        metavar="FORMAT",
        help="also write every map as TIFF and/or a CSV table beside each output "
        "(<output>_<map>.tif, <output>.csv): tiff, csv or both",
    )
    parser.add_argument(
        "--lazy", action="store_true", help="load and process lazily (data larger than memory)"
    )
    _add_overwrite_option(parser)
    _add_progress_option(parser)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mnvalence`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Calibration-independent Mn oxidation-state (Mn2+/Mn3+/Mn4+) maps from EELS "
            "spectrum images of the Mn L2,3 edge."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser(
        "classify",
        help="classify spectrum images and write probability maps",
        description=(
            "Classify every pixel of EELS spectrum images (any format RosettaSciIO reads) "
            "and write the Mn2+/Mn3+/Mn4+ probabilities as .hspy (NaN where no Mn edge). "
            "Files holding several signals: every EELS spectrum signal with a Mn edge is "
            "classified."
        ),
    )
    _add_file_options(c, fractions=False)
    c.set_defaults(func=cmd_classify)

    f = sub.add_parser(
        "decompose",
        help="map mixed valence: fractions of Mn2+/Mn3+/Mn4+ and the mean oxidation state",
        description=(
            "Decompose every pixel of EELS spectrum images (any format RosettaSciIO reads) "
            "into the fractions of Mn2+, Mn3+ and Mn4+ and write them as .hspy (NaN where "
            "no Mn edge), with the mean oxidation state and its uncertainty (the spread of "
            "the ensemble members) in metadata.MnValence."
        ),
    )
    _add_file_options(f, fractions=True)
    f.set_defaults(func=cmd_decompose)

    d = sub.add_parser(
        "demo",
        help="classify the built-in synthetic spectrum image",
        description=(
            "Build the synthetic demo spectrum image (Mn2+, Mn3+, Mn4+ grains, vacuum, a "
            "Mn-free substrate and a drifting energy calibration), classify it, write a "
            "PNG of the maps and print a summary with the accuracy against the truth."
        ),
    )
    d.add_argument(
        "-o",
        "--output",
        default="demo_valence_maps.png",
        metavar="PNG",
        help="PNG of the valence maps (default: %(default)s)",
    )
    d.add_argument("--hspy", metavar="PATH", help="also write the probabilities as .hspy")
    d.add_argument(
        "--save-input", metavar="PATH", help="also write the demo spectrum image (.hspy)"
    )
    d.add_argument(
        "--shape",
        nargs=2,
        type=int,
        default=(48, 64),
        metavar=("ROWS", "COLS"),
        help="pixels of the demo map (default: 48 64)",
    )
    d.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    d.add_argument(
        "--fractions",
        action="store_true",
        help="decompose into valence fractions (mixed valence) instead of classifying; "
        "prints the error of the mean oxidation state against the demo's truth",
    )
    _add_model_option(d)
    _add_overwrite_option(d)
    _add_progress_option(d)
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser(
        "info",
        help="print the model card",
        description="Print the model card: classes, metrics, training data, preprocessing.",
    )
    _add_model_option(i)
    i.add_argument("--json", action="store_true", help="print the raw card as JSON")
    i.add_argument(
        "--full", action="store_true", help="also print the augmentation and training settings"
    )
    i.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mnvalence`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 for an error in the data or files, 2 for a usage
        error.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from .model import ModelError

    with _quiet_libraries():
        try:
            rc = int(args.func(args))
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return rc
        except BrokenPipeError:
            return _closed_pipe()
        except (CLIError, ModelError, ValueError, TypeError, OSError, ImportError) as exc:
            msg = _cli_speak(_one_line(exc))
        except MemoryError as exc:
            msg = _error_message(exc)
        except KeyboardInterrupt:
            msg = "interrupted"
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return 1


def _closed_pipe() -> int:
    """The reader of stdout went away (``mnvalence info | head -1``): stop quietly.

    Python would report the failed flush of stdout at exit; stdout goes to
    ``os.devnull`` instead. Exit status 0: stopping early was the reader's choice.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
