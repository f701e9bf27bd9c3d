"""The result signals of a classification: the stack of maps and their metadata.

:func:`result_signal` turns the kernel's output (``classify_spectra``: ``N_OUT``
values per spectrum, moved to the first axis) into the signal users get: the three
probability (or fraction) maps over a "Mn valence" axis, with the ensemble spread,
L3 peak, reason codes, spikes replaced, out-of-range flags and, after a low-loss
deconvolution, the t/lambda map in ``metadata.MnValence``.
"""

from __future__ import annotations

import numpy as np

from .decisions import RANGE_FLAGS, scattered_peaks
from .maps import VALENCE_AXIS
from .model import MnValenceModel
from .preprocessing import REASONS

__all__ = ["output_signal", "range_flag_map", "result_signal"]


def _with_scattered_flag(peak: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """``flags`` plus bit 8 where the L3 ``peak`` is far from its neighbours'."""
    return np.where(scattered_peaks(peak), flags + 8, flags).astype(np.float32)


def range_flag_map(peak, flags):
    """Range flags per pixel with bit 8: eager, over the whole map; lazy, block by block
    (the classification's blocks: one task each, and a crop computes only its own).

    Parameters
    ----------
    peak, flags : numpy.ndarray or dask.array.Array
        The L3 peak map (eV) and the per-spectrum flags (bits 1, 2, 4).

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float32 flags with bit 8 added where the peak is scattered.
    """
    if not hasattr(peak, "dask"):
        return _with_scattered_flag(peak, flags)
    return peak.map_blocks(
        _with_scattered_flag, flags, dtype=np.float32, meta=np.empty((0,) * peak.ndim, np.float32)
    )


def output_signal(data, s, title: str, quantity: str, lazy: bool):
    """A signal holding ``data`` of shape ``extra + navigation_shape`` of ``s``."""
    import hyperspy.api as hs

    nav_axes = s.axes_manager.navigation_axes
    nav_dim = len(nav_axes)
    extra = data.ndim - nav_dim
    # dask data go straight into a lazy signal: as_lazy() would build every signal twice
    # (a deep copy; most of the lazy path's graph-building CPU)
    direct = lazy and hasattr(data, "dask")
    if nav_dim == 0 and extra == 0:
        out = (hs.signals.LazySignal if direct else hs.signals.BaseSignal)(data)
    elif nav_dim <= 1:
        out = (hs.signals.LazySignal1D if direct else hs.signals.Signal1D)(data)
    elif nav_dim == 2:
        out = (hs.signals.LazySignal2D if direct else hs.signals.Signal2D)(data)
    else:
        cls = hs.signals.LazySignal if direct else hs.signals.BaseSignal
        out = cls(data).transpose(signal_axes=nav_dim)
    if lazy and not out._lazy:
        out = out.as_lazy()
    # signal axes: the input's navigation axes, calibration included
    for src, dst in zip(nav_axes, out.axes_manager.signal_axes if nav_dim else [], strict=False):
        dst.name, dst.units = src.name, src.units
        if src.is_uniform:
            dst.scale, dst.offset = src.scale, src.offset
        else:  # a non-uniform axis keeps its coordinates
            dst.convert_to_non_uniform_axis()
            dst.axis = np.array(src.axis, dtype=float)
    if extra == 1:
        ax = out.axes_manager.navigation_axes[0] if nav_dim else out.axes_manager.signal_axes[0]
        ax.name, ax.units = VALENCE_AXIS["name"], VALENCE_AXIS["units"]
        ax.scale, ax.offset = VALENCE_AXIS["scale"], VALENCE_AXIS["offset"]
    out.metadata.General.title = title
    out.metadata.Signal.quantity = quantity
    return out


def result_signal(
    stack,
    s,
    model: MnValenceModel,
    *,
    title: str,
    lazy: bool,
    parameters: dict,
    spikes_before=None,
    t_over_lambda=None,
):
    """The result signal of a classification, its maps in ``metadata.MnValence``.

    Parameters
    ----------
    stack : numpy.ndarray or dask.array.Array
        ``(N_OUT,) + navigation_shape``: the kernel's values with their axis first.
    s : hyperspy.signal.BaseSignal
        The classified signal (its navigation axes become the maps' axes).
    model : MnValenceModel
        The model that read the spectra (its file name, classes and task are recorded).
    title : str
        Title of the result.
    lazy : bool
        A lazy result.
    parameters : dict
        The settings of the call, recorded in ``metadata.MnValence.parameters``.
    spikes_before : array, optional
        Spikes replaced per pixel before a low-loss deconvolution (added to the count).
    t_over_lambda : hyperspy.signal.BaseSignal, optional
        The t/lambda map of a low-loss deconvolution.

    Returns
    -------
    hyperspy.signal.BaseSignal
    """
    p = output_signal(stack[0:3], s, title, "Probability", lazy)
    spread = output_signal(stack[3:6], s, "Ensemble spread", "Standard deviation", lazy)
    peak = output_signal(stack[6], s, "Mn L3 peak energy", "Energy (eV)", lazy)
    reason = output_signal(stack[7], s, "Reason code", "Code", lazy)
    spikes = stack[8]
    if spikes_before is not None:  # replaced before the low-loss deconvolution
        spikes = spikes + spikes_before.reshape(spikes.shape)
        if not lazy and hasattr(spikes, "compute"):
            spikes = spikes.compute()
    n_spikes = output_signal(spikes, s, "Spikes replaced", "Channels", lazy)
    # bit 8 (an L3 peak far from its neighbours') needs the map, not one spectrum
    flags = range_flag_map(stack[6], stack[9])
    range_flags = output_signal(flags, s, "Out-of-range flags", "Flags", lazy)
    md = {
        "probability_std": spread,
        "l3_peak_eV": peak,
        "reason": reason,
        "n_spikes": n_spikes,
        "range_flags": range_flags,
        "range_flag_codes": {str(k): v for k, v in RANGE_FLAGS.items()},
    }
    if t_over_lambda is not None:  # in the layout of the other maps
        tl = t_over_lambda.data  # lazy with a lazy core loss: kept so for a lazy result
        tl = (tl if lazy and hasattr(tl, "compute") else np.asarray(tl)).astype(np.float32)
        tl = tl.reshape(s.data.shape[:-1])
        md["t_over_lambda"] = output_signal(tl, s, "t/lambda", "Relative thickness", lazy)
    md.update(
        reason_codes={str(k): v for k, v in REASONS.items()},
        classes=model.classes,
        task=model.task,
        model=model.path.name,
        parameters=parameters,
    )
    for key, value in md.items():
        p.metadata.set_item(f"MnValence.{key}", value)
    p.metadata.set_item("General.original_title", s.metadata.get_item("General.title", ""))
    return p
