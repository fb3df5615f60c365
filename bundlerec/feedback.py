"""Feedback: fold new events into a fitted :class:`~bundlerec.recommender.Recommender`.

New shoppers and items join the model (cold start from their attributes), the history grows,
the sequence model is fine-tuned from its current weights, the co-purchase network gets a
Dirichlet count update with the new baskets, and the baselines are refitted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bundlerec.catalogue import Catalogue
from bundlerec.prep import UNKNOWN, Encoder, Interactions, PriceScaler, align

if TYPE_CHECKING:
    from bundlerec.recommender import Recommender

__all__ = ["grow_items", "grow_users", "merge_history"]


def merge_history(history: Interactions, new: Interactions, n_users: int, n_items: int):
    """``history`` followed by ``new`` (basket ids shifted past the old ones), by user and time.

    Returns
    -------
    Interactions
        With ``n_users`` shoppers and ``n_items`` items (the grown encoders' sizes).
    """
    offset = history.n_baskets
    merged = pd.DataFrame(
        {
            "user": np.concatenate([history.user, new.user]),
            "item": np.concatenate([history.item, new.item]),
            "basket": np.concatenate([history.basket, new.basket + offset]),
            "timestamp": np.concatenate([history.timestamp, new.timestamp]),
            "event": np.concatenate([history.event, new.event]),
        }
    ).sort_values(["user", "timestamp"], kind="stable")
    return Interactions(
        *(merged[c].to_numpy() for c in ("user", "item", "basket", "timestamp", "event")),
        n_users=n_users,
        n_items=n_items,
    )


def grow_items(model: Recommender, frame: pd.DataFrame, items: pd.DataFrame | None) -> None:
    """Append the items of ``frame`` that ``model`` does not know.

    New items get codes after the known ones, attribute codes from ``items`` (encoded with the
    fitted encoders; unknown values and items without a row get the reserved "unknown" codes),
    a price from ``items`` or the events' median, a zero id embedding in the sequence model and
    the smoothed prior of an unseen item in the network.
    """
    labels = pd.Index(frame["item_id"].astype(str).unique())
    fresh = sorted(labels.difference(pd.Index(model.items.classes_)))
    if not fresh:
        return
    ids = Encoder().fit(fresh)
    table = items if items is not None else pd.DataFrame({"item_id": fresh})
    aligned = align(table, "item_id", ids)
    feats: dict[str, np.ndarray] = {}
    for name, state in model.item_state["attributes"].items():
        enc = Encoder.from_json(state)
        values = aligned[name] if name in aligned.columns else pd.Series([None] * len(fresh))
        feats[name] = enc.transform(values.fillna(UNKNOWN).astype(str))
    price = np.full(len(fresh), np.nan)
    if "price" in aligned.columns:
        price = aligned["price"].to_numpy(dtype=float)
    if "price" in frame.columns:
        median = frame.groupby("item_id", observed=True)["price"].median()
        from_events = median.reindex(list(fresh)).to_numpy(dtype=float)
        price = np.where(np.isnan(price), from_events, price)
    if model.item_state["price_scaler"] is not None:
        feats["price_bucket"] = PriceScaler.from_json(
            model.item_state["price_scaler"]
        ).bucketize(price)
    if "category" in aligned.columns:
        category = aligned["category"].astype(object).where(aligned["category"].notna())
        category = np.where(category.isna(), np.asarray(fresh, dtype=object), category)
    else:
        category = np.asarray(fresh, dtype=object)
    feats = {name: feats[name] for name in model.catalogue.features}
    model.items = model.items.extend(fresh)
    cat = model.catalogue
    model.catalogue = Catalogue(
        {n: np.concatenate([v, feats[n]]) for n, v in cat.features.items()},
        np.concatenate([cat.category, category.astype(str).astype(object)]),
        np.concatenate([cat.price, price]),
    )
    model.sequence.grow_items(len(fresh), feats or None)
    model.network.grow_items(len(fresh))


def grow_users(model: Recommender, frame: pd.DataFrame, users: pd.DataFrame | None) -> None:
    """Append the shoppers of ``frame`` that ``model`` does not know, with their attributes."""
    labels = pd.Index(frame["user_id"].astype(str).unique())
    fresh = sorted(labels.difference(pd.Index(model.users.classes_)))
    if not fresh:
        return
    ids = Encoder().fit(fresh)
    table = users if users is not None else pd.DataFrame({"user_id": fresh})
    aligned = align(table, "user_id", ids)
    for name, state in model.user_state.items():
        enc = Encoder.from_json(state)
        values = aligned[name] if name in aligned.columns else pd.Series([None] * len(fresh))
        codes = enc.transform(values.fillna(UNKNOWN).astype(str))
        codes[codes >= len(enc.classes_)] = -1  # a value no training shopper had
        model.user_features[name] = np.concatenate([model.user_features[name], codes])
    model.users = model.users.extend(fresh)
    model.network.set_user_features(model.user_features)
