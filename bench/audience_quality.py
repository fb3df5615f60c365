"""Audience quality on a time split against two baselines (issue 13), on the synthetic shop
and MovieLens (when its ratings file is given). Not a test and not a timing benchmark.

The events are split at one moment (the 80 % quantile of the timestamps, as
``bundlerec split --protocol time``); the Recommender is fitted on the earlier events and each
item's audience is scored against the shoppers who bought it later
(:func:`bundlerec.audience_eval.evaluate_audiences`): precision@N, recall@N and AUC of
bundlerec's audience (its default: buying within 30 days), its next-purchase probability, its
probability of buying within the test period's length (for reference only: a campaign does not
know it in advance), "most active shoppers" and item-kNN reversed, in the same run.

Usage::

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/audience_quality.py \\
        [--ml-ratings ratings.csv --ml-items items.csv] [--n 50]

Nothing is tuned here: the calibration is fitted inside ``fit`` on its own validation cases.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bundlerec import data, prep
from bundlerec.audience import HORIZON_DAYS
from bundlerec.audience_eval import evaluate_audiences
from bundlerec.datasets import synthetic_shop
from bundlerec.recommender import Recommender

TEST_SHARE = 0.2
MIN_BUYERS = (5, 2)  # evaluated items: at least this many new buyers in the test period


def median_trip_gap(model: Recommender) -> float:
    """Median gap in days between a shopper's consecutive purchase trips (purchases more than
    the model's session window apart) in the training history: a horizon derived from the
    training data alone."""
    h = model.history
    bought = h.event == 3
    user, time_ = h.user[bought], h.timestamp[bought]
    order = np.lexsort((time_, user))
    user, time_ = user[order], time_[order]
    gaps = np.diff(time_)[(user[1:] == user[:-1]) & (np.diff(time_) > model.window)]
    return float(np.median(gaps)) / 86_400 if gaps.size else float("nan")


def report(name: str, events, items, users, n: int, seed: int = 0, horizons: tuple = ()) -> str:
    """Fit on the first 80 % of the time, evaluate the audiences on the rest; a text table."""
    train, test = prep.split_global_time(events, test_share=TEST_SHARE)
    start = time.perf_counter()
    model = Recommender(seed=seed).fit(train, items, users)
    fitted = time.perf_counter() - start
    span = (test["timestamp"].max() - test["timestamp"].min()) / 86_400
    gap = median_trip_gap(model)
    lines = [
        f"{name}: fit {fitted:.0f} s; test period {span:.1f} days (rows bundlerec_{span:g}d, "
        f"reference only); median gap between trips in training {gap:.1f} days "
        f"(rows bundlerec_{gap:g}d); bundlerec = {HORIZON_DAYS:g} days, the default"
    ]
    for min_buyers in MIN_BUYERS:
        result = evaluate_audiences(
            model,
            test,
            n=n,
            min_buyers=min_buyers,
            seed=seed,
            horizons=(*horizons, gap, span),
        )
        lines += [
            f"{name}: {result['n_items']} items with >= {min_buyers} new buyers, "
            f"{result['n_shoppers']} shoppers, N = {n}",
            f"{'method':<24}{'precision@N':>12}{'recall@N':>12}{'AUC':>8}",
        ]
        for method, m in result["results"].items():
            lines.append(
                f"{method:<24}{m['precision']:>12.4f}{m['recall']:>12.4f}{m['auc']:>8.4f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml-ratings", help="MovieLens ratings.csv")
    parser.add_argument("--ml-items", help="items CSV (item_id, category) for MovieLens")
    parser.add_argument("--n", type=int, default=50, help="audience size N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-synthetic", action="store_true", help="MovieLens only")
    parser.add_argument(
        "--horizons",
        default="7,90,365",
        help="comma-separated horizons (days) also scored, beside the default, the test "
        "period's length and the median gap between trips",
    )
    args = parser.parse_args()
    horizons = tuple(float(h) for h in args.horizons.split(",") if h)
    if not args.skip_synthetic:
        events, items, users = synthetic_shop(seed=args.seed)
        print(
            report("synthetic shop", events, items, users, args.n, args.seed, horizons), flush=True
        )
    if args.ml_ratings:
        ratings = data.load_movielens(args.ml_ratings)
        items = data.load_items(args.ml_items) if args.ml_items else None
        print()
        print(report("MovieLens", ratings, items, None, args.n, args.seed, horizons))
    else:
        print("\nMovieLens: skipped (no --ml-ratings given)")


if __name__ == "__main__":
    main()
