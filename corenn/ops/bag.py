"""Bags of rows: the mean of a leaf table's rows over each bag (an EmbeddingBag, mode "mean").

Letters: V rows of the table, D row width, M ids in all bags together, B bags.

Bags are given CSR-style: bag ``b`` holds ``ids[offsets[b]:offsets[b + 1]]`` and has
``n_b = offsets[b + 1] - offsets[b]`` ids (an id may repeat within a bag and count twice)::

    out[b] = (1 / n_b) sum_{m in bag b} weight[ids[m]]          (B, D); zero for an empty bag
    dweight[v] = sum_{m : ids[m] = v} g[bag(m)] / n_{bag(m)}     row-sparse, one row per id

The forward sums the scaled rows of each bag with the deterministic ``scatter_rows_sum`` kernel
(:func:`~corenn.ops.embedding.scatter_add_rows`); the backward returns an uncoalesced
:class:`~corenn.RowSparse` like :func:`~corenn.ops.embedding.embedding`, so a large hashed
n-gram table costs only the rows a batch touches.
"""

from __future__ import annotations

from typing import Any

from corenn.autograd import Function
from corenn.backend import get_array_module
from corenn.ops.embedding import _check_ids, scatter_add_rows
from corenn.sparse import RowSparse
from corenn.tensor import Tensor

__all__ = ["EmbeddingBagMean", "embedding_bag"]


class EmbeddingBagMean(Function):
    """``out[b] = mean of weight[ids[m]]`` over bag ``b`` (see the module docstring)."""

    def forward(self, weight, *, ids, offsets):
        xp = get_array_module(weight)
        counts = offsets[1:] - offsets[:-1]
        bag = xp.repeat(xp.arange(counts.shape[0]), counts)
        scale = (1.0 / xp.maximum(counts, 1)).astype(weight.dtype)
        rows = weight[ids] * scale[bag, None]
        self.save_for_backward(ids.copy(), bag, scale, weight.shape)
        return scatter_add_rows(bag, rows, counts.shape[0])

    def backward(self, g):
        ids, bag, scale, shape = self.saved
        return RowSparse(ids, g[bag] * scale[bag, None], shape)


def embedding_bag(ids: Any, offsets: Any, weight: Tensor) -> Tensor:
    """Mean of the rows of ``weight`` in each bag: ``out[b] = mean(weight[ids[o_b:o_{b+1}]])``.

    Parameters
    ----------
    ids : array, shape (M,), integer
        Row indices in ``[0, V)``, bag after bag.
    offsets : array, shape (B + 1,), integer
        ``offsets[0] = 0``, non-decreasing, ``offsets[B] = M``.
    weight : Tensor, shape (V, D), float
        A leaf (e.g. a Parameter): its gradient is an uncoalesced :class:`~corenn.RowSparse`.

    Returns
    -------
    Tensor, shape (B, D), dtype of ``weight``; an empty bag gives a zero row.

    Raises
    ------
    TypeError
        Non-integer ids or offsets.
    IndexError
        An id outside ``[0, V)``.
    ValueError
        Offsets that are not 1-D, do not start at 0, decrease or do not end at M.
    """
    xp = get_array_module(weight.data)
    ids = _check_ids(xp.asarray(ids).reshape(-1), weight.shape[0], weight.data, "embedding_bag")
    offsets = xp.asarray(offsets)
    if offsets.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag offsets must be integers, got dtype {offsets.dtype}")
    offsets = offsets.astype(ids.dtype)
    if (
        offsets.ndim != 1
        or offsets.shape[0] < 1
        or int(offsets[0]) != 0
        or int(offsets[-1]) != ids.shape[0]
        or bool((offsets[1:] < offsets[:-1]).any())
    ):
        raise ValueError(
            f"embedding_bag offsets must be 1-D, start at 0, never decrease and end at "
            f"len(ids)={ids.shape[0]}; got {offsets.tolist()[:8]}..."
        )
    return EmbeddingBagMean.apply(weight, ids=ids, offsets=offsets)
