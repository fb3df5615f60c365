"""Model inputs cut from a :class:`~bundlerec.forecast.grid.Grid`: windows of history, their
scale, calendar, price and promotion covariates, and the targets that follow.

Letters: N series, T periods of history, H horizon, L context (history steps per window),
B windows in a batch, m season length.

A window at *origin* ``o`` of series ``i`` reads the history ``y[i, max(o - L, a_i) : o]``
and predicts ``y[i, o : o + H]``, where ``a_i`` is the series' first period with a sale: the
periods before it are not demand data (the item was not sold yet, or its series starts later
than the grid), so a window never reads them (windows are right-padded, their lengths say how
many steps are real). Each window is standardised by its own history (per series and origin):
demand ``y`` enters as ``(y - c) / s`` and predictions come back as ``c + s z``. With
``scaling="diff"`` (the default) ``c`` is the history's mean and ``s`` its mean absolute
period-to-period change (the mean when the history is constant), so that the network works in
units of the series' noise; with ``scaling="mean"`` (DeepAR's) ``c = 0`` and ``s`` is the mean.
A history without any sale has ``s = 0``: its forecast is 0 and it is not trained on.

Per history step the recurrent input has ``F`` features: the scaled demand, the calendar
(sine and cosine of the position in the season and in the year), and, when the grid has them,
the log price relative to the window's mean price and the promotion share. The head input per
window adds, for each of the H future steps, the known future covariates (calendar, relative
price, promotion), the scaled demand of the last ``k`` seasons (``k m`` values, oldest first;
``c`` before the series' first sale) and ``log1p(c)``, ``log1p(s)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bundlerec.forecast.grid import Grid, future_periods

__all__ = ["Batch", "Features", "calendar"]


def calendar(periods: pd.PeriodIndex, season: int) -> np.ndarray:
    """Calendar features of each period, shape (T, 4), float64.

    Sine and cosine of the phase within the season (``ordinal mod m``, e.g. the weekday for
    days) and within the year (the first day's day of year / 365.25).
    """
    phase = 2 * np.pi * (periods.asi8 % season) / season
    year = 2 * np.pi * (periods.start_time.day_of_year.to_numpy() - 1) / 365.25
    return np.stack([np.sin(phase), np.cos(phase), np.sin(year), np.cos(year)], axis=1)


@dataclass
class Batch:
    """Arrays for B windows (float32 unless stated).

    Attributes
    ----------
    x : shape (B, L, F)
        Recurrent inputs, right-padded with zeros.
    lengths : shape (B,), int64
        History steps of each window, in [1, L].
    head : shape (B, E)
        Head inputs (future covariates, last season, log scale).
    series : shape (B,), int64
        Series (item) index of each window.
    center, scale : shape (B,), float64
        ``c`` and ``s`` (both 0 for a history without sales).
    target : shape (B, H)
        Scaled future demand (0 where unknown).
    mask : shape (B, H)
        1 where the target is known (inside the grid), else 0.
    """

    x: np.ndarray
    lengths: np.ndarray
    head: np.ndarray
    series: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    target: np.ndarray
    mask: np.ndarray


class Features:
    """Window builder over a grid extended by H future periods.

    Parameters
    ----------
    grid : Grid
    horizon : int
        H >= 1.
    context : int
        L >= 1, the most history steps a window reads.
    scaling : {"diff", "mean"}
        How windows are standardised (module docstring).
    seasons : int
        k >= 1, the seasons of recent demand given to the head.

    Notes
    -----
    Future prices are the last known price and future promotions 0 (no plan known), so a
    forecast assumes the current price and no promotion.
    """

    def __init__(
        self, grid: Grid, horizon: int, context: int, scaling: str = "diff", seasons: int = 1
    ):
        if scaling not in ("diff", "mean"):
            raise ValueError(f"scaling must be 'diff' or 'mean', got {scaling!r}")
        self.grid, self.horizon, self.context = grid, int(horizon), int(context)
        self.scaling = scaling
        self.season = grid.season
        self.seasons = int(seasons)
        n, t = grid.values.shape
        periods = grid.periods.append(future_periods(grid, self.horizon))
        self.calendar = calendar(periods, self.season)
        self.y = np.concatenate([grid.values, np.zeros((n, self.horizon))], axis=1)
        self.known = np.arange(t + self.horizon) < t
        self.price = None
        if grid.price is not None:
            last = np.repeat(grid.price[:, -1:], self.horizon, axis=1)
            self.price = np.log(np.maximum(np.concatenate([grid.price, last], axis=1), 1e-9))
        self.promo = None
        if grid.promo is not None:
            self.promo = np.concatenate([grid.promo, np.zeros((n, self.horizon))], axis=1)
        extra = (self.price is not None) + (self.promo is not None)
        self.n_inputs = 1 + self.calendar.shape[1] + extra
        self.n_future = self.calendar.shape[1] + extra
        self.n_recent = self.seasons * self.season
        self.n_head = self.horizon * self.n_future + self.n_recent + 2
        self.season_at = self.horizon * self.n_future  # where the recent seasons sit in the head
        sold = grid.values > 0
        self.first = np.where(sold.any(axis=1), sold.argmax(axis=1), t).astype(np.int64)

    def batch(self, series: np.ndarray, origins: np.ndarray, end: int | None = None) -> Batch:
        """The windows of ``series`` at ``origins``; targets from period ``end`` on are masked.

        Parameters
        ----------
        series, origins : array_like of int, shape (B,)
            Origins in [1, T + 1) (the window at ``T`` forecasts beyond the grid); a window
            whose series has no sale before its origin gets one zero step of history.
        end : int, optional
            Periods at and after ``end`` count as unknown (a training cut); default T.
        """
        series = np.asarray(series, dtype=np.int64)
        origins = np.asarray(origins, dtype=np.int64)
        big_l, h = self.context, self.horizon
        begin = np.clip(np.maximum(origins - big_l, self.first[series]), 0, origins - 1)
        lengths = origins - begin
        steps = np.arange(big_l)
        hist = begin[:, None] + steps  # (B, L)
        valid = steps < lengths[:, None]
        hist = np.where(valid, hist, 0)
        y_hist = np.where(valid, self.y[series[:, None], hist], 0.0)
        mean = y_hist.sum(axis=1) / lengths
        if self.scaling == "mean":
            center, scale = np.zeros_like(mean), mean
        else:
            step = np.abs(np.diff(y_hist, axis=1)) * (valid[:, 1:] & valid[:, :-1])
            change = step.sum(axis=1) / np.maximum(lengths - 1, 1)
            center, scale = mean, np.where(change > 0, change, mean)
        s_in = np.where(scale > 0, scale, 1.0)
        cols = [(y_hist - center[:, None]) / s_in[:, None], self.calendar[hist]]
        fut = origins[:, None] + np.arange(h)  # (B, H)
        fut_cols = [self.calendar[fut]]
        if self.price is not None:
            p_hist = self.price[series[:, None], hist]
            ref = np.where(valid, p_hist, 0.0).sum(axis=1, keepdims=True) / lengths[:, None]
            cols.append((p_hist - ref)[..., None])
            fut_cols.append((self.price[series[:, None], fut] - ref)[..., None])
        if self.promo is not None:
            cols.append(self.promo[series[:, None], hist][..., None])
            fut_cols.append(self.promo[series[:, None], fut][..., None])
        x = np.concatenate([c if c.ndim == 3 else c[..., None] for c in cols], axis=2)
        x = np.where(valid[..., None], x, 0.0)
        last = origins[:, None] - self.n_recent + np.arange(self.n_recent)  # c before the start
        started = last >= self.first[series][:, None]
        last_y = np.where(started, self.y[series[:, None], np.maximum(last, 0)], center[:, None])
        head = np.concatenate(
            [
                np.concatenate(fut_cols, axis=2).reshape(len(series), -1),
                (last_y - center[:, None]) / s_in[:, None],
                np.log1p(center)[:, None],
                np.log1p(scale)[:, None],
            ],
            axis=1,
        )
        stop = self.grid.values.shape[1] if end is None else end
        mask = (fut < stop) & self.known[np.minimum(fut, len(self.known) - 1)]
        target = np.where(mask, self.y[series[:, None], np.minimum(fut, self.y.shape[1] - 1)], 0)
        return Batch(
            x=x.astype(np.float32),
            lengths=lengths,
            head=head.astype(np.float32),
            series=series,
            center=center,
            scale=scale,
            target=((target - center[:, None]) / s_in[:, None]).astype(np.float32),
            mask=mask.astype(np.float32),
        )
