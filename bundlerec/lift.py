"""How often items were bought together, against independence: the shop owner's "lift".

For a set S of items and N baskets of the training history, with n_S the number of baskets that
hold every item of S and n_i those that hold item i,

    lift(S) = (n_S / N) / prod_{i in S} (n_i / N),

so a lift of 3 reads "bought together 3 times more often than if they were bought
independently"; 0 means never bought together. Letters: N baskets, I items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["BasketCounts"]


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
        rows = self._baskets_of(items[0])
        for j in items[1:]:
            rows = np.intersect1d(rows, self._baskets_of(j), assume_unique=True)
        return int(rows.size)

    def _baskets_of(self, item: int) -> np.ndarray:
        """Sorted basket rows holding ``item`` (a view of the CSC structure)."""
        start, stop = self.baskets.indptr[item], self.baskets.indptr[item + 1]
        return self.baskets.indices[start:stop]

    def lift(self, items: Sequence[int]) -> float:
        """``lift(S)`` of the module docstring; NaN for fewer than two distinct items or when an
        item never occurs."""
        items = sorted({int(j) for j in items})
        counts = self.item_counts[items].astype(np.float64)
        if len(items) < 2 or self.n_baskets == 0 or counts.min() == 0:
            return float("nan")
        share = counts / self.n_baskets
        return float(self.together(items) / self.n_baskets / np.prod(share))
