"""Out-of-range conditions: acquisitions the model was not made for, said once per call.

:func:`out_of_range` looks at the energy axis, the model's metadata and (once computed)
the per-pixel L3 peaks and reason codes, and returns one line per condition found,
each naming the share of pixels concerned; :func:`warn_out_of_range` turns them into a
single warning. :func:`spectrum_range_flags` and :func:`scattered_peaks` give the same
conditions per pixel, as the bit flags of :data:`~hyperspy_mnvalence.decisions.RANGE_FLAGS`
(``metadata.MnValence.range_flags`` of a result).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

__all__ = [
    "DEFAULT_DISPERSION_RANGE_EV",
    "TITAN_RESOLUTION_EV",
    "FAR_FROM_NEIGHBOURS_EV",
    "out_of_range",
    "resolution_condition",
    "scattered_peaks",
    "spectrum_range_flags",
    "trained_resolution_range",
    "warn_out_of_range",
]

_logger = logging.getLogger(__name__)

#: Dispersions (eV per channel) assumed to be covered when a model's metadata do not say.
DEFAULT_DISPERSION_RANGE_EV = (0.02, 1.0)
#: Resolution (zero-loss FWHM, eV) of the Titan spectra the clean-data models were trained
#: on (equal to ``simulations.edges.REFERENCE_RESOLUTION_EV``; a test checks it).
TITAN_RESOLUTION_EV = 0.2
#: Neighbouring pixels whose L3 peaks differ by more than this (eV) are "scattered".
SCATTER_EV = 3.0
#: Share of neighbouring valid pixel pairs that must be scattered for a warning.
SCATTER_SHARE = 0.1
#: A pixel's L3 peak further than this (eV) from the median of its neighbours' is flagged
#: (bit 8): above the largest chemical shift between neighbouring grains (Mn2+ to Mn4+,
#: about 3.4 eV) with room for the peak's own scatter, so a real valence boundary is not.
FAR_FROM_NEIGHBOURS_EV = 5.0


def trained_dispersion_range(metadata: dict | None) -> tuple[float, float]:
    """Dispersions (eV per channel) a model saw in training, from its metadata.

    The ``augmentation.dispersion.step_eV`` range when that augmentation was on; the
    one dispersion of a model trained on simulated acquisitions at one sampling (a
    single dispersion bin, up to its end); else :data:`DEFAULT_DISPERSION_RANGE_EV`.
    """
    acq = ((metadata or {}).get("augmentation") or {}).get("acquisition_conditions") or {}
    bins = acq.get("dispersion_bins") or []
    if len(bins) == 1:
        return float(bins[0]), float(acq.get("dispersion_end", bins[0]))
    aug = ((metadata or {}).get("augmentation") or {}).get("dispersion") or {}
    step = aug.get("step_eV")
    if aug.get("enabled") and step is not None and len(step) == 2:
        return float(step[0]), float(step[1])
    return DEFAULT_DISPERSION_RANGE_EV


def trained_resolution_range(metadata: dict | None) -> tuple[float, float] | None:
    """Instrument resolutions (zero-loss FWHM, eV) a model saw in training.

    The acquisition conditions' ``resolution_eV`` range of a model trained on
    simulated acquisitions; else the ``augmentation.broadening.fwhm_eV`` range of one
    trained on the Titan spectra (0.2 eV resolution of their own) when that
    augmentation was on; else None (not known).
    """
    aug = (metadata or {}).get("augmentation") or {}
    rng = ((aug.get("acquisition_conditions") or {}).get("ranges") or {}).get("resolution_eV")
    if rng is not None and len(rng) == 2:
        return float(rng[0]), float(rng[1])
    broad = aug.get("broadening") or {}
    fwhm = broad.get("fwhm_eV")
    if broad.get("enabled") and fwhm is not None and len(fwhm) == 2:
        return TITAN_RESOLUTION_EV, float(np.hypot(float(fwhm[1]), TITAN_RESOLUTION_EV))
    return None


def resolution_condition(resolution_eV: float | None, metadata: dict | None) -> str | None:
    """The out-of-range sentence for a given zero-loss FWHM, or None where it is inside
    (or either is not known): more than 10 % broader than the broadest resolution the
    model was trained at, or less than half the sharpest."""
    rng = trained_resolution_range(metadata)
    if resolution_eV is None or rng is None:
        return None
    lo, hi = rng
    if lo / 2 <= resolution_eV <= 1.1 * hi:
        return None
    return (
        f"the resolution, {resolution_eV:.3g} eV (zero-loss FWHM), is outside the "
        f"{lo:g}-{hi:g} eV the model was trained at (all pixels): valences may be wrong "
        "with high confidence"
    )


def median_step(energy: np.ndarray) -> float:
    """Median energy step (eV per channel); a uniform axis' step without sorting."""
    e = np.asarray(energy, dtype=np.float64)
    if e.size < 2:
        return np.nan
    d = np.abs(np.diff(e))
    lo, hi = float(d.min()), float(d.max())
    return lo if hi - lo <= 1e-9 * hi else float(np.median(d))


def _dispersion_outside(disp: float, metadata: dict | None) -> bool:
    lo, hi = trained_dispersion_range(metadata)
    # finer data are box-averaged onto the model's grid exactly; coarser lose the shape
    return bool(np.isfinite(disp) and (disp > 1.05 * hi or disp < lo / 2.5))


def _pre_edge_need(params: dict) -> float:
    """eV below the L3 peak that the background fit reads."""
    return float(
        params["background_width_eV"] + params["onset_before_peak_eV"] + params["background_gap_eV"]
    )


def spectrum_range_flags(
    spectra: np.ndarray,
    energy: np.ndarray,
    params: dict,
    metadata: dict | None,
    peak_eV: np.ndarray,
) -> np.ndarray:
    """Out-of-range bits 1, 2 and 4 of :data:`RANGE_FLAGS` per spectrum.

    Parameters
    ----------
    spectra : numpy.ndarray
        Raw spectra, shape ``(n, n_channels)``.
    energy : numpy.ndarray
        Their energy axis (eV).
    params, metadata : dict
        The model's preprocessing parameters and metadata.
    peak_eV : numpy.ndarray
        L3 peak per spectrum (NaN where none was kept), shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        uint8, shape ``(n,)``: 1 the dispersion is outside the model's trained range
        (every spectrum), 2 the pre-edge below the L3 peak is shorter than the background
        fit reads (spectra with a peak), 4 the values are of extreme magnitude (largest
        of 32 channels spread over the spectrum beyond ``2**+-SAFE_EXPONENT``, the
        pipeline's scaling test).
    """
    from ..pipeline import SAFE_EXPONENT  # the pipeline imports this package

    spectra = np.asarray(spectra)
    n = spectra.shape[0]
    flags = np.zeros(n, dtype=np.uint8)
    if n == 0:
        return flags
    e = np.asarray(energy, dtype=np.float64)
    if _dispersion_outside(median_step(e), metadata):
        flags |= 1
    peak = np.asarray(peak_eV, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        flags[peak - float(e.min()) < _pre_edge_need(params)] |= 2
    if spectra.dtype.kind == "f" and spectra.shape[-1]:
        # 32 channels spread over the spectrum tell a scaled map (a NaN row gives NaN
        # and no flag; it is not classified anyway)
        step = max(spectra.shape[-1] // 32, 1)
        mag = np.abs(spectra[:, ::step]).max(axis=1).astype(np.float64)
        big = 2.0**SAFE_EXPONENT
        with np.errstate(invalid="ignore"):
            flags[(mag > big) | ((mag > 0) & (mag < 1.0 / big))] |= 4
    return flags


def _neighbour_median(peak: np.ndarray) -> np.ndarray:
    """Median of the valid peaks around each pixel (NaN where fewer than 2)."""
    peak = np.asarray(peak, dtype=np.float64)
    if peak.ndim == 0:
        return np.full(peak.shape, np.nan)
    r = 2 if peak.ndim == 1 else 1  # a line: two on each side
    pad = np.pad(peak, r, mode="constant", constant_values=np.nan)
    shifts = []
    for off in np.ndindex(*(2 * r + 1,) * peak.ndim):
        if all(o == r for o in off):
            continue
        shifts.append(pad[tuple(slice(o, o + s) for o, s in zip(off, peak.shape, strict=True))])
    nb = np.stack(shifts)
    # the median only where at least 2 neighbours are valid: an all-NaN neighbourhood
    # would warn, and silencing that with warnings.catch_warnings is not thread-safe
    # (dask computes blocks in threads: a filter restored by one thread while another
    # computes let a warning through as an error under -W error)
    ok = np.isfinite(nb).sum(axis=0) >= 2
    med = np.full(peak.shape, np.nan)
    if ok.any():
        med[ok] = np.nanmedian(nb[:, ok], axis=0)
    return med


def _scattered_numpy(peak: np.ndarray) -> np.ndarray:
    peak = np.asarray(peak, dtype=np.float64)
    med = _neighbour_median(peak)
    valid = np.isfinite(peak)
    whole = np.nanmedian(peak) if valid.sum() >= 5 else np.nan  # (no all-NaN warning)
    ref = np.where(np.isfinite(med), med, whole)
    with np.errstate(invalid="ignore"):
        return valid & np.isfinite(ref) & (np.abs(peak - ref) > FAR_FROM_NEIGHBOURS_EV)


def scattered_peaks(peak_eV):
    """Pixels whose L3 peak is far from the median of their neighbours' (bit 8).

    Parameters
    ----------
    peak_eV : numpy.ndarray or dask.array.Array
        L3 peak map in navigation order (NaN where no edge), any number of dimensions.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Boolean, the same shape: True where the peak lies more than
        :data:`FAR_FROM_NEIGHBOURS_EV` from the median of the valid peaks around it
        (the 8 nearest in a map, 2 on each side on a line; at least 2 valid), or, for a
        pixel with fewer valid neighbours, from the median of the whole map's valid
        peaks (at least 5). A smooth drift or a valence boundary is not flagged, an
        isolated noise peak is. A dask array is decided block by block (neighbours and
        the map's median within each block of a few thousand pixels), so that a crop of
        a lazy result computes only its own blocks.
    """
    if hasattr(peak_eV, "map_blocks"):
        if peak_eV.ndim == 0:
            import dask.array as da

            return da.zeros((), dtype=bool)
        return peak_eV.map_blocks(
            _scattered_numpy, dtype=bool, meta=np.empty((0,) * peak_eV.ndim, bool)
        )
    return _scattered_numpy(peak_eV)


def out_of_range(
    energy: np.ndarray,
    params: dict,
    metadata: dict | None = None,
    peak_eV: np.ndarray | None = None,
    reason: np.ndarray | None = None,
    resolution_eV: float | None = None,
) -> list[str]:
    """Conditions under which the results should not be trusted as they stand.

    Parameters
    ----------
    energy : numpy.ndarray
        The data's energy axis (eV).
    params : dict
        The model's preprocessing parameters.
    metadata : dict, optional
        The model's metadata (for the dispersions it was trained on).
    peak_eV, reason : numpy.ndarray, optional
        Per-pixel L3 peak energies and reason codes, in navigation order (for the
        pre-edge and scatter checks; skipped when not given, e.g. for lazy results).
    resolution_eV : float, optional
        The data's zero-loss FWHM (eV), where known (:func:`resolution_condition`).

    Returns
    -------
    list of str
        One sentence per condition found (empty when none).
    """
    e = np.asarray(energy, dtype=np.float64)
    found = []
    disp = median_step(e)
    lo, hi = trained_dispersion_range(metadata)
    if _dispersion_outside(disp, metadata):
        trained = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"  # one sampling, or a range
        found.append(
            f"the dispersion, {disp:.3g} eV per channel, is outside the {trained} eV "
            "per channel the model was trained on (all pixels): valences may be wrong "
            "with high confidence"
        )
    res = resolution_condition(resolution_eV, metadata)
    if res is not None:
        found.append(res)
    if peak_eV is None or reason is None:
        return found
    peak = np.asarray(peak_eV, dtype=np.float64).ravel()
    valid = (np.asarray(reason).ravel() == 0) & np.isfinite(peak)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return found
    need = _pre_edge_need(params)
    short = valid & (peak - float(e.min()) < need)
    if short.any():
        found.append(
            f"the pre-edge is shorter than the {need:g} eV the background fit reads below "
            f"the L3 peak in {100 * short.sum() / n_valid:.1f} % of the pixels with an "
            "edge (fitted on what there is): record from lower energies"
        )
    both = valid[1:] & valid[:-1]
    if both.sum() >= 10:
        jumps = np.abs(np.diff(peak))[both] > SCATTER_EV
        share = float(jumps.mean())
        if share > SCATTER_SHARE:
            found.append(
                f"the L3 peaks of neighbouring pixels differ by more than {SCATTER_EV:g} eV "
                f"in {100 * share:.1f} % of the pairs (a drift is smooth; scattered peaks "
                "suggest noise or spikes taken for edges): check the L3 peak map "
                "(metadata.MnValence.l3_peak_eV) and raise min_snr if needed"
            )
    return found


def warn_out_of_range(conditions: list[str], stacklevel: int = 3) -> None:
    """One warning naming every condition found (nothing when there is none)."""
    if not conditions:
        return
    text = "; ".join(conditions)
    _logger.info("out of range: %s", text)
    warnings.warn(
        "Mn valence results outside the validated range: " + text + ".",
        UserWarning,
        stacklevel=stacklevel,
    )
