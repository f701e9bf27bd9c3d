"""Per-pixel decisions taken before the network.

* ``_reasons`` - :data:`REASONS`, the code of every spectrum left unclassified, and
  :data:`RANGE_FLAGS`, the out-of-range bits of a pixel;
* ``_edge`` - :func:`edge_present` / :func:`edge_statistic`: does a
  background-subtracted spectrum show a Mn L2,3 edge? (L3 height over the noise measured
  at the scale tested, and white-line shape tests)
* ``_range`` - :func:`out_of_range`: acquisitions outside what the model was trained
  on (dispersion, short pre-edge, scattered L3 peaks), one warning per call;
  :func:`spectrum_range_flags` and :func:`scattered_peaks`: the same per pixel;
* ``_spikes`` - :func:`remove_spikes` / :func:`find_spikes`: cosmic-ray spikes and hot
  channels, replaced before anything else;
* ``_thickness`` - :func:`post_edge_ratio` / :func:`thick_sample_condition`: a thick
  sample seen in the core loss itself (plasmon replicas of the white lines);
* ``_agreement`` - :func:`model_disagreement`: pixels where the classifier and the
  fraction model disagree, with one warning.
"""

from __future__ import annotations

from ._agreement import DISAGREEMENT_MARGIN, DISAGREEMENT_WARN_SHARE, model_disagreement
from ._edge import (  # noqa: F401
    EDGE_MIN_SNR,
    EDGE_WINDOWS_EV,
    SEARCH_END_EV,
    decide_edges,
    edge_decision,
    edge_features,
    edge_present,
    edge_statistic,
    flank_test,
    noise_lag,
    pooled_noise,
    raw_channel_noise,
    snr_threshold,
)
from ._range import (
    DEFAULT_DISPERSION_RANGE_EV,
    FAR_FROM_NEIGHBOURS_EV,
    TITAN_RESOLUTION_EV,
    out_of_range,
    resolution_condition,
    scattered_peaks,
    spectrum_range_flags,
    trained_resolution_range,
    warn_out_of_range,
)
from ._reasons import RANGE_FLAGS, REASONS, WEAK_EDGE_FLAG
from ._spikes import SPIKE_SIGMAS, find_spikes, remove_spikes
from ._thickness import (
    THICK_MIN_PIXELS,
    THICK_RATIO,
    THICK_SAMPLE_PIXELS,
    THICK_WINDOW_EV,
    post_edge_ratio,
    thick_sample_condition,
)

__all__ = [
    "DISAGREEMENT_MARGIN",
    "DISAGREEMENT_WARN_SHARE",
    "model_disagreement",
    "DEFAULT_DISPERSION_RANGE_EV",
    "FAR_FROM_NEIGHBOURS_EV",
    "RANGE_FLAGS",
    "WEAK_EDGE_FLAG",
    "TITAN_RESOLUTION_EV",
    "out_of_range",
    "resolution_condition",
    "scattered_peaks",
    "spectrum_range_flags",
    "trained_resolution_range",
    "warn_out_of_range",
    "EDGE_MIN_SNR",
    "SEARCH_END_EV",
    "decide_edges",
    "edge_decision",
    "edge_features",
    "flank_test",
    "snr_threshold",
    "pooled_noise",
    "raw_channel_noise",
    "REASONS",
    "SPIKE_SIGMAS",
    "edge_present",
    "edge_statistic",
    "find_spikes",
    "noise_lag",
    "remove_spikes",
    "THICK_MIN_PIXELS",
    "THICK_RATIO",
    "THICK_SAMPLE_PIXELS",
    "THICK_WINDOW_EV",
    "post_edge_ratio",
    "thick_sample_condition",
]
