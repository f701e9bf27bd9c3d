"""Preprocessing parameters and the energy range that preprocessing reads."""

from __future__ import annotations

import numpy as np

#: Preprocessing parameters of the shipped model; stored in the ONNX metadata, which
#: takes precedence when a model is loaded.
DEFAULT_PREPROCESSING: dict = {
    "energy_step_eV": 0.1,
    "window_eV": [-10.0, 20.0],  # relative to the L3 peak
    "search_range_eV": [618.0, 672.0],  # nominal 640 eV +-15 eV, plus the Titan's +5 eV
    "onset_before_peak_eV": 3.0,
    "background_width_eV": 15.0,
    "background_gap_eV": 1.0,
    "normalisation": "minmax_meansub",
    "alignment": "l3_peak",
}


def overlaps_search_range(energy: np.ndarray, search_range, margin: float = 5.0) -> bool:
    """Whether an energy axis reaches at least ``margin`` eV into the edge's search range.

    Parameters
    ----------
    energy : numpy.ndarray
        Energies in eV.
    search_range : tuple of float
        ``(lo, hi)`` in eV where the L3 edge is looked for.
    margin : float
        eV of overlap needed at either end.

    Returns
    -------
    bool
    """
    lo, hi = (float(v) for v in search_range)
    return float(np.max(energy)) >= lo + margin and float(np.min(energy)) <= hi - margin


def pre_edge_margin(params: dict) -> float:
    """eV below the L3 peak that the pre-edge background fit reads."""
    p = params
    return p["background_width_eV"] + p["onset_before_peak_eV"] + p["background_gap_eV"]


def read_range(params: dict, search, background_window=None) -> tuple[float, float]:
    """The energies (eV) :func:`preprocess` reads for an L3 peak searched in ``search``.

    From the pre-edge fit (or the window, if it reaches further) below the search range
    to the end of the window, plus 2 eV, above it; down to a fixed background window.
    """
    w0, w1 = params["window_eV"]
    lo = search[0] - max(pre_edge_margin(params), -w0)
    hi = search[1] + w1 + 2
    if background_window is not None:
        lo = min(lo, background_window[0])
    return lo, hi


def channels_between(e: np.ndarray, lo: float, hi: float) -> slice:
    """The channels of a monotonic axis with energies in ``[lo, hi]``, as a slice."""
    idx = np.nonzero((e >= lo) & (e <= hi))[0]
    return slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0)


def check_energy(energy: np.ndarray, n_channels: int) -> np.ndarray:
    energy = np.asarray(energy, dtype=np.float64)
    if energy.ndim != 1 or energy.size != n_channels:
        raise ValueError(
            f"The energy axis has {energy.size} values but the spectra have {n_channels} "
            "channels; pass one energy value per channel."
        )
    if not np.all(np.isfinite(energy)):
        raise ValueError("The energy axis contains NaN or Inf values; fix its calibration.")
    d = np.diff(energy)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError(
            "The energy axis is not monotonic; a spectrum needs strictly increasing (or "
            "decreasing) energies. Sort the channels or fix the axis before classifying."
        )
    return energy
