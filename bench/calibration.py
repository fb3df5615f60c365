"""Calibration of the fused probabilities, per shopper, before and after the log-shares (issue 12).

For three held-out problems it fits one :class:`~bundlerec.recommender.Recommender` (whose
fusion is fitted on the model's own inner validation split, never on the test part), refits a
rank-only fusion (``Fusion(..., log_shares=False)``, the earlier design: one probability per
rank) on the same validation cases, and scores both on the test cases:

- synthetic shop (``bundlerec.datasets.synthetic_shop(seed=0)``), next item: each user's last
  event held out (``prep.split_leave_last_out``);
- synthetic shop, basket completion: 20% of the baskets held out (``prep.split_baskets``, seed 0);
- ``/work/shared/data/supermarket.arff`` (real, read in place), basket completion, the same split.

Calibration is measured on what a shop shows: each test case's top-10 list from
``Fusion.top_k``, every listed item a prediction ``p`` (its fused probability) with outcome 1 if it
is the case's held-out item (a next item that repeats the history cannot be listed and counts
as a miss of every listed item). ``ece@10`` pools the ten items of every case, ``ece@1`` takes the
first item only (ten equal-width bins, ``metrics.reliability_table``; the same ECE as
``bundle_eval.expected_calibration_error``). ``ndcg@10`` comes from
``bundlerec.evaluation.evaluate``. The spread of the top-1 probabilities across shoppers (standard
deviation, range, number of distinct values) shows whether the probability says anything about
the shopper. Then the reliability table of the new fusion's top-10 lists.

Usage: ``NUMBA_NUM_THREADS=1 python bench/calibration.py [--supermarket PATH] [--seed 0]``
(about a minute on the 2-core machine). Not a test and not a timing benchmark.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from bundlerec import data, prep, recommender
from bundlerec.cases import Cases
from bundlerec.datasets import synthetic_shop
from bundlerec.evaluation import evaluate
from bundlerec.metrics import reliability_table
from bundlerec.models.fusion import Fusion
from bundlerec.recommender import Recommender

SUPERMARKET = Path("/work/shared/data/supermarket.arff")
TEST_SHARE = 0.2


class _Recording(Fusion):
    """The Recommender's fusion, keeping the validation cases it was fitted on."""

    seen: list[Cases] = []

    def fit(self, valid: Cases) -> Fusion:
        _Recording.seen.append(valid)
        return super().fit(valid)


def _basket_split(events: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``TEST_SHARE`` of the baskets held out (as ``bundlerec split --protocol baskets``)."""
    train, test = prep.split_baskets(prep.clean(events), TEST_SHARE, seed)
    as_ids = lambda part: part.assign(basket_id=part["basket"].astype(str)).drop(columns="basket")  # noqa: E731
    return as_ids(train), as_ids(test)


def _calibration(fused: Fusion, cases: Cases) -> dict[str, float]:
    """ECE of the top-10 lists and of the top-1 item, and the spread of top-1 probabilities."""
    items, probs = fused.top_k(cases, 10)
    listed = items >= 0
    hit = (items[:, :, None] == cases.targets[:, None, :]).any(axis=2) & listed
    top1 = probs[:, 0][listed[:, 0]]
    return {
        "ece@10": reliability_table(probs[listed], hit[listed]).ece(),
        "ece@1": reliability_table(top1, hit[listed[:, 0], 0]).ece(),
        "p@1 mean": float(top1.mean()),
        "hit@1": float(hit[:, 0].mean()),
        "p@1 sd": float(top1.std()),
        "p@1 min": float(top1.min()),
        "p@1 max": float(top1.max()),
        "distinct p@1": float(np.unique(top1).size),
    }


def run(name: str, train: pd.DataFrame, test: pd.DataFrame, task: str, **side) -> None:
    """Fit, refit the rank-only fusion on the same validation cases, print both and a table."""
    _Recording.seen.clear()
    with mock.patch.object(recommender, "Fusion", _Recording):
        model = Recommender(task=task, seed=0).fit(train, side.get("items"), side.get("users"))
    valid = _Recording.seen[-1]
    joint = model.fusion
    rank_only = Fusion(dict(joint.components), seed=0, log_shares=False).fit(valid)
    cases = model.cases(test, task)
    fusions = {"rank-only": rank_only, "log-shares": joint}
    ndcg = evaluate(fusions, cases, ks=(10,), protocol=task).results
    v = joint.validation
    print(
        f"\n{name}, {task}: {len(valid)} validation cases (inner split), {len(cases)} test "
        f"cases\nvalidation NDCG@10 rank-only {v['ndcg_rank']:.4f}, joint {v['ndcg_joint']:.4f}"
        f" (paired SE {v['se']:.4f}; step towards the joint weights kept: {v['joint']:g})\n"
        f"weights {', '.join(f'{k} {w:.3f}' for k, w in joint.weights.items())}, "
        f"bias {joint.bias:.3f}"
    )
    rows = {
        label: {"ndcg@10": ndcg[label]["ndcg@10"], **_calibration(f, cases)}
        for label, f in fusions.items()
    }
    print(pd.DataFrame(rows).T.to_string(float_format=lambda x: f"{x:.4f}"))
    items, probs = joint.top_k(cases, 10)
    hit = (items[:, :, None] == cases.targets[:, None, :]).any(axis=2)
    print("reliability of the log-share fusion's top-10 lists:")
    print(reliability_table(probs[items >= 0], hit[items >= 0]).to_table())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supermarket", type=Path, default=SUPERMARKET)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the splits")
    args = parser.parse_args()
    events, items, users = synthetic_shop(seed=args.seed)
    train, test = prep.split_leave_last_out(events)
    run("synthetic shop", train, test, "next-item", items=items, users=users)
    train, test = _basket_split(events, args.seed)
    run("synthetic shop", train, test, "basket-completion", items=items, users=users)
    if args.supermarket.exists():
        train, test = _basket_split(data.load_events(args.supermarket), args.seed)
        run("supermarket", train, test, "basket-completion")
    else:
        print(f"\nsupermarket: skipped ({args.supermarket} not found)")


if __name__ == "__main__":
    main()
