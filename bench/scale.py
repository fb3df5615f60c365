"""Batch jobs on Dask (issue 16): scoring throughput on 1 vs 2 workers, and counting memory.

``scoring``: top-10 items for N shoppers (default 1M) from a model trained (not timed) on a
synthetic shop; the shopper list cycles through the model's shoppers, so every row is scored
with a real history. Runs in this process (the single-process path, one thread), on a
LocalCluster of 1 worker and of 2 workers (one thread each), each after a warm-up job that loads
the model and compiles the kernels on every worker; the 1- and 2-worker jobs alternate
``--repeats`` times and the best and median shoppers/s are printed with the ratio, and the
shoppers per CPU second of the workers and the cores they got (CPU seconds / wall seconds): on
a machine shared with other work, 2 workers cannot scale past the cores they get.

``counting``: writes a synthetic log of ``--events`` purchases (default 50M) as Parquet files of
``--per-file`` events, each file holding whole shoppers, with Zipf-like item popularity over
``--items`` items; then counts growing prefixes of it (``--logs``, in files) on a fresh
LocalCluster each (so that a worker's peak resident memory, ``VmHWM``, is that job's) and
prints seconds, events/s, the peak RSS of every worker and of this process, and the size of the
reduced counts. A worker's peak should stay flat as the log grows (it holds one partition and the
partial counts); the in-memory peer (``--peer-events``: the whole log in one process, counted
at once) is printed beside it.

Run (the machine has 2 cores; say how loaded it was)::

    python bench/scale.py scoring --shoppers 1000000
    python bench/scale.py counting --events 50000000 --logs 5 20 50
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

BASKET_GAP = 3600  # seconds between a shopper's baskets (> the 1800 s basket window)


def _peak_rss_mb() -> float:
    """This process's peak resident memory: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``,
    which a spawned worker inherits from the process that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- scoring -----------------------------------------------------------------------------------
def _train(args, where: Path) -> Path:
    from bundlerec.datasets import synthetic_shop
    from bundlerec.recommender import Recommender

    events, items, users = synthetic_shop(
        n_users=args.model_users, n_items=args.items, n_days=30, seed=0
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence={"epochs": 1, "patience": None}, network={"n_top": 150}).fit(
            events, items, users
        )
    print(
        f"model: {len(events)} events, {args.model_users} shoppers, "
        f"{model.history.n_items} items, trained in {time.perf_counter() - t0:.0f} s (not timed)"
    )
    model.save(where / "model")
    return where / "model"


def scoring(args) -> None:
    import corenn
    from bundlerec.batch.cluster import connect
    from bundlerec.batch.jobs import cached_model, run_batch

    corenn.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model = Path(args.model) if args.model else _train(args, scratch)
        known = list(cached_model(model).users.classes_)
        shoppers = [known[i % len(known)] for i in range(args.shoppers)]
        size = args.partition_size

        def job(client, name, n=None):
            users = shoppers if n is None else shoppers[:n]
            out = scratch / name
            return run_batch(
                model, users, "items", out, k=10, client=client, partition_size=size
            ).per_second

        def cpu_seconds(client) -> float:
            return sum(client.run(time.process_time).values())

        print(f"{args.shoppers} shoppers, top-10 items, partitions of {size} shoppers")
        local = job(None, "local")
        print(f"single process (1 thread): {local:,.0f} shoppers/s")
        rates, per_cpu, shares = {1: [], 2: []}, {1: [], 2: []}, {1: [], 2: []}
        with connect(workers=1) as one, connect(workers=2) as two:
            clients = {1: one, 2: two}
            for n, client in clients.items():
                client.wait_for_workers(n)
                job(client, f"warm{n}", n * size)  # loads the model on every worker
            for r in range(args.repeats):
                for n, client in clients.items():
                    cpu, wall = cpu_seconds(client), time.perf_counter()
                    rates[n].append(job(client, f"w{n}-{r}"))
                    cpu, wall = cpu_seconds(client) - cpu, time.perf_counter() - wall
                    per_cpu[n].append(args.shoppers / cpu)
                    shares[n].append(cpu / wall)
                    print(
                        f"  run {r + 1}: {n} worker(s) {rates[n][-1]:,.0f} shoppers/s, "
                        f"{per_cpu[n][-1]:,.0f} per worker CPU second, the workers got "
                        f"{shares[n][-1]:.2f} cores"
                    )
        for n in (1, 2):
            print(
                f"{n} worker(s): best {max(rates[n]):,.0f}, median "
                f"{statistics.median(rates[n]):,.0f} shoppers/s; median "
                f"{statistics.median(per_cpu[n]):,.0f} per CPU second on "
                f"{statistics.median(shares[n]):.2f} cores"
            )
        print(
            f"2 workers / 1 worker: best {max(rates[2]) / max(rates[1]):.2f}x, median "
            f"{statistics.median(rates[2]) / statistics.median(rates[1]):.2f}x; "
            f"1 worker / single process: {max(rates[1]) / local:.2f}x"
        )


# -- counting ----------------------------------------------------------------------------------
def _write_log(root: Path, n_events: int, per_file: int, n_items: int, seed: int) -> list[Path]:
    """Parquet files of ``per_file`` purchases each; file f holds shoppers of its own range."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (np.arange(n_items) + 10.0)
    popularity /= popularity.sum()
    paths = []
    for f in range(int(np.ceil(n_events / per_file))):
        n = min(per_file, n_events - f * per_file)
        sizes = 1 + rng.poisson(4.0, n // 2)
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
        sizes[-1] -= sizes.sum() - n
        n_users = max(1, n // 50)  # about 10 baskets of 5 per shopper
        owner = np.sort(rng.integers(0, n_users, sizes.size)) + f * per_file
        basket = np.repeat(np.arange(sizes.size), sizes)
        frame = pd.DataFrame(
            {
                "user_id": owner[basket],
                "item_id": rng.choice(n_items, size=n, p=popularity),
                "timestamp": 1_700_000_000 + basket * BASKET_GAP,
            }
        )
        paths.append(root / f"part-{f:05d}.parquet")
        frame.to_parquet(paths[-1], index=False)
    return paths


def _worker_peaks(client) -> list[float]:
    return sorted(client.run(_peak_rss_mb).values())


def counting(args) -> None:
    from bundlerec.batch.cluster import connect
    from bundlerec.batch.counting import count_parquet, item_vocabulary
    from bundlerec.lift import BasketStatistics
    from bundlerec.prep import Encoder, clean, to_interactions

    root = Path(args.data or tempfile.mkdtemp(prefix="bundlerec-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    paths = sorted(root.glob("part-*.parquet"))
    if len(paths) * args.per_file < args.events:
        t0 = time.perf_counter()
        paths = _write_log(root, args.events, args.per_file, args.items, args.seed)
        print(f"wrote {args.events:,} events in {len(paths)} files in "
              f"{time.perf_counter() - t0:.0f} s under {root}")  # fmt: skip
    items = item_vocabulary(paths)
    print(f"partition: {args.per_file:,} events per file; {len(items.classes_)} items")
    print(f"{'events':>12} {'files':>6} {'seconds':>8} {'events/s':>10} "
          f"{'worker peak RSS MB':>22} {'driver MB':>9} {'pairs':>11}")  # fmt: skip
    for millions in args.logs:
        files = paths[: max(1, int(millions * 1e6) // args.per_file)]
        n_events = sum(pd.read_parquet(p, columns=["item_id"]).shape[0] for p in files)
        with connect(workers=args.workers) as client:
            client.wait_for_workers(args.workers)
            before = _worker_peaks(client)
            t0 = time.perf_counter()
            stats, _ = count_parquet(files, items=items, client=client)
            seconds = time.perf_counter() - t0
            peaks = _worker_peaks(client)
        print(f"{n_events:>12,} {len(files):>6} {seconds:>8.1f} {n_events / seconds:>10,.0f} "
              f"{' / '.join(f'{p:,.0f}' for p in peaks):>22} {_peak_rss_mb():>9,.0f} "
              f"{stats.gram.nnz:>11,}")  # fmt: skip
    if args.logs:
        print(f"(workers at start: {' / '.join(f'{p:,.0f}' for p in before)} MB)")
    if args.peer_events:
        files = paths[: max(1, int(args.peer_events * 1e6) // args.per_file)]
        t0 = time.perf_counter()
        from bundlerec.data import load_events

        events = clean(pd.concat([load_events(p) for p in files], ignore_index=True))
        whole = BasketStatistics.from_interactions(
            to_interactions(events, Encoder().fit(events["user_id"]), items)
        )
        print(
            f"peer, one process, whole log in memory: {len(events):,} events in "
            f"{time.perf_counter() - t0:.1f} s, peak RSS {_peak_rss_mb():,.0f} MB, "
            f"{whole.gram.nnz:,} pairs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("scoring")
    s.add_argument("--shoppers", type=int, default=1_000_000)
    s.add_argument("--model", help="a saved model to score with (default: train one)")
    s.add_argument("--model-users", type=int, default=20_000)
    s.add_argument("--items", type=int, default=1000)
    s.add_argument("--partition-size", type=int, default=20_000)
    s.add_argument("--repeats", type=int, default=3)
    c = sub.add_parser("counting")
    c.add_argument("--events", type=int, default=50_000_000)
    c.add_argument("--per-file", type=int, default=1_000_000)
    c.add_argument("--items", type=int, default=20_000)
    c.add_argument("--logs", type=float, nargs="*", default=[5, 20, 50], help="millions")
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--peer-events", type=float, default=0, help="millions, 0: no peer")
    c.add_argument("--data", help="directory of the synthetic log (kept; default: a new one)")
    c.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    scoring(args) if args.what == "scoring" else counting(args)


if __name__ == "__main__":
    main()
