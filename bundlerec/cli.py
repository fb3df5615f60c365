"""Command line: ``bundlerec demo | split | train | evaluate | recommend`` and the commands of
``bundlerec.commands`` (``audience | batch | forecast | serve | update``).

``bundlerec demo`` trains on the built-in synthetic shop and prints the evaluation table and five
example bundles; ``split``, ``train`` and ``evaluate`` work on a shop's own files (docs/data.md);
``recommend`` prints bundles for one shopper from a saved model. The other commands are one module
each in ``bundlerec/commands/`` (see :func:`_command_modules`).

Every command checks its destinations before any work, turns bad input and OS errors into one
line on stderr with exit code 2, ends quietly with exit code 130 on Ctrl-C and without a traceback
when its output pipe closes; stdout carries only the results (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import corenn
from bundlerec.data import DataError
from bundlerec.files import writable_place, write_atomically
from bundlerec.model_dir import check_destination
from bundlerec.progress import bar, say

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a closed output pipe


def _lift_words(bundle: dict[str, Any]) -> str:
    lift, together = bundle["lift"], bundle["baskets_together"]
    if lift is None:
        return "a single item"
    if together == 0:
        return "never bought together yet"
    return f"bought together {lift:.1f}x as often as by chance ({together} baskets)"


def _print_bundles(result: dict[str, Any], out=None) -> None:
    out = out or sys.stdout
    print(f"bundles for shopper {result['user']}:", file=out)
    for n, b in enumerate(result["bundles"], 1):
        price = "n/a" if b["total_price"] is None else f"{b['total_price']:.2f}"
        which = "companion" if b["anchor"] else "item"
        print(
            f"  {n}. total {price}; {_lift_words(b)}; P(buys at least one {which}) "
            f"{b['p_any_companion']:.2f}; expected revenue {b['expected_revenue']:.2f}",
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


def _evaluate(model, cases, protocol: str, k: int, verbose: bool):
    from bundlerec.evaluation import evaluate

    names = model.scorers()
    if protocol != "next-item":
        names.pop("transition")
    ks = sorted({5, 10, 20, k})
    return evaluate(names, cases, ks=ks, protocol=protocol, verbose=verbose)


def _announce_compilation(enabled: bool) -> Callable[[], None]:
    """Print one line the first time a kernel compiles (a fresh install's first run)."""
    told = False

    def tell(_: str) -> None:
        nonlocal told
        if not told:
            told = True
            say("compiling kernels (first run only; later runs load them from a cache)", enabled)

    return corenn.on_kernel_compile(tell)


def _check_output_file(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output file that is a directory or cannot be written."""
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise DataError(f"{path} is a directory; name a file to write")
    writable_place(target)


def _write_csv(frame, path: str | os.PathLike) -> None:
    """Write ``frame`` to ``path`` via a temporary sibling: a failure leaves no half file."""
    write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))


def _key_file(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--key-file``: the shoppers' pseudonym key (:mod:`bundlerec.privacy`)."""
    parser.add_argument(
        "--key-file",
        help=f"file holding the pseudonym key of shopper ids (default: the "
        f"BUNDLEREC_PSEUDONYM_KEY variable, if set); {what}",
    )


def _load_model(args: argparse.Namespace, need_key: bool = True):
    """The model directory ``args.model`` with the pseudonym key of ``args.key_file`` (or the
    environment variable, see :meth:`Recommender.load`).

    Raises
    ------
    ValueError
        With ``need_key``, when the model holds pseudonyms and no key was given; a key of another
        model, or a key for a model of raw ids (:class:`~bundlerec.model_dir.ModelDirError`).
    """
    from bundlerec.privacy import KEY_ENV, Pseudonymizer
    from bundlerec.recommender import Recommender

    key_file = getattr(args, "key_file", None)
    key = None if key_file is None else Pseudonymizer.from_file(key_file)
    model = Recommender.load(args.model, key)
    if need_key and model.key_check is not None and model.pseudonymizer is None:
        raise ValueError(
            f"{args.model}: the model holds pseudonyms of shopper ids (key check "
            f"{model.key_check}); give its key with --key-file or the {KEY_ENV} variable"
        )
    return model


def cmd_demo(args: argparse.Namespace) -> int:
    from bundlerec.datasets import synthetic_shop
    from bundlerec.prep import split_leave_last_out
    from bundlerec.recommender import Recommender

    verbose = not args.quiet
    if args.out:
        check_destination(args.out)
    t0 = time.perf_counter()
    events, items, users = synthetic_shop(seed=args.seed)
    print(
        f"synthetic shop: {len(events)} events, {events['user_id'].nunique()} shoppers, "
        f"{len(items)} items in {items['category'].nunique()} categories (seed {args.seed})"
    )
    train, test = split_leave_last_out(events)
    model = Recommender(task="next-item", seed=args.seed, verbose=verbose)
    model.fit(train, items, users)
    report = _evaluate(model, model.cases(test, "next-item"), "next-item", 10, verbose)
    print()
    _report(report, "table", 10)
    print()
    rng = np.random.default_rng(args.seed)
    shoppers = rng.choice(np.asarray(model.users.classes_, dtype=object), size=5, replace=False)
    results = [
        model.recommend_bundles(user, k=1, size=3, budget=args.budget)
        for user in bar(shoppers, desc="composing example bundles", enabled=verbose)
    ]
    for result in results:
        _print_bundles(result)
    # A "bought together" widget: a visitor (not a known shopper) looks at a popular product.
    popular = np.bincount(model.history.item, minlength=model.history.n_items).argmax()
    anchor = str(model.items.classes_[popular])
    print(f"\nbought together with {anchor}, for a visitor:")
    _print_bundles(model.recommend_bundles("visitor", k=2, size=3, anchor=[anchor]))
    if args.out:
        model.save(args.out)
        print(f"\nmodel saved to {args.out}")
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")
    return 0


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`bundlerec.data.load_events` from the data options."""
    return {
        "dayfirst": args.dayfirst,
        "timestamp_format": args.timestamp_format,
        "encoding": args.encoding,
    }


def _read_any(path: str, fmt: str, options: dict[str, Any]):
    from bundlerec import data

    encoding = options["encoding"]
    if fmt == "arff":
        return data.load_arff_baskets(path, encoding=encoding)[0]
    if fmt == "movielens":
        return data.load_movielens(path, encoding=encoding)
    if fmt == "recbole":
        return data.load_recbole(path, encoding=encoding)[0]
    return data.load_events(path, **options)


def cmd_split(args: argparse.Namespace) -> int:
    from bundlerec import prep

    for path in (args.train, args.test):
        _check_output_file(path)
    events = _read_any(args.events, args.format, _load_options(args))
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
        _write_csv(frame, path)
    print(f"{len(train)} training and {len(test)} test events written", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bundlerec.batch.cluster import engine_client
    from bundlerec.batch.counting import count_interactions
    from bundlerec.data import load_events, load_items, load_users
    from bundlerec.privacy import load_key
    from bundlerec.recommender import Recommender

    check_destination(args.out)
    pseudonymizer = load_key(args.key_file)
    events = load_events(args.events, **_load_options(args))
    items = None if args.items is None else load_items(args.items, encoding=args.encoding)
    users = None if args.users is None else load_users(args.users, encoding=args.encoding)
    model = Recommender(
        task=args.task,
        seed=args.seed,
        verbose=not args.quiet,
        sequence={"epochs": args.epochs} if args.epochs else None,
        network={"n_top": args.n_top},
    )
    with engine_client(args) as client:  # --engine dask: the baskets are counted on the cluster
        count = None if client is None else partial(count_interactions, client=client)
        model.fit(
            events,
            items,
            users,
            promotions=args.promotions,
            stock=args.stock,
            pseudonymizer=pseudonymizer,
            count_baskets=count,
        )
    model.save(args.out)
    print(f"model saved to {args.out}", file=sys.stderr)
    if pseudonymizer is not None:
        say(f"shopper ids are pseudonyms (key check {pseudonymizer.check})", not args.quiet)
    return 0


def _bundle_table(result: dict[str, Any]) -> str:
    metrics = ("coverage", "precision", "hit", "ece", "mean_probability", "outcome_rate")
    lines = [
        f"protocol: bundle   cases: {result['n_cases']}   bundle size: {result['size']}",
        "  ".join(["method".ljust(12), *(m.rjust(16) for m in metrics)]),
    ]
    for name, values in result["results"].items():
        lines.append("  ".join([name.ljust(12), *(f"{values[m]:.4f}".rjust(16) for m in metrics)]))
    plus_two = result.get("anchor_plus_2")
    if plus_two:
        lines += [
            "",
            f"anchor + 2: share of the 2 companions in the basket ({plus_two['n_cases']} cases)",
        ]
        lines += [f"{name.ljust(16)}{share:.4f}" for name, share in plus_two["results"].items()]
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bundlerec.data import load_events

    model = _load_model(args)
    events = load_events(args.events, **_load_options(args))
    if args.protocol == "bundle":
        from bundlerec.bundle_eval import evaluate_bundles

        result = evaluate_bundles(model, model.to_model_ids(events), seed=args.seed)
        print(json.dumps(result) if args.format == "json" else _bundle_table(result))
        return 0
    cases = model.cases(events, args.protocol, seed=args.seed, horizon=args.horizon)
    _report(_evaluate(model, cases, args.protocol, args.k, not args.quiet), args.format, args.k)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    model = _load_model(args)
    model.set_campaign(promotions=args.promotions, stock=args.stock)
    result = model.recommend_bundles(
        args.user,
        k=args.k,
        size=args.size,
        anchor=args.anchor or None,
        cart=args.cart or None,
        budget=args.budget,
        max_per_category=args.max_per_category,
        objective=args.objective,
        promote_share=args.promote_share,
        favour_overstock=args.favour_overstock,
        now=args.now,
    )
    if args.format == "json":
        print(json.dumps(result))
    else:
        _print_bundles(result)
    return 0


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _share(text: str) -> float:
    """A number in [0, 1] (a share or a probability) for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _campaign_files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--promotions",
        help="promotions CSV/Parquet: item_id, promo_price or discount, start, end",
    )
    parser.add_argument(
        "--stock", help="stock CSV/Parquet: item_id, on_hand (items with 0 never appear)"
    )


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dayfirst",
        action="store_true",
        help="slash dates are day/month/year (default month/day/year); see docs/data.md",
    )
    parser.add_argument(
        "--timestamp-format",
        help="strftime format of the timestamp column, e.g. %%d.%%m.%%Y %%H:%%M",
    )
    parser.add_argument(
        "--encoding",
        help="text encoding of the input files (default UTF-8, latin-1 with a warning if not)",
    )


def build_parser() -> argparse.ArgumentParser:
    from bundlerec.batch.cluster import add_engine_options

    parser = argparse.ArgumentParser(prog="bundlerec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train and evaluate on the built-in synthetic shop")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", type=Path, help="also save the trained model here")
    demo.add_argument(
        "--budget", type=_positive(float), default=60.0, help="budget of the example bundles"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    demo.set_defaults(func=cmd_demo)

    split = sub.add_parser("split", help="split an event log into train and test CSV files")
    split.add_argument("--events", required=True, help="events file")
    split.add_argument(
        "--format",
        choices=("table", "arff", "movielens", "recbole"),
        default="table",
        help="table: CSV/Parquet/ARFF events (docs/data.md); arff: basket file; "
        "movielens: ratings; recbole: atomic files",
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
    _data_options(split)
    split.set_defaults(func=cmd_split)

    train = sub.add_parser("train", help="train on a shop's events and save a model directory")
    train.add_argument("--events", required=True, help="events CSV/Parquet/ARFF (docs/data.md)")
    train.add_argument("--items", help="items CSV/Parquet")
    train.add_argument("--users", help="users CSV/Parquet")
    train.add_argument(
        "--out",
        required=True,
        type=Path,
        help="model directory to write: a new path, an empty directory or a model to replace "
        "(any other existing path is refused before training)",
    )
    train.add_argument("--task", choices=("next-item", "basket-completion"), default="next-item")
    train.add_argument(
        "--epochs",
        type=_positive(int),
        help="most sequence-model epochs (default 40); training stops early when the "
        "validation hit rate has not improved for 5 epochs, and keeps the best epoch's weights",
    )
    train.add_argument(
        "--n-top", type=_positive(int), default=150, help="items in the co-purchase network"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    _key_file(train, "shopper ids are then replaced by their keyed pseudonyms before training")
    add_engine_options(train, "count the co-purchase network's baskets (docs/scale.md)")
    _campaign_files(train)
    _data_options(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="rank held-out events against the baselines")
    ev.add_argument("--model", required=True, type=Path)
    ev.add_argument("--events", required=True, help="held-out events CSV/Parquet/ARFF")
    ev.add_argument(
        "--protocol", choices=("next-item", "basket-completion", "bundle"), required=True
    )
    ev.add_argument(
        "--k", type=_positive(int), default=10, help="cut-off shown in the table (any K > 0)"
    )
    ev.add_argument("--format", choices=("table", "json"), default="table")
    ev.add_argument("--seed", type=int, default=0, help="which basket item is hidden")
    ev.add_argument(
        "--horizon",
        type=_positive(int),
        help="next-item: only each user's first N test rows are targets",
    )
    ev.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    _key_file(ev, "required by a model of pseudonyms")
    _data_options(ev)
    ev.set_defaults(func=cmd_evaluate)

    rec = sub.add_parser("recommend", help="bundles for one shopper from a saved model")
    rec.add_argument("--model", required=True, type=Path)
    rec.add_argument("--user", required=True)
    rec.add_argument(
        "--anchor",
        action="append",
        help="an item every bundle is built around and contains (repeatable; counts in --size)",
    )
    rec.add_argument(
        "--cart", action="append", help="an item already in the cart: context, never repeated"
    )
    rec.add_argument("--k", type=_positive(int), default=5, help="number of bundles")
    rec.add_argument(
        "--size", type=_positive(int), default=3, help="items per bundle, anchors included"
    )
    rec.add_argument("--budget", type=_positive(float), help="cap on the whole bundle's price")
    rec.add_argument("--max-per-category", type=_positive(int), default=1)
    rec.add_argument("--format", choices=("table", "json"), default="table")
    _campaign_files(rec)
    rec.add_argument(
        "--objective",
        choices=("probability", "revenue", "margin"),
        default="probability",
        help="what the bundles maximise: likelihood, expected revenue or expected margin "
        "(margin needs a cost column in the items)",
    )
    rec.add_argument(
        "--promote-share",
        type=_share,
        default=0.0,
        help="share of each bundle's companion slots reserved for promoted items (0-1)",
    )
    rec.add_argument(
        "--favour-overstock",
        type=_positive(float),
        metavar="DAYS",
        help="favour items with more than DAYS days of cover (stock over recent sales)",
    )
    rec.add_argument(
        "--now", help="moment of the promotions (epoch seconds or a date; default: now)"
    )
    _key_file(rec, "required by a model of pseudonyms")
    rec.set_defaults(func=cmd_recommend)

    for command in _command_modules():
        command.register(sub)
    return parser


def _command_modules():
    """The modules of ``bundlerec.commands``, in name order: each adds one subcommand.

    A module there defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
    function taking the parsed arguments and returning the exit code. Modules import their heavy
    dependencies (web stack, Dask, plotting) inside that function, so ``bundlerec --help`` and the
    other commands stay fast.
    """
    import bundlerec.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{package.__name__}.{info.name}")


def _error(command: str, err: BaseException) -> str:
    """One line naming the problem (and the file, for OS errors)."""
    if isinstance(err, OSError) and err.strerror:
        where = f": {err.filename}" if err.filename else ""
        return f"bundlerec {command}: error: {err.strerror}{where}"
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    return f"bundlerec {command}: error: {message}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of a closed pipe is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests)
        pass
    finally:
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop_announcing = _announce_compilation(not getattr(args, "quiet", False))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            code = args.func(args)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
            return code
    except KeyboardInterrupt:
        print(f"bundlerec {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (KeyError, ValueError, OSError) as err:
        print(_error(args.command, err), file=sys.stderr)
        return EXIT_USAGE
    finally:
        stop_announcing()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
