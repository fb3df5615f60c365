"""Embedding: a trainable (V, D) table looked up by integer ids, with a row-sparse gradient.

Letters: V rows of the table (``num_embeddings``), D width (``embedding_dim``). The lookup and
its gradient are the op :func:`corenn.ops.embedding.embedding` (see there: the gradient is an
uncoalesced :class:`~corenn.RowSparse`, summed deterministically when coalesced).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corenn.backend import DEFAULT_DTYPE, check_float_dtype
from corenn.layers.module import Module
from corenn.ops.embedding import embedding
from corenn.tensor import Parameter, Tensor


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
