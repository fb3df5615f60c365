"""Evaluation of audiences on a time split: did the shoppers chosen for an item buy it?

For each evaluated item ``j`` (one with at least ``min_buyers`` buyers in the test events among
the shoppers who had not bought it in training), every method scores every known shopper who
had not bought ``j`` in training; the shoppers who bought ``j`` in the test events are the
positives. Per item: ``precision@N`` (share of the top ``N`` that bought), ``recall@N`` (share
of the buyers in the top ``N``) and the AUC (probability that a buyer outscores a non-buyer, ties
count half); the report gives their means over the items.

Methods: ``bundlerec`` (:meth:`Recommender.audience` as it answers by default: the probability
of buying within :data:`~bundlerec.audience.HORIZON_DAYS`), ``bundlerec_next`` (its
probability that the next purchase is the item, ``horizon_days=None``), ``bundlerec_<H>d``
(its probability of buying within ``H`` days, for each of the ``horizons`` given),
``most_active`` (number of
training events of the shopper, the same ranking for every item) and ``itemknn_reversed`` (the
item-kNN baseline read backwards: shopper ``u`` scores ``sum_{i in history(u)} sim(i, j)``
with the cosine similarity of :class:`~bundlerec.models.baselines.ItemKNN` fitted on the
training history). Top-``N`` ties go to the lower shopper code in every method.

Letters: U shoppers, I items, S evaluated items.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import rankdata

from bundlerec.audience import HORIZON_DAYS, expected_purchases
from bundlerec.data import load_events
from bundlerec.prep import clean

if TYPE_CHECKING:
    from bundlerec.recommender import Recommender

__all__ = ["METHODS", "evaluate_audiences", "item_metrics"]

METHODS = ("bundlerec", "bundlerec_next", "most_active", "itemknn_reversed")
_PURCHASE = 3


def item_metrics(scores: np.ndarray, bought: np.ndarray, n: int) -> tuple[float, float, float]:
    """(precision@n, recall@n, AUC) of one item: ``scores`` (U',) float, ``bought`` (U',) bool
    with at least one buyer and one non-buyer."""
    order = np.lexsort((np.arange(scores.size), -scores))[:n]
    hits = int(bought[order].sum())
    ranks = rankdata(scores)  # average ranks: ties count half
    pos = int(bought.sum())
    neg = bought.size - pos
    auc = (ranks[bought].sum() - pos * (pos + 1) / 2) / (pos * neg)
    return hits / n, hits / pos, float(auc)


def evaluate_audiences(
    model: Recommender,
    test_events: pd.DataFrame | str | os.PathLike,
    n: int = 50,
    min_buyers: int = 5,
    max_items: int = 300,
    seed: int = 0,
    horizons: Sequence[float] = (),
) -> dict[str, Any]:
    """Audience quality of ``model`` on later ``test_events`` (see the module docstring).

    Parameters
    ----------
    model : Recommender
        Fitted on the events before the test period.
    test_events : DataFrame or path
        Events after the split; events of unknown shoppers or items are dropped.
    n : int
        Audience size N.
    min_buyers : int
        Least number of new buyers an evaluated item has in the test events.
    max_items : int
        Evaluate at most this many items (a seeded sample).
    seed : int
    horizons : sequence of float
        Also score ``bundlerec_<H>d`` for each of these horizons ``H`` (days).

    Returns
    -------
    dict
        ``{"n", "n_items", "n_shoppers", "results": {method: {"precision", "recall", "auc"}}}``.

    Raises
    ------
    ValueError
        When no item has ``min_buyers`` new buyers.
    """
    events = clean(load_events(test_events), window=model.window)
    test = model._encode(events)
    index = model._audience_index()
    n_users, n_items = index.owners.shape
    sold = test.event == _PURCHASE
    buyers = sp.csc_matrix(
        (np.ones(int(sold.sum()), dtype=bool), (test.user[sold], test.item[sold])),
        shape=(n_users, n_items),
    )
    buyers = (buyers > index.owners).tocsc()  # new buyers only
    counts = np.diff(buyers.indptr)
    items = np.flatnonzero(counts >= min_buyers)
    if items.size == 0:
        raise ValueError(f"no item has {min_buyers} new buyers in the test events")
    if items.size > max_items:
        items = np.sort(np.random.default_rng(seed).choice(items, max_items, replace=False))
    h = model.history
    activity = np.bincount(h.user, minlength=n_users).astype(np.float64)
    seen = sp.csr_matrix((np.ones(h.user.size), (h.user, h.item)), shape=(n_users, n_items)).sign()
    next_purchase = index.probabilities(model.sequence.item_vectors()[items])
    purchased = h.event == _PURCHASE

    def within(days: float) -> np.ndarray:
        m = expected_purchases(h.user[purchased], h.timestamp[purchased], n_users, days)
        return -np.expm1(-m[:, None] * next_purchase)

    scores = {
        "bundlerec": within(HORIZON_DAYS),
        "bundlerec_next": next_purchase,
        "most_active": np.repeat(activity[:, None], items.size, axis=1),
        "itemknn_reversed": (seen @ model.baselines["itemknn"].similarity_[:, items]).toarray(),
    }
    for days in horizons:
        scores[f"bundlerec_{days:g}d"] = within(days)
    table = {name: [] for name in scores}
    for col, j in enumerate(items):
        eligible = ~index.owners[:, j].toarray().ravel()
        bought = buyers[:, j].toarray().ravel()[eligible]
        if bought.all():
            continue
        for name in table:
            table[name].append(item_metrics(scores[name][eligible, col], bought, n))
    results = {
        name: dict(zip(("precision", "recall", "auc"), np.mean(rows, axis=0).tolist()))
        for name, rows in table.items()
    }
    return {"n": n, "n_items": len(table["bundlerec"]), "n_shoppers": n_users, "results": results}
