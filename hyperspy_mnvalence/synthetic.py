"""Former home of the demo simulator; kept so that existing imports keep working.

Everything lives in :mod:`hyperspy_mnvalence.simulations` now (one forward model for the
demo, training, the robustness suite and the tests).
"""

from .simulations.demo import demo_ground_truth, make_demo_spectrum_image, synthetic_spectra
from .simulations.edges import (
    EDGE_PARAMETERS,
    FIT_QUALITY,
    L3_POSITIONS_EV,
    REFERENCE_RESOLUTION_EV,
    VALENCES,
    edge_table,
    fit_edge_parameters,
    mn_l23_edge,
    peak_heights,
)

# former private names, still used by older scripts
_edge_table = edge_table
_peak_heights = peak_heights

__all__ = [
    "EDGE_PARAMETERS",
    "FIT_QUALITY",
    "L3_POSITIONS_EV",
    "REFERENCE_RESOLUTION_EV",
    "VALENCES",
    "demo_ground_truth",
    "fit_edge_parameters",
    "make_demo_spectrum_image",
    "mn_l23_edge",
    "synthetic_spectra",
]
