"""``bundlerec audience``: the shoppers most likely to buy items, a bundle, a category, a brand.

Prints ``{"items": [...], "users": [{"user_id", "probability"}, ...]}`` (``--format json``) or a
CSV of ``user_id,probability`` rows (``--format csv``) on stdout, or writes the CSV to ``--out``.
``probability`` is that of buying within ``--horizon-days`` (default
:data:`bundlerec.audience.HORIZON_DAYS`), or with ``--next-purchase`` that the shopper's next
purchase is the item (:meth:`bundlerec.recommender.Recommender.audience`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]


def cmd_audience(args: argparse.Namespace) -> int:
    import pandas as pd

    from bundlerec.cli import _check_output_file, _load_model, _write_csv
    from bundlerec.progress import say

    if args.out is not None:
        _check_output_file(args.out)
    # The key is not needed to score: a model of pseudonyms answers with pseudonyms, which the
    # shop maps back with its own key (docs/campaigns.md); a key given must be the model's.
    model = _load_model(args, need_key=False)
    if model.key_check is not None:
        say("user_id values are pseudonyms: map them back with your key (docs/campaigns.md)", True)
    items = None if args.items is None else [i for i in args.items.split(",") if i]
    result = model.audience(
        items,
        n=args.top,
        min_probability=args.min_probability,
        category=args.category,
        brand=args.brand,
        horizon_days=None if args.next_purchase else args.horizon_days,
    )
    if args.format == "json" and args.out is None:
        print(json.dumps(result))
        return 0
    frame = pd.DataFrame(result["users"], columns=["user_id", "probability"])
    if args.out is not None:
        _write_csv(frame, args.out)
        print(f"{len(frame)} shoppers written to {args.out}", file=sys.stderr)
    else:
        frame.to_csv(sys.stdout, index=False)
    return 0


def register(subparsers) -> None:
    """Add the ``audience`` subcommand to ``subparsers``."""
    from bundlerec.audience import HORIZON_DAYS
    from bundlerec.cli import _key_file, _positive, _share

    parser = subparsers.add_parser(
        "audience", help="the shoppers most likely to buy items, a category or a brand"
    )
    parser.add_argument("--model", required=True, type=Path)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--items", help="comma-separated item ids: shoppers likely to buy all of them"
    )
    which.add_argument("--category", help="shoppers whose next purchase is likely in it")
    which.add_argument("--brand", help="shoppers whose next purchase is likely of it")
    parser.add_argument(
        "--top", type=_positive(int), default=1000, help="number of shoppers (exact top N)"
    )
    parser.add_argument(
        "--min-probability", type=_share, help="leave out shoppers below this probability"
    )
    window = parser.add_mutually_exclusive_group()
    window.add_argument(
        "--horizon-days",
        type=_positive(float),
        default=HORIZON_DAYS,
        help=f"probability of buying within this many days (default {HORIZON_DAYS:g})",
    )
    window.add_argument(
        "--next-purchase",
        action="store_true",
        help="probability that the shopper's next purchase is the item, whenever it comes",
    )
    parser.add_argument("--format", choices=("json", "csv"), default="json")
    parser.add_argument("--out", type=Path, help="write the CSV here instead of stdout")
    _key_file(parser, "checked against a model of pseudonyms (audiences are pseudonyms)")
    parser.set_defaults(func=cmd_audience)
