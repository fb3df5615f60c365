"""The service as a process: every event answered ``accepted`` survives a ``kill -9``."""

import threading

import httpx
import pytest
from _served import Server, small_model

from bundlerec.store import EventStore

pytest.importorskip("uvicorn")


def test_kill_9_mid_load_loses_no_accepted_event(tmp_path):
    model, shoppers = small_model(tmp_path / "model")
    store = tmp_path / "events.db"
    server = Server("--model", str(model), "--store", str(store), log=tmp_path / "log")
    accepted: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def post(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for batch in range(10_000):
                tokens = [f"w{worker}b{batch}e{k}" for k in range(10)]
                events = [
                    {
                        "user_id": shoppers[(worker * 7 + k) % len(shoppers)],
                        "item_id": "i0001",
                        "event": "view",
                        "timestamp": 1_700_000_000 + batch,
                        "basket_id": t,
                    }
                    for k, t in enumerate(tokens)
                ]
                try:
                    answer = client.post("/v1/events", json=events)
                except httpx.HTTPError:
                    assert killed.is_set(), "a request failed before the kill"
                    return
                assert answer.status_code == 200, answer.text
                with lock:
                    accepted.extend(tokens)

    workers = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    while True:  # kill once a good number of events was answered, with posts in flight
        with lock:
            if len(accepted) >= 400:
                break
        threading.Event().wait(0.05)
    killed.set()
    server.kill()
    for w in workers:
        w.join()
    with EventStore(store) as reopened:
        stored = set(reopened.events()["basket_id"])
    lost = set(accepted) - stored
    assert not lost, f"{len(lost)} accepted events lost, e.g. {sorted(lost)[:3]}"
    # A restarted server serves the stored events at once.
    again = Server("--model", str(model), "--store", str(store), log=tmp_path / "log2")
    try:
        stats = httpx.get(again.url + "/v1/stats", timeout=30).json()
        assert stats["events"] == len(stored) >= len(accepted)
        assert stats["store_seq"] == stats["events"]
    finally:
        again.kill()


def test_an_idle_connection_stays_open_longer_than_clients_keep_theirs(tmp_path):
    """A client (httpx: 5 s) reusing its idle connection never meets one the server has just
    closed: the server keeps idle connections longer (uvicorn's default, 5 s, failed this)."""
    import http.client
    import time

    model, _ = small_model(tmp_path / "model")
    server = Server("--model", str(model), log=tmp_path / "log")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for pause in (0, 6):
            time.sleep(pause)
            connection.request("GET", "/health")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
        connection.close()
    finally:
        server.kill()
