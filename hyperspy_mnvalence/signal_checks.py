"""Checks of what users pass in: the signal, its energy axis and the arguments.

Every check raises before any work, with an error that names the bad value and says
what to do. Shared by classification, the fraction model, the white-line ratio,
plotting, training on user data and the command line.
"""

from __future__ import annotations

import os

import numpy as np

from .decisions import EDGE_MIN_SNR
from .model import SHIPPED_MODELS, MnValenceModel
from .preprocessing import overlaps_search_range

__all__ = [
    "BACKGROUNDS",
    "EELS_TYPES",
    "ENERGY_UNITS",
    "check_arguments",
    "check_background_window",
    "check_energy_range",
    "check_resolution",
    "check_signal",
    "check_window",
    "energy_axis",
    "is_energy_unit",
]

#: Signal types read as EELS spectra.
EELS_TYPES = ("EELS", "EELS_MnValence", "TEM EELS")

#: Energy-axis units understood, and their factor to eV (unset units are read as eV).
ENERGY_UNITS = {"ev": 1.0, "kev": 1000.0, "mev": 1e-3, "": 1.0, "<undefined>": 1.0}


def is_energy_unit(units) -> bool:
    """True for units an energy axis is written in (eV, keV, meV), not for unset ones."""
    return str(units or "").strip().lower() in ("ev", "kev", "mev")


def energy_axis(s) -> np.ndarray:
    ax = s.axes_manager.signal_axes[0]
    energy = np.asarray(ax.axis, dtype=np.float64)
    units = str(getattr(ax, "units", "") or "").strip()
    factor = ENERGY_UNITS.get(units.lower())
    if factor is None:
        raise ValueError(
            f"The energy axis has units {units!r}; classify_mn_valence reads energy-loss "
            "axes in 'eV', 'keV' or 'meV'. Convert the axis (scale and offset) and set "
            "s.axes_manager.signal_axes[0].units accordingly."
        )
    return energy * factor if factor != 1.0 else energy


def check_signal(s) -> None:
    from hyperspy.signal import BaseSignal

    if not isinstance(s, BaseSignal):
        raise TypeError(
            f"classify_mn_valence needs a HyperSpy EELS signal, not {type(s).__name__}. "
            "Wrap arrays with s = hs.signals.Signal1D(data), call "
            "s.set_signal_type('EELS_MnValence') and set the energy axis "
            "(s.axes_manager.signal_axes[0]: offset, scale, units 'eV')."
        )
    if s.axes_manager.signal_dimension != 1:
        raise ValueError(
            f"classify_mn_valence needs spectra (signal dimension 1), but this signal has "
            f"signal dimension {s.axes_manager.signal_dimension} ({s}). If the energy "
            "axis is a navigation axis, use s.as_signal1D(energy_axis_index)."
        )
    st = s.metadata.get_item("Signal.signal_type", "")
    if st not in EELS_TYPES:
        raise TypeError(
            f"classify_mn_valence needs an EELS signal, but this signal's signal_type is "
            f"{st!r}. If it holds EELS spectra, call s.set_signal_type('EELS_MnValence') "
            "first: then s.classify_mn_valence() and mnv.classify_mn_valence(s) both work "
            "(after exspy's s.set_signal_type('EELS') only the function form "
            "mnv.classify_mn_valence(s) does: an EELSSpectrum has no such method)."
        )
    dtype = np.dtype(s.data.dtype)
    if dtype.kind not in "biuf":
        kind = "complex" if dtype.kind == "c" else "non-numeric"
        raise TypeError(
            f"classify_mn_valence needs real-valued spectra, but s.data has {kind} dtype "
            f"{dtype}; convert it first (e.g. s.real or abs(s) for complex data, or "
            "s.change_dtype('float32'))."
        )
    if s.data.size == 0:
        raise ValueError(f"The signal {s} holds no data (an axis of size 0).")


def check_resolution(resolution_eV) -> float | None:
    """``resolution_eV`` as a float (None stays None), or a ValueError naming it."""
    import numbers

    if resolution_eV is None:
        return None
    if (
        isinstance(resolution_eV, bool | np.bool_)
        or not isinstance(resolution_eV, numbers.Real)
        or not np.isfinite(float(resolution_eV))
        or resolution_eV <= 0
    ):
        raise ValueError(
            "resolution_eV must be the zero-loss peak's FWHM in eV, a finite number > 0 "
            f"(or None where not known), got {resolution_eV!r}"
        )
    return float(resolution_eV)


#: Values accepted for ``background``.
BACKGROUNDS = ("auto", "power_law", "constant", "none")


def check_arguments(
    *,
    background,
    model,
    batch_size,
    min_snr,
    show_progressbar,
    lazy_output,
) -> None:
    """Check the scalar arguments of :func:`classify_mn_valence`, naming any bad one."""
    import numbers

    if not (isinstance(background, bool) or background in BACKGROUNDS):
        raise ValueError(
            f"background must be one of {', '.join(repr(b) for b in BACKGROUNDS)} or a "
            f"bool, got {background!r}"
        )
    if not (model is None or isinstance(model, str | os.PathLike | MnValenceModel)):
        raise TypeError(
            "model must be None (the shipped model), a shipped model's name "
            f"({', '.join(repr(k) for k in SHIPPED_MODELS)}), the path of a .onnx file or a "
            f"MnValenceModel, got {type(model).__name__} {model!r}"
        )
    if (
        isinstance(batch_size, bool | np.bool_)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if (
        isinstance(min_snr, bool | np.bool_)
        or not isinstance(min_snr, numbers.Real)
        or not np.isfinite(float(min_snr))
        or min_snr < 0
    ):
        raise ValueError(
            f"min_snr must be a finite number >= 0 (default {EDGE_MIN_SNR:g}; 0 keeps every spectrum "
            f"with an L3 peak), got {min_snr!r}"
        )
    for name, value in (("show_progressbar", show_progressbar), ("lazy_output", lazy_output)):
        if value is not None and not isinstance(value, bool | np.bool_):
            raise TypeError(f"{name} must be True, False or None, got {value!r}")


def check_background_window(
    window: tuple[float, float], energy: np.ndarray, search: tuple[float, float], step: float
) -> None:
    """A fixed background window must be pre-edge and hold channels of the data."""
    lo, hi = window
    if hi > search[1]:
        raise ValueError(
            f"background_window ({lo:g}, {hi:g}) eV ends above {search[1]:g} eV, after "
            f"where the Mn L3 edge is looked for ({search[0]:g}-{search[1]:g} eV): it must "
            "be a pre-edge window, below the L3 onset (about 635 eV when calibrated)."
        )
    e0, e1 = max(lo, float(np.min(energy))), min(hi, float(np.max(energy)))
    if e1 - e0 < 3 * step:
        raise ValueError(
            f"background_window ({lo:g}, {hi:g}) eV holds fewer than 3 channels of the data "
            f"({float(np.min(energy)):.1f}-{float(np.max(energy)):.1f} eV); choose a "
            "pre-edge window inside the data, below the L3 onset (about 635 eV when "
            "calibrated)."
        )


def check_window(name: str, window) -> tuple[float, float] | None:
    """``window`` as ``(lo, hi)`` floats with lo < hi, or a clear error."""
    if window is None:
        return None
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair of energies (lo, hi) in eV, got {window!r}"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be two finite energies in eV, got ({lo:g}, {hi:g})")
    if not lo < hi:
        raise ValueError(f"{name} must be (lo, hi) with lo < hi, got ({lo:g}, {hi:g})")
    return lo, hi


def check_energy_range(
    energy: np.ndarray,
    search: tuple[float, float],
    energy_window: tuple | None = None,
    units: str = "eV",
) -> None:
    """A ValueError unless the energies (eV) reach where the L3 edge is looked for.

    When the axis' own numbers would reach it in other units (an axis in eV labelled
    keV, or in keV labelled eV), the error names the units to set, quoting the axis as
    it is written.

    Parameters
    ----------
    energy : numpy.ndarray
        The energy axis in eV (after its units were applied).
    search : tuple of float
        Where the L3 edge is looked for (eV).
    energy_window : tuple, optional
        The user's window, for a keV hint.
    units : str
        The axis' units as written (``""`` when not set: read as eV).
    """
    if overlaps_search_range(energy, search):
        return
    lo, hi = search
    e0, e1 = float(np.min(energy)), float(np.max(energy))
    label = str(units or "").strip()
    factor = ENERGY_UNITS.get(label.lower(), 1.0)
    raw = np.asarray(energy, dtype=np.float64) / factor  # the axis' own numbers
    r0, r1 = float(np.min(raw)), float(np.max(raw))
    written = label if is_energy_unit(label) else "units read as eV"
    for unit, f in (("eV", 1.0), ("keV", 1000.0), ("meV", 1e-3)):
        if f == factor:
            continue
        # a core-loss axis once rescaled: over the search range, from 0 to at most 10x it
        # (a low loss from -20 eV, or channel numbers, are not keV)
        if 0.0 <= r0 * f and r1 * f <= 10.0 * hi and overlaps_search_range(raw * f, search):
            raise ValueError(
                f"The energy axis runs from {r0:g} to {r1:g} in {written}: that looks like "
                f"{unit}. Set s.axes_manager.signal_axes[0].units = '{unit}' (or convert "
                f"the axis' scale and offset); the Mn L3 edge is looked for between "
                f"{lo:g} and {hi:g} eV."
            )
    hint = ""
    if energy_window is not None and hi < 10 < e1:
        hint = (
            f" energy_window is in eV: ({lo:g}, {hi:g}) looks like keV; did you mean "
            f"({1000 * lo:g}, {1000 * hi:g})?"
        )
    raise ValueError(
        f"The energy range {e0:.1f}-{e1:.1f} eV does not contain the Mn L2,3 edge, "
        f"which is looked for between {lo:g} and {hi:g} eV (nominal L3 at 640 eV "
        "+-15 eV for any calibration)." + hint + " Load a core-loss spectrum image "
        "covering about 620-670 eV, or pass energy_window=(lo, hi) if your calibration "
        "is off by more."
    )
