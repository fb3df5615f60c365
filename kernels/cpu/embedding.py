"""Numba embedding kernels: names, signatures and results of :mod:`kernels.reference.embedding`.

Letters: V vocabulary (rows of the table), D embedding width, N number of looked-up ids, U
distinct ids. The gather is a serial loop over a range of output rows (independent: each reads
one table row); when it is large and several threads are set, it runs on one block of rows per
thread (:func:`kernels.cpu._blocks.run_blocks`: the ``parallel=True`` driver it replaces compiled
in 0.4-0.7 s on a cold cache, and entered an OpenMP region that the library's other thread
blocks do not share). The scatter-add is one serial pass over the rows in their
original order, adding each into its id's sum, so results do not depend on the thread count and
equal the reference bit for bit. No ``fastmath``: it would let the compiler reorder sums.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from kernels.cpu._blocks import block_bounds, run_blocks

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


@njit(cache=True, nogil=True)
def _gather_rows(weight, ids, out, lo, hi):
    """``out[i] = weight[ids[i]]`` for ``lo <= i < hi``."""
    for i in range(lo, hi):
        row = ids[i]
        for j in range(weight.shape[1]):
            out[i, j] = weight[row, j]


def _gather_blocks(weight: np.ndarray, ids: np.ndarray, out: np.ndarray, blocks: int) -> None:
    """:func:`_gather_rows` on ``blocks`` blocks of rows, one per thread."""
    bounds = block_bounds(ids.shape[0], blocks)
    run_blocks(_gather_rows, [(weight, ids, out, lo, hi) for lo, hi in bounds])


@njit(cache=True)
def _span_inverse(indices, low, present, rank, unique, inverse):
    """Sorted distinct values of ``indices`` (N,), all in ``[low, low + span)``, into
    ``unique[:count]``, and each entry's position among them into ``inverse`` (N,), from one
    marking pass over the span (no sort); returns ``count``. ``present`` (span,) holds zeros,
    ``rank`` (span,) and ``unique`` (at least ``min(N, span) + 1``) are scratch; the caller
    allocates them (an allocation inside compiled 0.2 s more on a cold cache)."""
    for i in range(indices.shape[0]):
        present[indices[i] - low] = 1
    # Branch-free scan (a branch on ``present`` mispredicts about once per distinct id):
    # every value writes its rank and a candidate slot; only present ones advance.
    count = 0
    for v in range(present.shape[0]):
        rank[v] = count
        unique[count] = v + low
        count += present[v]
    for i in range(indices.shape[0]):
        inverse[i] = rank[indices[i] - low]
    return count


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
        present, rank = np.zeros(span, np.uint8), np.empty(span, np.int64)
        unique, inverse = np.empty(min(n, span) + 1, np.int64), np.empty(n, np.int64)
        unique = unique[: _span_inverse(indices, low, present, rank, unique, inverse)]
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
