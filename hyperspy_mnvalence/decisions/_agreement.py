"""Do the classifier and the fraction model tell the same story about a map?

:func:`model_disagreement` compares a classification result ``p``
(:func:`~hyperspy_mnvalence.classify_mn_valence`) and a fraction result ``f``
(:func:`~hyperspy_mnvalence.decompose_mn_valence`) of the same data, pixel by pixel.

A pixel *disagrees* when both results have a Mn edge there and the fraction model
puts clearly less Mn in the classifier's most likely valence than in its own dominant
valence::

    k_p = argmax_k p_k            (the classifier's most likely valence)
    k_f = argmax_k f_k            (the fraction model's dominant valence)
    disagree = f[k_f] - f[k_p] > margin

With the default ``margin`` of 0.2, a pixel the fraction model sees as a near-even
mixture of the classifier's valence and another (e.g. 0.45 / 0.55) does not count;
a pixel the classifier calls Mn2+ while the fraction model gives Mn2+ 0.1 and Mn4+ 0.8
does. Pixels without an edge in either result are never counted (both results use the
same edge decision for the same options, so these are the same pixels).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

__all__ = ["DISAGREEMENT_MARGIN", "DISAGREEMENT_WARN_SHARE", "model_disagreement"]

_logger = logging.getLogger(__name__)

#: Fraction by which the fraction model's dominant valence must exceed the fraction of
#: the classifier's most likely valence for a pixel to disagree.
DISAGREEMENT_MARGIN = 0.2
#: Share of the pixels with an edge in both results above which one warning is given.
DISAGREEMENT_WARN_SHARE = 0.05


def _task(sig) -> str | None:
    return sig.metadata.get_item("MnValence.task") if hasattr(sig, "metadata") else None


def _in_memory(data) -> np.ndarray:
    if hasattr(data, "compute"):
        data = data.compute()
    return np.asarray(data, dtype=np.float64)


def model_disagreement(
    p,
    f,
    *,
    margin: float = DISAGREEMENT_MARGIN,
    warn_share: float = DISAGREEMENT_WARN_SHARE,
):
    """Pixels where the classifier and the fraction model disagree, with one warning.

    Parameters
    ----------
    p : hyperspy.signal.BaseSignal
        Result of :func:`~hyperspy_mnvalence.classify_mn_valence` (or a slice of one).
    f : hyperspy.signal.BaseSignal
        Result of :func:`~hyperspy_mnvalence.decompose_mn_valence` of the same data
        (the same pixels: same shape as ``p``).
    margin : float
        A pixel disagrees when ``f[k_f] - f[k_p] > margin``, where ``k_p`` is the
        classifier's most likely valence and ``k_f`` the fraction model's dominant one
        (default :data:`DISAGREEMENT_MARGIN`, 0.2; between 0 and 1).
    warn_share : float
        One ``UserWarning`` names the share of disagreeing pixels when it exceeds this
        (default :data:`DISAGREEMENT_WARN_SHARE`, 5 %); 0 warns on any disagreement.

    Returns
    -------
    hyperspy.signal.BaseSignal
        Boolean map with the spatial axes of ``p``: True where the two disagree;
        False where they agree or either has no Mn edge. Always in memory (lazy
        results are computed).

    Raises
    ------
    ValueError
        If ``p`` is a fraction result or ``f`` a classification result (swapped), the
        shapes differ, or ``margin`` is not in [0, 1).

    Examples
    --------
    >>> import hyperspy_mnvalence as mnv
    >>> s = mnv.make_demo_spectrum_image()
    >>> p = mnv.classify_mn_valence(s, model="fast")
    >>> f = mnv.decompose_mn_valence(s)
    >>> d = mnv.model_disagreement(p, f, warn_share=1.0)
    >>> d.data.shape == p.data.shape[1:]
    True
    """
    from ..maps import map_like, result_data

    if not 0.0 <= float(margin) < 1.0:
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    if _task(p) == "fractions" or _task(f) == "classification":
        raise ValueError(
            "model_disagreement(p, f) takes the classification result first and the "
            "fraction result second (classify_mn_valence, then decompose_mn_valence)."
        )
    dp, df = result_data(p), result_data(f)
    if tuple(dp.shape) != tuple(df.shape):
        raise ValueError(
            f"The classification result has shape {tuple(dp.shape)} but the fraction "
            f"result {tuple(df.shape)}: pass the results of the same data (the same pixels)."
        )
    dp, df = _in_memory(dp), _in_memory(df)
    both = np.all(np.isfinite(dp), axis=0) & np.all(np.isfinite(df), axis=0)
    k_p = np.argmax(np.where(np.isfinite(dp), dp, -1.0), axis=0)
    top = np.max(np.where(np.isfinite(df), df, -np.inf), axis=0)
    at_p = np.take_along_axis(np.nan_to_num(df, nan=0.0), k_p[None], axis=0)[0]
    disagree = both & (top - at_p > margin)
    n_both = int(both.sum())
    share = float(disagree.sum()) / n_both if n_both else 0.0
    _logger.info(
        "classifier and fraction model disagree in %d of %d pixels with an edge",
        int(disagree.sum()),
        n_both,
    )
    if n_both and share > warn_share:
        warnings.warn(
            f"The classifier and the fraction model disagree in {100 * share:.1f} % of "
            f"the {n_both} pixels with a Mn edge (the fraction model puts more than "
            f"{margin:g} more Mn in another valence than in the classifier's most likely "
            "one): mixed valence, or spectra unlike the training data; check these pixels "
            "(the returned map) before trusting either.",
            UserWarning,
            stacklevel=2,
        )
    out = map_like(p, disagree, "Classifier and fraction model disagree", "Mask")
    if out._lazy:
        out.compute()
    return out
