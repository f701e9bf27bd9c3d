"""Dask blocks of whole spectra for the lazy path.

The classification kernel runs once per block; every block holds whole spectra
(the energy axis is one chunk) and is of bounded size, so memory stays flat for maps
of any size.
"""

from __future__ import annotations

import os
import uuid

import numpy as np

__all__ = [
    "BLOCK_BYTES",
    "BLOCK_SPECTRA",
    "contiguous_chunks",
    "dask_view",
    "in_memory_blocks",
    "navigation_chunks",
]

#: Upper limits for one dask block of the lazy path: spectra and bytes of input.
BLOCK_SPECTRA = 4096

BLOCK_BYTES = 64 * 2**20


def navigation_chunks(data, block_spectra: int = BLOCK_SPECTRA, block_bytes: int = BLOCK_BYTES):
    """Rechunk ``data`` so every block holds whole spectra and is of bounded size.

    The signal (last) axis becomes one chunk; navigation chunks are left alone when
    blocks are already within ``block_spectra`` spectra and ``block_bytes`` bytes and
    otherwise chosen by dask within those limits, so a block is a few thousand spectra.

    Parameters
    ----------
    data : dask.array.Array
        Shape ``navigation + (n_channels,)``.
    block_spectra, block_bytes : int
        Limits per block.

    Returns
    -------
    dask.array.Array
    """
    n_ch = data.shape[-1]
    limit = max(min(block_bytes, block_spectra * n_ch * data.dtype.itemsize), 1)
    nav = data.ndim - 1
    whole_signal = len(data.chunks[-1]) == 1
    biggest = int(np.prod([max(c) for c in data.chunks[:-1]])) if nav else 1
    if whole_signal and biggest * n_ch * data.dtype.itemsize <= limit:
        return data
    spec = {i: "auto" for i in range(nav)}
    spec[nav] = -1
    return data.rechunk(spec, block_size_limit=limit)


def contiguous_chunks(
    shape: tuple, itemsize: int, block_spectra: int = BLOCK_SPECTRA, block_bytes: int = BLOCK_BYTES
) -> tuple:
    """Chunks of a C-ordered array ``navigation + (n_channels,)`` whose blocks are
    contiguous runs of whole spectra, of about equal size within the block limits.

    The first navigation axis is split into runs of whole rows; only where one row is
    over the limit is it cut into single rows and the next axis split. A block that is
    a strided view (dask's square ``"auto"`` chunks) is copied whole by the kernel's
    ``reshape`` (measured 128x128x2048 float32: 64x64 blocks, 32 MB copied per block).

    Parameters
    ----------
    shape : tuple of int
    itemsize : int
        Bytes per value.
    block_spectra, block_bytes : int
        Limits per block.

    Returns
    -------
    tuple of tuple of int
    """
    nav, n_ch = shape[:-1], shape[-1]
    per = max(1, min(block_spectra, block_bytes // max(n_ch * itemsize, 1)))
    chunks = []
    for i, n in enumerate(nav):
        inner = int(np.prod(nav[i + 1 :], dtype=np.int64))
        if inner > per and n > 0:
            chunks.append((1,) * n)  # one row at a time; split the next axis
            continue
        rows = max(per // max(inner, 1), 1)
        k = -(-n // rows) if n else 1  # blocks along this axis, then sizes evened out
        chunks.append(tuple(n // k + (j < n % k) for j in range(k)) if n else (0,))
        chunks.extend((m,) for m in nav[i + 1 :])
        break
    return tuple(chunks) + ((n_ch,),)


def in_memory_blocks(x: np.ndarray, batch_size: int, block_spectra: int = BLOCK_SPECTRA):
    """Dask blocks of the in-memory spectra ``x`` for the lazy path, without a copy.

    A C-ordered array is seen as ``(n_spectra, n_channels)`` and cut into runs of whole
    preprocessing batches, so every batch holds the spectra the eager path's does: the
    edge decision pools the noise over a batch (``decisions.pooled_noise``), so other
    batches can flip a pixel near the threshold (3 of 1024 with 8x8 blocks). Blocks
    spread over the cores, at most ``block_spectra`` spectra (at least one batch).

    Parameters
    ----------
    x : numpy.ndarray
        Spectra, shape ``navigation + (n_channels,)``.
    batch_size : int
        Spectra per preprocessing batch.
    block_spectra : int
        Most spectra per block (rounded down to whole batches).

    Returns
    -------
    data : dask.array.Array
        Shape ``(n_spectra, n_channels)``, or, when ``x`` is not C-ordered, ``x``'s own
        shape in navigation blocks of contiguous rows.
    navigation_shape : tuple or None
        The shape to give the result's navigation axes (None: already theirs).
    """
    if not x.flags.c_contiguous:
        return dask_view(x, contiguous_chunks(x.shape, x.dtype.itemsize)), None
    flat = x.reshape(-1, x.shape[-1])  # a view
    n = flat.shape[0]
    batches = -(-n // batch_size)
    cores = max(os.cpu_count() or 1, 1)
    per = batch_size * max(1, min(-(-batches // cores), block_spectra // batch_size))
    sizes = tuple(min(per, n - i) for i in range(0, n, per)) or (0,)
    return dask_view(flat, (sizes, (x.shape[-1],))), x.shape[:-1]


def dask_view(x: np.ndarray, chunks: tuple):
    """A dask array whose blocks are views of the in-memory array ``x``.

    ``dask.array.from_array`` copies a numpy array whole and hashes it for its name
    (0.2-0.3 s of CPU for 128x128x2048 float32); views need neither.
    """
    import itertools

    import dask.array as da
    from dask.array.core import slices_from_chunks

    name = f"mn-valence-input-{uuid.uuid4().hex}"
    keys = itertools.product([name], *(range(len(c)) for c in chunks))
    dsk = {k: x[slc] for k, slc in zip(keys, slices_from_chunks(chunks), strict=True)}
    return da.Array(dsk, name, chunks, dtype=x.dtype, meta=np.empty((0,) * x.ndim, x.dtype))
