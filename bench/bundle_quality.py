"""Stronger baselines on inner splits of training data: EASE and association rules (issue 12).

Two data sets: ``supermarket.arff`` (its training part: 20% of the baskets held out by
``bundlerec split --test-share 0.2 --seed 0`` are never read) and the synthetic shop of
``bundlerec demo`` (seed 0, 20% of its baskets held out the same way, never read). The training
part of each is split once more (20% of its baskets, seed 0): the *inner* split, where

- ``--tune`` scores every grid point of EASE and AssociationRules on basket completion
  (NDCG@10, one hidden item per inner held-out basket) -- this is how their defaults were
  chosen -- and
- ``--tune-bundles`` fits one Recommender per data set on the inner training part and scores
  every grid point of its bundle objective (``Recommender.bundle_config``: fused weight,
  co-occurrence smoothing, category back-off, dependence weight) with bundlerec's
  bundle-protocol coverage, hit and outcome rate and its anchor + 2 share on the inner held-out
  baskets (``--max-cases`` of them per measure; 0: every one, as for the defaults); the
  chosen point maximises the mean over both data sets of each measure divided by its value
  at the first grid point -- this is how ``BUNDLE_DEFAULTS`` were chosen -- and
- ``--held-out`` prints that table once on the outer split (fit on the training part, scored on
  the test part), after every choice above was made on the inner split;
- the default run fits a Recommender on the inner training part and prints the bundle protocol
  and the anchor + 2 measure (``bundlerec.bundle_eval.evaluate_bundles``) on the inner held-out
  baskets, with ``bundlerec (before)``: the same model without its pairwise network (the
  objective of models saved before it), plus basket completion NDCG@10 of every baseline at its
  defaults;
- ``--ceiling`` asks how far any method that sees only the anchor (a shopper unknown to the
  model, as on supermarket) could go past plain co-occurrence. For such a method the expected
  anchor + 2 share of two companions is the mean of their P(j in basket | anchor), so the best
  possible rule ranks items by that conditional probability, which is what ``cooc_top2`` and the
  ``cooccurrence`` bundles estimate from the training baskets; only a better estimate can beat
  them. The ceiling run compares them, on the same held-out cases (the 500 of the protocol and
  all of them), with the same rule whose counts also include the held-out baskets themselves:
  an in-sample estimate no real method can have, hence a generous reference for what better
  estimation could reach;
- ``--no-anchor`` scores bundles without anchor or cart (a known shopper's home page): coverage
  and hit of the top bundle of 3 against every held-out basket of a shopper known to the model,
  on the inner split and on a time split of the training part (its last 20% of time held out),
  beside the 3 most popular items, bundlerec without its home fusion and with dependence 0.5.

Usage::

    python bench/bundle_quality.py --arff ../shared/data/supermarket.arff \
        [--tune | --tune-bundles | --ceiling | --no-anchor]

Not a test, not a timing benchmark. Thread count: ``NUMBA_NUM_THREADS`` (1 on a busy machine).
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np
import pandas as pd

from bundlerec import data, prep
from bundlerec.bundle_eval import _held_out, _plus_two_rng, _sample, evaluate_bundles
from bundlerec.cases import basket_completion_cases
from bundlerec.datasets import synthetic_shop
from bundlerec.evaluation import evaluate
from bundlerec.models.baselines import (
    EASE,
    AssociationRules,
    CoOccurrence,
    ItemKNN,
    Popularity,
)
from bundlerec.recommender import BUNDLE_DEFAULTS, Recommender

SHARE, SEED = 0.2, 0
L2 = (10.0, 50.0, 200.0, 500.0, 1000.0)
SUPPORT = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)
BUNDLE_GRID = {
    "fused": (0.0, 0.3),
    "smoothing": (1.0, 10.0),
    "categories": (100.0, 300.0, 1000.0),
    "dependence": (0.0, 0.25, 0.5),
}
MEASURES = ("coverage", "hit", "outcome_rate", "anchor+2")


def _split(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """20% of the baskets held out (as ``bundlerec split --protocol baskets``)."""
    train, test = prep.split_baskets(prep.clean(events), SHARE, SEED)
    as_ids = lambda part: part.assign(basket_id=part["basket"].astype(str)).drop(columns="basket")  # noqa: E731
    return as_ids(train), as_ids(test)


def inner_splits(
    arff: str | None, held_out: bool = False, movielens: tuple[str, str] | None = None
):
    """``{name: (inner_train, inner_test, items)}``: the training part of each set, split again
    (``held_out``: the training part and the test part, for the one final measurement).
    ``movielens``: (ratings.csv, items.csv), rating sessions as baskets (a real shop's
    categories: each film's first genre)."""
    out = {}
    if arff is not None:
        train, test = _split(data.load_events(arff))
        out["supermarket"] = (train, test, None) if held_out else (*_split(train), None)
    if movielens is not None:
        train, test = _split(data.load_movielens(movielens[0]))
        items = data.load_items(movielens[1])
        out["movielens sessions"] = (train, test, items) if held_out else (*_split(train), items)
    events, items, _ = synthetic_shop(seed=SEED)
    train, test = _split(events)
    out["synthetic shop"] = (train, test, items) if held_out else (*_split(train), items)
    return out


def completion(train_events: pd.DataFrame, test_events: pd.DataFrame, models: dict) -> dict:
    """NDCG@10 of basket completion on the inner held-out baskets for each fitted model."""
    train_events = prep.clean(train_events)
    users = prep.Encoder().fit(train_events["user_id"])
    items = prep.Encoder().fit(train_events["item_id"])
    train = prep.to_interactions(train_events, users, items)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # held-out items unknown to training are dropped
        test = prep.to_interactions(prep.clean(test_events), users, items, unknown_users="reserve")
    cases = basket_completion_cases(test, train.n_items, np.random.default_rng(SEED))
    fitted = {name: m.fit(train) for name, m in models.items()}
    report = evaluate(fitted, cases, ks=(10,), protocol="basket-completion").to_json()
    return {name: v["ndcg@10"] for name, v in report["results"].items()}


def tune(splits) -> None:
    for name, (train, test, _) in splits.items():
        grid = {
            f"EASE(l2={l2:g}, by={by!r})": EASE(l2, by) for l2 in L2 for by in ("basket", "user")
        }
        grid |= {
            f"AssociationRules({s:g}, metric={m!r})": AssociationRules(s, metric=m)
            for s in SUPPORT
            for m in ("confidence", "lift")
        }
        print(f"{name}, inner split, basket completion NDCG@10:")
        for model, ndcg in completion(train, test, grid).items():
            print(f"  {model:45s} {ndcg:.4f}")


def fit(train: pd.DataFrame, items: pd.DataFrame | None) -> Recommender:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recommender(task="basket-completion", seed=SEED, verbose=False).fit(train, items)


def bundle_measures(
    model: Recommender, test: pd.DataFrame, max_cases: int | None
) -> dict[str, float]:
    """bundlerec's coverage, hit, outcome rate and anchor + 2 share on held-out baskets."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate_bundles(model, test, seed=SEED, max_cases=max_cases, baselines=False)
    ours = result["results"]["bundlerec"]
    return {
        **{m: ours[m] for m in MEASURES[:3]},
        "anchor+2": result["anchor_plus_2"]["results"]["bundlerec"],
    }


def tune_bundles(splits, max_cases: int | None) -> None:
    points = [dict(zip(BUNDLE_GRID, v)) for v in itertools.product(*BUNDLE_GRID.values())]
    scores = {i: [] for i in range(len(points))}
    for name, (train, test, items) in splits.items():
        model = fit(train, items)
        print(f"{name}, inner split, bundlerec ({max_cases or 'all'} cases per measure):")
        base = None
        for i, point in enumerate(points):
            model.bundle_config.update(point)
            values = bundle_measures(model, test, max_cases)
            base = base or values
            scores[i].extend(values[m] / max(base[m], 1e-9) for m in MEASURES)
            print(f"  {point}  " + "  ".join(f"{m} {values[m]:.4f}" for m in MEASURES), flush=True)
    best = max(scores, key=lambda i: (np.mean(scores[i]), -i))
    print(f"chosen (mean relative measure {np.mean(scores[best]):.4f}): {points[best]}")


def table(splits, max_cases: int | None = 500, part: str = "inner split") -> None:
    for name, (train, test, items) in splits.items():
        baselines = {
            "popularity": Popularity(),
            "cooccurrence": CoOccurrence(),
            "itemknn": ItemKNN(),
            "ease": EASE(),
            "rules": AssociationRules(),
        }
        ndcg = completion(train, test, baselines)
        print(
            f"{name}, {part}, basket completion NDCG@10: "
            + ", ".join(f"{k} {v:.4f}" for k, v in ndcg.items())
        )
        model = fit(train, items)
        print(
            f"{name}: kappa {model.bundle_config['categories']:g} chosen when fitted "
            "(held-out coverage of each: "
            + ", ".join(f"{k:g}: {v:.4f}" for k, v in model.kappa_coverage.items())
            + ")"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = evaluate_bundles(model, test, seed=SEED, max_cases=max_cases)
            model.pairwise = None  # the objective of models saved before the pairwise network
            before = evaluate_bundles(model, test, seed=SEED, max_cases=max_cases, baselines=False)
        result["results"] = {
            "bundlerec (before)": before["results"]["bundlerec"],
            **result["results"],
        }
        result["anchor_plus_2"]["results"] = {
            "bundlerec (before)": before["anchor_plus_2"]["results"]["bundlerec"],
            **result["anchor_plus_2"]["results"],
        }
        metrics = ("coverage", "precision", "hit", "outcome_rate", "ece", "mean_probability")
        print(f"{name}, {part}, bundle protocol ({result['n_cases']} cases, size 3):")
        print("method              " + "".join(m.rjust(17) for m in metrics))
        for method, values in result["results"].items():
            print(f"{method:20s}" + "".join(f"{values[m]:17.4f}" for m in metrics))
        plus = result["anchor_plus_2"]
        print(f"{name}, {part}, anchor + 2 ({plus['n_cases']} baskets of >= 3 items):")
        for method, share in plus["results"].items():
            print(f"{method:20s}{share:17.4f}")
        print()


def _top_shares(together: np.ndarray, freq: np.ndarray, held, rows, k: int):
    """(coverage, hit, share) arrays of each case's top ``k`` items by ``together[anchor]``
    (ties: the more frequent, then the lower code), the anchor left out."""
    cases = held.cases
    anchors = cases.targets[rows, 0]
    scores = together[anchors].astype(np.float64)
    scores[np.arange(rows.size), anchors] = -np.inf
    codes = np.arange(freq.size)
    picks = np.array([np.lexsort((codes, -freq, -s))[:k] for s in scores])
    rests = [set(cases.context[r, : cases.lengths[r]].tolist()) for r in rows]
    common = np.array([len(set(p.tolist()) & rest) for p, rest in zip(picks, rests)])
    sizes = np.array([len(rest) for rest in rests])
    return common / sizes, common > 0, common / k


def ceiling(splits) -> None:
    for name, (train, test, items) in splits.items():
        model = fit(train, items)
        rng = np.random.default_rng(SEED)
        held = _held_out(model, test, rng)
        cases = held.cases
        n = cases.users.shape[0]
        rows = _sample(np.arange(n), 500, rng)
        plus = _sample(np.flatnonzero(cases.lengths >= 2), 500, _plus_two_rng(SEED))
        # the held-out baskets as rows (anchor and rest), added to the training baskets
        flat = [
            np.append(cases.context[r, : cases.lengths[r]], cases.targets[r, 0]) for r in range(n)
        ]
        own = np.zeros((n, held.baskets.shape[1]), dtype=np.float64)
        for r, basket in enumerate(flat):
            own[r, basket] = 1.0
        train_counts = held.cooc.toarray()
        with_held = train_counts + own.T @ own
        print(
            f"{name}, inner split, anchor-only ceiling (P(j | anchor) rule, size 3 / anchor + 2):"
        )
        print("cases              estimate from                coverage       hit   anchor+2")
        for label, bundle_rows, plus_rows in (
            ("protocol sample", rows, plus),
            ("all cases", np.arange(n), np.flatnonzero(cases.lengths >= 2)),
        ):
            figures = {}
            for estimate, counts, freq in (
                ("training baskets", train_counts, held.freq),
                ("+ held-out (in-sample)", with_held, np.diag(with_held)),
            ):
                cov, hit, _ = _top_shares(counts, freq, held, bundle_rows, 3)
                *_, share = _top_shares(counts, freq, held, plus_rows, 2)
                figures[estimate] = np.array([cov.mean(), hit.mean(), share.mean()])
                print(
                    f"{label:18s} {estimate:26s}"
                    + "".join(f"{v:10.4f}" for v in figures[estimate])
                )
            ratio = figures["+ held-out (in-sample)"] / figures["training baskets"]
            print(f"{label:18s} {'ratio':26s}" + "".join(f"{v:9.3f}x" for v in ratio))
        print()


def _home_page(model: Recommender, test: pd.DataFrame, label: str) -> None:
    """Coverage and hit of bundles of 3 without anchor against each ``test`` basket of a
    shopper known to ``model``: bundlerec as it is, without its home fusion, with dependence
    weight 0.5, and the 3 most popular items; hit of ``recommend_items(k=10)`` as fitted (the
    history repeated or not, ``history_repeats``), with the history left out, with the home
    fusion's popularity weight set to 0, without the home fusion, and of the 10 most popular
    items."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        held = _held_out(model, test, np.random.default_rng(SEED))
    cases = held.cases
    rows = np.flatnonzero(cases.users >= 0)
    if rows.size == 0:
        print(f"{label}: no held-out basket of a known shopper\n")
        return
    baskets = [
        {int(cases.targets[r, 0]), *cases.context[r, : cases.lengths[r]].tolist()} for r in rows
    ]

    def ours() -> list[set[int]]:
        found = [
            model.compose(int(cases.users[r]), [], k=1, size=3, max_per_category=3)[0]
            for r in rows
        ]
        return [set(f[0].items) if f else set() for f in found]

    user_ids = np.asarray(model.users.classes_, dtype=object)[cases.users[rows]]
    code = {item: j for j, item in enumerate(model.items.classes_)}

    def top_items() -> list[set[int]]:
        return [{code[r["item_id"]] for r in model.recommend_items(u, k=10)} for u in user_ids]

    picks = {
        "popularity top 3": [set(np.argsort(-held.freq, kind="stable")[:3].tolist())] * len(rows)
    }
    picks["bundlerec"] = ours()
    tens = {
        "popularity top 10": [set(np.argsort(-held.freq, kind="stable")[:10].tolist())]
        * len(rows),
        "recommend_items": top_items(),
    }
    repeats, model.history_repeats = model.history_repeats, False
    tens["recommend_items, history left out"] = top_items()
    model.history_repeats = repeats
    if model.home_fusion is not None:
        weights = dict(model.home_fusion.weights)
        model.home_fusion.weights.update({"popular": 0.0, "popular:log_share": 0.0})
        tens["recommend_items, popularity weight 0"] = top_items()
        model.home_fusion.weights = weights
    home, model.home_fusion = model.home_fusion, None
    picks["bundlerec, no home fusion"] = ours()
    tens["recommend_items, no home fusion"] = top_items()
    model.home_fusion = home
    model.bundle_config.update(dependence=0.5)
    picks["bundlerec, lambda 0.5"] = ours()
    model.bundle_config.update(dependence=BUNDLE_DEFAULTS["dependence"])
    print(f"{label} ({rows.size} baskets of known shoppers, size 3):")
    print("method                        coverage       hit")
    sizes = np.array([len(b) for b in baskets])
    for method, bundles in picks.items():
        common = np.array([len(p & b) for p, b in zip(bundles, baskets)])
        print(f"{method:27s}{(common / sizes).mean():11.4f}{(common > 0).mean():10.4f}")
    print(f"top 10 items (history_repeats chosen at fit: {model.history_repeats})           hit")
    for method, lists in tens.items():
        hit = np.mean([bool(p & b) for p, b in zip(lists, baskets)])
        print(f"{method:48s}{hit:10.4f}")
    print()


def no_anchor(splits) -> None:
    """Bundles without an anchor or cart (a known shopper's home page) on the inner split, and
    on a time split of the training part (its last 20% of time held out: every held-out basket
    comes after its shopper's history, as in a shop)."""
    for name, (train, test, items) in splits.items():
        _home_page(fit(train, items), test, f"{name}, inner split, bundles without anchor")
        whole = pd.concat([train, test], ignore_index=True)
        before, after = prep.split_global_time(whole, test_share=SHARE)
        _home_page(fit(before, items), after, f"{name}, time split, bundles without anchor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arff", help="supermarket.arff (skipped when not given)")
    parser.add_argument(
        "--movielens",
        nargs=2,
        metavar=("RATINGS", "ITEMS"),
        help="MovieLens ratings.csv and items.csv: rating sessions as a third data set",
    )
    parser.add_argument("--tune", action="store_true", help="the baselines' grid")
    parser.add_argument("--tune-bundles", action="store_true", help="the bundle objective's grid")
    parser.add_argument(
        "--ceiling", action="store_true", help="what anchor-only methods can reach"
    )
    parser.add_argument(
        "--no-anchor", action="store_true", help="bundles without anchor, per dependence weight"
    )
    parser.add_argument(
        "--max-cases",
        type=int,
        default=500,
        help="cases per measure of the table and of --tune-bundles (0: all)",
    )
    parser.add_argument(
        "--held-out",
        action="store_true",
        help="the table on the outer test parts (once, after every choice is made)",
    )
    args = parser.parse_args()
    splits = inner_splits(args.arff, args.held_out, args.movielens)
    mode = {"tune": tune, "tune_bundles": tune_bundles, "ceiling": ceiling, "no_anchor": no_anchor}
    run = next((run for flag, run in mode.items() if getattr(args, flag)), None)
    if run is tune_bundles:
        tune_bundles(splits, args.max_cases or None)
    elif run is None:
        table(splits, args.max_cases or None, "held-out test" if args.held_out else "inner split")
    else:
        run(splits)


if __name__ == "__main__":
    main()
