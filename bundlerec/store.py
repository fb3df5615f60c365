"""The durable event store of the service: an append-only SQLite table in WAL mode.

:meth:`EventStore.append` writes a batch of events in one transaction and returns only after the
commit, so an event the service answered ``accepted`` survives a ``kill -9`` of the server (with
the default ``synchronous="FULL"`` it also survives a power cut: the write-ahead log is synced
on every commit). Each event gets a sequence number ``seq`` (1, 2, ... in commit order); a model
directory records the last ``seq`` folded into it, so ``bundlerec update`` folds every stored
event exactly once.

Privacy: the store holds whatever shopper id it is given; the service gives it pseudonyms
(:mod:`bundlerec.privacy`). :meth:`EventStore.forget` deletes a shopper's rows with SQLite's
``secure_delete`` (the freed bytes are overwritten with zeros) and then checkpoints and
truncates the write-ahead log, so no file of the store keeps the id. :meth:`EventStore.expire`
drops events older than a retention period.

Concurrency: one :class:`EventStore` may be shared by threads (a lock serialises its one
connection); other processes (``bundlerec update``) open their own. :meth:`EventStore.locked`
takes an exclusive advisory lock on ``<file>.lock`` that the service's forget and ``bundlerec
update``'s save hold, so a model being folded cannot bring back a shopper forgotten meanwhile
(see :attr:`EventStore.generation`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bundlerec.data import EVENT_TYPES

__all__ = ["COLUMNS", "EventStore", "as_events"]

COLUMNS = ("user_id", "item_id", "event", "timestamp", "basket_id", "price", "quantity")
"""The stored fields of an event (``basket_id``, ``price``, ``quantity`` may be missing)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    basket_id TEXT,
    price REAL,
    quantity REAL,
    received INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id);
CREATE INDEX IF NOT EXISTS events_time ON events (timestamp);
CREATE TABLE IF NOT EXISTS info (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO info VALUES ('generation', 0);
"""


def as_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored events (or posted ones) as input for :func:`bundlerec.data.load_events`: without
    ``seq``, a missing ``quantity`` is 1, and optional columns missing in every row are left
    out."""
    frame = frame.drop(columns=[c for c in ("seq",) if c in frame.columns])
    if "quantity" in frame.columns:
        frame = frame.assign(quantity=frame["quantity"].astype("float64").fillna(1.0))
    optional = [c for c in ("basket_id", "price", "quantity") if c in frame.columns]
    return frame.drop(columns=[c for c in optional if frame[c].isna().all()])


class EventStore:
    """Events in a SQLite file (created if absent).

    Parameters
    ----------
    path : str or PathLike
        The database file; ``<path>-wal``, ``<path>-shm`` and ``<path>.lock`` sit beside it.
    retention_days : float, optional
        When given, events whose ``timestamp`` is older than this many days (by the clock) are
        dropped on opening and by every :meth:`expire` call.
    synchronous : {"FULL", "NORMAL"}
        SQLite's sync level: FULL syncs the log on every commit (power-cut safe); NORMAL
        survives a killed process but not a power cut.

    Raises
    ------
    OSError, sqlite3.DatabaseError
        If the file cannot be opened or is not a database (the message names the path).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        retention_days: float | None = None,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        if retention_days is not None and not retention_days > 0:
            raise ValueError(f"retention_days must be positive, got {retention_days}")
        self.path = Path(path)
        self.retention_days = retention_days
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise sqlite3.DatabaseError(f"{self.path}: {err}") from err
        if retention_days is not None:
            self.expire()

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------
    def append(self, events: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Append events in one committed transaction; return their (first, last) ``seq``.

        Each event is a mapping with ``user_id``, ``item_id``, ``event`` (one of
        :data:`bundlerec.data.EVENT_TYPES`), ``timestamp`` (int seconds) and optionally
        ``basket_id``, ``price``, ``quantity``; validation is the caller's
        (:mod:`bundlerec.service.schemas`). Returns ``(0, -1)`` for no events. When this returns,
        the events are on disk.
        """
        received = int(time.time())
        rows = [
            (
                str(e["user_id"]),
                str(e["item_id"]),
                str(e["event"]),
                int(e["timestamp"]),
                None if e.get("basket_id") is None else str(e["basket_id"]),
                None if e.get("price") is None else float(e["price"]),
                None if e.get("quantity") is None else float(e["quantity"]),
                received,
            )
            for e in events
        ]
        if not rows:
            return 0, -1
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO events (user_id, item_id, event, timestamp, basket_id, price, "
                    "quantity, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                last = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return last - len(rows) + 1, last

    def forget(self, user_id: str) -> int:
        """Delete every event of ``user_id``, overwrite the freed bytes and truncate the log;
        return the number of events deleted. Increments :attr:`generation`."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = self._db.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
                self._db.execute("UPDATE info SET value = value + 1 WHERE name = 'generation'")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    def expire(self, now: float | None = None) -> int:
        """Drop events older than ``retention_days`` before ``now`` (default: the clock);
        return how many. Does nothing without a retention period."""
        if self.retention_days is None:
            return 0
        cut = int((time.time() if now is None else now) - self.retention_days * 86400)
        with self._lock:
            n = self._db.execute("DELETE FROM events WHERE timestamp < ?", (cut,)).rowcount
            if n:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    # -- reading -------------------------------------------------------------------------------
    def events(self, after: int = 0, user_id: str | None = None) -> pd.DataFrame:
        """Stored events with ``seq > after`` (of one shopper when ``user_id`` is given), in
        ``seq`` order, as canonical events (:func:`bundlerec.data.load_events` reads the frame)
        plus the int64 column ``seq``."""
        query = (
            "SELECT seq, user_id, item_id, event, timestamp, basket_id, price, quantity "
            "FROM events WHERE seq > ?"
        )
        args: tuple[Any, ...] = (int(after),)
        if user_id is not None:
            query += " AND user_id = ?"
            args += (user_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        frame = pd.DataFrame(rows, columns=["seq", *COLUMNS])
        frame["seq"] = frame["seq"].astype("int64")
        frame["timestamp"] = frame["timestamp"].astype("int64")
        frame["event"] = pd.Categorical(frame["event"], categories=EVENT_TYPES)
        for column in ("price", "quantity"):
            frame[column] = frame[column].astype("float64")
        return frame

    def count(self) -> int:
        """Number of stored events."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def last_seq(self) -> int:
        """The highest ``seq`` ever given (0 for a new store); deleted rows keep theirs."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
            found = row.fetchone()
        return int(found[0]) if found else 0

    @property
    def generation(self) -> int:
        """How many times :meth:`forget` ran on this store (a fold begun before a forget must
        not save its model: it would bring the shopper back)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM info WHERE name = 'generation'")
            return int(row.fetchone()[0])

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive advisory lock ``<path>.lock`` (between processes)."""
        with open(self.path.with_name(self.path.name + ".lock"), "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
