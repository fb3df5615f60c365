"""Forecast accuracy: MASE, WAPE, sMAPE, pinball loss and quantile coverage.

Letters: N series, H horizon, T history periods, m season length. Every function takes the
actual future ``y`` (N, H) and a forecast of the same shape (float64), and returns one number,
or an (N,) array where it says "per series".

Conventions where a ratio is 0/0: sMAPE of a step with actual and forecast both 0 is 0 (a
perfect forecast of no demand); WAPE over all-zero actuals is 0 for a zero forecast and NaN
otherwise; MASE of a series whose in-sample seasonal differences are all 0 (a constant history,
all-zero included) is NaN, and :func:`mase` averages over the other series, returning NaN only
when none is left.
"""

from __future__ import annotations

import numpy as np

__all__ = ["coverage", "first_sale", "mase", "mase_scale", "pinball", "smape", "wape"]


def first_sale(history: np.ndarray) -> np.ndarray:
    """Per series, the first period with a nonzero value (T when there is none), shape (N,)."""
    nonzero = np.asarray(history) != 0
    return np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), nonzero.shape[1])


def mase_scale(history: np.ndarray, season: int) -> np.ndarray:
    """Per series: the in-sample mean absolute seasonal difference ``mean |y_t - y_{t-m}|``.

    Periods before a series' first nonzero value are skipped (it had not started: see
    :mod:`~bundlerec.forecast.features`). A series with m or fewer periods left uses the
    lag-1 difference instead; one with a single period, or no nonzero difference, gets NaN.

    Parameters
    ----------
    history : ndarray, shape (N, T)
    season : int
        m >= 1.
    """
    history = np.asarray(history, dtype=np.float64)
    n, t = history.shape
    first = first_sale(history)
    lag = np.where(t - first > season, season, 1)
    scale = np.full(n, np.nan)
    for step in np.unique(lag):
        rows = np.flatnonzero(lag == step)
        if t <= step:
            continue
        diff = np.abs(history[rows, step:] - history[rows, :-step])
        valid = np.arange(t - step)[None, :] >= first[rows, None]
        count = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale[rows] = np.where(count > 0, (diff * valid).sum(axis=1) / count, np.nan)
    return np.where(scale > 0, scale, np.nan)


def mase(y, forecast, history, season: int, per_series: bool = False):
    """Mean absolute scaled error (Hyndman & Koehler, 2006).

    Per series ``mean_h |y - f| / mase_scale(history)``; the mean over series with a finite
    scale (NaN when there is none), or the (N,) array with ``per_series``.
    """
    per = np.abs(np.asarray(y) - np.asarray(forecast)).mean(axis=1) / mase_scale(history, season)
    if per_series:
        return per
    finite = per[np.isfinite(per)]
    return float(finite.mean()) if finite.size else float("nan")


def wape(y, forecast) -> float:
    """Weighted absolute percentage error ``sum |y - f| / sum |y|`` over all series and steps."""
    y, forecast = np.asarray(y, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    error, total = np.abs(y - forecast).sum(), np.abs(y).sum()
    if total == 0:
        return 0.0 if error == 0 else float("nan")
    return float(error / total)


def smape(y, forecast) -> float:
    """Symmetric MAPE in percent, ``mean 200 |y - f| / (|y| + |f|)``, a 0/0 step counting 0."""
    y, forecast = np.asarray(y, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    denom = np.abs(y) + np.abs(forecast)
    terms = np.divide(200 * np.abs(y - forecast), denom, out=np.zeros_like(y), where=denom > 0)
    return float(terms.mean()) if terms.size else float("nan")


def pinball(y, forecast, q: float) -> float:
    """Mean pinball loss of ``forecast`` as the ``q``-quantile: ``max(q d, (q - 1) d)``,
    ``d = y - f``."""
    d = np.asarray(y, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return float(np.maximum(q * d, (q - 1) * d).mean()) if d.size else float("nan")


def coverage(y, upper) -> float:
    """Share of actuals at or below ``upper`` (a P90 forecast should cover about 0.9)."""
    y, upper = np.asarray(y), np.asarray(upper)
    return float((y <= upper).mean()) if y.size else float("nan")
