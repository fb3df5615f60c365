"""GPU embedding kernels: row gather, and the deterministic sum of the rows' gradients.

Same names, signatures and results as :mod:`kernels.reference.embedding` (letters there). The
scatter-add uses no atomics: the ids are sorted once (a stable sort, so repeated ids keep their
order), and one thread per (distinct id, column) sums its run of rows in the order of ``n``, as
the reference does, so the result does not depend on thread scheduling.
"""

from __future__ import annotations

import numpy as np

from kernels.gpu._device import array_module
from kernels.gpu._launch import cuda, grid

__all__ = ["embedding_fwd", "scatter_rows_sum"]


@cuda.jit
def _gather(weight, ids, out):
    k = cuda.grid(1)
    n, width = out.shape
    if k < n * width:
        r = k // width
        out[r, k - r * width] = weight[ids[r], k - r * width]


@cuda.jit
def _run_sums(values, order, starts, sums):
    k = cuda.grid(1)
    n_unique, width = sums.shape
    if k < n_unique * width:
        u = k // width
        d = k - u * width
        acc = values[order[starts[u]], d]  # every distinct id has at least one row
        for q in range(starts[u] + 1, starts[u + 1]):
            acc += values[order[q], d]
        sums[u, d] = acc


def embedding_fwd(weight, ids):
    """Gather rows: ``out[n] = weight[ids[n]]`` (see :func:`kernels.reference.embedding_fwd`)."""
    xp = array_module(weight)
    ids = xp.asarray(ids, dtype=np.int64)
    out = xp.empty((ids.shape[0], weight.shape[1]), dtype=weight.dtype)
    if out.size:
        blocks, threads = grid(out.size)
        _gather[blocks, threads](weight, ids, out)
    return out


def scatter_rows_sum(indices, values):
    """Sum the rows of ``values`` that share an index, deterministically (see
    :func:`kernels.reference.scatter_rows_sum`).

    Returns
    -------
    unique : ndarray, shape (U,), int64
    sums : ndarray, shape (U, D), dtype of ``values``
    """
    xp = array_module(values)
    indices = xp.asarray(indices, dtype=np.int64).reshape(-1)
    unique, inverse = xp.unique(indices, return_inverse=True)
    inverse = inverse.reshape(-1)
    # cupy's argsort is always stable (and some versions take no ``kind``); numpy's must be told
    order = xp.argsort(inverse, kind="stable") if xp is np else xp.argsort(inverse)
    starts = xp.zeros(unique.shape[0] + 1, dtype=np.int64)
    starts[1:] = xp.cumsum(xp.bincount(inverse, minlength=unique.shape[0]))
    flat = xp.ascontiguousarray(values).reshape(indices.shape[0], -1)
    sums = xp.empty((unique.shape[0], flat.shape[1]), dtype=values.dtype)
    if sums.size:
        blocks, threads = grid(sums.size)
        _run_sums[blocks, threads](flat, order, starts, sums)
    return unique, sums.reshape((unique.shape[0],) + values.shape[1:])
