"""Quality of the learned models against the baselines on real data (issue 4).

Reproduces the tables of the report with the library (the same steps as ``bundlerec train`` and
``bundlerec evaluate``): supermarket.arff for basket completion, MovieLens latest-small for the
next item, and the synthetic shop of ``bundlerec demo`` for both (next item: each shopper's last
event held out; basket completion: 20% of its baskets, seed ``--seed``, as ``bundlerec split
--protocol baskets``). Not a test and not a timing benchmark.

Usage (files made by ``bundlerec split``, see docs/evaluation.md)::

    python bench/quality.py --sm-train sm_train.csv --sm-test sm_test.csv \\
        --ml-train ml_train.csv --ml-test ml_test.csv --ml-items items.csv [--tune]

``--tune`` never reads the test files: it splits each *training* file once more (the same
protocol: each user's last event, or 20% of the baskets) and reports on that inner split, which
is where every design choice and default of the models was made. A data set whose files are
not given is skipped with a message. ``--tune --completion-grid`` instead fits one Recommender per
``l2`` of its pairwise network (the fusion's ``pairwise`` component; ``Recommender(pairwise=)``)
on the basket-completion inner splits (supermarket and the synthetic shop) and prints NDCG@10 of
that component and of the fusion, and the value with the best mean fusion NDCG@10 over the two.
Each table ends with the paired per-case difference of NDCG@10, fusion minus EASE and fusion minus
the best other baseline, with the standard error of its mean. ``--no-ease`` fits the
Recommender with ``ease=None`` (the fusion without its EASE component, as before it had one).
Thread count: ``NUMBA_NUM_THREADS`` (use 1 on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bundlerec import data, prep
from bundlerec.datasets import synthetic_shop
from bundlerec.evaluation import evaluate
from bundlerec.metrics import ndcg_at_k, top_k
from bundlerec.recommender import Recommender

TUNE_SHARE = 0.2
BC = "basket-completion"
COMPLETION_GRID = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)


def _split(events: pd.DataFrame, task: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split events with the protocol of the task (as ``bundlerec split``)."""
    if task == "next-item":
        return prep.split_leave_last_out(events)
    train, test = prep.split_baskets(prep.clean(events), TUNE_SHARE, seed)
    as_ids = lambda part: part.assign(basket_id=part["basket"].astype(str)).drop(columns="basket")  # noqa: E731
    return as_ids(train), as_ids(test)


BASELINES = ("popularity", "cooccurrence", "itemknn", "ease", "rules", "transition")


def _per_case_ndcg(scorer, cases) -> np.ndarray:
    """(n,) float64 NDCG@10 of each case (the means of ``evaluate``)."""
    return ndcg_at_k(top_k(np.asarray(scorer.score(cases)), 10, cases.exclude), cases.targets, 10)


def paired(scorers: dict, cases, report) -> str:
    """Mean per-case NDCG@10 difference, fusion minus EASE and minus the best other baseline
    (by mean NDCG@10), each with the standard error of the mean difference."""
    results = report.to_json()["results"]
    others = [b for b in BASELINES if b in scorers and b != "ease"]
    best = max(others, key=lambda b: results[b]["ndcg@10"])
    fused = _per_case_ndcg(scorers["fusion"], cases)
    parts = []
    for name in ("ease", best):
        diff = fused - _per_case_ndcg(scorers[name], cases)
        parts.append(f"{name} {diff.mean():+.4f} (SE {diff.std() / np.sqrt(diff.size):.4f})")
    return "paired NDCG@10, fusion minus: " + ", ".join(parts)


def table(
    train: pd.DataFrame | str,
    test: pd.DataFrame | str,
    task: str,
    items: pd.DataFrame | str | None = None,
    users: pd.DataFrame | str | None = None,
    seed: int = 0,
    ease: bool = True,
) -> str:
    """Fit a Recommender on ``train``, evaluate all seven models on ``test``; the text table
    (``ease=False``: the fusion without its EASE component)."""
    start = time.perf_counter()
    options = {} if ease else {"ease": None}
    model = Recommender(task=task, seed=seed, verbose=False, **options)
    model.fit(train, items, users)
    fitted = time.perf_counter() - start
    scorers = model.scorers()
    if task != "next-item":
        scorers.pop("transition")  # the CLI leaves it out of basket completion too
    cases = model.cases(test, task)
    report = evaluate(scorers, cases, ks=(5, 10, 20), protocol=task)
    weights = ", ".join(f"{k} {v:.3f}" for k, v in model.fusion.weights.items())
    return (
        f"{report.to_table(10)}\nfit {fitted:.0f} s; fusion weights: {weights}\n"
        f"{paired(scorers, cases, report)}"
    )


def completion_grid(sets: dict[str, tuple], grid: list[float], seed: int) -> None:
    """NDCG@10 of the pairwise network and the fusion at each ``l2`` of ``grid``.

    ``sets`` maps a name to ``(train, test, items, users)`` of basket completion.
    """
    means = {}
    for l2 in grid:
        fused = []
        for name, (train, test, items, users) in sets.items():
            model = Recommender(task=BC, seed=seed, pairwise={"l2": l2})
            model.fit(train, items, users)
            scorers = {"pairwise": model.pairwise, "fusion": model.fusion}
            cases = model.cases(test, BC)
            ndcg = evaluate(scorers, cases, ks=(10,)).to_json()["results"]
            fused.append(ndcg["fusion"]["ndcg@10"])
            weights = ", ".join(f"{k} {v:.3f}" for k, v in model.fusion.weights.items())
            print(
                f"l2={l2:g} {name}: pairwise {ndcg['pairwise']['ndcg@10']:.4f}, "
                f"fusion {fused[-1]:.4f} (weights: {weights})",
                flush=True,
            )
        means[l2] = sum(fused) / len(fused)
    best = max(means, key=lambda v: (means[v], -v))
    print(f"best mean fusion NDCG@10 {means[best]:.4f} at l2={best:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("sm-train", "sm-test", "ml-train", "ml-test", "ml-items"):
        parser.add_argument(f"--{name}")
    parser.add_argument("--tune", action="store_true", help="inner split of the training files")
    parser.add_argument(
        "--completion-grid",
        nargs="?",
        const=",".join(map(str, COMPLETION_GRID)),
        help="with --tune: the pairwise network's l2 grid (comma-separated; default the grid)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ease", action="store_true", help="the fusion without EASE")
    args = parser.parse_args()
    if args.completion_grid:
        if not (args.tune and args.sm_train):
            parser.error("--completion-grid needs --tune and --sm-train")
        events, items, users = synthetic_shop(seed=args.seed)
        sets = {
            "supermarket": (*_split(data.load_events(args.sm_train), BC, args.seed), None, None),
            "synthetic shop": (
                *_split(_split(events, BC, args.seed)[0], BC, args.seed),
                items,
                users,
            ),
        }
        completion_grid(sets, [float(v) for v in args.completion_grid.split(",")], args.seed)
        return
    runs = [
        ("supermarket", "sm", "basket-completion", args.sm_train, args.sm_test, None),
        ("MovieLens", "ml", "next-item", args.ml_train, args.ml_test, args.ml_items),
    ]
    for name, flag, task, train, test, items in runs:
        if train is None or (test is None and not args.tune):
            print(f"{name}: skipped (no --{flag}-train / --{flag}-test files given)\n")
            continue
        if args.tune:
            train, test = _split(data.load_events(train), task, args.seed)
        where = "inner split of the training file" if args.tune else "test file"
        result = table(train, test, task, items, seed=args.seed, ease=not args.no_ease)
        print(f"{name}, {task}, {where}:\n{result}\n", flush=True)
    events, items, users = synthetic_shop(seed=args.seed)
    for task in ("next-item", "basket-completion"):
        train, test = _split(events, task, args.seed)
        if args.tune:
            train, test = _split(train, task, args.seed)
        result = table(train, test, task, items, users, seed=args.seed, ease=not args.no_ease)
        print(f"synthetic shop, {task}:\n{result}\n", flush=True)


if __name__ == "__main__":
    main()
