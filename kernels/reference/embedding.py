"""Reference embedding kernels: gather rows, and the deterministic scatter-add of their gradient.

Letters: V vocabulary (rows of the table), D embedding width, N number of looked-up ids.
"""

from __future__ import annotations

import numpy as np

__all__ = ["embedding_fwd", "scatter_rows_sum"]


def embedding_fwd(weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Gather rows: ``out[n] = weight[ids[n]]``.

    Parameters
    ----------
    weight : ndarray, shape (V, D), float
    ids : ndarray, shape (N,), int64
        Row indices in ``[0, V)`` (the caller checks the range).

    Returns
    -------
    ndarray, shape (N, D), dtype of ``weight``
    """
    return np.take(weight, ids, axis=0)


def scatter_rows_sum(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the rows of ``values`` that share an index.

    Parameters
    ----------
    indices : ndarray, shape (N,), integer
    values : ndarray, shape (N, D), float

    Returns
    -------
    unique : ndarray, shape (U,), int64
        Sorted distinct indices.
    sums : ndarray, shape (U, D)
        ``sums[u] = sum(values[n] for n with indices[n] == unique[u])``, summed in the order of
        ``n`` (deterministic).
    """
    unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
    sums = np.zeros((unique.shape[0],) + values.shape[1:], dtype=values.dtype)
    np.add.at(sums, inverse.reshape(-1), values)
    return unique, sums
