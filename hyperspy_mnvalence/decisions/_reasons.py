"""Reason codes of spectra that are not classified, and out-of-range flags per pixel."""

from __future__ import annotations

# Reason codes for spectra that are not classified.
REASONS = {
    0: "ok",
    1: "non-finite values (NaN or Inf) in the energies used",
    2: "all zero or constant over the energies used",
    3: "no Mn L2,3 edge found",
}

# Out-of-range flags of a pixel, bit by bit (a pixel can carry several: their sum). Set
# on classified pixels too: they say the result was obtained outside the validated range.
RANGE_FLAGS = {
    0: "inside the validated range",
    1: "dispersion outside what the model was trained on (every pixel)",
    2: "pre-edge shorter than the background fit reads below the L3 peak",
    4: "values of extreme magnitude (beyond 2**+-40): scaled by a power of two first "
    "(the result is that of the unscaled spectrum)",
    8: "L3 peak more than 5 eV from the median of its neighbours' (scattered L3 peaks: "
    "noise or a spike may have been taken for the edge)",
    16: "a weak edge (measured L3 height under 4.9 % of the background): read by the "
    "weak-edge model, not the default (inside its validated range)",
}
#: The bit of :data:`RANGE_FLAGS` set where the weak-edge model read the pixel.
WEAK_EDGE_FLAG = 16
