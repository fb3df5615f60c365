"""Stock: items out of stock never appear; over-stocked items can be favoured.

Stock comes from a stock table (:func:`bundlerec.data.load_stock`: ``item_id``, ``on_hand``) or
the items table's ``on_hand`` column. Items without a stock figure count as in stock.

Days of cover of an item is ``on_hand / daily sales``, the daily sales being its purchases in the
``window`` days before ``now`` divided by ``window`` (an item in stock that did not sell has
infinite cover). With ``favour_overstock=D`` the bundle search multiplies the probability of
every item with more than ``D`` days of cover by :data:`BOOST`, so bundles help clear them.

Letters: I items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bundlerec.prep import Encoder, Interactions

__all__ = ["BOOST", "WINDOW_DAYS", "days_of_cover", "on_hand"]

BOOST = 2.0
"""Factor on the probability of an over-stocked item in the bundle search."""
WINDOW_DAYS = 28
"""Days of recent sales the daily sales rate is measured on."""

_PURCHASE = 3


def on_hand(stock: pd.DataFrame | None, ids: Encoder) -> np.ndarray:
    """(I,) float64 units on hand per item code (NaN: unknown, taken as in stock); rows of
    items the model does not know are ignored."""
    out = np.full(len(ids.classes_), np.nan)
    if stock is None or "on_hand" not in stock.columns:
        return out
    codes = ids.transform(stock["item_id"])
    values = stock["on_hand"].to_numpy(dtype=float)
    known = (codes >= 0) & ~np.isnan(values)
    out[codes[known]] = values[known]
    return out


def days_of_cover(
    units: np.ndarray, history: Interactions, now: int, window: int = WINDOW_DAYS
) -> np.ndarray:
    """(I,) float64 days the stock ``units`` (I,) lasts at the sales rate of the ``window``
    days before ``now`` (NaN where ``units`` is NaN; inf for stock that did not sell)."""
    recent = (
        (history.event == _PURCHASE)
        & (history.timestamp < now)
        & (history.timestamp >= now - window * 86_400)
    )
    daily = np.bincount(history.item[recent], minlength=units.size)[: units.size] / window
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(daily > 0, units / daily, np.where(units > 0, np.inf, 0.0))
    return np.where(np.isnan(units), np.nan, cover)
