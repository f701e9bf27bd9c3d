"""Edge features (:func:`hyperspy_mnvalence.decisions.edge_features`) of one made-up
white-line pair, for tests of the edge decision's shape tests."""

from __future__ import annotations

import numpy as np


def white_line_features(trough: float, post: float, noise: float = 0.01, **values) -> dict:
    """One spectrum's features: L3 height 1 above a pre-edge at 0, the flanks at 0.9, an
    L2 maximum 0.3 and its core 0.25 above the trough, nothing beyond L2 above the
    trough; ``values`` replace any of them (``l2=0.5``, ``beyond=0.8`` ...)."""
    f = {
        "h3": 1.0,
        "pre": 0.0,
        "trough": trough,
        "l2": trough + 0.3,
        "l2_core": trough + 0.25,
        "post": post,
        "beyond": trough,
        "flanks": 0.9,
        "noise": noise,
    }
    f.update(values)
    return {k: np.array([float(v)]) for k, v in f.items()}
