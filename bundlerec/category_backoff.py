"""Co-purchase conditionals backed off to item categories (the bundle objective's prior).

Plain co-occurrence ``P(j | e) = n(e, j) / n(e)`` is noisy for pairs seen a few times. When items
have categories, a coarser estimate pools every pair of the two categories:

.. math:: q_e(j) = P(\\text{category } c_j \\text{ in the basket besides } e \\mid c_e)
   \\cdot P(j \\mid c_j, j \\ne e)

where the first factor is estimated over training baskets at the category level (for
``c_j = c_e``: baskets holding at least two distinct items of that category, among those holding
it) and the second is ``j``'s share of its category's basket count, ``e`` left out.
:meth:`CategoryBackoff.prior` returns ``q_e`` for each evidence item; the bundle objective mixes
it into the item-level counts as ``kappa`` pseudo-baskets (:func:`conditionals`, used by
:meth:`Recommender.compose`). Without item categories (one category for all) the first factor is
the chance of a second item at all and ``q_e`` is popularity.

How much to trust the categories depends on the shop: a category that says what goes with what
(pasta with sauce) deserves a large ``kappa``, a coarse one (a film's first genre) none.
:func:`choose_kappa` picks it on validation baskets, by the coverage of the top companions that
the bundles are judged by.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["KAPPA_GRID", "CategoryBackoff", "choose_kappa", "conditionals"]

KAPPA_GRID = (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
"""The values of ``kappa`` :func:`choose_kappa` tries, smallest first."""


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


def conditionals(
    together: np.ndarray,
    n_e: np.ndarray,
    popular: np.ndarray,
    prior: np.ndarray | None,
    m: float,
    kappa: float,
) -> np.ndarray:
    """Smoothed co-purchase conditionals, one row per evidence item ``e``:

    .. math:: P(j \\mid e) = \\frac{n(e, j) + m\\, \\pi_j + \\kappa\\, q_e(j)}{n(e) + m + \\kappa}

    Parameters
    ----------
    together : ndarray, shape (n, I), float64
        ``n(e, j)``: training baskets holding both.
    n_e : ndarray, shape (n,), float64
        ``n(e)``: training baskets holding ``e``.
    popular : ndarray, shape (I,), float64
        ``pi_j``, the basket frequency of ``j``.
    prior : ndarray, shape (n, I), float64, or None
        ``q_e(j)`` (:meth:`CategoryBackoff.prior`); None only with ``kappa = 0``.
    m, kappa : float
        Pseudo-baskets towards popularity and towards the category-level estimate.

    Returns
    -------
    ndarray, shape (n, I), float64
    """
    total = together + m * popular
    if kappa:
        total = total + kappa * prior
    return total / (np.asarray(n_e, dtype=np.float64)[:, None] + m + kappa)


def _top_mask(p: np.ndarray, top: int) -> np.ndarray:
    """(n, I) bool: each row's ``top`` largest entries of the (n, I) ``p``, ties to the lower
    column (one O(I) pass per row, no sort)."""
    kth = -np.partition(-p, top - 1, axis=1)[:, top - 1 : top]  # the top-th largest value
    above = p > kth
    tied = p == kth
    room = top - above.sum(axis=1, keepdims=True)
    return above | (tied & (np.cumsum(tied, axis=1) <= room))


def choose_kappa(
    baskets: sp.csr_matrix,
    categories: np.ndarray,
    m: float,
    rng: np.random.Generator,
    *,
    grid: tuple[float, ...] = KAPPA_GRID,
    valid_share: float = 0.2,
    top: int = 3,
    max_cases: int = 2000,
    block: int = 64,
) -> tuple[float, dict[float, float]]:
    """The ``kappa`` of ``grid`` whose conditionals best complete held-out baskets.

    A ``valid_share`` of the baskets (drawn by ``rng``) is held out; the rest give the counts,
    popularity and category statistics. Each held-out basket with at least two distinct items
    gives one case (at most ``max_cases``, a seeded sample): one of its items, drawn by
    ``rng``, is the evidence ``e``, and the ``top`` items of highest :func:`conditionals`
    (``e`` left out; ties to the lower code) are scored by the share of the basket's other
    items among them (the coverage of the bundle protocol, :mod:`bundlerec.bundle_eval`). The
    best mean coverage wins; ties go to the smaller ``kappa``.

    Parameters
    ----------
    baskets : scipy.sparse matrix, shape (n_baskets, I)
        Basket-item matrix of the training history (non-zero = in the basket).
    categories : ndarray, shape (I,), int64
        Category code of each item.
    m : float
        Pseudo-baskets towards popularity (the objective's ``smoothing``).
    rng : numpy.random.Generator
        Draws the held-out baskets, the sample and the evidence items.

    Returns
    -------
    kappa : float
        The chosen value; ``grid[0]`` when no held-out basket has two items.
    coverage : dict of float to float
        Mean held-out coverage of each value of ``grid`` (empty without cases).
    """
    if not 0 < valid_share < 1:
        raise ValueError(f"valid_share must be in (0, 1), got {valid_share}")
    if not 1 <= top < baskets.shape[1]:
        raise ValueError(f"top must be in [1, {baskets.shape[1]}) (fewer than the items)")
    baskets = sp.csr_matrix(baskets, dtype=np.float64)
    baskets.sum_duplicates()
    baskets.data[:] = 1.0
    order = rng.permutation(baskets.shape[0])
    n_valid = int(round(valid_share * order.size))
    valid, train = baskets[np.sort(order[:n_valid])], baskets[np.sort(order[n_valid:])]
    sizes = np.diff(valid.indptr)
    rows = np.flatnonzero(sizes >= 2)
    if rows.size > max_cases:
        rows = np.sort(rng.choice(rows, max_cases, replace=False))
    if rows.size == 0:
        return float(grid[0]), {}
    evidence = valid.indices[valid.indptr[rows] + rng.integers(0, sizes[rows])].astype(np.int64)
    counts = np.asarray(train.sum(axis=0)).ravel()
    popular = (counts + 1.0) / (train.shape[0] + 2.0)
    pairs = sp.csr_matrix(train.T @ train)
    backoff = CategoryBackoff(train, categories)
    hits = np.zeros((len(grid), rows.size))
    for start in range(0, rows.size, block):
        part = slice(start, start + block)
        e = evidence[part]
        together, prior = pairs[e].toarray(), backoff.prior(e)
        rest = valid[rows[part]].toarray()
        rest[np.arange(e.size), e] = 0.0
        for g, kappa in enumerate(grid):
            p = conditionals(together, counts[e], popular, prior, m, kappa)
            p[np.arange(e.size), e] = -np.inf
            hits[g, part] = (_top_mask(p, top) * rest).sum(axis=1)
    means = (hits / (sizes[rows] - 1)).mean(axis=1)
    return float(grid[int(np.argmax(means))]), dict(zip(map(float, grid), map(float, means)))
