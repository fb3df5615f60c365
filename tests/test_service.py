"""The HTTP service in-process (FastAPI's test client): answers, errors, auth, feedback, forget."""

import json
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundlerec.datasets import synthetic_shop
from bundlerec.privacy import Pseudonymizer
from bundlerec.recommender import Recommender
from bundlerec.store import EventStore

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from bundlerec.service import Service, create_app  # noqa: E402

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}
KEY = Pseudonymizer(b"0123456789abcdef-test-key")
API_KEY = "s3cret-api-key-of-the-shop"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small model of pseudonyms, saved; tests copy it before changing it."""
    events, items, users = synthetic_shop(n_users=150, n_items=60, n_days=30, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=SMALL_SEQ, network={"n_top": 30})
        model.fit(events, items, users, pseudonymizer=KEY)
    path = tmp_path_factory.mktemp("saved") / "model"
    model.save(path)
    return path, sorted(set(events["user_id"]))


@pytest.fixture
def served(saved, tmp_path):
    """(client, service, raw shopper ids, the folder holding the model and the store)."""
    import shutil

    path, shoppers = saved
    shutil.copytree(path, tmp_path / "model")
    store = EventStore(tmp_path / "events.db")
    service = Service(tmp_path / "model", store, KEY, recount_every=0, reload_every=0)
    client = TestClient(create_app(service, API_KEY), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {API_KEY}"
    yield client, service, shoppers, tmp_path
    store.close()


def test_answers_are_the_librarys_records(served):
    client, service, shoppers, _ = served
    user = shoppers[4]
    model = Recommender.load(service.model_dir, KEY)
    anchor = str(model.items.classes_[3])
    got = client.get("/v1/bundles", params={"user": user, "k": 2, "anchor": anchor})
    assert got.status_code == 200
    expected = model.recommend_bundles(user, k=2, anchor=[anchor])
    assert got.json() == json.loads(json.dumps(expected))
    items = client.get("/v1/items", params={"user": user, "k": 4}).json()
    assert items == {"user": user, "items": json.loads(json.dumps(model.recommend_items(user, 4)))}
    health = client.get("/health", headers={"Authorization": ""}).json()
    assert health["status"] == "ok" and health["model"]["pseudonyms"] is True
    assert len(client.get("/v1/products").json()["items"]) == len(model.items.classes_)


def test_audience_names_pseudonyms_only(served):
    client, service, shoppers, _ = served
    item = str(service.model.items.classes_[0])
    got = client.get("/v1/audience", params={"items": item, "top": 5})
    assert got.status_code == 200
    users = [u["user_id"] for u in got.json()["users"]]
    assert len(users) == 5 and not set(users) & set(shoppers)
    assert set(users) <= set(service.model.users.classes_)
    model = service.model
    for params, horizon in (({}, 30.0), ({"horizon_days": 7}, 7.0), ({"next_purchase": 1}, None)):
        got = client.get("/v1/audience", params={"items": item, "top": 5, **params}).json()
        want = model.audience([item], n=5, horizon_days=horizon)
        assert got == json.loads(json.dumps(want))
    assert client.get("/v1/audience", params={"items": item, "horizon_days": 0}).status_code == 422


def test_a_posted_event_changes_the_next_answer_and_is_stored(served):
    client, service, shoppers, _ = served
    user = shoppers[7]
    before = client.get("/v1/items", params={"user": user, "k": 10}).json()["items"]
    ids = service.model.items.classes_
    t0 = int(service.model.history.timestamp.max()) + 10_000
    batch = [
        {"user_id": user, "item_id": str(ids[j]), "event": "cart", "timestamp": t0 + 20 * n}
        for n, j in enumerate((40, 41, 42))
    ]
    posted = client.post("/v1/events", json=batch)
    assert posted.json() == {"accepted": 3}
    after = client.get("/v1/items", params={"user": user, "k": 10}).json()["items"]
    assert after != before
    stored = service.store.events()
    assert len(stored) == 3 and set(stored["user_id"]) == {KEY.pseudonym(user)}
    assert client.get("/v1/stats").json()["events"] == 3


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status"),
    [
        ("get", "/v1/items", {"user": "u1", "k": 0}, None, 422),
        ("get", "/v1/items", {}, None, 422),
        ("get", "/v1/bundles", {"user": "u1", "anchor": "no-such-item"}, None, 404),
        ("get", "/v1/bundles", {"user": "u1", "budget": -3}, None, 422),
        ("get", "/v1/audience", {"items": "no-such-item"}, None, 404),
        ("get", "/v1/audience", {"items": ","}, None, 400),
        ("post", "/v1/events", None, [{"user_id": "u1", "item_id": "i1"}], 422),
        ("post", "/v1/events", None, [{"user_id": "u", "item_id": "i", "timestamp": "soon"}], 422),
        ("post", "/v1/events", None, [{"user_id": "u", "item_id": "i", "timestamp": -5}], 422),
        ("post", "/v1/events", None, {"user_id": "u"}, 422),
        ("delete", "/v1/users/nobody-at-all", None, None, 404),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(served, method, path, params, body, status):
    client = served[0]
    got = client.request(method, path, params=params, json=body)
    assert got.status_code == status, got.text
    assert got.json()["detail"] and "Traceback" not in got.text


@settings(max_examples=25, deadline=None)
@given(
    user=st.text(max_size=12),
    anchor=st.text(max_size=12),
    k=st.text(max_size=4),
    budget=st.text(max_size=6),
)
def test_no_query_gets_a_500(served_once, user, anchor, k, budget):
    client = served_once
    got = client.get(
        "/v1/bundles", params={"user": user, "anchor": anchor, "k": k, "budget": budget}
    )
    assert got.status_code < 500, got.text


@pytest.fixture(scope="module")
def served_once(saved, tmp_path_factory):
    path = saved[0]
    service = Service(path, None, KEY, recount_every=0, reload_every=0)
    return TestClient(create_app(service), raise_server_exceptions=False)


def test_every_call_but_health_needs_the_api_key(served):
    client = served[0]
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        got = client.get("/v1/stats", headers=headers)
        assert got.status_code == 401 and "API key" in got.json()["detail"]
        assert client.post("/v1/events", json=[], headers=headers).status_code == 401
    assert client.get("/health", headers={"Authorization": ""}).status_code == 200
    assert client.get("/v1/stats").status_code == 200


def test_forget_leaves_no_trace_in_any_file(served):
    client, service, shoppers, folder = served
    user = shoppers[11]
    t0 = int(service.model.history.timestamp.max()) + 10_000
    item = str(service.model.items.classes_[5])
    client.post("/v1/events", json=[{"user_id": user, "item_id": item, "timestamp": t0}])
    got = client.delete(f"/v1/users/{user}")
    assert got.status_code == 200, got.text
    assert got.json()["events_removed"]["store"] == 1 and got.json()["events_removed"]["model"] > 1
    traces = (user.encode(), KEY.pseudonym(user).encode())
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "events.db" for p in files) and any(p.name == "meta.json" for p in files)
    for path in files:
        data = path.read_bytes()
        for trace in traces:
            assert trace not in data, (path, trace)
    assert client.delete(f"/v1/users/{user}").status_code == 404
    # another shopper is still served, and the reloaded directory agrees
    assert client.get("/v1/items", params={"user": shoppers[12]}).status_code == 200
    assert KEY.pseudonym(user) not in Recommender.load(service.model_dir).users.classes_


def test_a_new_model_is_swapped_in_without_failing_a_request(served, tmp_path):
    client, service, shoppers, _ = served
    t0 = int(service.model.history.timestamp.max()) + 10_000
    item = str(service.model.items.classes_[5])
    client.post("/v1/events", json=[{"user_id": shoppers[1], "item_id": item, "timestamp": t0}])
    # The periodic fold: the model directory gets the stored event, the service reloads it.
    from bundlerec.cli import main

    assert (
        main(
            [
                "update",
                "--model",
                str(service.model_dir),
                "--store",
                str(service.store.path),
                "--quiet",
            ]
        )
        == 0
    )
    statuses, stop = [], threading.Event()

    def ask():
        while not stop.is_set():
            r = client.get("/v1/bundles", params={"user": shoppers[2], "k": 1})
            statuses.append(r.status_code)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    assert service.reload_if_changed()
    stop.set()
    for t in threads:
        t.join()
    assert statuses and set(statuses) == {200}
    assert service.model.store_seq == service.applied_seq == 1
    assert len(service.model.history) == len(Recommender.load(service.model_dir).history)
    # nothing folded twice: one event more than the saved model before the fold
    assert np.sum(service.model.history.timestamp == t0) == 1


def test_mixed_events_are_taken_and_refused_ones_are_not_stored(served):
    client, service, shoppers, _ = served
    item = str(service.model.items.classes_[2])
    t0 = int(service.model.history.timestamp.max()) + 10_000
    mixed = [
        {"user_id": shoppers[0], "item_id": item, "timestamp": t0, "quantity": 2, "price": 3.0},
        {"user_id": "someone-new", "item_id": "an-item-never-seen", "timestamp": t0 + 1},
        {"user_id": shoppers[0], "item_id": item, "timestamp": "2030-01-01T10:00:00Z"},
    ]
    assert client.post("/v1/events", json=mixed).json() == {"accepted": 3}
    assert client.get("/v1/items", params={"user": "someone-new"}).status_code == 200
    fractional = [{"user_id": "u", "item_id": item, "timestamp": t0, "quantity": 0.5}]
    got = client.post("/v1/events", json=fractional)
    assert got.status_code == 400 and "quantit" in got.json()["detail"]
    assert service.store.count() == 3


def test_answers_carry_their_compute_time(served):
    client, service, shoppers, _ = served
    item = str(service.model.items.classes_[0])
    for path, params in (
        ("/v1/items", {"user": shoppers[1]}),
        ("/v1/bundles", {"user": shoppers[1], "k": 1}),
        ("/v1/audience", {"items": item, "top": 3}),
    ):
        timing = client.get(path, params=params).headers["server-timing"]
        name, _, duration = timing.partition(";dur=")
        assert name == "compute" and float(duration) >= 0, timing


def test_reads_go_on_while_a_new_model_is_prepared(served, monkeypatch):
    """The new model is replayed and warmed up beside the running one, which serves meanwhile:
    only the swap itself takes the readers' lock."""
    import os

    from bundlerec.service import state

    client, service, shoppers, _ = served
    warming, release = threading.Event(), threading.Event()

    def slow_warm(model):
        warming.set()
        release.wait(30)

    monkeypatch.setattr(state, "_warm", slow_warm)
    meta = service.model_dir / "meta.json"
    seen = meta.stat().st_mtime_ns
    os.utime(meta, ns=(seen + 10**9, seen + 10**9))
    reload = threading.Thread(target=service.reload_if_changed)
    reload.start()
    try:
        assert warming.wait(60)
        answers = []
        ask = threading.Thread(
            target=lambda: answers.append(client.get("/v1/items", params={"user": shoppers[0]}))
        )
        ask.start()
        ask.join(30)
        assert answers and answers[0].status_code == 200  # answered by the running model
        assert service.reloads == 0
    finally:
        release.set()
        reload.join(60)
    assert service.reloads == 1
