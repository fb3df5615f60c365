"""``bundlerec forecast``: demand forecasts per item, a reorder table, or a backtest.

Forecast: ``--events FILE --horizon H --freq D|W|M|Q [--quantiles 0.5,0.9]`` prints a CSV
(``item_id, period, p50, p90``) or, with ``--format json``,
``{"freq", "horizon", "forecasts": [{"item_id", "period", "p50", "p90"}]}``; ``--out FILE``
writes it to a file instead. ``--stock FILE --lead-time L`` adds the reorder table (JSON key
``reorder``; with CSV output it goes to ``--reorder-out FILE``). ``--plot PNG`` draws chosen
items. ``--evaluate --holdout H`` backtests the forecaster and the baselines on the last H
periods instead (a table, or JSON).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

from bundlerec.cli import _check_output_file, _positive, _write_csv


def _levels(text: str) -> tuple[float, ...]:
    from bundlerec.forecast.model import check_quantiles

    try:
        return check_quantiles(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"expected levels strictly between 0 and 1 such as 0.5,0.9; got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _write_text(text: str, path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)


def _finite(value):
    """``value`` with every non-finite float (an undefined metric) replaced by None: JSON has
    no NaN."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _read(path: str, encoding: str | None):
    from bundlerec.data import read_table

    return read_table(path, text_columns=["item_id"], encoding=encoding)


def cmd_forecast(args: argparse.Namespace) -> int:
    from bundlerec.forecast import Forecaster, to_grid
    from bundlerec.forecast.backtest import backtest, to_table
    from bundlerec.progress import say

    verbose = not args.quiet
    if args.evaluate and args.holdout is None:
        raise ValueError("--evaluate needs --holdout H (the periods held out)")
    if not args.evaluate and args.horizon is None:
        raise ValueError("give --horizon H (or --evaluate --holdout H for a backtest)")
    if args.lead_time is not None and args.stock is None:
        raise ValueError("--lead-time needs --stock FILE (item_id, on_hand)")
    if args.stock is not None and args.lead_time is None:
        raise ValueError("--stock needs --lead-time L (periods until an order arrives)")
    if args.stock and args.format == "csv" and not args.reorder_out:
        raise ValueError("with --stock, give --reorder-out FILE for the CSV, or --format json")
    for path in (args.out, args.reorder_out, args.plot):
        if path:
            _check_output_file(path)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib: pip install 'bundlerec[plot]'")
    options = {"seed": args.seed}
    if args.epochs:
        options["epochs"] = args.epochs
    if args.ensemble:
        options["n_models"] = args.ensemble
    grid = to_grid(_read(args.events, args.encoding), args.freq, end=args.end)
    say(f"{len(grid.items)} items x {grid.values.shape[1]} periods ({grid.freq})", verbose)

    if args.evaluate:
        use_ets = False if args.no_ets else None
        report = backtest(grid, args.holdout, args.quantiles, options, use_ets, verbose)
        text = json.dumps(_finite(report)) if args.format == "json" else to_table(report)
        if args.out:
            _write_text(text + "\n", args.out)
        else:
            print(text)
        return 0

    levels = set(args.quantiles) | ({0.9} if args.stock else set())
    if args.plot:
        levels |= {0.1, 0.9}
    model = Forecaster(args.horizon, sorted(levels), verbose=verbose, **options).fit(grid)
    forecast = model.predict()
    reorder = None
    if args.stock:
        from bundlerec.forecast.reorder import read_stock, reorder_table

        reorder = reorder_table(forecast, read_stock(_read(args.stock, args.encoding)),
                                args.lead_time)  # fmt: skip
    if args.plot:
        from bundlerec.forecast.plot import plot_forecast

        items = args.plot_items.split(",") if args.plot_items else _top_items(grid, 3)
        plot_forecast(grid, forecast, items, args.plot)
        say(f"plot written to {args.plot}", verbose)
    if args.format == "json":
        result = forecast.to_json(args.quantiles)
        if reorder is not None:
            result["reorder"] = reorder.to_dict(orient="records")
        text = json.dumps(result)
        if args.out:
            _write_text(text + "\n", args.out)
        else:
            print(text)
        return 0
    frame = forecast.to_frame(args.quantiles)
    if args.out:
        _write_csv(frame, args.out)
    else:
        frame.to_csv(sys.stdout, index=False)
    if reorder is not None:
        _write_csv(reorder, args.reorder_out)
    return 0


def _top_items(grid, k: int) -> list[str]:
    order = grid.values.sum(axis=1).argsort()[::-1][:k]
    return [str(grid.items[i]) for i in order]


def register(subparsers) -> None:
    """Add ``bundlerec forecast`` to the CLI."""
    p = subparsers.add_parser(
        "forecast", help="forecast each item's demand (quantiles), reorder table, or backtest"
    )
    p.add_argument(
        "--events",
        required=True,
        help="sales CSV/Parquet: item_id, timestamp[, quantity, price, promo]",
    )
    p.add_argument("--horizon", type=_positive(int), help="periods to forecast")
    p.add_argument(
        "--freq",
        type=str.upper,
        choices=("D", "W", "M", "Q"),
        default="D",
        help="period: day, week (from Monday), month or quarter (default D)",
    )
    p.add_argument(
        "--quantiles", type=_levels, default=(0.5, 0.9), help="levels to output (default 0.5,0.9)"
    )
    p.add_argument("--stock", help="stock CSV/Parquet: item_id, on_hand (adds a reorder table)")
    p.add_argument(
        "--lead-time", type=_positive(int), help="periods until an order placed now arrives"
    )
    p.add_argument("--out", help="file to write the forecast (or backtest) to instead of stdout")
    p.add_argument("--reorder-out", help="CSV to write the reorder table to (CSV output)")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="backtest on the last --holdout periods against naive, seasonal naive, "
        "moving average and ETS (with statsmodels)",
    )
    p.add_argument("--holdout", type=_positive(int), help="periods held out by --evaluate")
    p.add_argument("--no-ets", action="store_true", help="--evaluate without the ETS peer")
    p.add_argument("--plot", help="PNG of history, P50 and the P10-P90 band (needs matplotlib)")
    p.add_argument("--plot-items", help="comma-separated items to plot (default: top 3 by sales)")
    p.add_argument("--end", help="last date the history covers (trailing periods are zeros)")
    p.add_argument("--epochs", type=_positive(int), help="most training epochs (default 40)")
    p.add_argument(
        "--ensemble", type=_positive(int), help="models averaged (default 3; 1 is 3x faster)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoding", help="text encoding of the input files (default UTF-8)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=cmd_forecast)
