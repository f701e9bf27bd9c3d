"""Out-of-range conditions: acquisitions the model was not made for, said once per call.

:func:`out_of_range` looks at the energy axis, the model's metadata and (once computed)
the per-pixel L3 peaks and reason codes, and returns one line per condition found,
each naming the share of pixels concerned; :func:`warn_out_of_range` turns them into a
single warning.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

__all__ = ["DEFAULT_DISPERSION_RANGE_EV", "out_of_range", "warn_out_of_range"]

_logger = logging.getLogger(__name__)

#: Dispersions (eV per channel) assumed to be covered when a model's metadata do not say.
DEFAULT_DISPERSION_RANGE_EV = (0.02, 1.0)
#: Neighbouring pixels whose L3 peaks differ by more than this (eV) are "scattered".
SCATTER_EV = 3.0
#: Share of neighbouring valid pixel pairs that must be scattered for a warning.
SCATTER_SHARE = 0.1


def trained_dispersion_range(metadata: dict | None) -> tuple[float, float]:
    """Dispersions (eV per channel) a model saw in training, from its metadata.

    The ``augmentation.dispersion.step_eV`` range when that augmentation was on; else
    :data:`DEFAULT_DISPERSION_RANGE_EV`.
    """
    aug = ((metadata or {}).get("augmentation") or {}).get("dispersion") or {}
    step = aug.get("step_eV")
    if aug.get("enabled") and step is not None and len(step) == 2:
        return float(step[0]), float(step[1])
    return DEFAULT_DISPERSION_RANGE_EV


def out_of_range(
    energy: np.ndarray,
    params: dict,
    metadata: dict | None = None,
    peak_eV: np.ndarray | None = None,
    reason: np.ndarray | None = None,
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

    Returns
    -------
    list of str
        One sentence per condition found (empty when none).
    """
    e = np.asarray(energy, dtype=np.float64)
    found = []
    disp = float(np.median(np.abs(np.diff(e)))) if e.size > 1 else np.nan
    lo, hi = trained_dispersion_range(metadata)
    # finer data are box-averaged onto the model's grid exactly; coarser lose the shape
    if np.isfinite(disp) and (disp > 1.05 * hi or disp < lo / 2.5):
        found.append(
            f"the dispersion, {disp:.3g} eV per channel, is outside the {lo:g}-{hi:g} eV "
            "per channel the model was trained on (all pixels): valences may be wrong "
            "with high confidence"
        )
    if peak_eV is None or reason is None:
        return found
    peak = np.asarray(peak_eV, dtype=np.float64).ravel()
    valid = (np.asarray(reason).ravel() == 0) & np.isfinite(peak)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return found
    need = params["background_width_eV"] + params["onset_before_peak_eV"]
    need += params["background_gap_eV"]
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
