"""Baseline forecasters: naive, seasonal naive, moving average, and ETS (statsmodels, optional).

Letters: N series, T history periods, H horizon, Q levels, m season length. Each baseline maps a
history (N, T) to quantile forecasts (N, H, Q), float64, non-decreasing along Q and >= 0
(demand is not negative).

Point forecasts: *naive* repeats the last value; *seasonal naive* repeats the last season
(``f_{T+h} = y_{T+h-m k}``, k the smallest with ``h <= m k``; the naive one when T < m);
*moving average* repeats the mean of the last m periods (all of them when T < m). Their
quantiles add, per series and step h, the empirical quantiles of the same method's h-step
errors over the history (origins after the series' first nonzero value, the last 100 at most)
less their median, so that the P50 stays the method's own forecast; with no such origin the
quantiles collapse on the point forecast.

*ETS* (:func:`ets`) is the peer a user would pick: statsmodels' state-space exponential
smoothing with additive errors, chosen per series by AICc among no trend / damped additive
trend, times no season / additive season (the latter when ``T >= 2 m + 2``), with its Gaussian
prediction quantiles ``mean + z_q sd``, fitted on each series from its first nonzero value.
statsmodels is a benchmark extra, imported only here, inside the function; a series it cannot
fit (constant, too short, or a failed fit) gets the seasonal naive forecast, and the count of
such series is returned.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from bundlerec.forecast.metrics import first_sale

__all__ = ["BASELINES", "ets", "moving_average", "naive", "seasonal_naive"]

_MAX_ORIGINS = 100


def _naive_point(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    return np.repeat(history[:, -1:], horizon, axis=1)


def _seasonal_point(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    t = history.shape[1]
    if t < season:
        return _naive_point(history, horizon, season)
    return history[:, t - season + np.arange(horizon) % season]


def _average_point(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    mean = history[:, -season:].mean(axis=1, keepdims=True)
    return np.repeat(mean, horizon, axis=1)


def _with_quantiles(point_fn, history, horizon, season, quantiles) -> np.ndarray:
    history = np.asarray(history, dtype=np.float64)
    t = history.shape[1]
    point = point_fn(history, horizon, season)
    levels = np.asarray(quantiles, dtype=np.float64)
    out = np.repeat(point[:, :, None], len(levels), axis=2)
    first = max(1, t - horizon - _MAX_ORIGINS + 1)
    origins = range(first, t)
    errors = np.full((len(origins), history.shape[0], horizon), np.nan)
    started = first_sale(history)
    for k, o in enumerate(origins):
        steps = min(horizon, t - o)
        errors[k, :, :steps] = history[:, o : o + steps] - point_fn(history[:, :o], steps, season)
        errors[k, started >= o] = np.nan
    if len(origins):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # steps without any origin
            spread = np.nanquantile(errors, levels, axis=0)  # (Q, N, H)
            spread -= np.nanmedian(errors, axis=0)
        out += np.nan_to_num(np.moveaxis(spread, 0, 2))
    return np.maximum(np.sort(out, axis=2), 0.0)


def naive(history, horizon: int, season: int, quantiles) -> np.ndarray:
    """Naive forecast: the last value (module docstring)."""
    return _with_quantiles(_naive_point, history, horizon, season, quantiles)


def seasonal_naive(history, horizon: int, season: int, quantiles) -> np.ndarray:
    """Seasonal naive forecast: the last season repeated (module docstring)."""
    return _with_quantiles(_seasonal_point, history, horizon, season, quantiles)


def moving_average(history, horizon: int, season: int, quantiles) -> np.ndarray:
    """Moving average of the last m periods (module docstring)."""
    return _with_quantiles(_average_point, history, horizon, season, quantiles)


def _ets_one(y: np.ndarray, horizon: int, season: int, z: np.ndarray) -> np.ndarray | None:
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = y[first_sale(y[None, :])[0] :]
    t = len(y)
    if t < 4 or np.ptp(y) == 0:
        return None
    seasons = [None] + (["add"] if season > 1 and t >= 2 * season + 2 else [])
    best, best_aicc = None, math.inf
    series = pd.Series(y)
    for trend in (None, "add"):
        for seasonal in seasons:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = ETSModel(
                        series, error="add", trend=trend, damped_trend=trend is not None,
                        seasonal=seasonal, seasonal_periods=season if seasonal else None,
                    ).fit(disp=False)  # fmt: skip
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.isfinite(fit.aicc) and fit.aicc < best_aicc:
                best, best_aicc = fit, fit.aicc
    if best is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = best.get_prediction(start=t, end=t + horizon - 1)
    mean = np.asarray(pred.predicted_mean, dtype=np.float64)
    sd = np.sqrt(np.maximum(np.asarray(pred.forecast_variance, dtype=np.float64), 0.0))
    out = mean[:, None] + sd[:, None] * z[None, :]
    return out if np.isfinite(out).all() else None


def ets(history, horizon: int, season: int, quantiles) -> tuple[np.ndarray, int]:
    """ETS forecasts (module docstring); needs statsmodels.

    Returns
    -------
    forecasts : ndarray, shape (N, H, Q)
    fallbacks : int
        Series that got the seasonal naive forecast instead.

    Raises
    ------
    ImportError
        Without statsmodels (``pip install bundlerec[bench]``).
    """
    try:
        from scipy.stats import norm
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "the ETS baseline needs statsmodels (pip install 'bundlerec[bench]')"
        ) from err
    history = np.asarray(history, dtype=np.float64)
    z = norm.ppf(np.asarray(quantiles, dtype=np.float64))
    fallback = seasonal_naive(history, horizon, season, quantiles)
    out, missed = fallback.copy(), 0
    for i, y in enumerate(history):
        one = _ets_one(y, horizon, season, z)
        if one is None:
            missed += 1
        else:
            out[i] = one
    return np.maximum(np.sort(out, axis=2), 0.0), missed


BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "naive": naive,
    "seasonal_naive": seasonal_naive,
    "moving_average": moving_average,
}
"""The baselines that need nothing beyond numpy, by name."""
