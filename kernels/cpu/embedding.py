"""Numba embedding kernels: names, signatures and results of :mod:`kernels.reference.embedding`.

Letters: V vocabulary (rows of the table), D embedding width, N number of looked-up ids, U
distinct ids. The gather is a serial loop over a range of output rows (independent: each reads
one table row); when it is large and several threads are set, a ``prange`` driver runs it on one
block of rows per thread. The scatter-add is one serial pass over the rows in their
original order, adding each into its id's sum, so results do not depend on the thread count and
equal the reference bit for bit. No ``fastmath``: it would let the compiler reorder sums.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

__all__ = ["embedding_fwd", "scatter_rows_sum"]

PARALLEL_MIN_ELEMENTS = 1 << 15
"""Gathers of fewer output elements (N D) run serially (a thread launch costs more). At 2
threads a 12,800 x 64 gather took 236 us serial and 128 us parallel."""


def embedding_fwd(weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Gather rows: ``out[n] = weight[ids[n]]``.

    Parameters
    ----------
    weight : ndarray, shape (V, D), float32 or float64
    ids : ndarray, shape (N,), integer
        Row indices in ``[0, V)``; not checked here (the caller checks the range).

    Returns
    -------
    ndarray, shape (N, D), dtype of ``weight``
    """
    weight = np.ascontiguousarray(weight)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    out = np.empty((ids.shape[0], weight.shape[1]), dtype=weight.dtype)
    threads = numba.get_num_threads()
    if threads > 1 and out.size >= PARALLEL_MIN_ELEMENTS:
        _gather_blocks(weight, ids, out, min(threads, ids.shape[0]))
    else:
        _gather_rows(weight, ids, out, 0, ids.shape[0])
    return out


@njit(cache=True)
def _gather_rows(weight, ids, out, lo, hi):
    """``out[i] = weight[ids[i]]`` for ``lo <= i < hi``."""
    for i in range(lo, hi):
        row = ids[i]
        for j in range(weight.shape[1]):
            out[i, j] = weight[row, j]


@njit(cache=True, parallel=True)
def _gather_blocks(weight, ids, out, blocks):
    """:func:`_gather_rows` on ``blocks`` blocks of rows, one per thread."""
    n = ids.shape[0]
    for k in prange(blocks):
        _gather_rows(weight, ids, out, k * n // blocks, (k + 1) * n // blocks)


@njit(cache=True)
def _span_inverse(indices, low, span):
    """Sorted distinct values of ``indices`` (N,), all in ``[low, low + span)``, and each
    entry's position among them, from one marking pass over a table of the span (no sort)."""
    present = np.zeros(span, dtype=np.uint8)
    for i in range(indices.shape[0]):
        present[indices[i] - low] = 1
    # Branch-free scan (a branch on ``present`` mispredicts about once per distinct id):
    # every value writes its rank and a candidate slot; only present ones advance.
    rank = np.empty(span, dtype=np.int64)
    unique = np.empty(min(indices.shape[0], span) + 1, dtype=np.int64)
    count = 0
    for v in range(span):
        rank[v] = count
        unique[count] = v + low
        count += present[v]
    inverse = np.empty(indices.shape[0], dtype=np.int64)
    for i in range(indices.shape[0]):
        inverse[i] = rank[indices[i] - low]
    return unique[:count].copy(), inverse


def scatter_rows_sum(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the rows of ``values`` that share an index (deterministic).

    Each index's position among the distinct ones is found without a sort when their span is
    at most a few times N (one compiled marking pass), else by ``np.unique`` (numpy's sort: a
    compiled merge sort cost 2-3 s of compilation on first use); then one compiled pass over
    the rows, in their original order, adds each row into its index's sum.

    Parameters
    ----------
    indices : ndarray, shape (N,), int64
    values : ndarray, shape (N, D), float32 or float64

    Returns
    -------
    unique : ndarray, shape (U,), int64
        Sorted distinct indices.
    sums : ndarray, shape (U, D), dtype of ``values``
    """
    if values.ndim != 2 or values.shape[0] != np.shape(indices)[0]:
        raise ValueError(
            f"scatter_rows_sum needs indices (N,) and values (N, D); got {np.shape(indices)} "
            f"and {values.shape}"
        )
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    n = indices.shape[0]
    low = indices.min() if n else 0
    span = int(indices.max() - low) + 1 if n else 0
    if span <= 8 * n + 1024:
        unique, inverse = _span_inverse(indices, low, span)
    else:  # a wide span: sort (np.unique), in numpy rather than a compiled sort
        unique, inverse = np.unique(indices, return_inverse=True)
    sums = np.zeros((unique.shape[0], values.shape[1]), dtype=values.dtype)
    _sum_rows(inverse, np.ascontiguousarray(values), sums)
    return unique, sums


@njit(cache=True)
def _sum_rows(inverse, values, sums):
    """``sums[inverse[n]] += values[n]`` for n = 0, 1, ..., in that order (deterministic)."""
    for n in range(values.shape[0]):
        u = inverse[n]
        for j in range(values.shape[1]):
            sums[u, j] += values[n, j]
