"""What the clients' pacing does to the service's tail latency, on a core of its own (issue 15).

A script, not a pytest module. ``bench_service.py --think`` measures the service on a machine
it shares (with the load generator and, on the project's machine, other work); this script
separates the pacing from the machine. It measures the service time of every request of the
load phase's mix in this process (CPU time of ``recommend_items`` / ``recommend_bundles``,
model warmed up and frozen out of the garbage collector as the service does), then replays
those times through one first-come-first-served server (the event loop) fed by ``--clients``
clients who pause ``--think`` seconds on average, paced two ways:

- ``fixed``: every client starts at once and pauses exactly ``--think`` (the bursts of
  ``bench_service.py --pacing fixed``);
- ``random``: starts spread over the first think time, exponential pauses (a Poisson stream,
  ``--pacing random``).

HTTP costs nothing here, so the latencies are lower bounds of what a served request sees.

Usage::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/service_pacing.py --model DIR
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import random
import time
from pathlib import Path

from bench_service import _percentiles, _request


def service_times(model_dir: Path, n: int, seed: int) -> dict[str, list[float]]:
    """CPU seconds of ``n`` requests of the load phase's mix, by endpoint."""
    from bundlerec.recommender import Recommender
    from bundlerec.service.state import _warm

    model = Recommender.load(model_dir)
    _warm(model)
    gc.collect()
    gc.freeze()
    shoppers = [str(u) for u in model.users.classes_]
    items = [str(i) for i in model.items.classes_]
    rng = random.Random(seed)
    times: dict[str, list[float]] = {"items": [], "bundles": []}
    for _ in range(n):
        name, params = _request(rng, shoppers, items)
        start = time.thread_time()
        if name == "items":
            model.recommend_items(params["user"], k=params["k"])
        else:
            anchor = [params["anchor"]] if "anchor" in params else None
            model.recommend_bundles(params["user"], k=5, size=3, anchor=anchor)
        times[name].append(time.thread_time() - start)
    return times


def replay(times, pacing: str, clients: int, think: float, seconds: float, seed: int) -> dict:
    """Latencies of one FIFO server over ``seconds``, service times drawn from ``times``."""
    rng = random.Random(seed)
    names = [name for name, v in times.items() for _ in v]
    pool = [t for v in times.values() for t in v]
    start = [rng.uniform(0, think) if pacing == "random" else 0.0 for _ in range(clients)]
    arrivals = [(t, k) for k, t in enumerate(start)]
    heapq.heapify(arrivals)
    free, out = 0.0, {"items": [], "bundles": []}
    while arrivals:
        t, k = heapq.heappop(arrivals)
        if t > seconds:
            continue
        j = rng.randrange(len(pool))
        free = max(t, free) + pool[j]
        out[names[j]].append(free - t)
        pause = rng.expovariate(1 / think) if pacing == "random" else think
        heapq.heappush(arrivals, (free + pause, k))
    return {name: _percentiles(v) for name, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a saved model directory")
    parser.add_argument("--requests", type=int, default=600, help="requests timed")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=5, help="replays of each pacing")
    args = parser.parse_args()
    times = service_times(args.model, args.requests, seed=3)
    report = {"service_time": {name: _percentiles(v) for name, v in times.items()}}
    for pacing in ("fixed", "random"):
        report[pacing] = [
            replay(times, pacing, args.clients, args.think, args.seconds, seed)
            for seed in range(args.runs)
        ]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
