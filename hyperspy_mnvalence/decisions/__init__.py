"""Per-pixel decisions taken before the network.

* ``_reasons`` - :data:`REASONS`, the code of every spectrum left unclassified;
* ``_edge`` - :func:`edge_present`: does a background-subtracted spectrum show a Mn
  L2,3 edge?
"""

from __future__ import annotations

from ._edge import _EDGE_WINDOWS_EV, edge_present  # noqa: F401
from ._reasons import REASONS

__all__ = ["REASONS", "edge_present"]
