"""Ranking metrics over the whole catalogue, vectorised over cases.

Every metric ranks *all* items of the catalogue (never sampled negatives) after removing the
items a case excludes (already in the history or the basket). Letters used in shapes:
``n`` cases, ``I`` items in the catalogue, ``K`` length of a recommendation list, ``M`` target
slots per case.

Conventions
-----------
* Ties in scores are broken by the lower item index, in :func:`top_k` and in
  :func:`reciprocal_rank` alike, so ``top_k(s, k)`` is the prefix of ``top_k(s, k + 1)`` and the
  rank of an item is its position in the full ordered list.
* Item lists and targets are int64 item codes right-padded with ``-1``; duplicated targets count
  once. Every case must hold at least one target.
* The per-case metrics return one float64 value per case; the reported number is their mean.
  :func:`coverage` is a catalogue-level number.

With ``rel_r`` = 1 when the item at 0-based position ``r`` is a target and ``T`` the targets::

    precision@K = sum_{r<K} rel_r / K
    recall@K    = sum_{r<K} rel_r / |T|
    f1@K        = 2 P R / (P + R)            (0 when P + R = 0; per case, then averaged)
    ndcg@K      = DCG / IDCG,  DCG = sum_{r<K} rel_r / log2(r + 2),
                  IDCG = sum_{r < min(|T|, K)} 1 / log2(r + 2)
    hitrate@K   = 1 if any rel_r = 1 for r < K else 0
    rr          = 1 / rank of the best-ranked target in the full catalogue ranking (0 if every
                  target is excluded); its mean is MRR
    coverage    = |items appearing in any list| / I

Calibration of predicted probabilities ``p`` against 0/1 outcomes ``y``
(:func:`reliability_table`): ``B`` equal-width bins of [0, 1] with edges
``numpy.linspace(0, 1, B + 1)``, bin ``b`` holding ``edges[b] <= p < edges[b + 1]`` (``p = 1``
in the last bin), the bins of ``bundlerec.bundle_eval.expected_calibration_error`` (up to a
``p`` within rounding of an edge), whose

    ECE = sum_b (count_b / n) |mean_predicted_b - observed_rate_b|.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

__all__ = [
    "top_k",
    "hits",
    "precision_at_k",
    "recall_at_k",
    "f1_at_k",
    "ndcg_at_k",
    "hit_rate_at_k",
    "reciprocal_rank",
    "coverage",
    "Reliability",
    "reliability_table",
]


def _check_scores(scores: np.ndarray) -> np.ndarray:
    """Return ``scores`` as a 2-D real array without NaN, or raise."""
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D (n, n_items) array, got shape {s.shape}")
    if s.dtype.kind not in "iuf":
        raise TypeError(f"scores must be a real numeric array, got dtype {s.dtype}")
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    n_nan = int(np.count_nonzero(np.isnan(s)))
    if n_nan:
        row = int(np.argwhere(np.isnan(s))[0, 0])
        raise ValueError(f"scores contain {n_nan} NaN value(s) (first in row {row})")
    return s


def _masked(
    scores: np.ndarray, exclude: sp.spmatrix | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Checked (n, I) scores with excluded items set to ``-inf``, and the (n, I) bool mask of
    the items a case may recommend."""
    s = _check_scores(scores)
    if exclude is None:
        return s, np.ones(s.shape, dtype=bool)
    dense = exclude.toarray() if sp.issparse(exclude) else np.asarray(exclude)
    if dense.shape != s.shape:
        raise ValueError(f"exclude has shape {dense.shape}, scores have shape {s.shape}")
    allowed = dense == 0
    return np.where(allowed, s, -np.inf), allowed


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def top_k(
    scores: np.ndarray, k: int, exclude: sp.spmatrix | np.ndarray | None = None
) -> np.ndarray:
    """The ``k`` best items of every case, best first.

    Parameters
    ----------
    scores : ndarray, shape (n, I), real dtype
        Higher is better; ``-inf`` is allowed, NaN is not.
    k : int
        Length of each list (``k`` may exceed the number of recommendable items).
    exclude : scipy.sparse matrix or ndarray, shape (n, I), bool, optional
        Items never to return for that case.

    Returns
    -------
    ndarray, shape (n, k), int64
        Item codes ordered by decreasing score, ties by increasing item code; rows with fewer
        than ``k`` recommendable items are right-padded with ``-1``.

    Notes
    -----
    A sort finds the ``k``-th best score of each row (numpy's vectorised sort beats
    ``np.partition``, whose introselect slows down several times on the long runs of equal
    scores, e.g. zeros, that sparse models produce); every item above it is kept and the
    tied items at it are taken in increasing item order (a running count, only in rows with
    more ties than free places), so the selected set and hence the list are deterministic.
    Only the selected ``k`` items are then sorted.
    """
    work, allowed = _masked(scores, exclude)
    k = _check_k(k)
    n, n_items = work.shape
    if n_items == 0:
        return np.full((n, k), -1, dtype=np.int64)
    kk = min(k, n_items)
    kth = np.sort(work, axis=1)[:, n_items - kk, None]
    above = work > kth
    tied = (work == kth) & allowed
    room = kk - np.count_nonzero(above, axis=1)
    crowded = np.flatnonzero(np.count_nonzero(tied, axis=1) > room)
    ties = tied[crowded]
    tied[crowded] = ties & (np.cumsum(ties, axis=1, dtype=np.int32) <= room[crowded, None])
    rows, cols = np.nonzero(above | tied)
    counts = np.bincount(rows, minlength=n)
    slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    items = np.full((n, k), n_items, dtype=np.int64)
    values = np.full((n, k), -np.inf, dtype=work.dtype)
    items[rows, slot] = cols
    values[rows, slot] = work[rows, cols]
    order = np.lexsort((items, -values), axis=1)
    items = np.take_along_axis(items, order, axis=1)
    items[items == n_items] = -1
    return items


def _check_targets(targets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate (n, M) int targets; return them and the (n,) count of distinct valid ones."""
    tgt = np.asarray(targets)
    if tgt.ndim != 2 or tgt.shape[0] != n:
        raise ValueError(f"targets must have shape ({n}, M), got {tgt.shape}")
    if tgt.dtype.kind not in "iu":
        raise TypeError(f"targets must hold integer item codes, got dtype {tgt.dtype}")
    t = np.sort(tgt, axis=1)
    distinct = t >= 0
    distinct[:, 1:] &= t[:, 1:] != t[:, :-1]
    count = np.count_nonzero(distinct, axis=1)
    empty = np.flatnonzero(count == 0)
    if empty.size:
        raise ValueError(f"{empty.size} case(s) have no target (first: case {empty[0]})")
    return tgt, count


def hits(recommended: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Binary relevance of every recommended item.

    Parameters
    ----------
    recommended : ndarray, shape (n, K), int
        Distinct item codes per row, padded with ``-1``.
    targets : ndarray, shape (n, M), int
        Held-out item codes per row, padded with ``-1``; at least one per case.

    Returns
    -------
    ndarray, shape (n, K), bool
        ``True`` where ``recommended[i, r]`` is one of the targets of case ``i``.
    """
    return _relevance(recommended, targets, None)[0]


def _relevance(
    recommended: np.ndarray, targets: np.ndarray, k: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Hits of the first ``k`` items (all when None) and the number of targets per case."""
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be a 2-D (n, K) array, got shape {rec.shape}")
    if rec.dtype.kind not in "iu":
        raise TypeError(f"recommended must hold integer item codes, got dtype {rec.dtype}")
    if k is not None:
        k = _check_k(k)
        if k > rec.shape[1]:
            raise ValueError(f"k={k} exceeds the list length {rec.shape[1]}")
        rec = rec[:, :k]
    tgt, n_targets = _check_targets(targets, rec.shape[0])
    match = (rec[:, :, None] == tgt[:, None, :]) & (tgt[:, None, :] >= 0)
    return match.any(axis=2) & (rec >= 0), n_targets


def precision_at_k(recommended: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Precision@K per case: hits among the first ``k`` items divided by ``k``.

    Parameters
    ----------
    recommended : ndarray, shape (n, K), int
        Ranked lists with ``K >= k`` (e.g. from :func:`top_k`).
    targets : ndarray, shape (n, M), int
        Held-out items, ``-1`` padded; at least one per case.
    k : int
        Cut-off.

    Returns
    -------
    ndarray, shape (n,), float64
    """
    h, _ = _relevance(recommended, targets, k)
    return np.count_nonzero(h, axis=1) / k


def recall_at_k(recommended: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Recall@K per case: hits among the first ``k`` items divided by the number of targets.

    Parameters and shapes as in :func:`precision_at_k`; returns (n,) float64.
    """
    h, n_targets = _relevance(recommended, targets, k)
    return np.count_nonzero(h, axis=1) / n_targets


def f1_at_k(recommended: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """F1@K per case: harmonic mean of precision@K and recall@K, 0 when both are 0.

    Parameters and shapes as in :func:`precision_at_k`; returns (n,) float64. The reported F1@K
    is the mean of the per-case values (not the harmonic mean of mean precision and recall).
    """
    p = precision_at_k(recommended, targets, k)
    r = recall_at_k(recommended, targets, k)
    total = p + r
    return np.divide(2.0 * p * r, total, out=np.zeros_like(total), where=total > 0)


def ndcg_at_k(recommended: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """NDCG@K per case with binary relevance.

    ``DCG = sum_{r<k} rel_r / log2(r + 2)``; the ideal DCG places ``min(|T|, k)`` targets first.
    Parameters and shapes as in :func:`precision_at_k`; returns (n,) float64 in [0, 1].
    """
    h, n_targets = _relevance(recommended, targets, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = h @ discount
    n_ideal = np.minimum(n_targets, k)
    ideal = np.cumsum(discount)[n_ideal - 1]
    return dcg / ideal


def hit_rate_at_k(recommended: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """HitRate@K per case: 1.0 when a target is among the first ``k`` items, else 0.0.

    Parameters and shapes as in :func:`precision_at_k`; returns (n,) float64.
    """
    h, _ = _relevance(recommended, targets, k)
    return h.any(axis=1).astype(np.float64)


def reciprocal_rank(
    scores: np.ndarray, targets: np.ndarray, exclude: sp.spmatrix | np.ndarray | None = None
) -> np.ndarray:
    """Reciprocal of the full-catalogue rank of the best-ranked target, per case.

    Parameters
    ----------
    scores : ndarray, shape (n, I), real dtype
        Higher is better.
    targets : ndarray, shape (n, M), int
        Held-out items, ``-1`` padded; at least one per case.
    exclude : scipy.sparse matrix or ndarray, shape (n, I), bool, optional
        Items removed from the ranking of that case; an excluded target can never be found.

    Returns
    -------
    ndarray, shape (n,), float64
        ``1 / rank`` with ``rank = 1 + #{allowed items ranked before the target}`` under the
        :func:`top_k` order (score descending, item code ascending); 0 when every target of the
        case is excluded. The mean over cases is the MRR.
    """
    work, allowed = _masked(scores, exclude)
    n, n_items = work.shape
    tgt, _ = _check_targets(targets, n)
    if tgt.max(initial=-1) >= n_items:
        raise ValueError(f"targets hold item code {tgt.max()} >= n_items={n_items}")
    rows = np.arange(n)[:, None]
    safe = np.maximum(tgt, 0)
    usable = (tgt >= 0) & allowed[rows, safe]
    t_items = np.where(usable, tgt, n_items)
    t_scores = np.where(usable, work[rows, safe], -np.inf)
    best = np.lexsort((t_items, -t_scores), axis=1)[:, 0]
    b_item = t_items[np.arange(n), best][:, None]
    b_score = t_scores[np.arange(n), best][:, None]
    before = allowed & ((work > b_score) | ((work == b_score) & (np.arange(n_items) < b_item)))
    rank = 1 + np.count_nonzero(before, axis=1)
    return np.where(b_item[:, 0] < n_items, 1.0 / rank, 0.0)


def coverage(recommended: np.ndarray, n_items: int) -> float:
    """Catalogue coverage: the share of items appearing in at least one list.

    Parameters
    ----------
    recommended : ndarray, any shape, int
        Item codes (``-1`` padding ignored), e.g. the (n, K) output of :func:`top_k`.
    n_items : int
        Catalogue size ``I``.

    Returns
    -------
    float
        ``|distinct items| / I`` in [0, 1].
    """
    rec = np.asarray(recommended)
    if rec.dtype.kind not in "iu":
        raise TypeError(f"recommended must hold integer item codes, got dtype {rec.dtype}")
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    items = np.unique(rec[rec >= 0])
    if items.size and items[-1] >= n_items:
        raise ValueError(f"recommended holds item code {items[-1]} >= n_items={n_items}")
    return items.size / int(n_items)


class Reliability(NamedTuple):
    """A reliability table: per bin of predicted probability, what was predicted and observed.

    Attributes
    ----------
    edges : ndarray, shape (B + 1,), float64
        Bin edges ``0, 1/B, ..., 1``.
    mean_predicted : ndarray, shape (B,), float64
        Mean ``p`` in each bin (NaN in an empty bin).
    observed_rate : ndarray, shape (B,), float64
        Mean ``y`` in each bin (NaN in an empty bin).
    count : ndarray, shape (B,), int64
        Predictions in each bin.
    """

    edges: np.ndarray
    mean_predicted: np.ndarray
    observed_rate: np.ndarray
    count: np.ndarray

    def ece(self) -> float:
        """``sum_b (count_b / n) |mean_predicted_b - observed_rate_b|`` over non-empty bins."""
        full = self.count > 0
        gap = np.abs(self.mean_predicted[full] - self.observed_rate[full])
        return float((self.count[full] * gap).sum() / self.count.sum())

    def to_table(self) -> str:
        """The non-empty bins as text, one line each: range, count, predicted, observed."""
        lines = [f"{'bin':>13} {'count':>8} {'predicted':>10} {'observed':>10}"]
        for b in np.flatnonzero(self.count):
            lines.append(
                f"[{self.edges[b]:.2f}, {self.edges[b + 1]:.2f}) {self.count[b]:>8d} "
                f"{self.mean_predicted[b]:>10.4f} {self.observed_rate[b]:>10.4f}"
            )
        return "\n".join(lines)


def reliability_table(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> Reliability:
    """Bin predictions ``p`` into ``n_bins`` equal-width bins of [0, 1] and compare with ``y``.

    Parameters
    ----------
    p : ndarray, shape (n,), float
        Predicted probabilities in [0, 1] (``n >= 1``).
    y : ndarray, shape (n,), bool or {0, 1}
        Outcomes.
    n_bins : int
        Number of bins ``B`` (>= 1); bin ``b`` holds ``edges[b] <= p < edges[b + 1]``, and
        ``p = 1`` goes to the last bin.

    Returns
    -------
    Reliability
        Edges, mean prediction, observed rate and count per bin; its :meth:`Reliability.ece`
        is the expected calibration error over these bins.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y)
    if p.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"p and y must be 1-D of one shape, got {p.shape} and {y.shape}")
    if p.size == 0:
        raise ValueError("reliability_table needs at least one prediction")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        bad = p[np.isnan(p) | (p < 0) | (p > 1)][0]
        raise ValueError(f"probabilities must lie in [0, 1], got {bad}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("outcomes y must be 0/1 or bool")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.minimum(np.searchsorted(edges, p, side="right") - 1, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins are NaN
        mean_p = np.bincount(bins, p, n_bins) / count
        rate = np.bincount(bins, y.astype(np.float64), n_bins) / count
    return Reliability(edges, mean_p, rate, count)
