"""Reason codes of spectra that are not classified."""

from __future__ import annotations

# Reason codes for spectra that are not classified.
REASONS = {
    0: "ok",
    1: "non-finite values (NaN or Inf) in the energies used",
    2: "all zero or constant over the energies used",
    3: "no Mn L2,3 edge found",
}
