"""What the command says: one-line errors in the command line's words, memory and progress."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "CLIError",
    "PER_FILE_ERRORS",
    "PROG",
    "available_memory",
    "cli_speak",
    "error_message",
    "one_line",
    "package_warnings",
    "progress_option",
    "quiet_libraries",
    "readable_size",
]


PROG = "mnvalence"


class CLIError(Exception):
    """An error reported to the user as a single line, without a traceback."""


def one_line(exc: BaseException | str) -> str:
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
    (r"\(low_loss=\)", "(--low-loss FILE)"),
    (r"\blow_loss=", "--low-loss "),
    (r"\bmodel='([\w.-]+)'", r"--model \1"),
    (r"\bmodel=None\b", "no --model"),
    (r"^model must\b", "--model must"),
)


def cli_speak(msg: str) -> str:
    """A library message with its argument names replaced by the command-line options."""
    import re

    for pattern, repl in _CLI_SPEAK:
        msg = re.sub(pattern, repl, msg)
    return msg


def readable_size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def available_memory() -> int | None:
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


def error_message(exc: BaseException, inp: Path | None = None) -> str:
    """One line for an error; resource errors with a size hint and what to do."""
    if isinstance(exc, MemoryError):
        where = f" while processing {inp}" if inp is not None else ""
        hint = ""
        if inp is not None and inp.is_file():
            hint = f"; the file holds {readable_size(inp.stat().st_size)}: use --lazy to process it in blocks"
        free = available_memory()
        if free is not None:
            hint += f" ({readable_size(free)} of memory available)"
        return one_line(f"out of memory{where} ({one_line(exc)}){hint}")
    return one_line(exc)


#: Errors of one input file: reported, and the next input is processed.
PER_FILE_ERRORS = (CLIError, ValueError, TypeError, OSError, ImportError, MemoryError)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
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


#: The package's own source folder: a warning attributed to a file in it is ours.
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _ours(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(_PACKAGE_DIR)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def package_warnings(where: str) -> Iterator[None]:
    """Print the package's own warnings (out of range, thick sample ...) as one
    ``mnvalence: warning: WHERE: ...`` line each on stderr, once per message.

    :func:`quiet_libraries` silences every warning for the command; the ones the
    package gives are what a user must act on, so they pass, in the command line's
    words. The libraries' warnings stay silent. The warning that nothing was classified
    is not printed: the caller reports that input as failed, with the reasons.
    """
    from ..maps import NOTHING_CLASSIFIED

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen: set[str] = set()
            for w in caught:
                msg = cli_speak(one_line(str(w.message)))
                if _ours(w.filename) and not msg.startswith(NOTHING_CLASSIFIED) and msg not in seen:
                    seen.add(msg)
                    print(f"{PROG}: warning: {where}: {msg}", file=sys.stderr, flush=True)


def progress_option(args: argparse.Namespace) -> bool | None:
    """``None`` (HyperSpy's preference) unless ``--no-progress`` was given."""
    return False if getattr(args, "no_progress", False) else None
