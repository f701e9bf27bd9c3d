"""HyperSpy signal classes: thin wrappers that delegate to the domain modules."""

from __future__ import annotations

from exspy.signals import EELSSpectrum, LazyEELSSpectrum

__all__ = ["LazyMnValenceEELSSpectrum", "MnValenceEELSSpectrum"]


class MnValenceEELSSpectrum(EELSSpectrum):
    """EELS spectrum (image) of the Mn L2,3 edge, with valence classification.

    Registered as ``signal_type="EELS_MnValence"``: load data with
    ``hs.load(path, signal_type="EELS_MnValence")`` or call
    ``s.set_signal_type("EELS_MnValence")`` on any EELS signal. Everything of exspy's
    ``EELSSpectrum`` is available.
    """

    _signal_type = "EELS_MnValence"

    def classify_mn_valence(self, **kwargs):
        """Probability maps of Mn2+, Mn3+ and Mn4+.

        See :func:`hyperspy_mnvalence.classify_mn_valence` for the keyword arguments
        and the result.
        """
        from .classification import classify_mn_valence

        return classify_mn_valence(self, **kwargs)

    def decompose_mn_valence(self, **kwargs):
        """Mixed-valence fractions of Mn2+, Mn3+ and Mn4+ per pixel.

        See :func:`hyperspy_mnvalence.decompose_mn_valence`.
        """
        from .mixed import decompose_mn_valence

        return decompose_mn_valence(self, **kwargs)

    def white_line_ratio(self, **kwargs):
        """Map of the Mn L3/L2 white-line ratio and L3 position (classical cross-check).

        See :func:`hyperspy_mnvalence.white_line_ratio`.
        """
        from .white_line import white_line_ratio

        return white_line_ratio(self, **kwargs)


class LazyMnValenceEELSSpectrum(MnValenceEELSSpectrum, LazyEELSSpectrum):
    """Lazy (dask-backed) :class:`MnValenceEELSSpectrum`."""

    _lazy = True
