"""``bundlerec batch``: top items, bundles or campaign audiences, as partitioned Parquet.

Shoppers come from a CSV/Parquet file with a ``user_id`` column, or ``all`` (every shopper the
model knows); campaigns (``--task audience``, over every shopper: ``--users all``) from a
CSV/Parquet file with ``campaign_id`` and one of ``items`` (comma-separated ids), ``category``,
``brand``, and optional ``n``, ``min_probability``, ``horizon_days`` (default 30) and
``next_purchase`` columns. They are scored in partitions, in
this process (``--engine local``) or on Dask workers (``--engine dask``: an embedded cluster of
``--workers`` processes, or the cluster of ``--scheduler ADDRESS``), and written under ``--out``
(see :mod:`bundlerec.batch.jobs`). A progress bar goes to stderr; stdout gets one line of totals
when the job is done.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def cmd_batch(args: argparse.Namespace) -> int:
    from bundlerec.batch.cluster import engine_client
    from bundlerec.batch.jobs import cached_model, check_output, run_batch
    from bundlerec.privacy import KEY_ENV

    check_output(args.out)
    model = cached_model(args.model)  # loaded once per process: the local engine reuses it
    if model.key_check is not None and model.pseudonymizer is None and args.task != "audience":
        # Workers load the model themselves and take the key from the same variable.
        raise ValueError(
            f"{args.model}: the model holds pseudonyms of shopper ids (key check "
            f"{model.key_check}); set its key in the {KEY_ENV} variable"
        )
    if args.task == "audience":
        from bundlerec.data import read_table

        if args.campaigns is None or args.users != "all":
            raise ValueError("--task audience needs --campaigns FILE and --users all")
        table = read_table(args.campaigns, text_columns=("campaign_id", "items", "brand"))
        inputs = table.to_dict("records")
    elif args.campaigns is not None:
        raise ValueError("--campaigns goes with --task audience")
    elif args.users == "all":
        if model.key_check is not None:
            raise ValueError(
                "--users all would list the model's pseudonyms; give a file of the shoppers' ids"
            )
        inputs = list(model.users.classes_)
    else:
        from bundlerec.data import load_users

        inputs = load_users(args.users)["user_id"].tolist()
    with engine_client(args) as client:
        result = run_batch(
            args.model,
            inputs,
            args.task,
            args.out,
            k=args.k,
            client=client,
            partition_size=args.partition_size,
            verbose=not args.quiet,
            **({"size": args.size} if args.task == "bundles" else {}),
        )
    what = "campaigns" if args.task == "audience" else "shoppers"
    print(
        f"{result.n_inputs} {what}, {result.n_rows} rows in {result.n_parts} part(s) written "
        f"to {args.out} in {result.seconds:.1f} s ({result.per_second:.0f} {what}/s)"
    )
    return 0


def register(subparsers) -> None:
    """Add the ``batch`` subcommand to ``subparsers``."""
    from bundlerec.batch.cluster import add_engine_options
    from bundlerec.batch.jobs import TASKS
    from bundlerec.cli import _positive

    parser = subparsers.add_parser(
        "batch", help="top items, bundles or campaign audiences, as partitioned Parquet"
    )
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument(
        "--users",
        required=True,
        help="CSV/Parquet file with a user_id column, or 'all' (every shopper of the model)",
    )
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument(
        "--campaigns",
        help="--task audience: CSV/Parquet of campaign_id and items, category or brand",
    )
    parser.add_argument(
        "--k",
        type=_positive(int),
        default=10,
        help="items or bundles per shopper, shoppers per campaign (without its own n)",
    )
    parser.add_argument(
        "--size", type=_positive(int), default=3, help="items per bundle (--task bundles)"
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output directory: a new path, an empty directory or an earlier batch output",
    )
    add_engine_options(parser, "score the partitions")
    parser.add_argument(
        "--partition-size",
        type=_positive(int),
        help="shoppers (default 20000) or campaigns (default 1) per partition, one task each",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_batch)
