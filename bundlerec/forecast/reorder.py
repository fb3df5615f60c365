"""Reorder table: what to order now, from the forecast, the stock on hand and the lead time.

For a lead time of L periods (an order placed now arrives after L periods), per item:

- ``demand_p50``: expected demand over the lead time, the sum of the first L periods' P50;
- ``demand_p90``: the sum of their P90, an upper bound of the P90 of the sum (it is exact when
  the periods' demands move together, and too high when they are independent): a cautious
  safety stock, the direct forecaster giving no sample paths to do better;
- ``on_hand``: units in stock now (from the stock file);
- ``order``: ``max(0, ceil(demand_p90 - on_hand))``, units to order so that stock covers the
  lead time's demand 9 times out of 10;
- ``days_of_cover``: days the stock on hand lasts at the P50 rate over the horizon
  (``on_hand / daily P50``); empty (None) when no demand is forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bundlerec.data import DataError
from bundlerec.forecast.grid import DAYS
from bundlerec.forecast.model import Forecast

__all__ = ["read_stock", "reorder_table"]


def read_stock(frame: pd.DataFrame) -> pd.Series:
    """Stock on hand per item from a table with ``item_id`` and ``on_hand`` columns.

    Raises
    ------
    DataError
        A missing column, a missing / non-numeric / negative ``on_hand``, or an item listed twice.
    """
    missing = [c for c in ("item_id", "on_hand") if c not in frame.columns]
    if missing:
        raise DataError(f"the stock table needs columns item_id and on_hand; missing {missing}")
    on_hand = pd.to_numeric(frame["on_hand"], errors="coerce")
    bad = on_hand.isna() | ~np.isfinite(on_hand) | (on_hand < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{int(bad.sum())} stock row(s) have a missing, non-numeric or negative on_hand "
            f"(first at row {row}: {frame['on_hand'].iloc[row]!r})"
        )
    ids = frame["item_id"].astype(str)
    twice = ids[ids.duplicated()]
    if len(twice):
        raise DataError(f"item {twice.iloc[0]!r} is listed more than once in the stock table")
    return pd.Series(on_hand.to_numpy(dtype=np.float64), index=ids.to_numpy())


def reorder_table(forecast: Forecast, on_hand: pd.Series, lead_time: int) -> pd.DataFrame:
    """One row per item of ``on_hand`` (see the module docstring for the columns).

    Parameters
    ----------
    forecast : Forecast
        With levels 0.5 and 0.9 and at least ``lead_time`` periods.
    on_hand : pandas.Series
        Units per item id (:func:`read_stock`).
    lead_time : int
        L >= 1, in periods of the forecast's frequency.

    Raises
    ------
    ValueError
        If ``lead_time`` is not in [1, horizon].
    KeyError
        If a stock item has no forecast (naming it).
    """
    horizon = len(forecast.periods)
    if int(lead_time) != lead_time or not 1 <= lead_time <= horizon:
        raise ValueError(
            f"lead time must be a whole number of periods in [1, horizon={horizon}]; "
            f"got {lead_time} (raise --horizon to cover it)"
        )
    index = {item: k for k, item in enumerate(forecast.items)}
    unknown = [item for item in on_hand.index if item not in index]
    if unknown:
        raise KeyError(f"item {unknown[0]!r} of the stock table has no sales history to forecast")
    rows = np.array([index[item] for item in on_hand.index], dtype=np.int64)
    p50, p90 = forecast.level(0.5)[rows], forecast.level(0.9)[rows]
    need50, need90 = p50[:, :lead_time].sum(axis=1), p90[:, :lead_time].sum(axis=1)
    stock = on_hand.to_numpy(dtype=np.float64)
    daily = p50.mean(axis=1) / DAYS[forecast.freq]
    cover = [None if d <= 0 else round(float(s / d), 1) for s, d in zip(stock, daily)]
    return pd.DataFrame(
        {
            "item_id": on_hand.index.to_numpy(dtype=object),
            "lead_time": int(lead_time),
            "demand_p50": need50,
            "demand_p90": need90,
            "on_hand": stock,
            "order": np.maximum(0.0, np.ceil(need90 - stock - 1e-9)),
            "days_of_cover": pd.array(cover, dtype=object),
        }
    )
