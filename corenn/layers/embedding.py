"""Embedding: a (V, D) table looked up by integer ids, with a row-sparse gradient.

Letters: V rows of the table (``num_embeddings``), D width (``embedding_dim``), N ids looked up.
The backward never builds a dense (V, D) array: it returns an uncoalesced
:class:`~corenn.RowSparse` with one row per looked-up id (the upstream gradient's rows, as
PyTorch's ``sparse=True`` does), so a 1M x 64 table costs only the rows a batch touches and the
backward itself costs no pass over the rows. Repeated ids are summed, deterministically, when the
gradient is coalesced (``RowSparse.coalesce``, which the optimizers and ``clip_grad_norm`` call:
the ``scatter_rows_sum`` kernel), once per step however many lookups accumulated into it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import kernels
from corenn.autograd import Function
from corenn.backend import DEFAULT_DTYPE, check_float_dtype, get_array_module
from corenn.layers.module import Module
from corenn.sparse import RowSparse
from corenn.tensor import Parameter, Tensor


class EmbeddingLookup(Function):
    """``out[..., :] = weight[ids[...], :]``; the gradient of ``weight`` is row-sparse.

    ``dweight[v] = sum of g[n] over the n with ids[n] == v`` (0 for ``padding_idx``), returned
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


def _check_ids(ids: Any, num_embeddings: int, like: Any) -> Any:
    """``ids`` as an int64 array on ``like``'s device, after type and range checks."""
    arr = get_array_module(like).asarray(getattr(ids, "data", ids))
    if arr.dtype.kind not in "iu":
        raise TypeError(f"embedding ids must be integers, got dtype {arr.dtype}")
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= num_embeddings:
            bad = low if low < 0 else high
            raise IndexError(
                f"embedding index {bad} is out of range for a table of {num_embeddings} rows "
                f"(valid 0..{num_embeddings - 1})"
            )
    return arr.astype(np.int64, copy=False)


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
    ids = _check_ids(ids, weight.shape[0], weight.data)
    return EmbeddingLookup.apply(weight, ids=ids, padding_idx=padding_idx)


class Embedding(Module):
    """A trainable lookup table of ``num_embeddings`` vectors of width ``embedding_dim``.

    Parameters
    ----------
    num_embeddings : int
        V >= 1.
    embedding_dim : int
        D >= 1.
    padding_idx : int, optional
        A row in ``[-V, V)`` (negative counts from the end) that starts at zero and never
        receives a gradient.
    dtype : float32 or float64
    rng : numpy.random.Generator, optional
        Source of the initial weights (a fresh ``default_rng()`` when None).

    Attributes
    ----------
    weight : Parameter, shape (V, D)
        Initialised from N(0, 1); the padding row is zero.

    Notes
    -----
    Calling the module with ids of shape S returns shape S + (D,); see :func:`embedding`.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = DEFAULT_DTYPE,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Embedding: {name} must be a positive integer, got {value!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} is out of range for "
                    f"{num_embeddings} rows"
                )
            padding_idx = int(padding_idx) % num_embeddings
        rng = np.random.default_rng() if rng is None else rng
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        table = rng.standard_normal((num_embeddings, embedding_dim)).astype(
            check_float_dtype(dtype)
        )
        if padding_idx is not None:
            table[padding_idx] = 0
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = padding_idx
        self.weight = Parameter(table)

    def forward(self, ids: Any) -> Tensor:
        """Rows of ``weight`` for integer ``ids`` of any shape S; returns shape S + (D,)."""
        return embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}, dtype={self.weight.dtype}"
