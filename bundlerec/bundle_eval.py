"""The ``bundle`` evaluation protocol: do the composed bundles match what shoppers bought together?

For each held-out basket B with at least two distinct items, one item (seeded) is the anchor,
the shopper's cart; the rest R = B minus the anchor is what the bundle should contain. Each
method composes its top bundle of ``size`` items around the anchor (the anchor itself excluded)
with :func:`bundlerec.compose.compose_bundles`, and we measure

- ``coverage``: |bundle & R| / |R|, the share of the basket the bundle covers;
- ``precision``: |bundle & R| / size;
- ``hit``: whether the bundle holds at least one item of R;
- ``ece``: expected calibration error of the bundle probabilities p (10 equal-width bins) against
  the outcome "every bundle item is in R"; ``mean_probability`` and ``outcome_rate`` beside it.

Methods: ``bundlerec`` (fused relevance plus the co-purchase network's joint log-probability),
``popularity`` (relevance and probability from basket frequencies, items taken as independent)
and ``cooccurrence`` (relevance and probability from association-rule confidences P(j | anchor),
taken as independent given the anchor). All three use the same category cap (none by default: a
basket may hold two items of a category) and no budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bundlerec.cases import basket_completion_cases
from bundlerec.compose import Bundle, compose_bundles
from bundlerec.data import load_events
from bundlerec.models.copurchase import basket_matrix
from bundlerec.prep import clean, to_interactions

if TYPE_CHECKING:
    import os

    import pandas as pd

    from bundlerec.recommender import Recommender

__all__ = ["evaluate_bundles", "expected_calibration_error"]


def expected_calibration_error(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE = sum_b (n_b / n) |mean(p in b) - mean(y in b)| over equal-width bins of [0, 1].

    Parameters
    ----------
    p : ndarray, shape (n,), float
        Predicted probabilities in [0, 1].
    y : ndarray, shape (n,), bool or {0, 1}
        Outcomes.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"p and y must be 1-D of one shape, got {p.shape} and {y.shape}")
    if p.size == 0:
        raise ValueError("expected_calibration_error needs at least one prediction")
    if ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, p, n_bins) - np.bincount(bins, y, n_bins))
    return float(gap.sum() / p.size) if count.sum() else 0.0


def _summary(bundles: list[Bundle | None], rests: list[set[int]], size: int) -> dict[str, float]:
    cov, prec, hit, prob, outcome = [], [], [], [], []
    for b, rest in zip(bundles, rests):
        items = set(b.items) if b is not None else set()
        common = len(items & rest)
        cov.append(common / len(rest))
        prec.append(common / size)
        hit.append(common > 0)
        prob.append(b.probability if b is not None else 0.0)
        outcome.append(b is not None and items <= rest)
    prob_arr, out_arr = np.array(prob), np.array(outcome, dtype=float)
    return {
        "coverage": float(np.mean(cov)),
        "precision": float(np.mean(prec)),
        "hit": float(np.mean(hit)),
        "ece": expected_calibration_error(np.clip(prob_arr, 0, 1), out_arr),
        "mean_probability": float(prob_arr.mean()),
        "outcome_rate": float(out_arr.mean()),
    }


def evaluate_bundles(
    model: Recommender,
    test_events: pd.DataFrame | str | os.PathLike,
    *,
    size: int = 3,
    max_per_category: int | None = None,
    seed: int = 0,
    max_cases: int | None = 500,
) -> dict[str, Any]:
    """Run the bundle protocol on held-out baskets (see the module docstring).

    Parameters
    ----------
    model : Recommender
        A fitted model.
    test_events : DataFrame or path
        Held-out events; baskets by ``basket_id`` or the model's time window.
    size : int
        Items per bundle.
    max_per_category : int, optional
        Category cap for every method (default: no cap).
    seed : int
        Chooses the anchor of each basket and, when there are more, the ``max_cases`` baskets.
    max_cases : int, optional
        Evaluate at most this many baskets (a seeded sample); None: all.

    Returns
    -------
    dict
        ``{"protocol": "bundle", "n_cases", "size", "results": {method: {metric: value}}}``.
    """
    rng = np.random.default_rng(seed)
    events = clean(load_events(test_events), window=model.window)
    test = to_interactions(
        events, model.users, model.items, window=model.window, unknown_users="reserve"
    )
    # basket_completion_cases hides one item per basket: here it is the anchor, the rest is R.
    cases = basket_completion_cases(
        test, model.history.n_items, rng, known_users=len(model.users.classes_)
    )
    rows = np.arange(cases.users.shape[0])
    if max_cases is not None and rows.size > max_cases:
        rows = np.sort(rng.choice(rows, size=max_cases, replace=False))
    if rows.size == 0:
        raise ValueError("no held-out basket has two or more items known to the model")
    cap = max_per_category if max_per_category is not None else size
    n_items = model.history.n_items
    baskets = basket_matrix(model.history)
    freq = np.asarray(baskets.sum(axis=0)).ravel()
    p_item = (freq + 1.0) / (baskets.shape[0] + 2.0)
    cooc = (baskets.T @ baskets).tocsr()
    price = np.nan_to_num(model.catalogue.price, nan=0.0)
    categories = model.catalogue.category_codes

    results: dict[str, list[Bundle | None]] = {
        "bundlerec": [],
        "popularity": [],
        "cooccurrence": [],
    }
    rests = []
    for r in rows:
        anchor = int(cases.targets[r, 0])
        rest = set(int(j) for j in cases.context[r, : cases.lengths[r]])
        rests.append(rest)
        user = int(cases.users[r])
        ours, _ = model.compose(user, [anchor], k=1, size=size, max_per_category=cap)
        results["bundlerec"].append(ours[0] if ours else None)
        allowed = np.ones(n_items, dtype=bool)
        allowed[anchor] = False
        conf = (np.asarray(cooc[anchor].toarray()).ravel() + p_item) / (freq[anchor] + 1.0)
        for name, p in (("popularity", p_item), ("cooccurrence", np.minimum(conf, 1.0))):
            logp = np.log(p)
            found = compose_bundles(
                logp,
                price,
                categories,
                allowed,
                lambda bundles, logp=logp: np.array([logp[list(b)].sum() for b in bundles]),
                k=1,
                size=size,
                max_per_category=cap,
            )
            results[name].append(found[0] if found else None)
    return {
        "protocol": "bundle",
        "n_cases": int(rows.size),
        "size": size,
        "results": {name: _summary(b, rests, size) for name, b in results.items()},
    }
