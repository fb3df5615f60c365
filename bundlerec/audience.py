"""Audiences: the shoppers most likely to buy an item, a whole bundle, a category or a brand.

Letters: U shoppers, I items, S items of one audience, D + 1 the width of the sequence model's
``[u, 1]`` vectors.

The index (:func:`build_index`) holds, for every known shopper, the sequence model's vector
``[u, 1]`` after the shopper's whole history and the log-normaliser of its next-item softmax over
the catalogue, ``lse_u = log sum_i exp(s_ui)``. Item ``j``'s log-share for shopper ``u``,

.. math:: l_{uj} = [u, 1] \\cdot [v_j, b_j] - \\mathrm{lse}_u ,

is the model's ``log P(next item = j | history)``. The calibration (:func:`calibrate`, fitted on
the validation cases of :meth:`Recommender.fit`, held-out items as positives and uniform draws
weighted up to the catalogue as negatives) maps it to the probability that the shopper's next
purchase is ``j``:

.. math:: p_{uj} = \\sigma(a + c\\, l_{uj}).

An audience of several items combines the ``p_uj`` per shopper: ``"all"`` (a bundle) takes
``P(all bought) = prod_j p_uj`` (items taken as independent; shoppers who already bought every
item are left out), ``"any"`` (a category, a brand) takes ``P(the next purchase is one of them) =
min(1, sum_j p_uj)`` (the events "next purchase is j" exclude each other).

Over a horizon of ``H`` days (a campaign's window) a shopper makes ``m_u`` purchases, each one
``j`` with probability ``p_uj``, so ``P(buys j within H days) = 1 - exp(-m_u p_uj)`` (Poisson
purchases), and for "any" ``1 - exp(-m_u sum_j p_uj)``. ``m_u`` is the empirical-Bayes
(Gamma-Poisson) estimate from the shopper's purchases ``c_u`` in the last ``H`` days of the
history (:func:`expected_purchases`): with the mean ``mu`` and variance ``s2`` of the ``c_u``
over all shoppers, ``m_u = (c_u + a) / (1 + b)``, ``b = mu / (s2 - mu)``, ``a = mu b`` (every
``m_u = mu`` when the counts are not over-dispersed): recent buyers are likely buyers, and
shoppers who stopped buying are not. Audiences default to a horizon of :data:`HORIZON_DAYS`
(the question an audience answers is who will buy during a campaign, not whose very next
purchase it is); ``horizon_days=None`` gives the next-purchase probability ``p_uj``.

When only some shoppers' histories grew (events in the service), :func:`refresh_index`
recomputes their rows alone: a row depends on its shopper's history and the item vectors only.

Scoring is one ``(U, D + 1) @ (D + 1, S)`` product, a block of shoppers at a time, with no loop
over shoppers in Python; the top ``N`` is exact: a partition of the ``U`` probabilities, then a
sort of the ``N`` found (ties to the lower shopper code).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp

from bundlerec.models.fusion import logistic

__all__ = [
    "AudienceIndex",
    "HORIZON_DAYS",
    "MODES",
    "build_index",
    "calibrate",
    "expected_purchases",
    "refresh_index",
    "top_shoppers",
]

MODES = ("all", "any")
HORIZON_DAYS = 30.0
"""Default horizon of an audience in days: a month, a common campaign window, fixed (not fitted
to any data set). Measured with ``bench/audience_quality.py`` (time split at 80 %, N = 50),
against the next-purchase probability and horizons derived from the training data (the median
gap between a shopper's trips: 11.5 days on the synthetic shop, 5.6 on MovieLens), see
docs/campaigns.md: on MovieLens 30 days beats both baselines on precision, recall and AUC
where the next-purchase probability and the median-gap horizon lose on precision; on the
synthetic shop it stays well above both baselines (a little below the next purchase)."""
_BLOCK = 8192  # shoppers per block of the product: (block, S) float32 temporaries
_NEGATIVES = 50  # negatives drawn per validation case for the calibration


@dataclass
class AudienceIndex:
    """Per-shopper vectors for scoring every shopper against a few items at once.

    Attributes
    ----------
    vectors : ndarray (U, D + 1) float32
        ``[u, 1]`` of each shopper after the whole history.
    log_norm : ndarray (U,) float64
        ``lse_u`` of each shopper's next-item softmax over the catalogue.
    owners : scipy.sparse.csc_matrix (U, I) bool
        Who bought what (purchase events of the history): column ``j`` lists item ``j``'s
        buyers.
    bias, slope : float
        The calibration ``a, c``; ``slope`` NaN means uncalibrated: ``p = exp(l)``, the
        model's own next-item probability (models saved before audiences existed).
    key : tuple
        What the index was built from (history size, shoppers, items, fine-tunes): a model
        whose key differs rebuilds it.
    purchases : dict of float to ndarray (U,) float64
        ``m_u`` of each horizon asked for so far (:func:`expected_purchases` of the history the
        index was built from), kept with the index.
    """

    vectors: np.ndarray
    log_norm: np.ndarray
    owners: sp.csc_matrix
    bias: float
    slope: float
    key: tuple
    purchases: dict[float, np.ndarray] = field(default_factory=dict, repr=False)

    def probabilities(self, item_vectors: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """(U', S) float64 ``p_uj`` of the shoppers ``rows`` for the items whose ``[v, b]``
        are ``item_vectors`` (S, D + 1)."""
        share = (self.vectors[rows] @ item_vectors.T.astype(np.float32)).astype(np.float64)
        share -= self.log_norm[rows, None]
        if np.isnan(self.slope):
            return np.exp(np.minimum(share, 0.0))
        return expit(self.bias + self.slope * share)

    def scores(
        self,
        item_vectors: np.ndarray,
        items: np.ndarray,
        mode: str,
        purchases: np.ndarray | None = None,
    ) -> np.ndarray:
        """(U,) float64 probability of every shopper for the item set (see module docstring);
        ``-inf`` for shoppers left out (``"all"``: they already bought every item). With
        ``purchases`` (U,) (``m_u`` of a horizon), the probability of buying within it."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        n = self.vectors.shape[0]
        out = np.empty(n, dtype=np.float64)
        for start in range(0, n, _BLOCK):
            block = slice(start, min(start + _BLOCK, n))
            p = self.probabilities(item_vectors, block)
            if purchases is None:
                out[block] = p.prod(axis=1) if mode == "all" else np.minimum(p.sum(axis=1), 1.0)
                continue
            m = purchases[block, None]
            if mode == "all":
                out[block] = (-np.expm1(-m * p)).prod(axis=1)
            else:
                out[block] = -np.expm1(-m[:, 0] * p.sum(axis=1))
        if mode == "all":
            bought = np.asarray(self.owners[:, items].sum(axis=1)).ravel()
            out[bought >= len(items)] = -np.inf
        return out


def build_index(
    user_vectors, item_vectors: np.ndarray, owners: sp.csc_matrix, calibration, key: tuple
) -> AudienceIndex:
    """Index every shopper, ``batch`` at a time.

    Parameters
    ----------
    user_vectors : iterable of ndarray (B, D + 1) float32
        ``[u, 1]`` of consecutive blocks of shoppers (all U together, in code order).
    item_vectors : ndarray (I, D + 1) float32
        ``[v, b]`` of every item.
    owners : scipy.sparse.csc_matrix (U, I) bool
    calibration : tuple of float or None
        ``(a, c)`` from :func:`calibrate`; None: uncalibrated.
    key : tuple
    """
    vectors, norms = [], []
    for block in user_vectors:
        vectors.append(np.asarray(block, dtype=np.float32))
        norms.append(logsumexp((block @ item_vectors.T).astype(np.float64), axis=1))
    a, c = calibration if calibration is not None else (np.nan, np.nan)
    return AudienceIndex(
        np.concatenate(vectors), np.concatenate(norms), owners, float(a), float(c), key
    )


def refresh_index(
    index: AudienceIndex,
    rows: np.ndarray,
    user_vectors,
    item_vectors: np.ndarray,
    owners: sp.csc_matrix,
    key: tuple,
) -> AudienceIndex:
    """``index`` with the shoppers ``rows`` indexed anew, for the same items and weights.

    Parameters
    ----------
    index : AudienceIndex
        Of ``U0 <= U`` shoppers.
    rows : ndarray (R,) int64
        Increasing codes of the shoppers whose history changed, every code ``>= U0`` among them.
    user_vectors : iterable of ndarray (B, D + 1) float32
        ``[u, 1]`` of the ``rows`` shoppers, in consecutive blocks.
    item_vectors : ndarray (I, D + 1) float32
        ``[v, b]`` of every item, as when ``index`` was built.
    owners : scipy.sparse.csc_matrix (U, I) bool
        Who bought what now.
    key : tuple
    """
    n = owners.shape[0]
    vectors = np.zeros((n, index.vectors.shape[1]), dtype=np.float32)
    log_norm = np.zeros(n, dtype=np.float64)
    vectors[: index.vectors.shape[0]] = index.vectors
    log_norm[: index.log_norm.size] = index.log_norm
    if len(rows):
        part = build_index(user_vectors, item_vectors, owners, None, key)
        vectors[rows], log_norm[rows] = part.vectors, part.log_norm
    return AudienceIndex(vectors, log_norm, owners, index.bias, index.slope, key)


def calibrate(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Fit ``a, c`` of ``p = sigmoid(a + c l)`` on held-out items.

    Parameters
    ----------
    user_vectors : ndarray (n, D + 1) float32
        ``[u, 1]`` of the validation cases (history before the held-out item).
    item_vectors : ndarray (I, D + 1) float32
    targets : ndarray (n,) int64
        The held-out item of each case (-1: none; such cases give negatives only).
    rng : numpy.random.Generator
        Draws the negatives: ``_NEGATIVES`` items per case, uniformly, each weighted as
        ``I / _NEGATIVES`` items, so the probabilities of a case sum to about one.

    Returns
    -------
    (float, float)
        ``a`` and ``c >= 0``.
    """
    n_items = item_vectors.shape[0]
    scores = (user_vectors @ item_vectors.T).astype(np.float64)
    share = scores - logsumexp(scores, axis=1)[:, None]
    rows = np.flatnonzero(targets >= 0)
    neg_rows = np.repeat(np.arange(targets.size), _NEGATIVES)
    neg_cols = rng.integers(0, n_items, size=neg_rows.size)
    keep = neg_cols != targets[neg_rows]
    x = np.concatenate([share[rows, targets[rows]], share[neg_rows[keep], neg_cols[keep]]])
    y = np.concatenate([np.ones(rows.size), np.zeros(int(keep.sum()))])
    w = np.where(y == 1, 1.0, n_items / _NEGATIVES)
    w /= w.mean()
    a, c = logistic(x[:, None], y, w, np.array([0.0, 1.0]))
    return float(a), float(c)


def expected_purchases(
    user: np.ndarray, timestamp: np.ndarray, n_users: int, horizon_days: float
) -> np.ndarray:
    """(U,) float64 ``m_u``: expected purchases in the next ``horizon_days`` (module docstring).

    Parameters
    ----------
    user, timestamp : ndarray (N,) int64
        The shoppers and times of the history's purchases.
    n_users : int
    horizon_days : float
        ``H > 0`` and finite; the counts ``c_u`` are taken over the last ``H`` days before the
        latest purchase.
    """
    if not 0 < horizon_days < np.inf:
        raise ValueError(f"horizon_days must be positive and finite, got {horizon_days}")
    end = int(timestamp.max(initial=0))
    recent = timestamp > end - horizon_days * 86_400
    counts = np.bincount(user[recent], minlength=n_users)[:n_users].astype(np.float64)
    mu, s2 = counts.mean(), counts.var()
    if not s2 > mu:
        return np.full(n_users, mu)
    b = mu / (s2 - mu)
    return (counts + mu * b) / (1.0 + b)


def top_shoppers(
    scores: np.ndarray, n: int, min_probability: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The exact top ``n`` of ``scores`` (U,): (codes, probabilities), best first.

    Ties go to the lower shopper code; ``-inf`` entries (left out) and, with
    ``min_probability``, entries below it never appear.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ok = np.isfinite(scores)
    if min_probability is not None:
        ok &= scores >= min_probability
    candidates = np.flatnonzero(ok)
    if candidates.size > n:
        values = scores[candidates]
        cut = np.partition(values, values.size - n)[values.size - n]  # the n-th largest
        candidates = candidates[values >= cut]
    order = np.lexsort((candidates, -scores[candidates]))[:n]
    chosen = candidates[order]
    return chosen, scores[chosen]
