"""The command line matches the API (issue 18): every option of ``classify_mn_valence``
and ``decompose_mn_valence`` has its command-line option, and the API's next-step errors
reach a shell user as one line."""

from __future__ import annotations

import inspect

import hyperspy.api as hs
import numpy as np
import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence.cli import build_parser, main

#: Each public keyword of the two functions and the command-line option that sets it.
CLI_OPTION = {
    "energy_window": "--energy-window",
    "background": "--background",
    "background_window": "--background-window",
    "model": "--model",
    "batch_size": "--batch-size",
    "min_snr": "--min-snr",
    "show_progressbar": "--no-progress",
    "lazy_output": "--lazy",
    "remove_spikes": "--keep-spikes",
    "low_loss": "--low-loss",
    "resolution_eV": "--resolution",
}


def _options(command: str) -> set[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if getattr(a, "choices", None) and command in a.choices]
    return {o for a in sub.choices[command]._actions for o in a.option_strings}


@pytest.mark.parametrize(
    ("command", "function"),
    [("classify", mnv.classify_mn_valence), ("decompose", mnv.decompose_mn_valence)],
)
def test_every_keyword_of_the_function_has_its_option(command, function):
    keywords = [
        name
        for name, par in inspect.signature(function).parameters.items()
        if par.kind is par.KEYWORD_ONLY and not name.startswith("_")
    ]
    assert sorted(keywords) == sorted(CLI_OPTION), "a keyword without a CLI option (or gone)"
    assert {CLI_OPTION[k] for k in keywords} <= _options(command)


def test_kev_axis_error_reaches_the_shell_as_one_line(tmp_path, capsys):
    from hyperspy_mnvalence.simulations import synthetic_spectra

    e = 600.0 + 0.2 * np.arange(450)
    s = hs.signals.Signal1D(synthetic_spectra(e, 3, counts=np.full(4, 300.0), rng=0))
    s.set_signal_type("EELS")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = 0.6, 0.0002, "eV"  # keV numbers, eV units
    src = tmp_path / "kev.hspy"
    s.save(src)
    rc = main(["classify", str(src), "-o", str(tmp_path / "out.hspy"), "--no-progress"])
    assert rc == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "looks like keV" in line and "units = 'keV'" in line
    assert not (tmp_path / "out.hspy").exists()


def test_min_snr_help_states_the_functions_default():
    (sub,) = [a for a in build_parser()._actions if getattr(a, "choices", None)]
    default = inspect.signature(mnv.classify_mn_valence).parameters["min_snr"].default
    for command in ("classify", "decompose"):
        (opt,) = [a for a in sub.choices[command]._actions if "--min-snr" in a.option_strings]
        assert f"(default {default:g}," in opt.help
