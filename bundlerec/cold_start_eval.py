"""Evaluation of new arrivals: items first seen after the split, ranked for their buyers.

The model is fitted on the events before the split and the new items (those in the test events
that the model does not know) are added from the items table (:meth:`Recommender.add_items`:
attributes and text, no events). Every known shopper who buys a new item in the test events is a
case; the candidates are all new items, the relevant ones those the shopper bought, and each
method ranks the candidates (NDCG@k, ties to the lower item code):

- ``bundlerec``: the score of :meth:`Recommender.recommend_new_arrivals` (the fused
  probability, the category's share of the purchases and the shopper's taste for the item's
  words, :func:`bundlerec.new_arrivals.arrival_scores`);
- ``fused``: the fused probability alone (what ``bundlerec`` ranked by before the share and
  the tastes);
- ``sequence``: the sequence model's score alone (attributes, text and the borrowed bias);
- ``popularity``: purchases of the item in the training events (none for a new item, so the
  ranking is the tie order, the lower item code first: the floor);
- ``category_popularity``: purchases of the item's category in the training events;
- ``shopper_category``: the shopper's own training purchases of the item's category, ties
  broken by category popularity.

Letters: n cases, I items.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bundlerec.data import load_events, load_items
from bundlerec.metrics import ndcg_at_k, top_k
from bundlerec.prep import clean

if TYPE_CHECKING:
    from bundlerec.recommender import Recommender

__all__ = ["METHODS", "evaluate_new_arrivals"]

METHODS = (
    "bundlerec",
    "fused",
    "sequence",
    "popularity",
    "category_popularity",
    "shopper_category",
)
_PURCHASE = 3


def evaluate_new_arrivals(
    model: Recommender,
    test_events: pd.DataFrame | str | os.PathLike,
    items: pd.DataFrame | str | os.PathLike,
    k: int = 10,
) -> dict[str, Any]:
    """NDCG@k of each method over the buyers of new items (see the module docstring).

    ``model`` is changed: the new items are added to it.

    Returns
    -------
    dict
        ``{"k", "n_cases", "n_new_items", "results": {method: mean NDCG@k}}``.

    Raises
    ------
    ValueError
        When no known shopper buys a new item in ``test_events``.
    """
    events = clean(load_events(test_events), window=model.window)
    n_old = len(model.items.classes_)
    history = model.history
    old_users = len(model.users.classes_)
    model.add_items(load_items(items))
    n_items = len(model.items.classes_)
    test = model._encode(events[events["user_id"].isin(set(map(str, model.users.classes_)))])
    bought = (test.event == _PURCHASE) & (test.item >= n_old) & (test.user < old_users)
    truth = sp.csr_matrix(
        (np.ones(int(bought.sum())), (test.user[bought], test.item[bought])),
        shape=(old_users, n_items),
    ).sign()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if users.size == 0:
        raise ValueError("no known shopper buys a new item in the test events")
    rows = truth[users]
    width = int(np.diff(rows.indptr).max())
    targets = np.full((users.size, width), -1, dtype=np.int64)
    for r in range(users.size):
        got = rows.indices[rows.indptr[r] : rows.indptr[r + 1]]
        targets[r, : got.size] = got
    new = np.zeros(n_items, dtype=bool)
    new[n_old:] = True
    category = model.catalogue.category_codes
    sold = history.event == _PURCHASE
    per_category = np.bincount(category[history.item[sold]], minlength=category.max() + 1)
    own = sp.csr_matrix(
        (np.ones(int(sold.sum())), (history.user[sold], category[history.item[sold]])),
        shape=(old_users, category.max() + 1),
    )
    popularity = per_category[category].astype(np.float64)
    cases = model._serving_cases(users, [], [])
    candidates = np.flatnonzero(new)
    scores = {
        "bundlerec": np.full((users.size, n_items), -np.inf),
        "fused": model.fusion.score(cases).astype(np.float64),
        "sequence": model.sequence.score(cases).astype(np.float64),
        "popularity": np.broadcast_to(
            np.bincount(history.item[sold], minlength=n_items)[:n_items].astype(np.float64),
            (users.size, n_items),
        ),
        "category_popularity": np.broadcast_to(popularity, (users.size, n_items)),
        "shopper_category": own[users][:, category].toarray()
        + popularity / (popularity.max() + 1.0),
    }
    scores["bundlerec"][:, candidates] = model._new_arrival_scores(cases, candidates)
    results = {}
    for name in METHODS:
        ranked = top_k(
            np.where(new, scores[name], -np.inf),
            k,
            exclude=np.broadcast_to(~new, (users.size, n_items)),
        )
        results[name] = float(ndcg_at_k(ranked, targets, k).mean())
    return {
        "k": k,
        "n_cases": int(users.size),
        "n_new_items": int(n_items - n_old),
        "results": results,
    }
