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

import contextlib
import os
import sys
from collections.abc import Sequence

from ._messages import (
    PROG,
    CLIError,
    cli_speak,
    error_message,
    one_line,
    quiet_libraries,
)
from ._parser import (
    build_parser,
)

__all__ = ["CLIError", "build_parser", "main"]


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
    from ..model import ModelError

    with quiet_libraries():
        try:
            rc = int(args.func(args))
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return rc
        except BrokenPipeError:
            return _closed_pipe()
        except (CLIError, ModelError, ValueError, TypeError, OSError, ImportError) as exc:
            msg = cli_speak(one_line(exc))
        except MemoryError as exc:
            msg = error_message(exc)
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
