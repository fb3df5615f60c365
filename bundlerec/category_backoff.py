"""Co-purchase conditionals backed off to item categories (the bundle objective's prior).

Plain co-occurrence ``P(j | e) = n(e, j) / n(e)`` is noisy for pairs seen a few times. When items
have categories, a coarser estimate pools every pair of the two categories:

.. math:: q_e(j) = P(\\text{category } c_j \\text{ in the basket besides } e \\mid c_e)
   \\cdot P(j \\mid c_j, j \\ne e)

where the first factor is estimated over training baskets at the category level (for
``c_j = c_e``: baskets holding at least two distinct items of that category, among those holding
it) and the second is ``j``'s share of its category's basket count, ``e`` left out.
:meth:`CategoryBackoff.prior` returns ``q_e`` for each evidence item; the bundle objective mixes
it into the item-level counts as ``kappa`` pseudo-baskets (:meth:`Recommender.compose`). Without
item categories (one category for all) the first factor is the chance of a second item at all
and ``q_e`` is popularity.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["CategoryBackoff"]


class CategoryBackoff:
    """Category-level co-purchase statistics of a set of training baskets.

    Parameters
    ----------
    baskets : scipy.sparse.csr_matrix, shape (n_baskets, I)
        Binary basket-item matrix of the training history.
    categories : ndarray, shape (I,), int64
        Category code of each item, in ``0 .. C - 1``.
    """

    def __init__(self, baskets: sp.csr_matrix, categories: np.ndarray) -> None:
        categories = np.asarray(categories, dtype=np.int64)
        n_baskets, n_items = baskets.shape
        if categories.shape != (n_items,):
            raise ValueError(f"categories must have shape ({n_items},), got {categories.shape}")
        n_cat = int(categories.max()) + 1 if n_items else 0
        membership = sp.csr_matrix(
            (np.ones(n_items), (np.arange(n_items), categories)), shape=(n_items, n_cat)
        )
        per_category = sp.csr_matrix(baskets @ membership)  # distinct items of c per basket
        present = per_category.copy()
        present.data = (present.data > 0).astype(np.float64)
        pairs = (present.T @ present).toarray()  # baskets holding both categories
        several = per_category.copy()
        several.data = (several.data >= 2).astype(np.float64)
        held = np.diag(pairs).copy()  # baskets holding the category
        np.fill_diagonal(pairs, np.asarray(several.sum(axis=0)).ravel())
        share = held / max(n_baskets, 1)
        # (C, C) P(category c in the basket besides e | e's category), smoothed by one basket
        self.given_category = (pairs + share[None, :]) / (held[:, None] + 1.0)
        self.item_counts = np.asarray(baskets.sum(axis=0)).ravel().astype(np.float64) + 0.5
        self.category_totals = np.bincount(categories, self.item_counts, minlength=n_cat)
        self.categories = categories

    def prior(self, evidence: np.ndarray) -> np.ndarray:
        """(len(evidence), I) float64 ``q_e(j)`` for each evidence item code ``e`` (module doc);
        the evidence item's own entry is 0."""
        evidence = np.asarray(evidence, dtype=np.int64)
        cat = self.categories
        totals = np.broadcast_to(self.category_totals[cat], (evidence.size, cat.size)).copy()
        same = cat[None, :] == cat[evidence][:, None]
        totals[same] -= np.repeat(self.item_counts[evidence], same.sum(axis=1))
        totals = np.maximum(totals, 0.5)  # only where j = e is alone in its category
        q = self.given_category[cat[evidence]][:, cat] * self.item_counts / totals
        q[np.arange(evidence.size), evidence] = 0.0
        return q
