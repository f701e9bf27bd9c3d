"""Evaluation of an exported model through the package's own inference path.

The same checks for every candidate, all run on the ONNX file through
:func:`hyperspy_mnvalence.classification.classify_spectra` (what users run):

* the 31 digitized literature references (evaluation only, never selection) at every
  calibration offset from -15 to +15 eV and at 0.05-0.5 eV per channel;
* the 659 Titan Mn2+ spectra of the wide window as one line scan (share read as Mn2+);
* optionally the robustness suite (:mod:`.suite`) and the false-Mn rate.

Run ``python -m hyperspy_mnvalence.training.acquisition_report MODEL.onnx``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .predictors import onnx_predictor

__all__ = ["digitized_through_pipeline", "mn2_line", "main"]

OFFSETS_EV = (-15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0)
DISPERSIONS_EV = (0.05, 0.1, 0.25, 0.5)


def digitized_through_pipeline(model: str) -> dict:
    """Correct references (of 31) at each offset and at each dispersion.

    Returns
    -------
    dict
        ``offsets``: ``{offset: correct}``; ``dispersions``: ``{eV/channel: correct}``;
        ``wrong``: ids wrong at any setting; ``total``.
    """
    from hyperspy_mnvalence.datasets import load_digitized_references

    refs = load_digitized_references()
    predict = onnx_predictor(model)
    out: dict = {"offsets": {}, "dispersions": {}, "wrong": set(), "total": len(refs)}

    def run(dispersion: float, offset: float) -> int:
        ok = 0
        for d in refs:
            e, y = np.asarray(d["energy"], float), np.asarray(d["intensity"], float)
            eu = np.arange(e[0], e[-1], dispersion)
            p = predict(np.interp(eu, e, y)[None, :].astype(np.float32), eu + offset)[0]
            right = np.isfinite(p).all() and 2 + int(np.argmax(p)) == int(d["valence"])
            ok += bool(right)
            if not right:
                out["wrong"].add(int(d["id"]))
        return ok

    for off in OFFSETS_EV:
        out["offsets"][f"{off:+.0f}"] = run(0.1, off)
    for disp in DISPERSIONS_EV:
        out["dispersions"][f"{disp}"] = run(disp, 0.0)
    out["wrong"] = sorted(out["wrong"])
    return out


def mn2_line(model: str) -> float:
    """Share of the 659 wide-window Titan Mn2+ spectra read as Mn2+ (no edge = wrong)."""
    from hyperspy_mnvalence.datasets import load_titan_mn2_wide

    d = load_titan_mn2_wide()
    p = onnx_predictor(model)(d["spectra"], d["energy"])
    ok = np.isfinite(p).all(1) & (np.nan_to_num(p).argmax(1) == 0)
    return float(ok.mean())


def main(argv: list[str] | None = None) -> int:
    """Print and write (``--out``) the evaluation of one or more ONNX models."""
    ap = argparse.ArgumentParser(
        prog="python -m hyperspy_mnvalence.training.acquisition_report", description=__doc__
    )
    ap.add_argument("models", nargs="+", help="ONNX files")
    ap.add_argument("--out", type=Path, help="JSON file for the results")
    args = ap.parse_args(argv)
    res = {}
    for m in args.models:
        res[m] = {"digitized": digitized_through_pipeline(m), "mn2_line": mn2_line(m)}
        print(m, json.dumps(res[m]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
