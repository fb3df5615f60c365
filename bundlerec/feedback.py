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


def _fresh(
    frame: pd.DataFrame, column: str, known: Encoder, table: pd.DataFrame | None
) -> tuple[list[str], pd.DataFrame]:
    """The ids of ``frame[column]`` that ``known`` lacks (sorted), and their rows of ``table``.

    The rows come back aligned with the fresh ids (all-missing where ``table`` has none).
    """
    labels = pd.Index(frame[column].astype(str).unique())
    fresh = sorted(labels.difference(pd.Index(known.classes_)))
    if not fresh:
        return fresh, pd.DataFrame()
    table = table if table is not None else pd.DataFrame({column: fresh})
    return fresh, align(table, column, Encoder().fit(fresh))


def _attribute_codes(aligned: pd.DataFrame, states: dict, n: int) -> dict[str, np.ndarray]:
    """``{name: (n,) int64}`` codes of the fitted attribute encoders (``states``) for new rows;
    a missing value or column gets the reserved "unknown" code."""
    codes = {}
    for name, state in states.items():
        values = aligned[name] if name in aligned.columns else pd.Series([None] * n)
        codes[name] = Encoder.from_json(state).transform(values.fillna(UNKNOWN).astype(str))
    return codes


def grow_items(model: Recommender, frame: pd.DataFrame, items: pd.DataFrame | None) -> None:
    """Append the items of ``frame`` that ``model`` does not know.

    New items get codes after the known ones, attribute codes from ``items`` (encoded with the
    fitted encoders; unknown values and items without a row get the reserved "unknown" codes),
    a price from ``items`` or the events' median, a zero id embedding in the sequence model and
    the smoothed prior of an unseen item in the network.
    """
    fresh, aligned = _fresh(frame, "item_id", model.items, items)
    if not fresh:
        return
    feats = _attribute_codes(aligned, model.item_state["attributes"], len(fresh))
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
    fresh, aligned = _fresh(frame, "user_id", model.users, users)
    if not fresh:
        return
    for name, codes in _attribute_codes(aligned, model.user_state, len(fresh)).items():
        codes[codes >= len(model.user_state[name]["classes"])] = -1  # no training shopper had it
        model.user_features[name] = np.concatenate([model.user_features[name], codes])
    model.users = model.users.extend(fresh)
    model.network.set_user_features(model.user_features)
