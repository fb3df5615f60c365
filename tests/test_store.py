"""The SQLite event store: committed appends, reopening, forget without trace, retention."""

import sqlite3
import time

import pytest

from bundlerec.data import load_events
from bundlerec.store import EventStore, as_events


def _event(user, item, t, **more):
    return {"user_id": user, "item_id": item, "event": "cart", "timestamp": t, **more}


def test_appends_are_numbered_and_survive_reopening(tmp_path):
    path = tmp_path / "e.db"
    with EventStore(path) as store:
        assert store.append([]) == (0, -1)
        assert store.append([_event("a", "x", 1), _event("b", "y", 2, price=3.5)]) == (1, 2)
        assert store.append([_event("a", "z", 3, basket_id="o1", quantity=2)]) == (3, 3)
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    # Another connection (another process) sees every committed event.
    rows = sqlite3.connect(path).execute("SELECT seq, user_id FROM events ORDER BY seq").fetchall()
    assert rows == [(1, "a"), (2, "b"), (3, "a")]
    with EventStore(path) as store:
        frame = store.events(after=1)
        assert frame["seq"].tolist() == [2, 3] and store.last_seq() == 3
        assert frame["price"].tolist()[0] == 3.5 and frame["basket_id"].tolist()[1] == "o1"
        assert store.events(user_id="a")["item_id"].tolist() == ["x", "z"]
        # The frame is canonical events.
        loaded = load_events(as_events(frame))
        assert loaded["event"].astype(str).tolist() == ["cart", "cart"]
        assert loaded["quantity"].tolist() == [1.0, 2.0]


def test_forget_leaves_no_trace_in_the_files(tmp_path):
    path = tmp_path / "e.db"
    secret = "shopper-with-a-very-recognisable-id"
    with EventStore(path) as store:
        store.append([_event(secret, f"i{k}", k) for k in range(200)])
        store.append([_event("other", "i1", 5)])
        assert store.generation == 0
        assert store.forget(secret) == 200
        assert store.generation == 1
        assert store.count() == 1 and store.last_seq() == 201
        for file in tmp_path.iterdir():
            assert secret.encode() not in file.read_bytes(), file
        assert store.forget(secret) == 0


def test_retention_drops_old_events(tmp_path):
    now = time.time()
    day = 86400
    with EventStore(tmp_path / "e.db") as store:
        store.append([_event("a", "x", int(now - 10 * day)), _event("a", "y", int(now - day))])
    with EventStore(tmp_path / "e.db", retention_days=5) as store:  # expires on opening
        assert store.events()["item_id"].tolist() == ["y"]
        assert store.expire(now=now + 5 * day) == 1 and store.count() == 0
    with pytest.raises(ValueError, match="retention_days"):
        EventStore(tmp_path / "f.db", retention_days=0)


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError, match="notes.db"):
        EventStore(path)
