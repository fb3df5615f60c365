"""New arrivals: items no event has shown yet, scored from their attributes and text.

The sequence model gives a new item a vector from its attributes and the hashed n-grams of its
title and description (:class:`~bundlerec.models.towers.ItemTower`, zero id embedding). The
co-purchase network knows nothing of it, so :class:`Borrowing` gives it the scores of its
``DONORS`` most similar known items instead of a flat prior: ``s(j) = sum_k w_jk s(k)`` over
the known items ``k`` whose content vectors (attributes and text, without the id embedding:
:meth:`SequenceModel.content_vectors`) have the highest cosine with ``j``'s, with weights
``w_jk`` proportional to the positive cosines (equal weights when none is positive).

Ranking new arrivals for a shopper (:func:`arrival_scores`) adds what the next-item
probability misses: the category's share of the shop's purchases (a campaign's new items are
bought over weeks, not only next) and the shopper's taste in words within a category
(:class:`Tastes`):

.. math:: r_{uj} = (1 - w) \\log p_{uj} + w \\log \\pi_{c_j} + \\beta\\, a_{uj}

with ``p_uj`` the fused probability, ``pi_c`` the category's share of the purchases (add-one
smoothed) and ``a_uj`` the taste affinity; ``w`` (:data:`CATEGORY_WEIGHT`) and ``beta``
(:data:`TASTE_WEIGHT`) were chosen on development data (``bench/cold_start.py``,
docs/campaigns.md).

Letters: n cases, I items, C cold items, K donors per cold item, G categories, F hashed n-grams,
J candidate items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from bundlerec.models.text import TextBags

if TYPE_CHECKING:
    from bundlerec.cases import Cases

__all__ = [
    "CATEGORY_WEIGHT",
    "DONORS",
    "TASTE_WEIGHT",
    "Borrowing",
    "Tastes",
    "arrival_scores",
    "category_share",
    "donors",
    "text_matrix",
]

DONORS = 5
CATEGORY_WEIGHT = 0.5
"""``w``: weight of the category share against the fused probability in :func:`arrival_scores`."""
TASTE_WEIGHT = 4.0
"""``beta``: weight (the step size of :class:`Tastes`) of the taste affinity."""


def donors(
    content: np.ndarray, cold: np.ndarray, k: int = DONORS
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar known items of each cold item, and their weights.

    Parameters
    ----------
    content : ndarray (I, D) float
        Content vectors of every item.
    cold : ndarray (I,) bool
        Items without events; the others are the known items donors come from.
    k : int

    Returns
    -------
    donors : ndarray (C, K') int64
        Codes of the donors, most similar first (``K' = min(k, known items)``).
    weights : ndarray (C, K') float64
        Rows summing to one.
    """
    known = np.flatnonzero(~cold)
    new = np.flatnonzero(cold)
    if new.size == 0 or known.size == 0:
        return np.zeros((new.size, 0), np.int64), np.zeros((new.size, 0))
    unit = content / np.maximum(np.linalg.norm(content, axis=1, keepdims=True), 1e-12)
    cosine = unit[new] @ unit[known].T  # (C, known)
    k = min(k, known.size)
    top = np.argpartition(-cosine, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(cosine, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    sim = np.maximum(np.take_along_axis(cosine, top, axis=1), 0.0)
    total = sim.sum(axis=1, keepdims=True)
    weights = np.where(total > 0, sim / np.where(total > 0, total, 1.0), 1.0 / k)
    return known[top], weights


class Borrowing:
    """A scorer whose cold items take the weighted scores of their donors.

    Parameters
    ----------
    scorer : object with ``score(cases) -> (n, I)``
        The co-purchase network.
    lookup : callable
        ``lookup() -> (cold codes (C,), donors (C, K), weights (C, K))``, asked at every call
        (the caller caches it while the model does not change).
    """

    def __init__(
        self, scorer, lookup: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]
    ) -> None:
        self.scorer = scorer
        self.lookup = lookup

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) scores of ``scorer``, the cold items' columns borrowed."""
        out = np.asarray(self.scorer.score(cases))
        cold, given, weights = self.lookup()
        if cold.size and given.shape[1]:
            out[:, cold] = np.einsum("nck,ck->nc", out[:, given], weights).astype(out.dtype)
        return out


def text_matrix(bags: TextBags, n_buckets: int) -> sp.csr_matrix:
    """(I, F = n_buckets) float64: each item's hashed words and word pairs (its bag, as the item
    tower's text term hashes them: :func:`bundlerec.models.text.text_bags`) as a 0/1 row scaled
    to unit norm (zero without text)."""
    counts = np.diff(bags.offsets)
    data = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
    return sp.csr_matrix((data, bags.ids, bags.offsets), shape=(len(bags), n_buckets))


class Tastes:
    """Shoppers' tastes in words within categories, from what they bought.

    Within category ``c`` a shopper picks item ``j`` with probability proportional to
    ``pi_j exp(theta_u . x_j)`` (a conditional logit on the text vectors ``x``, rows of
    :func:`text_matrix`; ``pi_j`` the item's purchases). At ``theta = 0`` the gradient of the
    log-likelihood of ``u``'s purchases is ``theta_u = sum_i n_ui (x_i - m_{c_i})``, where
    ``m_c`` is the ``pi``-weighted mean of ``x`` over category ``c`` (the words a purchase there
    has anyway); to first order ``log P(j | c_j, u) - log P(j | c_j) = theta_u . (x_j -
    m_{c_j})``, the affinity :meth:`affinity` returns (one gradient step: its scale is
    :data:`TASTE_WEIGHT`). Words every item of a category has (the category's name) cancel;
    what is left is what sets an item apart within its category (style, material, ...), and
    the shopper's affinity is how much of it their own purchases had.

    Parameters
    ----------
    content : scipy.sparse matrix (I, F) float
        Text vectors of every item.
    category : ndarray (I,) int64
        Category code of every item.
    purchases : ndarray (I,) float
        Purchases of every item (``pi``).
    """

    def __init__(self, content: sp.spmatrix, category: np.ndarray, purchases: np.ndarray) -> None:
        n_items = content.shape[0]
        self.content = sp.csr_matrix(content)
        self.category = np.asarray(category, dtype=np.int64)
        n_groups = int(self.category.max(initial=-1)) + 1
        self.membership = sp.csr_matrix(
            (np.ones(n_items), (np.arange(n_items), self.category)), shape=(n_items, n_groups)
        )  # (I, G) 0/1
        weights = self.membership.T @ sp.diags(np.asarray(purchases, dtype=np.float64))
        total = np.asarray(weights.sum(axis=1)).ravel()
        self.means = sp.csr_matrix(sp.diags(1.0 / np.maximum(total, 1e-12)) @ weights @ content)
        self.gram = (self.means @ self.means.T).toarray()  # (G, G) m_c . m_c'

    def affinity(self, bought: sp.spmatrix, items: np.ndarray) -> np.ndarray:
        """(n, J) float64 ``theta_u . (x_j - m_{c_j})`` for the shoppers whose purchase counts
        of every item are the rows of ``bought`` (n, I) and the items ``items`` (J,)."""
        bought = sp.csr_matrix(bought, dtype=np.float64)
        items = np.asarray(items, dtype=np.int64)
        by_group = (bought @ self.membership).toarray()  # (n, G) n_uc
        words = bought @ self.content  # (n, F) s_u = sum_i n_ui x_i
        x = self.content[items]  # (J, F)
        to_item = (words @ x.T).toarray() - by_group @ (self.means @ x.T).toarray()
        to_mean = (words @ self.means.T).toarray() - by_group @ self.gram  # (n, G)
        return to_item - to_mean[:, self.category[items]]


def category_share(category: np.ndarray, sold: np.ndarray) -> np.ndarray:
    """(G,) float64 each category's share of the purchases, add-one smoothed: ``(n_c + 1) / (N
    + G)``, for the categories ``category`` (I,) int64 of the items and the items ``sold`` (N,)
    of the purchases."""
    groups = int(np.max(category, initial=-1)) + 1
    counts = np.bincount(category[sold], minlength=groups).astype(np.float64)
    return (counts + 1.0) / (counts.sum() + groups)


def arrival_scores(
    probs: np.ndarray, category_share: np.ndarray, affinity: np.ndarray
) -> np.ndarray:
    """(n, J) float64 ``(1 - w) log p + w log pi + beta a`` (module docstring).

    Parameters
    ----------
    probs : ndarray (n, J) float
        Fused probabilities of the candidates (zeros are floored at 1e-30).
    category_share : ndarray (J,) float
        Share of the purchases of each candidate's category (positive).
    affinity : ndarray (n, J) float
        :meth:`Tastes.affinity`.
    """
    log_p = np.log(np.maximum(np.asarray(probs, dtype=np.float64), 1e-30))
    return (
        (1.0 - CATEGORY_WEIGHT) * log_p
        + CATEGORY_WEIGHT * np.log(category_share)[None, :]
        + TASTE_WEIGHT * affinity
    )
