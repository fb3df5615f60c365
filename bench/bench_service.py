"""Load test of ``bundlerec serve`` on loopback (issue 15). A script, not a pytest module.

Targets on the 2-core machine: 50 concurrent clients for 30 s, items p50 < 10 ms, bundles p50 <
25 ms, p99 < 100 ms, no errors; events ingested durably at >= 2,000 events/s; an event changes
the shopper's next answer within 100 ms.

Phases, each bounded in time, against one server process (``bundlerec serve`` with an event
store, started here, stopped at the end):

1. ``serial``: one client, one request at a time: the service time of each endpoint.
2. ``load``: ``--clients`` concurrent clients (asyncio + httpx, in this process) for
   ``--seconds``; each client picks items (60 %) or bundles (40 %, half around an anchor) at random
   and asks again as soon as it is answered (closed loop), or after a pause of ``--think``
   seconds on average (``--pacing``: random, the default, or fixed). Latencies are measured by
   the client, from sending the request to the whole answer read (they include the client's own
   time: the load generator shares the cores with the server); ``*_compute`` is the server's
   time per answer (its ``Server-Timing`` header) and ``*_waiting`` the rest (the event loop's
   queue, the network, the client).
3. ``ingest``: ``--post-clients`` clients post batches of ``--batch`` events for ``--seconds``;
   every answered event is committed (SQLite WAL, synchronous=FULL) before the answer. The store
   is counted afterwards: accepted events == stored events.
4. ``feedback``: for 50 shoppers, the time from posting 3 events until the shopper's next items
   answer differs from the one before (POST and GET included).
5. ``update``: the cost of :meth:`Recommender.update` for 20 new events on models of two history
   sizes, in this process, against the retraining it replaced (the fine-tuning of the sequence
   model on the whole history, 1 epoch, and the baselines refitted).

Usage::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/bench_service.py --clients 50 --seconds 30

The model is the synthetic shop (``--users`` shoppers, 300 items), fitted here with a short
training (``--model DIR`` serves a saved one instead). The figures are printed as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import numpy as np

SEQUENCE = {"epochs": 3, "patience": None}


def _fit(users: int, out: Path, seed: int = 0) -> Path:
    from bundlerec.datasets import synthetic_shop
    from bundlerec.recommender import Recommender

    events, items, people = synthetic_shop(n_users=users, n_items=300, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=SEQUENCE, network={"n_top": 60}).fit(events, items, people)
    model.save(out)
    return out


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ms = np.asarray(values) * 1e3
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def _request(rng: random.Random, shoppers: list[str], items: list[str]) -> tuple[str, dict]:
    user = rng.choice(shoppers)
    if rng.random() < 0.6:
        return "items", {"user": user, "k": 10}
    params = {"user": user, "k": 5, "size": 3}
    if rng.random() < 0.5:
        params["anchor"] = rng.choice(items)
    return "bundles", params


def _compute(response: httpx.Response) -> float:
    """The server's compute time of an answer (its ``Server-Timing: compute;dur=<ms>``), s."""
    timing = response.headers.get("server-timing", "")
    return float(timing.partition("dur=")[2] or "nan") / 1e3


async def _load(url, shoppers, items, clients, seconds, think, pacing="random") -> dict:
    times: dict[str, list[float]] = {"items": [], "bundles": []}
    computes: dict[str, list[float]] = {"items": [], "bundles": []}
    errors: dict[str, int] = {}
    examples: list[str] = []  # what the first failures were (status and message, or exception)
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(k: int) -> None:
            rng = random.Random(k)

            def pause() -> float:
                return rng.expovariate(1 / think) if pacing == "random" else think

            if think and pacing == "random":
                await asyncio.sleep(rng.uniform(0, think))  # the clients start spread out
            while time.perf_counter() < stop:
                name, params = _request(rng, shoppers, items)
                t0 = time.perf_counter()
                try:
                    r = await client.get(f"/v1/{name}", params=params)
                    ok = r.status_code == 200
                    failure = f"{name} {params}: {r.status_code} {r.text[:200]}"
                except httpx.HTTPError as err:
                    ok = False
                    failure = f"{name} {params}: {type(err).__name__} {err}"
                if ok:
                    times[name].append(time.perf_counter() - t0)
                    computes[name].append(_compute(r))
                else:
                    errors[name] = errors.get(name, 0) + 1
                    if len(examples) < 5:
                        examples.append(failure)
                if think:
                    await asyncio.sleep(pause())

        t_start, cpu_start = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(k) for k in range(clients)))
        wall, cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    total = sum(len(v) for v in times.values())
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests_per_s": round(total / wall, 1),
        "client_cpu_ms_per_request": round(1e3 * cpu / max(total, 1), 2),
        "errors": errors,
        "error_examples": examples,
        **{name: _percentiles(v) for name, v in times.items()},
        # The server's own time per answer (its Server-Timing header), and the rest: waiting for
        # the event loop, the network and the client.
        **{f"{name}_compute": _percentiles(v) for name, v in computes.items()},
        **{
            f"{name}_waiting": _percentiles(list(np.subtract(times[name], computes[name])))
            for name in times
        },
    }


async def _ingest(url, shoppers, items, clients, seconds, batch) -> dict:
    accepted, errors, latencies = 0, 0, []
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one(k: int) -> None:
            nonlocal accepted, errors
            rng = random.Random(1000 + k)
            n = 0
            while time.perf_counter() < stop:
                events = [
                    {
                        "user_id": rng.choice(shoppers),
                        "item_id": rng.choice(items),
                        "event": rng.choice(("view", "click", "cart", "purchase")),
                        "timestamp": 1_800_000_000 + n,
                    }
                    for _ in range(batch)
                ]
                n += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/events", json=events)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    accepted += r.json()["accepted"]
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        t_start = time.perf_counter()
        await asyncio.gather(*(one(k) for k in range(clients)))
        wall = time.perf_counter() - t_start
    return {
        "clients": clients,
        "batch": batch,
        "seconds": round(wall, 1),
        "accepted": accepted,
        "events_per_s": round(accepted / wall, 1),
        "errors": errors,
        "post": _percentiles(latencies),
    }


def _feedback(url, shoppers, items, n=50) -> dict:
    delays, unchanged = [], 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for k, user in enumerate(shoppers[:n]):
            before = client.get("/v1/items", params={"user": user, "k": 10}).json()["items"]
            events = [
                {
                    "user_id": user,
                    "item_id": items[(7 * k + j) % len(items)],
                    "event": "cart",
                    "timestamp": 1_900_000_000 + 20 * j,
                }
                for j in range(3)
            ]
            t0 = time.perf_counter()
            client.post("/v1/events", json=events).raise_for_status()
            after = client.get("/v1/items", params={"user": user, "k": 10}).json()["items"]
            if after != before:
                delays.append(time.perf_counter() - t0)
            else:
                unchanged += 1
    return {
        "shoppers": n,
        "changed": len(delays),
        "unchanged": unchanged,
        "post_to_changed_answer": _percentiles(delays),
    }


def _update_cost(model_dirs: dict[str, Path]) -> dict:
    import pandas as pd

    from bundlerec.recommender import Recommender

    out = {}
    for name, path in model_dirs.items():
        model = Recommender.load(path)
        ids = model.items.classes_
        t0 = int(model.history.timestamp.max()) + 10_000
        users = model.users.classes_[:10]
        new = pd.DataFrame(
            {
                "user_id": np.repeat(users, 2),
                "item_id": [ids[j % len(ids)] for j in range(20)],
                "timestamp": t0 + np.arange(20),
                "event": "purchase",
            }
        )
        start = time.perf_counter()
        model.update(new)
        online = time.perf_counter() - start
        start = time.perf_counter()
        model.update(new.assign(timestamp=new["timestamp"] + 10_000), epochs=1)
        tuned = time.perf_counter() - start
        # What update() did before: an epoch over the whole history and the baselines refitted.
        start = time.perf_counter()
        model.sequence.fine_tune(model.history, epochs=1, user_features=model.user_features)
        model._fit_baselines(model.history)
        retrain = time.perf_counter() - start
        out[name] = {
            "history_events": len(model.history),
            "update_s": round(online, 4),
            "update_epochs1_s": round(tuned, 4),
            "old_retrain_s": round(retrain, 3),
        }
    return out


def _serial(url, shoppers, items, n=200) -> dict:
    rng = random.Random(7)
    times: dict[str, list[float]] = {"items": [], "bundles": []}
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(n):
            name, params = _request(rng, shoppers, items)
            t0 = time.perf_counter()
            client.get(f"/v1/{name}", params=params).raise_for_status()
            times[name].append(time.perf_counter() - t0)
    return {name: _percentiles(v) for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a saved model (default: fit the shop)")
    parser.add_argument("--users", type=int, default=2000, help="shoppers of the synthetic shop")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds between a client's requests (0: closed loop)",
    )
    parser.add_argument(
        "--pacing",
        choices=("random", "fixed"),
        default="random",
        help="with --think: 'random' starts the clients at random moments of the first think "
        "time and draws each pause from an exponential law of mean --think (the requests then "
        "arrive as a Poisson stream); 'fixed' starts them all at once and pauses exactly --think "
        "(they then come in bursts of --clients)",
    )
    parser.add_argument("--post-clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50, help="events per POST")
    parser.add_argument("--phases", default="serial,load,ingest,feedback,update")
    parser.add_argument("--server-log", type=Path, help="file for the server's messages")
    args = parser.parse_args()
    phases = args.phases.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-service."))
    model = args.model or _fit(args.users, work / "model")
    if args.model:
        import shutil

        model = Path(shutil.copytree(args.model, work / "model"))
    from bundlerec.recommender import Recommender

    loaded = Recommender.load(model)
    shoppers = [str(u) for u in loaded.users.classes_]
    items = [str(i) for i in loaded.items.classes_]
    del loaded
    # This process is the load generator: keep the cyclic garbage collector's full passes off
    # what the fit and the imports left (they would stall the clients, not the server).
    gc.collect()
    gc.freeze()
    port = _port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bundlerec.cli",
            "serve",
            "--model",
            str(model),
            "--store",
            str(work / "events.db"),
            "--port",
            str(port),
        ],
        env=env,
        stderr=subprocess.DEVNULL if not args.server_log else args.server_log.open("w"),
    )
    report: dict = {
        "cores": os.cpu_count(),
        "model_users": len(shoppers),
        "model_items": len(items),
        "threads": 1,
    }
    try:
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"the server exited with status {server.returncode}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        if "serial" in phases:
            report["serial"] = _serial(url, shoppers, items)
        if "load" in phases:
            report["load"] = asyncio.run(
                _load(url, shoppers, items, args.clients, args.seconds, args.think, args.pacing)
            )
        if "ingest" in phases:
            report["ingest"] = asyncio.run(
                _ingest(url, shoppers, items, args.post_clients, args.seconds, args.batch)
            )
            stored = httpx.get(url + "/v1/stats", timeout=30).json()["events"]
            report["ingest"]["stored"] = stored
        if "feedback" in phases:
            report["feedback"] = _feedback(url, shoppers, items)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    if "update" in phases:
        bigger = _fit(4 * len(shoppers), work / "bigger")
        report["update"] = _update_cost({"shop": model, "shop_x4": bigger})
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
