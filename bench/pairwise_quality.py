"""Anchor-plus-companions quality of the pairwise co-purchase network against co-occurrence.

Protocol (issue 12, item 1): baskets are split 80/20 with :func:`bundlerec.prep.split_baskets`;
in every held-out basket of at least 3 items one item, drawn with a seeded generator, is the
anchor a. Each method proposes ``size`` companions (2, then 3) and scores the share of them that
are in the rest of the basket:

- ``pairwise``: the subset S of the candidate set maximising ``log P(x_S = 1 | x_a = 1)`` under
  :class:`bundlerec.models.pairwise.PairwiseNetwork` (:meth:`~PairwiseNetwork.best_bundles`);
- ``cooc``: the ``size`` items with the highest co-occurrence ``P(j | a) = n(a, j) / n(a)``;
- ``pairwise-marginal``: the network's ``size`` items with the highest ``P(x_j = 1 | x_a = 1)``
  (its conditional, no joint term), to separate the two ingredients.

Tuning (``min_count``, ``l2``, ``n_top``, candidate-set size) happens on an inner 80/20 split of
the *training* baskets only; the chosen setting is refitted on all training baskets and reported
on the test baskets (figures of both splits are printed). Usage::

    OMP_NUM_THREADS=1 python bench/pairwise_quality.py [--supermarket PATH] [--seed S]

Without ``--supermarket`` only the synthetic shop runs.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bundlerec import data, prep
from bundlerec.datasets import synthetic_shop
from bundlerec.models.copurchase import basket_matrix
from bundlerec.models.pairwise import PairwiseNetwork

SHARE = 0.2
GRID = {"min_count": (2, 5), "l2": (1e-5, 1e-4, 1e-3), "n_top": (100, 10_000)}
CANDIDATES = (10, 14)


def held_out(test, seed: int) -> list[tuple[int, set[int]]]:
    """(anchor, rest of the basket) per held-out basket of >= 3 distinct items."""
    rng = np.random.default_rng(seed)
    m = basket_matrix(test).tocsr()
    out = []
    for row in range(m.shape[0]):
        items = m.indices[m.indptr[row] : m.indptr[row + 1]]
        if items.size >= 3:
            anchor = int(rng.choice(np.sort(items)))
            out.append((anchor, set(items.tolist()) - {anchor}))
    return out


def top(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest scores (ties to the lower index)."""
    return np.lexsort((np.arange(scores.size), -scores))[:k].tolist()


def evaluate(net: PairwiseNetwork, together: sp.csr_matrix, cases, n_cand: int) -> dict:
    """Mean share of the proposed companions found in the rest of the basket, per method."""
    hits = {f"{name}@{size}": [] for name in ("pairwise", "cooc", "marginal") for size in (2, 3)}
    diag = together.diagonal()
    for anchor, rest in cases:
        cooc = together[anchor].toarray().ravel() / max(diag[anchor], 1.0)
        cooc[anchor] = -np.inf
        marg = net.conditional([anchor]).copy()
        marg[anchor] = -np.inf
        cand = net.candidates([anchor], n_cand)
        for size in (2, 3):
            bundles, _ = net.best_bundles([anchor], size, candidates=cand)
            chosen = {
                "pairwise": list(bundles[0]) if bundles else top(marg, size),
                "cooc": top(cooc, size),
                "marginal": top(marg, size),
            }
            for name, items in chosen.items():
                hits[f"{name}@{size}"].append(len(set(items) & rest) / size)
    return {k: float(np.mean(v)) for k, v in hits.items()}


def run(name: str, events: pd.DataFrame, seed: int) -> None:
    """Tune on the inner split of the training baskets, then report on the test baskets."""
    events = prep.clean(events)
    outer_train, outer_test = prep.split_baskets(events, SHARE, seed)
    inner_train, inner_valid = prep.split_baskets(outer_train, SHARE, seed + 1)
    print(
        f"\n== {name}: {events['basket'].nunique()} baskets, {events['item_id'].nunique()} items"
    )
    inner = prep.encode_split(inner_train, inner_valid, unknown_users="reserve")
    cases = held_out(inner.test, seed)
    x = basket_matrix(inner.train)
    together = sp.csr_matrix(x.T @ x)
    print(f"inner split: {x.shape[0]} train baskets, {len(cases)} validation cases (>= 3 items)")
    best, best_score = None, -1.0
    for min_count, l2, n_top in itertools.product(*GRID.values()):
        start = time.perf_counter()
        net = PairwiseNetwork(n_top=n_top, min_count=min_count, l2=l2).fit(inner.train)
        fit_s = time.perf_counter() - start
        for n_cand in CANDIDATES:
            r = evaluate(net, together, cases, n_cand)
            print(
                f"  min_count={min_count:<3} l2={l2:<7g} n_top={min(n_top, net.items.size):<4}"
                f" K={n_cand:<3} edges={len(net.edges):<6} fit {fit_s:5.1f}s  "
                + "  ".join(f"{k} {v:.4f}" for k, v in r.items())
            )
            if r["pairwise@2"] > best_score:
                best, best_score = (min_count, l2, n_top, n_cand), r["pairwise@2"]
    min_count, l2, n_top, n_cand = best
    print(f"chosen on the inner split: min_count={min_count} l2={l2:g} n_top={n_top} K={n_cand}")
    outer = prep.encode_split(outer_train, outer_test, unknown_users="reserve")
    cases = held_out(outer.test, seed)
    x = basket_matrix(outer.train)
    net = PairwiseNetwork(n_top=n_top, min_count=min_count, l2=l2, n_candidates=n_cand)
    net.fit(outer.train)
    start = time.perf_counter()
    r = evaluate(net, sp.csr_matrix(x.T @ x), cases, n_cand)
    per_case = (time.perf_counter() - start) / max(len(cases), 1) * 1e3
    print(f"test split: {x.shape[0]} train baskets, {len(cases)} test cases (>= 3 items)")
    for size in (2, 3):
        p, c, m = (r[f"{k}@{size}"] for k in ("pairwise", "cooc", "marginal"))
        print(
            f"  anchor + {size}: pairwise {p:.4f}  cooc {c:.4f}  marginal {m:.4f}  "
            f"(pairwise / cooc = {p / c:.3f})"
        )
    print(f"  {per_case:.1f} ms per anchor for all three methods and both sizes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supermarket", help="path of supermarket.arff (read only)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    events, _, _ = synthetic_shop(seed=args.seed)
    run("synthetic shop", events, args.seed)
    if args.supermarket:
        run("supermarket", data.load_events(args.supermarket), args.seed)


if __name__ == "__main__":
    main()
