"""Latency tail of ``recommend_bundles`` on a saved model: median, p90, p99 over many shoppers.

Each call asks 5 bundles of 3 (under ``--budget`` if given) for the next shopper (cycling
over the first ``--shoppers``), once without and once with an anchor (the most bought item),
after ``--warmup`` calls that are not counted. The plan caches of the engines start cold, as
in a fresh service process: most calls meet evidence sets not seen before.

Run (issue 12/15; one thread, as the service's workers)::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/serving_latency.py --model DIR
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import corenn
from bundlerec.recommender import Recommender


def latencies(
    model: Recommender, users: list, calls: int, warmup: int, anchor, budget: float | None
) -> np.ndarray:
    """(2, calls) float64 milliseconds of one ``recommend_bundles(k=5, size=3, budget=...)``
    each: wall time, then the process's CPU time (less sensitive to other work on a shared
    machine)."""
    out = np.empty((2, calls))
    for i in range(-warmup, calls):
        user = users[(i + warmup) % len(users)]
        wall, cpu = time.perf_counter(), time.process_time()
        model.recommend_bundles(user, k=5, size=3, anchor=anchor, budget=budget)
        if i >= 0:
            out[:, i] = time.perf_counter() - wall, time.process_time() - cpu
    return out * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model directory (Recommender.save)")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--shoppers", type=int, default=500)
    parser.add_argument("--budget", type=float, default=None, help="price cap of a bundle")
    args = parser.parse_args()
    threads = corenn.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    model = Recommender.load(args.model)
    users = list(model.users.classes_[: args.shoppers])
    popular = np.bincount(model.history.item, minlength=model.history.n_items).argmax()
    print(
        f"{model.history.n_items} items, {len(users)} shoppers, {threads} thread(s), "
        f"load average {os.getloadavg()[0]:.2f}, budget {args.budget}"
    )
    for name, anchor in (("no anchor", None), ("anchor", [str(model.items.classes_[popular])])):
        wall, cpu = latencies(model, users, args.calls, args.warmup, anchor, args.budget)
        p50, p90, p99 = np.percentile(wall, [50, 90, 99])
        print(
            f"{name:9s}: {args.calls} calls, median {p50:.2f} ms, p90 {p90:.2f} ms, "
            f"p99 {p99:.2f} ms, max {wall.max():.2f} ms; CPU time median "
            f"{np.median(cpu):.2f} ms, p99 {np.percentile(cpu, 99):.2f} ms"
        )


if __name__ == "__main__":
    main()
