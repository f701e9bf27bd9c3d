"""The classical cross-check: Mn L3/L2 white-line ratio and L3 position per pixel.

A second, physically transparent opinion beside the network's map, computed the way
EELS users habitually do (after Pearson et al., *Phys. Rev. B* **47**, 8471 (1993), as
used for Mn valence by e.g. Botton and co-workers and Tan et al., *Ultramicroscopy*
**116**, 24 (2012)):

1. The spectrum goes through the package's own preprocessing
   (:func:`~hyperspy_mnvalence.preprocessing.preprocess`) for the L3 peak and the edge
   decision: where it finds no Mn L2,3 edge (vacuum, Mn-free phases, too little
   signal) the ratio is NaN, exactly where the network's result is NaN.
2. The same pre-edge power-law background is subtracted (same options), on a 0.1 eV
   grid.
3. The L2 white line is the maximum of the 0.3 eV-smoothed spectrum 8-14 eV above L3.
4. The continuum under the white lines is a *double step*: two arctangent steps of
   ``step_width_eV`` (1 eV) centred on the L3 and L2 maxima, with heights in the
   2:1 ratio of the 2p3/2 and 2p1/2 occupancies, scaled together so that their mean
   over the post-edge window ``continuum_eV`` (15-18 eV above L3, after the L2 line)
   equals the mean of the background-subtracted spectrum there.
5. The L3 and L2 intensities are the integrals of spectrum minus continuum over
   windows of fixed width around each maximum, ``l3_window_eV`` and ``l2_window_eV``
   (3 eV below to 4 eV above, 7 eV each); the ratio is L3/L2.

The ratio falls with the valence (on the 31 digitized literature spectra, evaluation
only: see the user guide for the measured values). It depends, unlike the network,
on the post-edge range recorded and on plural scattering; the L3 position depends on
the energy calibration.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from .decisions import EDGE_MIN_SNR

__all__ = ["WHITE_LINE_PARAMETERS", "white_line_ratio", "white_line_ratio_spectra"]

_logger = logging.getLogger(__name__)

#: The continuum model and windows (eV), relative to the L3 maximum unless noted.
WHITE_LINE_PARAMETERS: dict = {
    "energy_step_eV": 0.1,
    "l2_search_eV": (8.0, 14.0),
    "l3_window_eV": (-3.0, 4.0),
    "l2_window_eV": (-3.0, 4.0),  # relative to the L2 maximum
    "continuum_eV": (15.0, 18.0),
    "step_width_eV": 1.0,
    "step_heights": (2.0, 1.0),  # L3 : L2
    "smoothing_eV": 0.3,
}

_BLOCK = 4096  # spectra per block


def _step(x: np.ndarray, width: float) -> np.ndarray:
    return 0.5 + np.arctan(x / width) / np.pi


def white_line_ratio_spectra(
    spectra: np.ndarray,
    energy: np.ndarray,
    *,
    background: str | bool = "auto",
    background_window: tuple[float, float] | None = None,
    energy_window: tuple[float, float] | None = None,
    min_snr: float = EDGE_MIN_SNR,
) -> dict[str, np.ndarray]:
    """L3/L2 white-line ratio, L3 and L2 positions of spectra sharing one energy axis.

    The pure function behind :func:`white_line_ratio`; see the module notes for the
    continuum model and windows (:data:`WHITE_LINE_PARAMETERS`).

    Parameters
    ----------
    spectra : numpy.ndarray
        Shape ``(n, n_channels)`` (or one spectrum, ``(n_channels,)``).
    energy : numpy.ndarray
        Energies in eV, uniform or not but monotonic.
    background, background_window, energy_window, min_snr
        As for :func:`~hyperspy_mnvalence.classify_mn_valence`.

    Returns
    -------
    dict
        ``ratio``, ``l3_eV``, ``l2_eV``, ``l3_area``, ``l2_area`` (float64, shape
        ``(n,)``, NaN where there is no Mn edge or the post-edge window lies outside
        the data) and ``valid`` (bool: a Mn edge was found).
    """
    from .preprocessing import preprocess, subtract_background, to_uniform_grid

    spectra = np.asarray(spectra)
    if spectra.ndim == 1:
        spectra = spectra[None, :]
    energy = np.asarray(energy, dtype=np.float64)
    n = spectra.shape[0]
    wp = WHITE_LINE_PARAMETERS
    out = {k: np.full(n, np.nan) for k in ("ratio", "l3_eV", "l2_eV", "l3_area", "l2_area")}
    pre = preprocess(
        spectra,
        energy,
        background=background,
        background_window=background_window,
        energy_window=energy_window,
        min_snr=min_snr,
    )
    out["valid"] = pre.valid.copy()
    rows = np.nonzero(pre.valid)[0]
    if rows.size == 0:
        return out
    peak = pre.peak_eV[rows]
    step = float(wp["energy_step_eV"])
    reach = 20.0  # the pre-edge fit reads 19 eV below the peak
    lo = float(peak.min()) - reach
    if background_window is not None:
        lo = min(lo, float(background_window[0]))
    hi = float(peak.max()) + wp["continuum_eV"][1] + 1.0
    y, grid = to_uniform_grid(np.nan_to_num(spectra[rows]), energy, step, (lo, hi))
    pk = np.clip(np.searchsorted(grid, peak - step / 2), 0, grid.size - 1)
    y = subtract_background(
        np.asarray(y, np.float64), grid, pk, background, window=background_window
    )
    rel = grid[None, :] - peak[:, None]  # eV from each L3 maximum
    # L2: the maximum of the smoothed spectrum 8-14 eV above L3
    ys = ndimage.gaussian_filter1d(y, wp["smoothing_eV"] / step, axis=1, mode="nearest")
    a, b = wp["l2_search_eV"]
    search = (rel >= a) & (rel <= b)
    has_l2 = search.sum(1) > 0
    l2 = grid[np.argmax(np.where(search, ys, -np.inf), axis=1)]
    rel2 = grid[None, :] - l2[:, None]
    w = wp["step_width_eV"]
    h3, h2 = (float(v) for v in wp["step_heights"])
    unit = (h3 * _step(rel, w) + h2 * _step(rel2, w)) / (h3 + h2)
    c0, c1 = wp["continuum_eV"]
    cont = (rel >= c0) & (rel <= c1)
    n_cont = cont.sum(1)
    ok = has_l2 & (n_cont >= max(3, int(round(0.5 / step))))
    safe = np.maximum(n_cont, 1)
    level = np.where(cont, y, 0).sum(1) / safe
    unit_level = np.where(cont, unit, 0).sum(1) / safe
    height = level / np.where(unit_level > 0, unit_level, 1.0)
    net = y - height[:, None] * unit
    w3 = (rel >= wp["l3_window_eV"][0]) & (rel <= wp["l3_window_eV"][1])
    w2 = (rel2 >= wp["l2_window_eV"][0]) & (rel2 <= wp["l2_window_eV"][1])
    area3 = np.where(w3, net, 0).sum(1) * step
    area2 = np.where(w2, net, 0).sum(1) * step
    good = ok & (area2 > 0) & (area3 > 0)
    out["l3_eV"][rows] = peak
    out["l2_eV"][rows] = np.where(has_l2, l2, np.nan)
    out["l3_area"][rows] = np.where(ok, area3, np.nan)
    out["l2_area"][rows] = np.where(ok, area2, np.nan)
    out["ratio"][rows] = np.where(good, area3 / np.where(good, area2, 1.0), np.nan)
    if np.any(~ok):
        _logger.info(
            "%d spectra with a Mn edge have no post-edge data %g-%g eV above L3: ratio NaN",
            int(np.sum(~ok)),
            c0,
            c1,
        )
    return out


def white_line_ratio(
    s,
    *,
    background: str | bool = "auto",
    background_window: tuple[float, float] | None = None,
    energy_window: tuple[float, float] | None = None,
    min_snr: float = EDGE_MIN_SNR,
):
    """Map of the Mn L3/L2 white-line ratio, with the L3 position, per pixel.

    The classical cross-check of the network's map (see the module notes for the
    double-step continuum and the integration windows). NaN where the package's edge
    decision finds no Mn L2,3 edge (the pixels the network leaves NaN, for the same
    options) or where the data stop before the post-edge window.

    Parameters
    ----------
    s : hyperspy.signal.BaseSignal
        EELS spectrum (image) of the Mn L2,3 edge, eager or lazy (read block by block;
        the result is computed).
    background : {"auto", "power_law", "constant", "none"} or bool
        Pre-edge background subtraction, as for ``classify_mn_valence``.
    background_window : tuple of float, optional
        Fixed pre-edge fit window in eV.
    energy_window : tuple of float, optional
        Energies (eV) between which the L3 edge is looked for.
    min_snr : float
        Threshold of the edge decision; the default is the network's
        (:data:`~hyperspy_mnvalence.decisions.EDGE_MIN_SNR`, 7.0), so that the ratio is
        NaN exactly where ``classify_mn_valence`` finds no Mn edge.

    Returns
    -------
    hyperspy.signal.BaseSignal
        The ratio, with the navigation axes of ``s`` as its axes (a scalar signal for
        one spectrum). ``metadata.WhiteLine`` holds ``l3_position_eV`` and
        ``l2_position_eV`` (maps of the same layout, in the calibration of ``s``), and
        ``parameters`` (the continuum model and the options).

    Examples
    --------
    >>> import hyperspy_mnvalence as mnv
    >>> s = mnv.make_demo_spectrum_image((8, 12))
    >>> r = mnv.white_line_ratio(s)
    >>> r.data.shape
    (8, 12)
    """
    from .signal_checks import check_signal, energy_axis

    check_signal(s)
    energy = energy_axis(s)
    nav_shape = s.data.shape[:-1]
    n = int(np.prod(nav_shape)) if nav_shape else 1
    flat = s.data.reshape(n, s.data.shape[-1])
    res = {}
    for i in range(0, n, _BLOCK):
        block = flat[i : i + _BLOCK]
        if hasattr(block, "compute"):
            block = block.compute()
        r = white_line_ratio_spectra(
            np.asarray(block),
            energy,
            background=background,
            background_window=background_window,
            energy_window=energy_window,
            min_snr=min_snr,
        )
        for k, v in r.items():
            res.setdefault(k, []).append(v)
    res = {k: np.concatenate(v) for k, v in res.items()}

    def as_map(values: np.ndarray, title: str, quantity: str):
        arr = values.astype(np.float32).reshape(nav_shape)
        if nav_shape:
            m = s._get_navigation_signal(data=arr)
            if getattr(m, "_lazy", False):
                m.compute()
        else:
            import hyperspy.api as hs

            m = hs.signals.BaseSignal(np.asarray(arr))
        m.metadata.General.title = title
        m.metadata.Signal.quantity = quantity
        return m

    ratio = as_map(res["ratio"], "Mn L3/L2 white-line ratio", "L3/L2")
    ratio.metadata.set_item("WhiteLine.l3_position_eV", as_map(res["l3_eV"], "Mn L3 peak", "eV"))
    ratio.metadata.set_item("WhiteLine.l2_position_eV", as_map(res["l2_eV"], "Mn L2 peak", "eV"))
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in WHITE_LINE_PARAMETERS.items()}
    params.update(
        {
            "background": str(background),
            "background_window": list(background_window) if background_window else None,
            "energy_window": list(energy_window) if energy_window else None,
            "min_snr": float(min_snr),
        }
    )
    ratio.metadata.set_item("WhiteLine.parameters", params)
    ratio.metadata.set_item(
        "WhiteLine.method",
        "L3/L2 areas over a double-step continuum (2:1 arctan steps at the white-line "
        "maxima scaled to 15-18 eV above L3); windows -3..+4 eV around each maximum",
    )
    return ratio
