"""Backtest: train on all but the last H periods, forecast them, score every method alike.

The methods are the LSTM forecaster (:class:`~bundlerec.forecast.model.Forecaster`) and the
baselines (:mod:`~bundlerec.forecast.baselines`), in the same run on the same split; ETS joins
when statsmodels is installed. Scores (:mod:`~bundlerec.forecast.metrics`) use each method's
P50 as its point forecast: mean MASE over series, WAPE, sMAPE, the pinball loss averaged over
the levels, and the coverage of the P90.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bundlerec.forecast import baselines, metrics
from bundlerec.forecast.grid import Grid
from bundlerec.forecast.model import Forecaster, check_quantiles
from bundlerec.progress import say

__all__ = ["backtest", "score", "to_table"]


def score(y, forecasts, history, season: int, quantiles) -> dict[str, float]:
    """Scores of (N, H, Q) ``forecasts`` of the actuals ``y`` (N, H); levels include 0.5 and 0.9.

    Returns
    -------
    dict
        ``mase``, ``wape``, ``smape``, ``pinball`` (mean over the levels), ``coverage_p90``,
        and ``mase_series`` (series with a defined MASE).
    """
    levels = list(quantiles)
    p50, p90 = forecasts[:, :, levels.index(0.5)], forecasts[:, :, levels.index(0.9)]
    per = metrics.mase(y, p50, history, season, per_series=True)
    return {
        "mase": metrics.mase(y, p50, history, season),
        "wape": metrics.wape(y, p50),
        "smape": metrics.smape(y, p50),
        "pinball": float(
            np.mean([metrics.pinball(y, forecasts[:, :, k], q) for k, q in enumerate(levels)])
        ),
        "coverage_p90": metrics.coverage(y, p90),
        "mase_series": int(np.isfinite(per).sum()),
    }


def backtest(
    grid: Grid,
    holdout: int,
    quantiles=(0.1, 0.5, 0.9),
    forecaster: dict[str, Any] | None = None,
    use_ets: bool | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Score the forecaster and the baselines on the last ``holdout`` periods of ``grid``.

    Parameters
    ----------
    grid : Grid
    holdout : int
        H >= 1; the training part keeps at least 2 periods.
    quantiles : sequence of float
        Levels scored (0.5 and 0.9 are added).
    forecaster : dict, optional
        Keyword arguments of :class:`Forecaster` (besides ``horizon`` and ``quantiles``).
    use_ets : bool, optional
        Include ETS; default: when statsmodels is installed. True without it raises ImportError.
    verbose : bool

    Returns
    -------
    dict
        ``freq``, ``holdout``, ``series``, ``season``, ``results`` (method -> scores, see
        :func:`score`, plus ``seconds``), ``notes`` (list of str).

    Raises
    ------
    ValueError
        If fewer than 2 periods would remain for training.
    """
    n, t = grid.values.shape
    if int(holdout) != holdout or holdout < 1 or t - holdout < 2:
        raise ValueError(
            f"holdout must be a positive integer leaving at least 2 training periods; got "
            f"{holdout} with {t} periods ({grid.freq})"
        )
    levels = check_quantiles((*quantiles, 0.5, 0.9))
    train, actual = grid.head(t - holdout), grid.values[:, t - holdout :]
    history, season = train.values, grid.season
    results: dict[str, dict[str, float]] = {}
    notes: list[str] = []

    def run(name, fn):
        started = time.perf_counter()
        forecasts = fn()
        results[name] = score(actual, forecasts, history, season, levels)
        results[name]["seconds"] = round(time.perf_counter() - started, 3)
        say(f"backtest: {name} done in {results[name]['seconds']:.1f} s", verbose)

    def lstm():
        model = Forecaster(holdout, levels, verbose=verbose, **(forecaster or {}))
        return model.fit(train).predict().values

    run("lstm", lstm)
    for name, fn in baselines.BASELINES.items():
        run(name, lambda fn=fn: fn(history, holdout, season, levels))
    if use_ets is None:
        try:
            import statsmodels  # noqa: F401

            use_ets = True
        except ImportError:
            use_ets = False
            notes.append(
                "ETS skipped: statsmodels is not installed (pip install bundlerec[bench])"
            )
    if use_ets:

        def ets():
            forecasts, missed = baselines.ets(history, holdout, season, levels)
            if missed:
                notes.append(f"ETS: {missed} of {n} series could not be fitted; seasonal naive")
            return forecasts

        run("ets", ets)
    undefined = n - results["lstm"]["mase_series"]
    if undefined:
        notes.append(f"MASE: {undefined} of {n} series have a constant history (scale 0)")
    return {"freq": grid.freq, "holdout": int(holdout), "series": n, "season": season,
            "results": results, "notes": notes}  # fmt: skip


def to_table(report: dict[str, Any]) -> str:
    """The backtest as a text table, one row per method."""
    columns = ("mase", "wape", "smape", "pinball", "coverage_p90", "seconds")
    lines = [
        f"backtest: {report['series']} series, last {report['holdout']} periods held out "
        f"(freq {report['freq']}, season {report['season']})",
        "  ".join(["method".ljust(16), *(c.rjust(12) for c in columns)]),
    ]
    for name, row in report["results"].items():
        cells = [f"{row[c]:.4f}".rjust(12) for c in columns]
        lines.append("  ".join([name.ljust(16), *cells]))
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)
