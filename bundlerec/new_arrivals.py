"""New arrivals: items no event has shown yet, scored from their attributes and text.

The sequence model gives a new item a vector from its attributes and the hashed n-grams of its
title and description (:class:`~bundlerec.models.towers.ItemTower`, zero id embedding). The
co-purchase network knows nothing of it, so :class:`Borrowing` gives it the scores of its
``DONORS`` most similar known items instead of a flat prior: ``s(j) = sum_k w_jk s(k)`` over
the known items ``k`` whose content vectors (attributes and text, without the id embedding:
:meth:`SequenceModel.content_vectors`) have the highest cosine with ``j``'s, with weights
``w_jk`` proportional to the positive cosines (equal weights when none is positive).

Letters: n cases, I items, C cold items, K donors per cold item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bundlerec.cases import Cases

__all__ = ["DONORS", "Borrowing", "donors"]

DONORS = 5


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
