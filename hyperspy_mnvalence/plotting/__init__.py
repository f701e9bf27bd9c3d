"""Matplotlib figures of Mn valence classification results.

The result ``p`` of a classification holds the probabilities of Mn2+, Mn3+ and Mn4+
with shape ``(3,) + navigation shape of the input`` (numpy order): one axis named
"Mn valence" (size 3) and the input's navigation axes, with their calibration. NaN
marks pixels without a Mn L2,3 edge. Plain numpy arrays of that layout are accepted
too (uncalibrated, in pixels).

Colours: the probability maps use ``cividis``, the mean valence ``viridis``, the
uncertainty ``magma`` and the white-line ratio ``viridis_r`` (high ratio, Mn2+-like, in
the colour of a low mean valence); valences use Paul Tol's colour-blind safe
high-contrast triad (Mn2+ blue ``#004488``, Mn3+ yellow ``#DDAA33``, Mn4+ red
``#BB5566``). Pixels without a Mn edge are drawn in :data:`NAN_COLOR`, a light cyan
(``#99DDFF``) that none of those colour maps nor any mixture of the valence colours
comes near (at least 0.47 apart in RGB, on a 0-1 scale), and every figure names it in
its legend. Legends and colour bars sit outside the data; spatial axes are shown in a
length unit that keeps the numbers readable (nm rather than 0.0025 µm) and maps carry
a scale bar. Nothing here calls ``plt.show``; the functions return figures.
"""

from ._common import (
    COLOR_MAPS,
    NAN_COLOR,
    NO_EDGE_LABEL,
    VALENCE_COLORS,
    VALENCE_LABELS,
    composite_rgb,
)
from ._maps import plot_valence_maps
from ._spectra import plot_class_spectra, plot_pixel_spectra

__all__ = [
    "COLOR_MAPS",
    "NAN_COLOR",
    "NO_EDGE_LABEL",
    "VALENCE_COLORS",
    "VALENCE_LABELS",
    "composite_rgb",
    "plot_class_spectra",
    "plot_pixel_spectra",
    "plot_valence_maps",
]
