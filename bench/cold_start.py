"""New arrivals on the synthetic shop: NDCG@10 of items first seen after the split, with and
without their text, against category popularity (issue 13). Not a test, not a timing benchmark.

The shop is generated with titles whose words carry signal (``titles=True, style_taste=1.0``:
shoppers prefer some styles, and the style words are in the titles) and with 20 % of each
category's items arriving during the second half of the 90 days (``new_share=0.2``). The events
are split at the 70 % quantile of the timestamps; the model is fitted on the earlier events and
the items the later events show for the first time are added from the items table (attributes,
price and, "with text", title and description) before scoring
(:func:`bundlerec.cold_start_eval.evaluate_new_arrivals`).

``--inner`` never reads the test part: it splits the training events once more (the same 70 %
quantile). ``--variants`` compares how new items start in the sequence model (nothing
borrowed: the mean bias and a zero id row; the donors' mean bias; the donors' mean bias and id
embedding; ``bundlerec.recommender.BORROW_IDS``); ``--id-dropout`` sets the sequence model's
id dropout. ``--grid`` scores the new-arrival ranking
(:func:`bundlerec.new_arrivals.arrival_scores`) for a grid of its two weights. Choices are
made on the inner split or on development seeds (``--seed 10`` to ``15``), never on the seeds
reported (0 to 4).

Usage::

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/cold_start.py [--seed 0] [--inner]
"""

from __future__ import annotations

import argparse
import copy
import time
from unittest import mock

from bundlerec import new_arrivals, prep, recommender
from bundlerec.cold_start_eval import evaluate_new_arrivals
from bundlerec.datasets import synthetic_shop
from bundlerec.models.sequence import SequenceModel
from bundlerec.recommender import Recommender

TEST_SHARE = 0.3
GRID_CATEGORY = (0.0, 0.25, 0.5)
GRID_TASTE = (0.0, 2.0, 4.0, 6.0, 8.0)


def _variant(model, test, table, name):
    """evaluate_new_arrivals of a copy of ``model`` with new items started as ``name`` says."""
    model = copy.deepcopy(model)
    if name == "nothing borrowed":
        with mock.patch.object(SequenceModel, "borrow", lambda self, *a, **k: self):
            return evaluate_new_arrivals(model, test, table)
    with mock.patch.object(recommender, "BORROW_IDS", name == "bias and id borrowed"):
        return evaluate_new_arrivals(model, test, table)


def _grid(model, test, table) -> None:
    """Print NDCG@10 of the new-arrival ranking for each weight pair of the grid (``w`` of the
    category share, ``beta`` of the tastes), on copies of ``model``."""
    for w in GRID_CATEGORY:
        for beta in GRID_TASTE:
            with (
                mock.patch.object(new_arrivals, "CATEGORY_WEIGHT", w),
                mock.patch.object(new_arrivals, "TASTE_WEIGHT", beta),
            ):
                result = evaluate_new_arrivals(copy.deepcopy(model), test, table)["results"]
            print(
                f"grid w={w:g} beta={beta:g} bundlerec={result['bundlerec']:.4f} "
                f"category_popularity={result['category_popularity']:.4f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inner", action="store_true", help="inner split of the training part")
    parser.add_argument(
        "--variants", action="store_true", help="compare how new items start (see above)"
    )
    parser.add_argument("--text-only", action="store_true", help="skip the model without text")
    parser.add_argument(
        "--grid",
        action="store_true",
        help="with text only: NDCG@10 for each pair of weights of the ranking (see above)",
    )
    parser.add_argument(
        "--id-dropout", type=float, help="the sequence model's id_dropout (default: the library's)"
    )
    args = parser.parse_args()
    events, items, users = synthetic_shop(
        seed=args.seed, titles=True, style_taste=1.0, new_share=0.2
    )
    items = items.drop(columns="arrival")  # the generator's truth, not an item attribute
    train, test = prep.split_global_time(events, test_share=TEST_SHARE)
    if args.inner:
        train, test = prep.split_global_time(train, test_share=TEST_SHARE)
    rows = {}
    tables = [("with text", items), ("without text", items.drop(columns=["title", "description"]))]
    for name, table in tables[:1] if args.text_only or args.grid else tables:
        start = time.perf_counter()
        sequence = None if args.id_dropout is None else {"id_dropout": args.id_dropout}
        model = Recommender(seed=args.seed, sequence=sequence).fit(train, table, users)
        print(f"{name}: fit {time.perf_counter() - start:.0f} s", flush=True)
        if args.grid:
            return _grid(model, test, table)
        variants = (
            ("nothing borrowed", "bias borrowed", "bias and id borrowed")
            if args.variants
            else ("as shipped",)
        )
        for variant in variants:
            rows[f"{name}, {variant}"] = (
                _variant(model, test, table, variant)
                if args.variants
                else evaluate_new_arrivals(model, test, table)
            )
    first = next(iter(rows.values()))
    print(
        f"\nsynthetic shop (seed {args.seed}{', inner split' if args.inner else ''}): "
        f"{first['n_new_items']} new items, {first['n_cases']} shoppers who bought one, "
        f"NDCG@{first['k']}"
    )
    baseline = first["results"]["category_popularity"]
    labels = {
        "bundlerec": "bundlerec",
        "fused": "fused probability alone",
        "sequence": "sequence model alone",
    }
    for method, label in labels.items():
        for name, result in rows.items():
            value = result["results"][method]
            print(f"  {label} ({name}){'':<4}{value:.4f}  ({value / baseline:.2f}x)")
    for method in ("popularity", "category_popularity", "shopper_category"):
        value = first["results"][method]
        print(f"  {method:<40}{value:.4f}  ({value / baseline:.2f}x)")


if __name__ == "__main__":
    main()
