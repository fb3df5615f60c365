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

Methods: ``bundlerec`` (:meth:`Recommender.compose`: per-item probabilities mixing the fused
probability with the anchor's smoothed co-occurrence, plus the pairwise network's dependence),
``popularity`` (relevance and probability from basket frequencies, items taken as independent),
``cooccurrence`` (relevance and probability from association-rule confidences P(j | anchor),
taken as independent given the anchor), ``ease`` and ``rules`` (the anchor's top items by the
scores of :class:`~bundlerec.models.baselines.EASE` and
:class:`~bundlerec.models.baselines.AssociationRules` with their default hyperparameters,
fitted on the model's training history, given the anchor alone). EASE and rule scores are not
probabilities, so their bundles are chosen by the scores alone and carry the ``cooccurrence``
probability of the same items (the product of the smoothed P(j | anchor)): their ECE measures
that estimate on their bundles. All methods use the same category cap (none by default: a
basket may hold two items of a category) and no budget.

**Anchor + 2** (:func:`anchor_plus_two`, also ``evaluate_bundles(...)["anchor_plus_2"]``): the
"bought together" widget. For each held-out basket of at least three distinct items, the same
seeded item is the anchor; each method proposes 2 companions and we report the share of them in
the rest of the basket, averaged over cases. The methods above (bundles of 2) plus two plain
ones: ``cooc_top2``, the 2 items of highest P(j | anchor) (ties: the more frequent, then the
lower code), and ``frequent_triple``, the other two items of the most frequent training triple
holding the anchor (ties: lower codes; ``cooc_top2`` when the anchor is in no triple).

If ``Recommender.compose`` returns the anchor inside its bundle (``size`` then counts it), the
anchor is dropped before measuring and the bundle asked one item larger, so every method is
measured on the same number of companions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from bundlerec.cases import Cases, basket_completion_cases
from bundlerec.compose import Bundle, compose_bundles
from bundlerec.data import load_events
from bundlerec.models.baselines import EASE, AssociationRules
from bundlerec.models.copurchase import basket_matrix
from bundlerec.prep import clean, to_interactions

if TYPE_CHECKING:
    import os

    import pandas as pd

    from bundlerec.recommender import Recommender

__all__ = ["anchor_plus_two", "evaluate_bundles", "expected_calibration_error"]


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


@dataclass
class _Held:
    """Held-out cases and the training statistics every method shares.

    ``cases``: one case per held-out basket of >= 2 known items, its target the anchor and its
    context the rest R. ``baskets``: (n_baskets, I) binary training baskets; ``freq``: (I,)
    baskets per item; ``cooc``: (I, I) baskets per item pair (diagonal = ``freq``).
    """

    cases: Cases
    baskets: sp.csr_matrix
    freq: np.ndarray
    cooc: sp.csr_matrix
    scorers: dict[str, Any]


def _held_out(model: Recommender, test_events: Any, rng: np.random.Generator) -> _Held:
    events = clean(load_events(test_events), window=model.window)
    test = to_interactions(
        events, model.users, model.items, window=model.window, unknown_users="reserve"
    )
    # basket_completion_cases hides one item per basket: here it is the anchor, the rest is R.
    cases = basket_completion_cases(
        test, model.history.n_items, rng, known_users=len(model.users.classes_)
    )
    baskets = basket_matrix(model.history)
    scorers = {"ease": EASE().fit(model.history), "rules": AssociationRules().fit(model.history)}
    return _Held(
        cases,
        baskets,
        np.asarray(baskets.sum(axis=0)).ravel(),
        (baskets.T @ baskets).tocsr(),
        scorers,
    )


def _sample(rows: np.ndarray, max_cases: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_cases is not None and rows.size > max_cases:
        rows = np.sort(rng.choice(rows, size=max_cases, replace=False))
    if rows.size == 0:
        raise ValueError("no held-out basket is large enough among the items known to the model")
    return rows


def _plus_two_rng(seed: int) -> np.random.Generator:
    """The generator that samples the anchor + 2 cases (the same in both entry points)."""
    return np.random.default_rng([seed, 2])


def _anchor_cases(anchors: np.ndarray, n_items: int) -> Cases:
    """Cases whose whole context is one anchor item each (unknown shoppers)."""
    n = anchors.size
    return Cases(
        users=np.full(n, -1, dtype=np.int64),
        context=anchors.astype(np.int64)[:, None],
        lengths=np.ones(n, dtype=np.int64),
        targets=anchors.astype(np.int64)[:, None],
        exclude=sp.csr_matrix(
            (np.ones(n, dtype=bool), (np.arange(n), anchors)), shape=(n, n_items)
        ),
    )


def _ours(model: Recommender, user: int, anchor: int, size: int, cap: int) -> Bundle | None:
    """bundlerec's top bundle of ``size`` companions (the anchor dropped if compose returns it)."""
    found, _ = model.compose(user, [anchor], k=1, size=size, max_per_category=cap)
    if found and anchor in found[0].items:  # size counts the anchor: ask for one item more
        found, _ = model.compose(user, [anchor], k=1, size=size + 1, max_per_category=cap)
    if not found:
        return None
    return replace(found[0], items=tuple(j for j in found[0].items if j != anchor))


def _method_bundles(
    model: Recommender, held: _Held, rows: np.ndarray, size: int, cap: int, baselines: bool
) -> dict[str, list[Bundle | None]]:
    """Each method's (bundlerec's alone unless ``baselines``) top bundle of ``size`` companions
    for the anchors of ``rows``."""
    n_items = model.history.n_items
    anchors = held.cases.targets[rows, 0]
    p_item = (held.freq + 1.0) / (held.baskets.shape[0] + 2.0)
    scores = {
        name: scorer.score(_anchor_cases(anchors, n_items)).astype(np.float64)
        for name, scorer in held.scorers.items()
        if baselines
    }
    price = np.nan_to_num(model.catalogue.price, nan=0.0)
    categories = model.catalogue.category_codes
    own = ("popularity", "cooccurrence") if baselines else ()
    results: dict[str, list[Bundle | None]] = {
        "bundlerec": [],
        **{name: [] for name in own},
        **{name: [] for name in scores},
    }
    for n, (r, anchor) in enumerate(zip(rows, anchors)):
        anchor = int(anchor)
        results["bundlerec"].append(_ours(model, int(held.cases.users[r]), anchor, size, cap))
        if not baselines:
            continue
        allowed = np.ones(n_items, dtype=bool)
        allowed[anchor] = False
        conf = (held.cooc[anchor].toarray().ravel() + p_item) / (held.freq[anchor] + 1.0)
        log_conf = np.log(np.minimum(conf, 1.0))
        relevance = {
            "popularity": np.log(p_item),
            "cooccurrence": log_conf,
            **{name: s[n] for name, s in scores.items()},
        }
        for name, rel in relevance.items():
            own = name in ("popularity", "cooccurrence")
            logp = rel if own else log_conf
            found = compose_bundles(
                rel,
                price,
                categories,
                allowed,
                lambda bundles, logp=logp, own=own: np.array(
                    [logp[list(b)].sum() if own else 0.0 for b in bundles]
                ),
                k=1,
                size=size,
                max_per_category=cap,
            )
            bundle = found[0] if found else None
            if bundle is not None and not own:  # chosen by score, probability from P(j | a)
                bundle = replace(bundle, log_probability=float(logp[list(bundle.items)].sum()))
            results[name].append(bundle)
    return results


def _plain_companions(held: _Held, anchor: int, n: int = 2) -> dict[str, tuple[int, ...]]:
    """``cooc_top2`` and ``frequent_triple`` companions of one anchor (see the module doc)."""
    together = held.cooc[anchor].toarray().ravel()
    codes = np.arange(together.size)
    ranked = np.lexsort((codes, -held.freq, -together))
    top = tuple(int(j) for j in ranked[ranked != anchor][:n])
    holding = held.baskets[held.baskets[:, anchor].nonzero()[0]]
    pairs = sp.triu(holding.T @ holding, k=1).tocoo()
    ok = (pairs.row != anchor) & (pairs.col != anchor) & (pairs.data > 0)
    if not ok.any():
        return {"cooc_top2": top, "frequent_triple": top}
    j, k, count = pairs.row[ok], pairs.col[ok], pairs.data[ok]
    best = np.lexsort((k, j, -count))[0]
    return {"cooc_top2": top, "frequent_triple": (int(j[best]), int(k[best]))}


def _anchor_plus_two(
    model: Recommender, held: _Held, rows: np.ndarray, cap: int | None, baselines: bool
) -> dict[str, Any]:
    bundles = _method_bundles(model, held, rows, 2, cap if cap is not None else 2, baselines)
    picks = {
        name: [b.items if b is not None else () for b in found] for name, found in bundles.items()
    }
    for r in rows if baselines else ():
        for name, items in _plain_companions(held, int(held.cases.targets[r, 0])).items():
            picks.setdefault(name, []).append(items)
    rests = [set(held.cases.context[r, : held.cases.lengths[r]].tolist()) for r in rows]
    return {
        "n_cases": int(rows.size),
        "results": {
            name: float(np.mean([len(set(items) & rest) / 2 for items, rest in zip(p, rests)]))
            for name, p in picks.items()
        },
    }


def anchor_plus_two(
    model: Recommender,
    test_events: pd.DataFrame | str | os.PathLike,
    *,
    max_per_category: int | None = None,
    seed: int = 0,
    max_cases: int | None = 500,
    baselines: bool = True,
) -> dict[str, Any]:
    """The "anchor + 2" completion measure on held-out baskets (see the module docstring).

    Parameters
    ----------
    model : Recommender
        A fitted model.
    test_events : DataFrame or path
        Held-out events; baskets by ``basket_id`` or the model's time window.
    max_per_category : int, optional
        Category cap of the composed methods (default: none).
    seed : int
        Chooses the anchor of each basket (as :func:`evaluate_bundles` does) and the sample.
    max_cases : int, optional
        Evaluate at most this many baskets of >= 3 items (a seeded sample); None: all.
    baselines : bool
        False: bundlerec alone (for tuning its settings on an inner split).

    Returns
    -------
    dict
        ``{"protocol": "anchor+2", "n_cases", "results": {method: mean share in [0, 1]}}``.
    """
    held = _held_out(model, test_events, np.random.default_rng(seed))
    rows = _sample(np.flatnonzero(held.cases.lengths >= 2), max_cases, _plus_two_rng(seed))
    return {
        "protocol": "anchor+2",
        **_anchor_plus_two(model, held, rows, max_per_category, baselines),
    }


def evaluate_bundles(
    model: Recommender,
    test_events: pd.DataFrame | str | os.PathLike,
    *,
    size: int = 3,
    max_per_category: int | None = None,
    seed: int = 0,
    max_cases: int | None = 500,
    baselines: bool = True,
) -> dict[str, Any]:
    """Run the bundle protocol and the anchor + 2 measure on held-out baskets (module doc).

    Parameters
    ----------
    model : Recommender
        A fitted model.
    test_events : DataFrame or path
        Held-out events; baskets by ``basket_id`` or the model's time window.
    size : int
        Items per bundle (the anchor not counted).
    max_per_category : int, optional
        Category cap for every method (default: no cap).
    seed : int
        Chooses the anchor of each basket and, when there are more, the ``max_cases`` baskets.
    max_cases : int, optional
        Evaluate at most this many baskets, for each measure (a seeded sample); None: all.
    baselines : bool
        False: bundlerec alone (for tuning its settings on an inner split).

    Returns
    -------
    dict
        ``{"protocol": "bundle", "n_cases", "size", "results": {method: {metric: value}},
        "anchor_plus_2": {"n_cases", "results": {method: share}}}``.
    """
    rng = np.random.default_rng(seed)
    held = _held_out(model, test_events, rng)
    rows = _sample(np.arange(held.cases.users.shape[0]), max_cases, rng)
    plus_two = _sample(np.flatnonzero(held.cases.lengths >= 2), max_cases, _plus_two_rng(seed))
    cap = max_per_category if max_per_category is not None else size
    bundles = _method_bundles(model, held, rows, size, cap, baselines)
    rests = [set(held.cases.context[r, : held.cases.lengths[r]].tolist()) for r in rows]
    return {
        "protocol": "bundle",
        "n_cases": int(rows.size),
        "size": size,
        "results": {name: _summary(b, rests, size) for name, b in bundles.items()},
        "anchor_plus_2": _anchor_plus_two(model, held, plus_two, max_per_category, baselines),
    }
