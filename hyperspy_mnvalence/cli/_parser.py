"""The ``mnvalence`` argument parser and its options."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..decisions import EDGE_MIN_SNR
from ..model import BROAD_RESOLUTION_EV, WEAK_CONTRAST
from ._commands import (
    cmd_classify,
    cmd_decompose,
    cmd_demo,
    cmd_info,
)
from ._messages import (
    PROG,
)

__all__ = ["build_parser"]


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
        "(used for inputs at 0.95-1.05 eV per channel); 'weak' for those trained on weak "
        "edges, L3 2-5 %% above the background (without --model the default's pixels "
        f"whose L3 stands less than {100 * WEAK_CONTRAST:.1f} %% above the background are "
        "read by it, range flag 16); or a retrained .onnx file",
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
    from ..signal_checks import BACKGROUNDS

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
        f"(default {EDGE_MIN_SNR:g}, times 8/7 from 0.75 eV per channel on; calibrated on "
        "simulated negatives, see the user guide)",
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
    from .. import __version__

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
            "Every spectrum signal in a file (signal dimension 1) is read as EELS, whatever "
            "signal type the file records (many formats record none); files holding several "
            "signals: each one with a Mn edge is classified."
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
