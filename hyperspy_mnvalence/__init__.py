"""hyperspy_mnvalence: calibration-independent Mn oxidation-state maps from EELS.

A HyperSpy extension: ``s.set_signal_type("EELS_MnValence")`` then
``s.classify_mn_valence()``, or call the functions of this namespace directly.
"""

__version__ = "0.1.0"

from .classification import classify_mn_valence
from .decisions import model_disagreement
from .exports import export_result
from .maps import (
    compute_result,
    confidence,
    mean_valence,
    most_likely_valence,
    no_edge_mask,
    uncertainty,
    valence_maps,
)
from .mixed import decompose_mn_valence, mean_oxidation_state, mean_valence_uncertainty
from .model import MnValenceModel, ModelError, load_model, model_card
from .white_line import white_line_ratio

__all__ = [
    "__version__",
    "MnValenceModel",
    "ModelError",
    "classify_mn_valence",
    "compute_result",
    "confidence",
    "decompose_mn_valence",
    "export_result",
    "load_model",
    "make_demo_spectrum_image",
    "mean_oxidation_state",
    "mean_valence",
    "mean_valence_uncertainty",
    "model_card",
    "model_disagreement",
    "most_likely_valence",
    "no_edge_mask",
    "plot_valence_maps",
    "uncertainty",
    "valence_maps",
    "white_line_ratio",
]


def __getattr__(name):
    # heavier or optional pieces load on first use
    if name == "make_demo_spectrum_image":
        from .simulations import make_demo_spectrum_image

        return make_demo_spectrum_image
    if name == "plot_valence_maps":
        from .plotting import plot_valence_maps

        return plot_valence_maps
    raise AttributeError(f"module 'hyperspy_mnvalence' has no attribute {name!r}")
