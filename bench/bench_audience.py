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

Usage::

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/bench_audience.py [--users 100000]

Thread count: one (``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS``), the same for every method.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from bundlerec.datasets import synthetic_shop
from bundlerec.recommender import Recommender


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - start) / repeat, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()
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
    h = model.history
    seen = sp.csr_matrix(
        (np.ones(h.user.size), (h.user, h.item)), shape=(len(model.users.classes_), h.n_items)
    ).sign()
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
