"""Command line: ``bundlerec demo | train | evaluate | recommend``.

``bundlerec demo`` trains on the built-in synthetic shop and prints the evaluation table and five
example bundles; ``train`` and ``evaluate`` work on a shop's own files (docs/data.md);
``recommend`` prints bundles for one shopper from a saved model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]


def _print_bundles(result: dict[str, Any], out=sys.stdout) -> None:
    print(f"bundles for shopper {result['user']}:", file=out)
    for n, b in enumerate(result["bundles"], 1):
        price = "n/a" if b["total_price"] is None else f"{b['total_price']:.2f}"
        print(
            f"  {n}. total {price}  P(bought together) = {b['probability']:.3g}  "
            f"score {b['score']:.3f}",
            file=out,
        )
        for item, why in zip(b["items"], b["explanation"]):
            p = "n/a" if item["price"] is None else f"{item['price']:.2f}"
            reason = (
                f"because {why['because']} (x{why['ratio']:.2f})"
                if why.get("because")
                else why.get("note", "")
            )
            print(
                f"     - {item['item_id']:<12} {item['category']:<16} {p:>8}  {reason}", file=out
            )
    for note in result["notes"]:
        print(f"  note: {note}", file=out)


def _report(report, fmt: str, k: int) -> None:
    if fmt == "json":
        print(json.dumps(report.to_json()))
    else:
        print(report.to_table(k=k))


def _evaluate(model, cases, protocol: str):
    from bundlerec.evaluation import evaluate

    names = model.scorers()
    if protocol != "next-item":
        names.pop("transition")
    return evaluate(names, cases, ks=(5, 10, 20), protocol=protocol)


def cmd_demo(args: argparse.Namespace) -> int:
    from bundlerec.datasets import synthetic_shop
    from bundlerec.prep import split_leave_last_out
    from bundlerec.recommender import Recommender

    t0 = time.perf_counter()
    events, items, users = synthetic_shop(seed=args.seed)
    print(
        f"synthetic shop: {len(events)} events, {events['user_id'].nunique()} shoppers, "
        f"{len(items)} items in {items['category'].nunique()} categories (seed {args.seed})"
    )
    train, test = split_leave_last_out(events)
    model = Recommender(task="next-item", seed=args.seed, verbose=not args.quiet)
    model.fit(train, items, users)
    report = _evaluate(model, model.cases(test, "next-item"), "next-item")
    print()
    _report(report, "table", 10)
    print()
    rng = np.random.default_rng(args.seed)
    shoppers = rng.choice(np.asarray(model.users.classes_, dtype=object), size=5, replace=False)
    for user in shoppers:
        _print_bundles(model.recommend_bundles(user, k=1, size=3, budget=args.budget))
    if args.out:
        model.save(args.out)
        print(f"\nmodel saved to {args.out}")
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")
    return 0


def _read_any(path: str, fmt: str):
    from bundlerec import data

    if fmt == "arff":
        return data.load_arff_baskets(path)[0]
    if fmt == "movielens":
        return data.load_movielens(path)
    if fmt == "recbole":
        return data.load_recbole(path)[0]
    return data.load_events(path)


def cmd_split(args: argparse.Namespace) -> int:
    from bundlerec import prep

    events = _read_any(args.events, args.format)
    if args.protocol == "next-item":
        train, test = prep.split_leave_last_out(events)
    elif args.protocol == "time":
        train, test = prep.split_global_time(events, test_share=args.test_share)
    else:
        with_baskets = prep.clean(events)
        train, test = prep.split_baskets(with_baskets, args.test_share, args.seed)
        # Keep the baskets found in the whole log, so both parts agree on them.
        train = train.assign(basket_id=train["basket"].astype(str)).drop(columns="basket")
        test = test.assign(basket_id=test["basket"].astype(str)).drop(columns="basket")
    for frame, path in ((train, args.train), (test, args.test)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
    print(f"{len(train)} training and {len(test)} test events written", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bundlerec.recommender import Recommender

    model = Recommender(
        task=args.task,
        seed=args.seed,
        verbose=not args.quiet,
        sequence={"epochs": args.epochs} if args.epochs else None,
        network={"n_top": args.n_top},
    )
    model.fit(args.events, args.items, args.users)
    model.save(args.out)
    print(f"model saved to {args.out}", file=sys.stderr)
    return 0


def _bundle_table(result: dict[str, Any]) -> str:
    metrics = ("coverage", "precision", "hit", "ece", "mean_probability", "outcome_rate")
    lines = [
        f"protocol: bundle   cases: {result['n_cases']}   bundle size: {result['size']}",
        "  ".join(["method".ljust(12), *(m.rjust(16) for m in metrics)]),
    ]
    for name, values in result["results"].items():
        lines.append("  ".join([name.ljust(12), *(f"{values[m]:.4f}".rjust(16) for m in metrics)]))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bundlerec.recommender import Recommender

    model = Recommender.load(args.model)
    if args.protocol == "bundle":
        from bundlerec.bundle_eval import evaluate_bundles

        result = evaluate_bundles(model, args.events, seed=args.seed)
        print(json.dumps(result) if args.format == "json" else _bundle_table(result))
        return 0
    cases = model.cases(args.events, args.protocol, seed=args.seed, horizon=args.horizon)
    _report(_evaluate(model, cases, args.protocol), args.format, args.k)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from bundlerec.recommender import Recommender

    model = Recommender.load(args.model)
    result = model.recommend_bundles(
        args.user,
        k=args.k,
        size=args.size,
        anchor=args.anchor or None,
        budget=args.budget,
        max_per_category=args.max_per_category,
    )
    if args.format == "json":
        print(json.dumps(result))
    else:
        _print_bundles(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bundlerec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train and evaluate on the built-in synthetic shop")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", type=Path, help="also save the trained model here")
    demo.add_argument("--budget", type=float, default=60.0, help="budget of the example bundles")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    split = sub.add_parser("split", help="split an event log into train and test CSV files")
    split.add_argument("--events", required=True, help="events file")
    split.add_argument(
        "--format",
        choices=("table", "arff", "movielens", "recbole"),
        default="table",
        help="table: CSV/Parquet events (docs/data.md); arff: basket file; movielens: ratings",
    )
    split.add_argument(
        "--protocol",
        choices=("next-item", "time", "baskets"),
        required=True,
        help="next-item: each user's last event; time: a global cut; baskets: held-out baskets",
    )
    split.add_argument("--test-share", type=float, default=0.2)
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--train", required=True, help="training CSV to write")
    split.add_argument("--test", required=True, help="test CSV to write")
    split.set_defaults(func=cmd_split)

    train = sub.add_parser("train", help="train on a shop's events and save a model directory")
    train.add_argument("--events", required=True, help="events CSV/Parquet (docs/data.md)")
    train.add_argument("--items", help="items CSV/Parquet")
    train.add_argument("--users", help="users CSV/Parquet")
    train.add_argument("--out", required=True, type=Path, help="model directory to write")
    train.add_argument("--task", choices=("next-item", "basket-completion"), default="next-item")
    train.add_argument(
        "--epochs", type=int, help="sequence-model epochs (default: early stopping)"
    )
    train.add_argument("--n-top", type=int, default=150, help="items in the co-purchase network")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="rank held-out events against the baselines")
    ev.add_argument("--model", required=True, type=Path)
    ev.add_argument("--events", required=True, help="held-out events CSV/Parquet")
    ev.add_argument(
        "--protocol", choices=("next-item", "basket-completion", "bundle"), required=True
    )
    ev.add_argument("--k", type=int, default=10, help="cut-off shown in the table")
    ev.add_argument("--format", choices=("table", "json"), default="table")
    ev.add_argument("--seed", type=int, default=0, help="which basket item is hidden")
    ev.add_argument(
        "--horizon", type=int, help="next-item: only each user's first N test rows are targets"
    )
    ev.set_defaults(func=cmd_evaluate)

    rec = sub.add_parser("recommend", help="bundles for one shopper from a saved model")
    rec.add_argument("--model", required=True, type=Path)
    rec.add_argument("--user", required=True)
    rec.add_argument("--anchor", action="append", help="an item in the cart (repeatable)")
    rec.add_argument("--k", type=int, default=5)
    rec.add_argument("--size", type=int, default=3)
    rec.add_argument("--budget", type=float)
    rec.add_argument("--max-per-category", type=int, default=1)
    rec.add_argument("--format", choices=("table", "json"), default="table")
    rec.set_defaults(func=cmd_recommend)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return args.func(args)
    except (KeyError, ValueError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"bundlerec {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
