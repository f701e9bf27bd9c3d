"""The acquisition simulator: one forward model for the demo, training, the robustness
suite, benchmarks and tests.

* :mod:`.edges` - the clean Mn L2,3 edge (parametric, fitted to the Titan class means);
* :mod:`.acquisition` - :func:`simulate_acquisition`: plural scattering, resolution,
  background, offset and dispersion, dose, detector, spikes, in physical order;
* :mod:`.negatives` - edge-free spectra for the edge decision;
* :mod:`.edge_cases` - the recordings the edge decision is calibrated and tested on;
* :mod:`.conditions` - named acquisition conditions and random draws of them;
* :mod:`.demo` - the demo spectrum image;
* :mod:`.signal` - simulated spectra as HyperSpy signals; :mod:`.lazy_map` - a lazy
  spectrum image recorded block by block.
"""

from .acquisition import Acquisition, simulate_acquisition
from .conditions import CONDITION_RANGES, draw_conditions
from .demo import demo_ground_truth, make_demo_spectrum_image, synthetic_spectra
from .edge_cases import edge_negatives, edge_positives
from .edges import EDGE_PARAMETERS, L3_POSITIONS_EV, VALENCES, mn_l23_edge
from .lazy_map import simulate_lazy_map
from .negatives import NEGATIVE_FAMILIES, simulate_negatives

__all__ = [
    "Acquisition",
    "CONDITION_RANGES",
    "EDGE_PARAMETERS",
    "L3_POSITIONS_EV",
    "NEGATIVE_FAMILIES",
    "VALENCES",
    "demo_ground_truth",
    "draw_conditions",
    "edge_negatives",
    "edge_positives",
    "make_demo_spectrum_image",
    "mn_l23_edge",
    "simulate_acquisition",
    "simulate_lazy_map",
    "simulate_negatives",
    "synthetic_spectra",
]
