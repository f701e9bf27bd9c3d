"""Files in and out: EELS signals read from any format, outputs claimed up front and written atomically."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..signal_checks import EELS_TYPES
from ._messages import (
    CLIError,
    one_line,
)

__all__ = [
    "Outputs",
    "check_hspy_path",
    "export_files",
    "load_spectra",
    "output_paths",
    "save_hspy",
    "save_png",
    "save_white_line",
    "white_line_map",
    "white_line_path",
]


def _is_eels_spectrum(s) -> bool:
    if s.axes_manager.signal_dimension != 1:
        return False
    return s.metadata.get_item("Signal.signal_type", "") in EELS_TYPES


def load_spectra(path: Path, lazy: bool) -> list:
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
            f"{path} could not be read ({one_line(exc)}); give a file RosettaSciIO "
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


def output_paths(inputs: list[Path], output: str, suffix: str = "mn_valence") -> list[Path]:
    """One ``.hspy`` path per input: OUTPUT itself for one input, else OUTPUT/<stem>.

    OUTPUT is a folder if it is one already or ends with a slash.
    """
    folder = str(output).endswith(("/", os.sep))
    output = Path(output)
    if len(inputs) == 1 and not output.is_dir() and not folder:
        if not output.suffix:
            return [output.with_suffix(".hspy")]
        return [check_hspy_path("-o", output, folder_ok=True)]
    if output.exists() and not output.is_dir():
        raise CLIError(f"{output} exists and is not a folder; with several inputs -o is a folder")
    if not output.exists() and not folder and output.suffix.lower() in (".hspy", ".zspy", ".png"):
        raise CLIError(
            f"-o {output} names a file, but there are {len(inputs)} inputs: give a folder "
            f"for their results (e.g. -o {output.with_suffix('')}/)"
        )
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


class Outputs:
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


def save_png(p, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_valence_maps

    fig = plot_valence_maps(p)
    try:
        with _written_atomically(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def save_hspy(p, path: Path) -> None:
    with _written_atomically(path) as tmp:
        p.save(str(tmp), overwrite=True)


def check_hspy_path(option: str, path: str | Path, folder_ok: bool = False) -> Path:
    """``path`` as a Path if it names a .hspy file, else a one-line error (before any work)."""
    p = Path(path)
    if p.suffix.lower() != ".hspy":
        raise CLIError(
            f"{option} {path}: results are written as .hspy (the only format that keeps the "
            f"maps in their metadata); give a .hspy file{', or a folder' if folder_ok else ''}"
        )
    return p


def export_files(p, target: Path, args, outputs: Outputs, white_line=None) -> list[str]:
    """TIFF/CSV files of a result beside its .hspy (``--export``; with ``--white-line``,
    its ratio and L3 maps too); never over an input."""
    if not args.export:
        return []
    from ..exports import export_result

    stem = target.with_suffix("")
    for inp in outputs.inputs:  # an export file named like an input: refused up front
        if inp.parent.resolve() == stem.parent.resolve() and (
            inp.name.startswith(f"{stem.name}_") or inp.name == f"{stem.name}.csv"
        ):
            raise CLIError(
                f"--export would write {stem}_*.tif/{stem.name}.csv beside the input {inp}; "
                "choose another -o"
            )
    files = export_result(
        p, stem, formats=tuple(args.export), white_line=white_line, overwrite=args.overwrite
    )
    return [str(f) for f in files]


def white_line_path(target: Path) -> Path:
    return target.with_name(f"{target.stem}_white_line.hspy")


def white_line_map(s, kw: dict):
    """The white-line ratio map of the spectra ``s`` (``--white-line``; with a low loss,
    ``s`` are the spectra the classification deconvolved), computed."""
    from ..white_line import white_line_ratio

    opts = ("background", "background_window", "energy_window", "min_snr")
    w = white_line_ratio(s, **{k: kw[k] for k in opts if k in kw})
    if w._lazy:
        w.compute()
    return w


def save_white_line(w, path: Path) -> str:
    """Write a white-line ratio map (``--white-line``); the line the command prints."""
    with _written_atomically(path) as tmp:
        w.save(tmp, overwrite=True)
    ratio = np.asarray(w.data, dtype=float)
    shown = f" (median L3/L2 {np.nanmedian(ratio):.2f})" if np.isfinite(ratio).any() else ""
    return f"{path}{shown}"
