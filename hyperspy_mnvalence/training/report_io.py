"""Where the training reports go, and how they are written (JSON, figures without a screen)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["REPORT_DIR", "dump_json", "pyplot"]

#: Default output folder, relative to the current folder (``training/reports`` of a
#: checkout when run from its root; never inside an installed package).
REPORT_DIR = Path("training") / "reports"


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (reports are written without a screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def dump_json(obj, path: Path) -> None:
    """Write ``obj`` as indented JSON (numpy scalars as floats), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=float))
