"""Preprocessing of Mn L2,3 spectra: one implementation for training and inference.

Every function here is pure numpy (scipy for filters) and works on a 2D array of
spectra ``(n_spectra, n_channels)`` sharing one energy axis. Nothing depends on the
absolute energy calibration: the Mn L3 white line is located in each spectrum, a
power-law background is fitted on the pre-edge *relative to that position*, and a fixed
window around it is cut out on the model's energy grid.

The transforms live here, one concern per private module:

* ``_params`` - :data:`DEFAULT_PREPROCESSING` and the energy range read;
* ``_resample`` - :func:`to_uniform_grid` / :func:`resampling_matrix`: any axis (uniform
  at any dispersion, or non-uniform but monotonic) to the model's grid (0.1 eV per
  channel) as one linear operator, box-averaged where the input is finer;
  :func:`single_threaded_blas`;
* ``_filters`` - Gaussian and difference-of-Gaussians filters of rows;
* ``_l3`` - :func:`locate_l3`: the L3 white line by a difference of Gaussians, refined
  on the smoothed spectrum;
* ``_background`` - :func:`subtract_background`: closed-form log-log power-law fit on a
  pre-edge window ending before the onset (a constant where that is not possible);
* ``_window`` - :func:`extract_window` and :func:`normalise` (min-max, then mean
  subtracted, as Chatzidakis & Botton);
* ``_noise`` - :func:`channel_noise`, :func:`smoothed_noise` and :func:`noise_at_scale`.

The per-pixel decisions (spikes, Mn edge present, out-of-range, reason codes) are in
:mod:`hyperspy_mnvalence.decisions`; :func:`preprocess`, which runs both in order, in
:mod:`hyperspy_mnvalence.pipeline`. All of them are importable from here as before.
"""

from __future__ import annotations

# private names are re-exported for the modules and tests that import them from here
from ._background import subtract_background, window_mask  # noqa: F401
from ._filters import dog, dog_kernel, gauss_radius, gaussian_smooth, gaussian_smooth_at  # noqa: F401
from ._isolate import isolate_edge
from ._l3 import locate_l3
from ._noise import channel_noise, row_median, smoothed_noise  # noqa: F401
from ._params import (  # noqa: F401
    DEFAULT_PREPROCESSING,
    channels_between,
    check_energy,
    overlaps_search_range,
    pre_edge_margin,
    read_range,
)
from ._resample import (  # noqa: F401
    _BAND,
    SINGLE_DTYPES,
    _resampler,
    resampling_matrix,
    single_threaded_blas,
    to_uniform_grid,
)
from ._window import extract_window, normalise

__all__ = [
    "DEFAULT_PREPROCESSING",
    "REASONS",
    "single_threaded_blas",
    "Preprocessed",
    "edge_present",
    "extract_window",
    "isolate_edge",
    "locate_l3",
    "normalise",
    "overlaps_search_range",
    "preprocess",
    "resampling_matrix",
    "smoothed_noise",
    "channel_noise",
    "subtract_background",
    "to_uniform_grid",
]

#: Names served from the decisions and the pipeline, which build on this package:
#: imported on first use (``from hyperspy_mnvalence.preprocessing import preprocess``
#: keeps working without an import cycle).
_LATER = {
    "REASONS": "decisions",
    "edge_present": "decisions",
    "EDGE_WINDOWS_EV": "decisions",
    "Preprocessed": "pipeline",
    "preprocess": "pipeline",
}


def __getattr__(name: str):
    if name in _LATER:
        import importlib

        module = importlib.import_module(f"hyperspy_mnvalence.{_LATER[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
