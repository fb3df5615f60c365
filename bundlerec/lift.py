"""How often items were bought together, against independence: the shop owner's "lift".

For a set S of items and N baskets of the training history, with n_S the number of baskets that
hold every item of S and n_i those that hold item i,

    lift(S) = (n_S / N) / prod_{i in S} (n_i / N),

so a lift of 3 reads "bought together 3 times more often than if they were bought
independently"; 0 means never bought together. Letters: N baskets, I items, C columns.

:class:`BasketStatistics` holds the counts that models of pairs need (popularity, co-occurrence,
the Chow-Liu tree of the co-purchase network and its CPTs), computed per part of a log and added
up, so that a cluster can count a log no single machine holds (:mod:`bundlerec.batch.counting`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from bundlerec.prep import Interactions

__all__ = ["BasketCounts", "BasketStatistics"]


class BasketCounts:
    """Basket counts of item sets from a binary basket-item matrix.

    Parameters
    ----------
    baskets : scipy.sparse matrix, shape (N, I)
        1 where a basket holds an item (e.g. :func:`bundlerec.models.copurchase.basket_matrix`).
    """

    def __init__(self, baskets: sp.spmatrix) -> None:
        self.baskets = sp.csc_matrix(baskets, dtype=np.float64)
        self.baskets.sum_duplicates()
        self.baskets.sort_indices()
        self.baskets.data[:] = 1.0
        self.n_baskets = int(self.baskets.shape[0])
        self.item_counts = np.asarray(self.baskets.sum(axis=0)).ravel().astype(np.int64)

    def together(self, items: Sequence[int]) -> int:
        """Number of baskets that hold every item of ``items`` (all baskets when empty)."""
        items = sorted({int(j) for j in items})
        if not items:
            return self.n_baskets
        if self.item_counts[items].min() == 0:
            return 0
        shortest, *others = sorted((self._baskets_of(j) for j in items), key=len)
        rows = shortest
        for other in others:  # the rows also in ``other`` (both sorted): a binary search each
            at = np.minimum(np.searchsorted(other, rows), other.size - 1)
            rows = rows[other[at] == rows]
        return int(rows.size)

    def _baskets_of(self, item: int) -> np.ndarray:
        """Sorted basket rows holding ``item`` (a view of the CSC structure)."""
        start, stop = self.baskets.indptr[item], self.baskets.indptr[item + 1]
        return self.baskets.indices[start:stop]

    def lift(self, items: Sequence[int], together: int | None = None) -> float:
        """``lift(S)`` of the module docstring; NaN for fewer than two distinct items or when an
        item never occurs. ``together``: :meth:`together` of ``items`` if already counted."""
        items = sorted({int(j) for j in items})
        counts = self.item_counts[items].astype(np.float64)
        if len(items) < 2 or self.n_baskets == 0 or counts.min() == 0:
            return float("nan")
        share = counts / self.n_baskets
        n_s = self.together(items) if together is None else together
        return float(n_s / self.n_baskets / np.prod(share))


@dataclass(frozen=True)
class BasketStatistics:
    """How many baskets there are and how many hold each pair of columns.

    The columns are the I items, then one column per state of each shopper attribute (the
    basket owner's value), attributes in name order. ``gram[a, b]`` is the number of baskets that
    hold both columns ``a`` and ``b``: the Gram matrix ``B^T B`` of the (N, C) 0/1 basket
    matrix, whose diagonal counts the baskets holding each column. Statistics of disjoint sets of
    whole baskets add up (``+``), so parts of a log can be counted apart and reduced.

    Attributes
    ----------
    n_baskets : int
        N.
    gram : scipy.sparse.csr_matrix, shape (C, C), int64
    n_items : int
        I, the first I columns.
    attributes : tuple of (str, int)
        ``(name, number of states)`` of each attribute, in column order after the items.
    """

    n_baskets: int
    gram: sp.csr_matrix
    n_items: int
    attributes: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_interactions(
        cls, train: Interactions, user_features: Mapping[str, np.ndarray] | None = None
    ) -> BasketStatistics:
        """Count the baskets of ``train`` (every event type; an item twice in a basket is once).

        Parameters
        ----------
        train : Interactions
            Whole baskets: a basket code stands for one basket, whatever part it is counted in.
        user_features : dict of str to ndarray (n_users,) int64, optional
            Attribute codes (from 0) of every shopper; an attribute has ``max + 1`` states.
        """
        user_features = dict(user_features or {})
        attributes = []
        for name in sorted(user_features):
            codes = np.asarray(user_features[name])
            if codes.shape != (train.n_users,) or (codes.size and codes.min() < 0):
                raise ValueError(
                    f"user feature {name!r} must hold ({train.n_users},) codes >= 0, got "
                    f"shape {codes.shape}"
                )
            attributes.append((name, int(codes.max()) + 1 if codes.size else 0))
        width = train.n_items + sum(states for _, states in attributes)
        baskets, rows = np.unique(train.basket, return_inverse=True)
        owner = np.zeros(baskets.size, dtype=np.int64)
        owner[rows] = train.user
        row_parts, col_parts, offset = [rows], [train.item], train.n_items
        for name, states in attributes:
            row_parts.append(np.arange(baskets.size))
            col_parts.append(offset + np.asarray(user_features[name])[owner])
            offset += states
        rows, cols = np.concatenate(row_parts), np.concatenate(col_parts)
        matrix = sp.csr_matrix(
            (np.ones(rows.size, dtype=np.int64), (rows, cols)), shape=(baskets.size, width)
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1
        return cls(
            int(baskets.size), (matrix.T @ matrix).tocsr(), train.n_items, tuple(attributes)
        )

    def __add__(self, other: BasketStatistics) -> BasketStatistics:
        """The statistics of both sets of baskets (they must share items and attributes)."""
        if (self.n_items, self.attributes) != (other.n_items, other.attributes):
            raise ValueError(
                "cannot add basket statistics of different columns: "
                f"{self.n_items} items {self.attributes} vs {other.n_items} {other.attributes}"
            )
        return BasketStatistics(
            self.n_baskets + other.n_baskets, self.gram + other.gram, self.n_items, self.attributes
        )

    @property
    def item_counts(self) -> np.ndarray:
        """(I,) int64: baskets holding each item (popularity)."""
        return self.gram.diagonal()[: self.n_items].astype(np.int64)

    def columns(self, name: str) -> np.ndarray:
        """(r,) int64: the columns of the states of attribute ``name``."""
        offset = self.n_items
        for attribute, states in self.attributes:
            if attribute == name:
                return np.arange(offset, offset + states)
            offset += states
        raise KeyError(f"no attribute {name!r} in the basket statistics")
