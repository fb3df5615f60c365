"""Speed of an audience (issue 13): one item's top 1,000 over 100,000 shoppers.

A Recommender is fitted on a synthetic shop of 100,000 shoppers (small sequence model: one
epoch; the speed of a query does not depend on how long the model trained), the audience index
is built once (one LSTM pass over every shopper, timed apart), then ``audience([item],
n=1000)`` is timed for 20 items (median and worst), against two peers in the same run:

- item-kNN reversed: ``history (U x I, sparse) @ similarity[:, item]`` (a sparse product over
  every shopper), the baseline a shop would compute with its own item-kNN;
- the per-shopper path: the sequence model's full-catalogue scores of every shopper in batches
  of 512, then the item's column (what scoring shoppers one by one with ``recommend_items``
  amounts to), timed on 10,000 shoppers and scaled to 100,000.

``--tiled`` skips the large fit (minutes on a busy machine): it fits the default synthetic shop
(2,000 shoppers) and repeats its audience index (vectors, log-normalisers, purchases) and its
shoppers' histories 50 times, so the query and the item-kNN peer run over 100,000 shoppers of
real learned vectors; the query's code path is the same (``AudienceIndex.scores`` and
``top_shoppers``, what ``audience`` runs after its id lookups).

Usage::

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/bench_audience.py [--users 100000]
    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/bench_audience.py --tiled

Thread count: one (``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS``), the same for every method.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from bundlerec.audience import AudienceIndex, top_shoppers
from bundlerec.datasets import synthetic_shop
from bundlerec.recommender import Recommender


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - start) / repeat, out


def _seen(model) -> sp.csr_matrix:
    """(n_users, I) binary shopper-by-item matrix of the model's history (item-kNN reversed)."""
    h = model.history
    shape = (len(model.users.classes_), h.n_items)
    return sp.csr_matrix((np.ones(h.user.size), (h.user, h.item)), shape=shape).sign()


def tiled(times: int = 50) -> None:
    """The query over the default shop's index repeated ``times`` times (see the docstring)."""
    events, items, users = synthetic_shop(seed=0)
    model = Recommender().fit(events, items, users)
    small = model._audience_index()
    index = AudienceIndex(
        np.tile(small.vectors, (times, 1)),
        np.tile(small.log_norm, times),
        sp.vstack([small.owners] * times).tocsc(),
        small.bias,
        small.slope,
        small.key,
    )
    n_users = index.vectors.shape[0]
    vectors = model.sequence.item_vectors()
    rng = np.random.default_rng(0)
    codes = rng.choice(vectors.shape[0], 20, replace=False)

    def query(j: int):
        return top_shoppers(index.scores(vectors[[j]], np.array([j]), "all"), 1000)

    query(int(codes[0]))  # warm-up
    times_ms = [1e3 * _timed(lambda j=j: query(int(j)))[0] for j in codes]
    ours = float(np.median(times_ms))
    print(
        f"audience query, one item, top 1000 of {n_users} shoppers (tiled index): median "
        f"{ours:.1f} ms, worst {max(times_ms):.1f} ms"
    )
    seen = _seen(model)
    seen = sp.vstack([seen] * times).tocsr()
    sim = model.baselines["itemknn"].similarity_.tocsc()
    knn = [1e3 * _timed(lambda j=j: (seen @ sim[:, int(j)]).toarray())[0] for j in codes]
    print(
        f"item-kNN reversed, one item over {n_users} shoppers: median {np.median(knn):.1f} ms "
        f"({np.median(knn) / ours:.2f}x ours)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--tiled", action="store_true", help="see the module docstring")
    args = parser.parse_args()
    if args.tiled:
        tiled(args.users // 2000)
        return
    t, (events, items, users) = _timed(
        lambda: synthetic_shop(n_users=args.users, n_items=args.items, n_days=10, seed=0)
    )
    print(f"shop: {len(events)} events, {args.users} shoppers ({t:.0f} s to generate)")
    model = Recommender(
        sequence={"epochs": 1, "patience": None, "batch_size": 256, "dim": 32, "hidden": 32}
    )
    t, _ = _timed(lambda: model.fit(events, items, users))
    print(f"fit: {t:.0f} s")
    t, _ = _timed(model._audience_index)
    print(f"audience index (every shopper's vector, once): {t:.1f} s")
    rng = np.random.default_rng(0)
    chosen = rng.choice(np.asarray(model.items.classes_, dtype=object), 20, replace=False)
    times = [_timed(lambda i=i: model.audience([i], n=1000))[0] for i in chosen]
    ours = float(np.median(times))
    print(
        f"audience, one item, top 1000 of {args.users} shoppers: median {1e3 * ours:.1f} ms, "
        f"worst {1e3 * max(times):.1f} ms"
    )
    seen = _seen(model)
    sim = model.baselines["itemknn"].similarity_.tocsc()
    codes = [model.items.code(i) for i in chosen]
    knn = float(np.median([_timed(lambda j=j: (seen @ sim[:, j]).toarray())[0] for j in codes]))
    print(f"item-kNN reversed, one item: median {1e3 * knn:.1f} ms ({knn / ours:.2f}x ours)")
    sample = np.arange(min(10_000, len(model.users.classes_)))

    def per_shopper() -> None:
        for start in range(0, sample.size, 512):
            cases = model._serving_cases(sample[start : start + 512], [], [])
            model.sequence.score(cases)[:, codes[0]]

    t, _ = _timed(per_shopper)
    scaled = t * len(model.users.classes_) / sample.size
    print(
        f"per-shopper scoring: {t:.1f} s for {sample.size} shoppers, {scaled:.0f} s for all "
        f"({scaled / ours:.0f}x ours)"
    )


if __name__ == "__main__":
    main()
