"""Demand forecasting for inventory: events to a grid of periods, a global LSTM quantile
forecaster on corenn, baselines, backtests and metrics, reorder tables (docs/forecast.md).

The modules: :mod:`~bundlerec.forecast.grid` (aggregation), :mod:`~bundlerec.forecast.features`
(windows and covariates), :mod:`~bundlerec.forecast.model` (the forecaster),
:mod:`~bundlerec.forecast.baselines`, :mod:`~bundlerec.forecast.metrics`,
:mod:`~bundlerec.forecast.backtest`, :mod:`~bundlerec.forecast.reorder`,
:mod:`~bundlerec.forecast.synthetic` (the demo shop's daily sales) and
:mod:`~bundlerec.forecast.plot` (matplotlib, optional).
"""

from bundlerec.forecast.grid import FREQUENCIES, SEASON, Grid, to_grid
from bundlerec.forecast.model import Forecast, Forecaster, quantile_key

__all__ = ["FREQUENCIES", "SEASON", "Forecast", "Forecaster", "Grid", "quantile_key", "to_grid"]
