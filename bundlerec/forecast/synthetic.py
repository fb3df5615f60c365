"""Daily sales of the synthetic shop's items, with known structure, for the forecasting demo.

:func:`synthetic_sales` takes the items of :func:`bundlerec.datasets.synthetic_shop` (ids,
categories, prices) and their popularity there (purchases per item), and simulates, per item
and day, from 2024-01-01:

- demand ``~ NegativeBinomial(mean = r, dispersion 5)`` with rate
  ``r = base * exp(g t / 365) * weekly[dept, weekday] * yearly[dept](day of year) * lift``;
  ``base`` proportional to the item's popularity (mean 0.5-20 a day), ``g ~ N(0, 0.25)`` its
  yearly log-trend, the weekly and yearly shapes per department (:data:`WEEKLY`,
  :data:`YEARLY_PEAK`: food sells on weekends, garden in spring, electronics before Christmas);
- promotions: about one every 45 days per item, 3-10 days long, 10-30 % off; demand rises
  by ``(1 - discount) ** -2.5`` (20 % off: x1.75);
- stock: replenished every 7 days (orders arrive on Mondays) up to ``cover`` days of the
  mean rate, ``cover`` per item in 5-14; sales are ``min(demand, stock)``, so a stock-out
  loses demand (sales 0 while empty), as real shop data does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bundlerec.datasets import DEPARTMENT_OF, synthetic_shop

__all__ = ["WEEKLY", "YEARLY_PEAK", "synthetic_sales"]

WEEKLY: dict[str, tuple[float, ...]] = {
    "food": (0.8, 0.8, 0.9, 0.9, 1.2, 1.6, 0.8),
    "electronics": (0.9, 0.9, 0.9, 1.0, 1.1, 1.4, 0.8),
    "diy": (0.7, 0.7, 0.8, 0.8, 1.0, 1.8, 1.2),
    "garden": (0.7, 0.7, 0.8, 0.8, 1.0, 1.7, 1.3),
    "sport": (1.0, 1.1, 1.0, 1.0, 0.9, 1.1, 0.9),
    "pets": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
}
"""Department -> demand factor per weekday, Monday first."""
YEARLY_PEAK: dict[str, tuple[int, float]] = {
    "food": (355, 0.15),
    "electronics": (340, 0.5),
    "diy": (110, 0.3),
    "garden": (130, 0.7),
    "sport": (15, 0.3),
    "pets": (1, 0.0),
}
"""Department -> (day of year of the peak, amplitude a): factor ``exp(a cos(2 pi (d - peak) /
365.25))``."""

_START = pd.Timestamp("2024-01-01")


def synthetic_sales(
    n_items: int = 60, n_days: int = 730, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate daily sales (see the module docstring).

    Parameters
    ----------
    n_items : int
        Items (>= 30, one per category at least).
    n_days : int
        Days from 2024-01-01 (>= 1).
    seed : int
        Seed of the one generator used (the shop too); equal seeds give equal frames.

    Returns
    -------
    events : pandas.DataFrame
        One row per item and day with a sale: ``item_id``, ``timestamp`` (noon, epoch
        seconds), ``quantity`` (float), ``price`` (the day's price), ``promo`` (0 or 1);
        sorted by timestamp.
    stock : pandas.DataFrame, shape (n_items, 3)
        ``item_id``, ``on_hand`` (units after the last day), ``stockout_days`` (days the item
        was out of stock: a truth the forecaster does not see).
    items : pandas.DataFrame
        The shop's items (``item_id``, ``category``, ``brand``, ``price``).
    """
    if n_days < 1:
        raise ValueError(f"n_days must be >= 1, got {n_days}")
    shop_events, items, _ = synthetic_shop(n_users=10 * n_items, n_items=n_items, seed=seed)
    rng = np.random.default_rng(seed + 1)
    bought = shop_events[shop_events["event"] == "purchase"]
    counts = bought["item_id"].value_counts().reindex(items["item_id"], fill_value=0).to_numpy()
    popularity = (counts + 1) / (counts + 1).mean()
    base = np.clip(3.0 * popularity, 0.5, 20.0)
    depts = [DEPARTMENT_OF[c] for c in items["category"]]
    days = pd.date_range(_START, periods=n_days, freq="D")
    weekday, doy = days.day_of_week.to_numpy(), days.day_of_year.to_numpy()
    weekly = np.array([WEEKLY[d] for d in depts])[:, weekday]  # (N, days)
    peak = np.array([YEARLY_PEAK[d] for d in depts])
    yearly = np.exp(peak[:, 1:2] * np.cos(2 * np.pi * (doy - peak[:, 0:1]) / 365.25))
    trend = np.exp(rng.normal(0, 0.25, n_items)[:, None] * np.arange(n_days) / 365.0)
    promo = np.zeros((n_items, n_days), dtype=bool)
    discount = np.zeros((n_items, n_days))
    for i in range(n_items):
        day = int(rng.integers(0, 45))
        while day < n_days:
            length = int(rng.integers(3, 11))
            promo[i, day : day + length] = True
            discount[i, day : day + length] = rng.uniform(0.1, 0.3)
            day += length + int(rng.integers(20, 70))
    lift = (1 - discount) ** -2.5
    rate = base[:, None] * trend * weekly * yearly * lift
    k = 5.0
    demand = rng.negative_binomial(k, k / (k + rate))
    cover = rng.uniform(5, 14, n_items) * base
    stock = cover.copy()
    sales = np.zeros_like(rate)
    empty = np.zeros(n_items, dtype=np.int64)
    for d in range(n_days):
        if weekday[d] == 0:
            stock = np.maximum(stock, np.ceil(cover * trend[:, d]))
        sold = np.minimum(demand[:, d], stock)
        stock = stock - sold
        sales[:, d] = sold
        empty += stock == 0
    prices = items["price"].to_numpy()[:, None] * (1 - discount)
    row, col = np.nonzero(sales)
    seconds = (days[col] + pd.Timedelta(hours=12)).to_numpy().astype("datetime64[s]")
    events = pd.DataFrame(
        {
            "item_id": items["item_id"].to_numpy()[row],
            "timestamp": seconds.astype(np.int64),
            "quantity": sales[row, col].astype(np.float64),
            "price": np.round(prices[row, col], 2),
            "promo": promo[row, col].astype(np.int64),
        }
    )
    events = events.sort_values(["timestamp", "item_id"], kind="stable").reset_index(drop=True)
    stock_frame = pd.DataFrame(
        {"item_id": items["item_id"], "on_hand": stock, "stockout_days": empty}
    )
    return events, stock_frame, items
