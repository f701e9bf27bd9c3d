"""Per-pixel decisions taken before the network.

* ``_reasons`` - :data:`REASONS`, the code of every spectrum left unclassified;
* ``_edge`` - :func:`edge_present`: does a background-subtracted spectrum show a Mn
  L2,3 edge?
* ``_spikes`` - :func:`remove_spikes` / :func:`find_spikes`: cosmic-ray spikes and hot
  channels, replaced before anything else;
"""

from __future__ import annotations

from ._edge import _EDGE_WINDOWS_EV, edge_present  # noqa: F401
from ._reasons import REASONS
from ._spikes import SPIKE_SIGMAS, find_spikes, remove_spikes

__all__ = ["REASONS", "SPIKE_SIGMAS", "edge_present", "find_spikes", "remove_spikes"]
