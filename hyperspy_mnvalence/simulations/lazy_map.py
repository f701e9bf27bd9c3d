"""A lazy simulated spectrum image, recorded block by block through the simulator."""

from __future__ import annotations

import numpy as np

from .acquisition import simulate_acquisition

__all__ = ["simulate_lazy_map"]


def simulate_lazy_map(
    valence: np.ndarray,
    *,
    chunks: int = 64,
    seed: int = 0,
    pixel_size_nm: float = 1.0,
    **acquisition,
):
    """A lazy spectrum image recorded block by block (never whole in memory).

    Parameters
    ----------
    valence : numpy.ndarray
        ``(rows, columns)`` valence per pixel (2, 3 or 4; 0 for no Mn: background only).
    chunks : int
        Navigation block size; each block is one
        :func:`~hyperspy_mnvalence.simulations.simulate_acquisition` call seeded by
        ``seed`` and its block position, so the map is reproducible.
    seed : int
        Seed of the blocks.
    pixel_size_nm : float
        Scale of the navigation axes.
    **acquisition
        Scalar keyword arguments of ``simulate_acquisition`` (``dispersion_eV``,
        ``energy_range``, ``l3_over_background``, detector settings ...).

    Returns
    -------
    LazyEELSSpectrum
        ``signal_type`` ``"EELS_MnValence"``; ``metadata.Sample.mn_valence_truth`` holds
        ``valence``.
    """
    import dask.array as da
    import exspy

    valence = np.asarray(valence)
    if valence.ndim != 2:
        raise ValueError("valence must be a (rows, columns) map.")
    if any(np.ndim(v) for v in acquisition.values() if not isinstance(v, tuple)):
        raise ValueError("simulate_lazy_map takes scalar acquisition settings only.")
    probe = simulate_acquisition(1, valence=3, rng=0, **acquisition)
    energy, m = probe.energy, probe.energy.size
    ny, nx = valence.shape
    nbx = -(-nx // chunks)
    ratio = float(acquisition.pop("l3_over_background", 0.12))

    def make(v, block_info=None):
        loc = block_info[0]["chunk-location"]
        flat = v.ravel()
        acq = simulate_acquisition(
            flat.size,
            valence=np.where(flat == 0, 3, flat),
            l3_over_background=np.where(flat == 0, 0.0, ratio),
            rng=seed * 1_000_003 + loc[0] * nbx + loc[1],
            **acquisition,
        )
        return acq.spectra.reshape(v.shape + (m,))

    v = da.from_array(valence, chunks=(chunks, chunks))
    data = da.map_blocks(make, v, new_axis=2, chunks=v.chunks + ((m,),), dtype=np.float32)
    s = exspy.signals.LazyEELSSpectrum(data)
    for ax, name in zip(s.axes_manager.navigation_axes, ("x", "y"), strict=True):
        ax.name, ax.units, ax.scale, ax.offset = name, "nm", pixel_size_nm, 0.0
    ax_e = s.axes_manager.signal_axes[0]
    ax_e.name, ax_e.units = "Energy loss", "eV"
    ax_e.scale, ax_e.offset = float(energy[1] - energy[0]), float(energy[0])
    s.metadata.General.title = "Simulated Mn L2,3 spectrum image (lazy)"
    s.metadata.set_item("Sample.mn_valence_truth", valence)
    try:
        s.set_signal_type("EELS_MnValence")
    except Exception:  # the signal class may not be registered (yet)
        s.metadata.Signal.signal_type = "EELS_MnValence"
    return s
