"""Sales events to a regular grid of periods: one row per item, one column per period.

Letters: N series (items), T periods. A period is a day (``"D"``), a week starting on Monday
(``"W"``), a calendar month (``"M"``) or a calendar quarter (``"Q"``), labelled by its first
day. Missing periods are zeros (no sale recorded is no sale). Prices (the quantity-weighted
mean price of the period, carried forward from the last period with sales, then backward) and
promotions (the share of the period's quantity sold on promotion) are gridded when the events
carry them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bundlerec.data import DataError, parse_timestamps

__all__ = ["FREQUENCIES", "SEASON", "Grid", "to_grid", "period_labels", "future_periods"]

FREQUENCIES = ("D", "W", "M", "Q")
SEASON = {"D": 7, "W": 52, "M": 12, "Q": 4}
"""Season length per frequency: a week of days, a year of weeks, months or quarters."""
_PANDAS = {"D": "D", "W": "W-SUN", "M": "M", "Q": "Q"}
DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Q": 365.25 / 4}
"""Mean length of a period in days (for days of cover)."""


@dataclass(frozen=True)
class Grid:
    """Demand of N items over T consecutive periods.

    Attributes
    ----------
    items : numpy.ndarray, shape (N,), object
        Item ids (str), sorted.
    start : pandas.Period
        The first period; the others follow at the grid's frequency.
    freq : str
        One of :data:`FREQUENCIES`.
    values : numpy.ndarray, shape (N, T), float64
        Quantity sold per item and period (>= 0, finite).
    price : numpy.ndarray, shape (N, T), float64, or None
        Price per period (mean over the period's sales, filled in between).
    promo : numpy.ndarray, shape (N, T), float64, or None
        Share of the period's quantity sold on promotion, in [0, 1] (0 without sales).
    """

    items: np.ndarray
    start: pd.Period
    freq: str
    values: np.ndarray
    price: np.ndarray | None = None
    promo: np.ndarray | None = None

    @property
    def periods(self) -> pd.PeriodIndex:
        """The T periods."""
        return pd.period_range(self.start, periods=self.values.shape[1], freq=self.start.freq)

    @property
    def season(self) -> int:
        """Season length of the frequency (:data:`SEASON`)."""
        return SEASON[self.freq]

    def head(self, periods: int) -> Grid:
        """The first ``periods`` periods (a training part for a backtest)."""

        def cut(a):
            return None if a is None else a[:, :periods]

        return Grid(self.items, self.start, self.freq, self.values[:, :periods],
                    cut(self.price), cut(self.promo))  # fmt: skip


def check_freq(freq: str) -> str:
    """``freq`` upper-cased, or a ValueError naming the allowed ones."""
    f = str(freq).upper()
    if f not in FREQUENCIES:
        raise ValueError(f"freq must be one of {', '.join(FREQUENCIES)}; got {freq!r}")
    return f


def period_labels(periods: pd.PeriodIndex) -> list[str]:
    """Each period's first day as ``YYYY-MM-DD``."""
    return [str(d.date()) for d in periods.start_time]


def future_periods(grid: Grid, horizon: int) -> pd.PeriodIndex:
    """The ``horizon`` periods that follow the grid."""
    last = grid.start + (grid.values.shape[1] - 1)
    return pd.period_range(last + 1, periods=horizon, freq=grid.start.freq)


def _numbers(events: pd.DataFrame, column: str, default: float | None) -> np.ndarray:
    if column not in events.columns:
        if default is None:
            return None
        return np.full(len(events), default)
    values = pd.to_numeric(events[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any() and column == "quantity":
        rows = np.flatnonzero(bad)
        raise DataError(
            f"{bad.sum()} event(s) have a missing or non-numeric quantity (first at row "
            f"{rows[0]}: {events[column].iloc[rows[0]]!r}); fix or drop them"
        )
    if column == "quantity" and (values < 0).any():
        rows = np.flatnonzero(values < 0)
        raise DataError(
            f"{rows.size} event(s) have a negative quantity (first at row {rows[0]}: "
            f"{values[rows[0]]}); returns are not demand: drop them or net them out first"
        )
    return values


def to_grid(events: pd.DataFrame, freq: str = "D", end: str | pd.Timestamp | None = None) -> Grid:
    """Aggregate an events log to a regular grid of periods.

    Parameters
    ----------
    events : pandas.DataFrame
        Columns ``item_id`` and ``timestamp`` (epoch seconds, datetimes or text that
        :func:`bundlerec.data.parse_timestamps` reads); optional ``quantity`` (default 1, floats
        allowed), ``price``, ``promo`` (0/1 or a share), and ``event`` (when present only
        ``purchase`` rows count).
    freq : {"D", "W", "M", "Q"}
    end : date, optional
        Last date the grid must cover (e.g. the day the log was exported, so that trailing
        periods without sales are zeros); default the last event's period.

    Returns
    -------
    Grid
        Items sorted by id; periods from the first event's period to the last (or ``end``).

    Raises
    ------
    DataError
        No rows (after keeping purchases), a missing column, a missing or non-numeric
        quantity, a negative quantity, or an unreadable timestamp.
    ValueError
        An unknown ``freq``.
    """
    freq = check_freq(freq)
    missing = [c for c in ("item_id", "timestamp") if c not in events.columns]
    if missing:
        raise DataError(f"the events need columns item_id and timestamp; missing {missing}")
    if "event" in events.columns:
        events = events[events["event"].astype(str).str.lower() == "purchase"]
    if len(events) == 0:
        raise DataError("no sales to forecast from: the events hold no (purchase) rows")
    events = events.reset_index(drop=True)
    if events["item_id"].isna().any():
        raise DataError(f"{int(events['item_id'].isna().sum())} event(s) have no item_id")
    quantity = _numbers(events, "quantity", 1.0)
    seconds = parse_timestamps(events["timestamp"])
    periods = pd.to_datetime(seconds, unit="s").to_period(_PANDAS[freq])
    first, last = periods.min(), periods.max()
    if end is not None:
        last = max(last, pd.Timestamp(end).to_period(_PANDAS[freq]))
    col = periods.asi8 - first.ordinal
    items, row = np.unique(events["item_id"].astype(str).to_numpy(), return_inverse=True)
    shape = (len(items), last.ordinal - first.ordinal + 1)
    values = np.zeros(shape)
    np.add.at(values, (row, col), quantity)
    price = _numbers(events, "price", None)
    promo = _numbers(events, "promo", None)
    grid_price = grid_promo = None
    if price is not None:
        known = np.isfinite(price) & (price > 0) & (quantity > 0)
        spent, units = np.zeros(shape), np.zeros(shape)
        np.add.at(spent, (row[known], col[known]), (price * quantity)[known])
        np.add.at(units, (row[known], col[known]), quantity[known])
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = spent / units
        grid_price = _fill(mean)
    if promo is not None:
        share = np.clip(np.nan_to_num(promo), 0.0, 1.0)
        on_promo = np.zeros(shape)
        np.add.at(on_promo, (row, col), share * quantity)
        with np.errstate(invalid="ignore", divide="ignore"):
            grid_promo = np.where(values > 0, on_promo / np.where(values > 0, values, 1), 0.0)
    return Grid(items.astype(object), first, freq, values, grid_price, grid_promo)


def _fill(a: np.ndarray) -> np.ndarray:
    """NaNs of each row replaced by the last value before them, then the first after; a row
    without any value becomes 0."""
    frame = pd.DataFrame(a.T)
    return frame.ffill().bfill().fillna(0.0).to_numpy().T.copy()
