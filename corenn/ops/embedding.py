"""Row lookups: the embedding of a leaf table (row-sparse gradient) and ``take_rows`` (dense).

Letters: V rows of a table, D row width, N ids looked up (any shape S, N its size).

Both ops compute ``out[s] = table[ids[s]]``; they differ in their gradient of the table::

    dtable[v] = sum of g[s] over the s with ids[s] == v

- :func:`embedding` returns it as an uncoalesced :class:`~corenn.RowSparse` with one row per
  lookup (the upstream gradient's rows, as PyTorch's ``sparse=True`` does): a 1M x 64 table
  costs only the rows a batch touches, and the backward itself costs no pass over the rows.
  Repeated ids are summed, deterministically, when the gradient is coalesced
  (``RowSparse.coalesce``, which the optimizers and ``clip_grad_norm`` call), once per step
  however many lookups accumulated into it. Meant for a leaf table (a Parameter).
- :func:`take_rows` returns it dense, (V, D), summed at once by the same deterministic
  ``scatter_rows_sum`` kernel. Meant for a small table computed in the graph (e.g. the vectors
  of the distinct items of a batch, gathered back to every position that uses them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import kernels
from corenn.autograd import Function
from corenn.backend import get_array_module
from corenn.sparse import RowSparse
from corenn.tensor import Tensor

__all__ = ["EmbeddingLookup", "TakeRows", "embedding", "take_rows", "scatter_add_rows"]


def scatter_add_rows(index: Any, rows: Any, count: int) -> Any:
    """Dense ``out`` (count, W) with ``out[v] = sum of rows[n] over index[n] == v``.

    Deterministic: the ``scatter_rows_sum`` kernel adds the rows of each index in their input
    order, whatever the thread count (bit-equal to its reference twin).

    Parameters
    ----------
    index : ndarray, shape (N,), int64
        Values in ``[0, count)``.
    rows : ndarray, shape (N, W), float
    count : int
        Rows of the result.

    Returns
    -------
    ndarray, shape (count, W), dtype of ``rows``
    """
    unique, sums = kernels.get("scatter_rows_sum", rows)(index, rows)
    out = kernels.array_module(rows).zeros((count, rows.shape[1]), dtype=rows.dtype)
    out[unique] = sums
    return out


def _check_ids(ids: Any, rows: int, like: Any, what: str) -> Any:
    """``ids`` as an int64 array on ``like``'s device, after type and range checks."""
    arr = get_array_module(like).asarray(getattr(ids, "data", ids))
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} ids must be integers, got dtype {arr.dtype}")
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= rows:
            bad = low if low < 0 else high
            raise IndexError(
                f"{what} index {bad} is out of range for a table of {rows} rows "
                f"(valid 0..{rows - 1})"
            )
    return arr.astype(np.int64, copy=False)


class EmbeddingLookup(Function):
    """``out[s, :] = weight[ids[s], :]``; the gradient of ``weight`` is row-sparse.

    ``dweight[v] = sum of g[s] over the s with ids[s] == v`` (0 for ``padding_idx``), returned
    uncoalesced: row ``n`` of the RowSparse is ``g[n]`` at index ``ids[n]`` (lookups of
    ``padding_idx`` left out). Its values share memory with ``g`` where no padding is dropped.
    """

    def forward(self, weight, *, ids, padding_idx):
        flat = ids.reshape(-1)
        out = kernels.get("embedding_fwd", weight)(weight, flat)
        # A copy: the caller may refill its id buffer before the gradient is used.
        self.save_for_backward(flat.copy(), padding_idx, weight.shape)
        return out.reshape(ids.shape + (weight.shape[1],))

    def backward(self, g):
        flat, padding_idx, shape = self.saved
        rows = g.reshape(-1, shape[1])
        if padding_idx is not None:
            keep = flat != padding_idx
            if not keep.all():
                flat, rows = flat[keep], rows[keep]
        return RowSparse(flat, rows, shape)


class TakeRows(Function):
    """``out[s] = table[ids[s]]`` for a table of shape (V,) + R; the gradient is dense.

    ``dtable`` (V,) + R is :func:`scatter_add_rows` of the upstream rows (flattened to width
    ``prod(R)``), summed deterministically.
    """

    def forward(self, table, *, ids):
        flat = ids.reshape(-1)
        self.save_for_backward(flat.copy(), table.shape)
        return table[flat].reshape(ids.shape + table.shape[1:])

    def backward(self, g):
        flat, shape = self.saved
        rows = g.reshape(flat.shape[0], math.prod(shape[1:]))
        return scatter_add_rows(flat, rows, shape[0]).reshape(shape)


def embedding(ids: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Look up rows of ``weight``: ``out[i, j, ..., :] = weight[ids[i, j, ...], :]``.

    Parameters
    ----------
    ids : array or Tensor, any shape S, integer
        Row indices in ``[0, V)``.
    weight : Tensor, shape (V, D), float
        A leaf (e.g. a Parameter): its gradient is an uncoalesced :class:`~corenn.RowSparse`
        (one row per lookup; ``coalesce()`` sums repeated ids).
    padding_idx : int, optional
        A row in ``[0, V)`` that receives no gradient.

    Returns
    -------
    Tensor, shape S + (D,), dtype of ``weight``

    Raises
    ------
    TypeError
        If ``ids`` are not integers.
    IndexError
        If an id is negative or >= V (the message names it and V).
    """
    ids = _check_ids(ids, weight.shape[0], weight.data, "embedding")
    return EmbeddingLookup.apply(weight, ids=ids, padding_idx=padding_idx)


def take_rows(table: Any, ids: Any) -> Tensor:
    """Rows of ``table`` with a dense gradient: ``out[s] = table[ids[s]]``.

    The backward sums the gradient rows of repeated ids into a dense array of the table's shape,
    deterministically (``dtable[v] = sum of g[s] over ids[s] == v``, added in the order of the
    flattened ``s``). Use it for a table computed in the graph; for a large leaf table prefer
    :func:`embedding`, whose gradient holds only the looked-up rows.

    Parameters
    ----------
    table : Tensor or array, shape (V,) + R, float
    ids : array or Tensor, any shape S, integer
        Row indices in ``[0, V)``.

    Returns
    -------
    Tensor, shape S + R, dtype of ``table``

    Raises
    ------
    TypeError
        If ``ids`` are not integers.
    IndexError
        If an id is negative or >= V (the message names it and V).
    """
    table = table if isinstance(table, Tensor) else Tensor(table)
    if table.ndim < 1:
        raise ValueError("take_rows needs a table of at least one dimension, got a scalar")
    ids = _check_ids(ids, table.shape[0], table.data, "take_rows")
    return TakeRows.apply(table, ids=ids)
