"""The commands: classify, decompose, demo and info."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ._files import (
    Outputs,
    check_hspy_path,
    export_files,
    load_spectra,
    output_paths,
    save_hspy,
    save_png,
    save_white_line,
    white_line_map,
    white_line_path,
)
from ._messages import (
    PER_FILE_ERRORS,
    PROG,
    CLIError,
    available_memory,
    cli_speak,
    error_message,
    one_line,
    package_warnings,
    progress_option,
    readable_size,
)

__all__ = ["cmd_classify", "cmd_decompose", "cmd_demo", "cmd_info"]


def _counts(p) -> dict[str, int]:
    """Pixels per most likely valence, and pixels without a Mn edge."""
    from ..maps import most_likely_valence

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


def _model_kwargs(args: argparse.Namespace, fractions: bool) -> dict:
    """``{"show_progressbar": ...}`` plus the ``--model`` loaded and checked, if given.

    Loading first makes a missing file or a model for the other task fail before any
    data are read.
    """
    kw: dict = {"show_progressbar": progress_option(args)}
    if args.model is not None:
        from ..model import load_model

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


def _classify_kwargs(args: argparse.Namespace, fractions: bool = False) -> dict:
    from ..signal_checks import check_window

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


def _process_one(
    inp: Path, out: Path, run, kw: dict, args, fractions: bool, outputs, low_loss=None
) -> None:
    """Classify (or decompose) one input file and write its result(s)."""
    from ..maps import compute_result, metadata_map, nothing_classified

    t0 = time.perf_counter()
    if not inp.exists():
        raise CLIError(f"{inp}: no such file")
    outputs.check(out)  # before any work
    if args.png:
        outputs.check(out.with_suffix(".png"), "--png")
    spectra = load_spectra(inp, lazy=args.lazy)
    if low_loss is not None:
        lows = load_spectra(low_loss, lazy=False)
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
            with package_warnings(str(inp)):
                p = compute_result(run(s, **kw_s, deconvolved_out=kept), progress_option(args))
        except ValueError as exc:
            errors.append(exc)
            continue
        found = nothing_classified(metadata_map(p, "reason").data)
        if found is not None:  # every pixel without a Mn edge, and why
            window = kw_s.get("energy_window")
            where = f" between {window[0]:g} and {window[1]:g} eV" if window else ""
            why, codes = found
            if 1 in codes:  # non-finite channels (the reason listed first)
                errors.append(
                    ValueError(
                        f"no pixel could be classified ({why}): crop the spectra or "
                        "interpolate over the bad channels"
                    )
                )
                continue
            errors.append(
                ValueError(
                    f"no pixel has a Mn L2,3 edge{where} ({why}); check the energy range of "
                    "the data, --energy-window, --background and --min-snr"
                )
            )
            continue
        if kept:  # already deconvolved: the white-line ratio is read as it is
            s, kw_s = kept[0], {k: v for k, v in kw_s.items() if k != "low_loss"}
        results.append((p, s, kw_s))
    if not results:
        raise CLIError(f"{inp}: {one_line(errors[0])}")
    targets = [out] if len(results) == 1 else [
        out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(len(results))
    ]  # fmt: skip
    for target in targets:  # all checked before the first is written
        outputs.claim(target)
        if args.png:
            outputs.claim(target.with_suffix(".png"), "--png")
        if white:
            outputs.claim(white_line_path(target), "--white-line")
    for (p, s, kw_s), target in zip(results, targets, strict=True):
        w = white_line_map(s, kw_s) if white else None
        exported = export_files(p, target, args, outputs, w)  # first: checks its own files
        save_hspy(p, target)
        written = [str(target)]
        if args.png:
            written.append(str(save_png(p, target.with_suffix(".png"))))
        if exported:
            written.append(f"{len(exported)} export files ({', '.join(args.export)})")
        if white:
            written.append(save_white_line(w, white_line_path(target)))
        print(f"{inp} -> {', '.join(written)}")
        summary = _fraction_summary(p) if fractions else _format_counts(_counts(p))
        print(f"  {summary} [{time.perf_counter() - t0:.1f} s]")
        weak = None if fractions else _weak_edge_line(p)
        if weak:
            print(f"  {weak}")


def _process_files(args: argparse.Namespace, fractions: bool) -> int:
    """Classify (or decompose) each input file and write the result maps.

    Every input is processed: a failure is reported in one line and the next input
    goes on; the exit status is 1 if any failed, with a summary line at the end.
    """
    from ..classification import run_task
    from ..mixed import fraction_result

    def run(s, deconvolved_out=None, **kw):
        # what classify_mn_valence / decompose_mn_valence run, and with a low loss the
        # deconvolved spectra kept for --white-line
        p = run_task(s, "fractions" if fractions else "classification", **kw,
                     deconvolved_out=deconvolved_out)  # fmt: skip
        return fraction_result(p) if fractions else p

    inputs = [Path(x) for x in args.inputs]
    paths = output_paths(inputs, args.output, "mn_fractions" if fractions else "mn_valence")
    kw = _classify_kwargs(args, fractions)
    lows = getattr(args, "low_loss", None) or [None] * len(inputs)
    if len(lows) != len(inputs):
        raise CLIError(
            f"--low-loss gives {len(lows)} files for {len(inputs)} inputs; give one low loss "
            "per input, in the order of the inputs"
        )
    outputs = Outputs(inputs, args.overwrite)
    if len(inputs) == 1:  # one input: its error is the command's error
        _process_one(inputs[0], paths[0], run, kw, args, fractions, outputs, lows[0])
        return 0
    failed: list[Path] = []
    for inp, out, low in zip(inputs, paths, lows, strict=True):
        try:
            _process_one(inp, out, run, kw, args, fractions, outputs, low)
        except PER_FILE_ERRORS as exc:
            failed.append(inp)
            msg = cli_speak(error_message(exc, inp))
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


def _weak_edge_line(p) -> str | None:
    """How many pixels of a classification result the weak-edge model read (flag 16)."""
    from ..decisions import WEAK_EDGE_FLAG
    from ..model import WEAK_CONTRAST

    flags = p.metadata.get_item("MnValence.range_flags")
    if flags is None:
        return None
    n = int(np.count_nonzero(np.asarray(flags.data).astype(np.int64) & WEAK_EDGE_FLAG))
    if not n:
        return None
    return (
        f"weak edges (L3 under {100 * WEAK_CONTRAST:.1f} % above the background): {n} pixels "
        f"read by the weak-edge model (range flag {WEAK_EDGE_FLAG})"
    )


def _demo_summary(s, p) -> list[str]:
    """Pixel counts and, where the demo carries its truth, the accuracy."""
    from ..maps import most_likely_valence

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
    free = available_memory()
    if free is not None and need > free:
        raise CLIError(
            f"--shape {rows} {cols} needs about {readable_size(need)} of memory (a spectrum image "
            f"of {readable_size(per_pixel * rows * cols)}), but {readable_size(free)} are available; give "
            "a smaller --shape"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo spectrum image, classify it, write the maps and a summary."""
    from ..classification import classify_mn_valence
    from ..mixed import decompose_mn_valence
    from ..simulations import make_demo_spectrum_image

    t0 = time.perf_counter()
    rows, cols = args.shape
    if rows < 8 or cols < 8:
        raise CLIError("--shape needs at least 8 x 8 pixels")
    hspy = None if args.hspy is None else check_hspy_path("--hspy", args.hspy)
    save_input = (
        None if args.save_input is None else check_hspy_path("--save-input", args.save_input)
    )
    outputs = Outputs([], args.overwrite)  # all checked before any work
    out = outputs.claim(Path(args.output))
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    if out.suffix.lower().lstrip(".") not in kinds:
        raise CLIError(
            f"-o {out}: the demo writes a figure; give a name ending in .png, .pdf or .svg "
            f"(any of {', '.join('.' + k for k in sorted(kinds))})"
        )
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
        save_hspy(s, save_input)
        print(f"spectrum image written to {save_input}")
    run = decompose_mn_valence if args.fractions else classify_mn_valence
    with package_warnings("demo"):
        p = run(s, **kw)
    save_png(p, out)
    print(f"{'fraction' if args.fractions else 'valence'} maps written to {out}")
    if hspy is not None:
        save_hspy(p, hspy)
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
    from ..model import model_card

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
