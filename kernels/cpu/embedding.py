"""Numba embedding kernels: names, signatures and results of :mod:`kernels.reference.embedding`.

Letters: V vocabulary (rows of the table), D embedding width, N number of looked-up ids, U
distinct ids. Both kernels use ``prange`` over output rows only, which are independent: each row
of the gather reads one table row; each row of the scatter-add sums one run of equal ids. The
run is summed serially in the ids' original order, so results do not depend on the thread count
and equal the reference bit for bit. No ``fastmath``: it would let the compiler reorder sums.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["embedding_fwd", "scatter_rows_sum"]


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
    return _gather_rows(np.ascontiguousarray(weight), np.ascontiguousarray(ids, dtype=np.int64))


@njit(parallel=True, cache=True)
def _gather_rows(weight, ids):
    n = ids.shape[0]
    d = weight.shape[1]
    out = np.empty((n, d), dtype=weight.dtype)
    for i in prange(n):
        row = ids[i]
        for j in range(d):
            out[i, j] = weight[row, j]
    return out


@njit(cache=True)
def _stable_order(indices):
    """A stable sorting permutation of ``indices``: a counting sort when their range is at most
    a few times their number (one pass, no comparisons), else a merge sort."""
    n = indices.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    low = indices.min()
    span = indices.max() - low + 1
    if span > 8 * n + 1024:
        return np.argsort(indices, kind="mergesort")
    next_slot = np.zeros(span + 1, dtype=np.int64)
    for i in range(n):
        next_slot[indices[i] - low + 1] += 1
    for b in range(span):
        next_slot[b + 1] += next_slot[b]
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        b = indices[i] - low
        order[next_slot[b]] = i
        next_slot[b] += 1
    return order


@njit(cache=True)
def _run_starts(sorted_ids):
    """Start of each run of equal values in a sorted array, plus its length at the end."""
    n = sorted_ids.shape[0]
    starts = np.empty(n + 1, dtype=np.int64)
    count = 0
    for i in range(n):
        if i == 0 or sorted_ids[i] != sorted_ids[i - 1]:
            starts[count] = i
            count += 1
    starts[count] = n
    return starts[: count + 1]


def scatter_rows_sum(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the rows of ``values`` that share an index (deterministic).

    The indices are sorted stably (counting or merge sort), so each run of equal indices lists
    its rows in their original order, and each run is summed in that order.

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
    return _scatter_rows_sum(
        np.ascontiguousarray(indices, dtype=np.int64), np.ascontiguousarray(values)
    )


@njit(parallel=True, cache=True)
def _scatter_rows_sum(indices, values):
    order = _stable_order(indices)
    sorted_ids = indices[order]
    starts = _run_starts(sorted_ids)
    n_unique = starts.shape[0] - 1
    d = values.shape[1]
    unique = np.empty(n_unique, dtype=np.int64)
    sums = np.zeros((n_unique, d), dtype=values.dtype)
    for u in prange(n_unique):
        unique[u] = sorted_ids[starts[u]]
        for k in range(starts[u], starts[u + 1]):
            r = order[k]
            for j in range(d):
                sums[u, j] += values[r, j]
    return unique, sums
