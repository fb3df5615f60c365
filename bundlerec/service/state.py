"""What the service holds between requests: the model, the event store, the feedback loop.

:class:`Service` is the web framework's only link to the library. Readers (recommendations)
share the model; writers (events, forget, a reloaded model) take it alone for the few
milliseconds their change takes, through a writer-preferring :class:`ReadWriteLock`, so a
request never sees a half-grown model. Writers are ordered among themselves by a second lock,
held also while they wait for the disk (the store's commit, a model being saved), so reads go on
meanwhile. Two background threads keep the model current:

- every ``recount_every`` seconds the co-purchase counts of the baskets that changed are
  updated (:meth:`bundlerec.feedback.OnlineFeedback.recount`); the events themselves count at
  once, when they are posted;
- every ``reload_every`` seconds the model directory is checked: when ``bundlerec update`` (the
  periodic fold and fine-tuning) has saved a new model, it is loaded beside the running one, the
  stored events it has not folded are replayed into it, and it replaces the running one in one
  assignment (requests in flight finish on the old one).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from bundlerec.data import load_events
from bundlerec.feedback import OnlineFeedback
from bundlerec.prep import deduplicate
from bundlerec.privacy import Pseudonymizer
from bundlerec.progress import logger
from bundlerec.recommender import Recommender
from bundlerec.store import EventStore, as_events

__all__ = ["ReadWriteLock", "Service"]


class ReadWriteLock:
    """Many readers or one writer; a waiting writer stops new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._writing and not self._readers)
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _warm(model: Recommender) -> None:
    """Answer a few requests on ``model`` before it serves: its first ones pay one-time costs
    (kernels compiled, the inference engine's model compiled, counts built; about 0.6 s on the
    demo model), which on the event loop would stall every request behind them.

    The shopper is an id no model holds (a cold start: the model may hold pseudonyms only); a
    model too small for a bundle refuses one with a ValueError, which is no reason not to serve.
    """
    shopper = "\x00warm-up"
    anchor = list(model.items.classes_[:1])
    for ask in (
        lambda: model.recommend_items(shopper, k=10),
        lambda: model.recommend_bundles(shopper, k=5, size=3),
        lambda: model.recommend_bundles(shopper, k=5, size=3, anchor=anchor),
    ):
        try:
            ask()
        except (KeyError, ValueError):
            pass


def _settle() -> None:
    """Freeze the objects alive now (the installed model, the modules and caches its first
    requests built) out of the cyclic garbage collector.

    They live as long as the model serves, and the collector's full passes over them stalled one
    request in a few hundred by 40 to 100 ms on the demo model (``recommend_bundles`` in a loop:
    the stalls came at the same requests every run and vanished with ``gc.freeze``). Objects of
    a replaced model are unfrozen first, so that they can be freed.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _mtime(directory: Path) -> int:
    try:
        return (directory / "meta.json").stat().st_mtime_ns
    except OSError:
        return 0


class Service:
    """The running service's state.

    Parameters
    ----------
    model_dir : str or PathLike
        A model directory (:mod:`bundlerec.model_dir`).
    store : EventStore, optional
        Where posted events go; without it ``POST /v1/events`` and forget are refused.
    pseudonymizer : Pseudonymizer, optional
        Required when the model holds pseudonyms (and must be its key); refused with a model of
        raw shopper ids.
    recount_every, reload_every : float
        Seconds between co-purchase recounts and between checks for a new model on disk.

    Raises
    ------
    ValueError
        When the key and the model do not go together (named).
    """

    def __init__(
        self,
        model_dir: str | Path,
        store: EventStore | None = None,
        pseudonymizer: Pseudonymizer | None = None,
        recount_every: float = 1.0,
        reload_every: float = 5.0,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.store = store
        self.pseudonymizer = pseudonymizer
        self.recount_every = float(recount_every)
        self.reload_every = float(reload_every)
        self.lock = ReadWriteLock()
        self.writer = threading.RLock()  # orders the writers; readers never take it
        self.started = time.time()
        self.reloads = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.loaded_mtime = 0
        self._install(*self._load())

    # -- model ---------------------------------------------------------------------------------
    def _load(self) -> tuple[Recommender, int]:
        """The saved model and the modification time of its ``meta.json`` before reading."""
        seen = _mtime(self.model_dir)
        model = Recommender.load(self.model_dir, self.pseudonymizer)
        if model.key_check is not None and self.pseudonymizer is None:
            raise ValueError(
                f"{self.model_dir}: the model holds pseudonyms of shopper ids; give its key "
                "(--key-file or the BUNDLEREC_PSEUDONYM_KEY variable)"
            )
        return model, seen

    def _prepare(self, model: Recommender) -> tuple[OnlineFeedback, int]:
        """Replay into ``model`` the stored events it has not folded, and warm it up; return its
        feedback loop and the last store sequence number applied. The caller holds
        ``self.writer`` (no event is stored meanwhile) but not the readers' lock: the running
        model serves meanwhile."""
        online = OnlineFeedback(model)
        applied = model.store_seq
        if self.store is not None:
            events = self.store.events(after=model.store_seq)
            if len(events):
                self._observe(online, events.drop(columns="seq"))
                online.recount()
                applied = int(events["seq"].iloc[-1])
        _warm(model)
        return online, applied

    def _install(self, model: Recommender, mtime: int) -> None:
        """Make ``model`` (replayed and warmed up) the running model."""
        online, applied = self._prepare(model)
        with self.lock.writing():
            self.model, self.online, self.applied_seq = model, online, applied
        self.loaded_mtime = mtime
        _settle()

    def _observe(self, online: OnlineFeedback, frame: pd.DataFrame) -> None:
        online.observe(deduplicate(load_events(as_events(frame))))

    def reload_if_changed(self) -> bool:
        """Load the model directory again if ``meta.json`` changed; return whether it did."""
        if _mtime(self.model_dir) == self.loaded_mtime:
            return False
        loaded = self._load()
        with self.writer:
            self._install(*loaded)
        self.reloads += 1
        logger.info("service: reloaded the model from %s", self.model_dir)
        return True

    def shopper(self, user: str) -> str:
        """The id the model and the store hold for ``user``."""
        return self.pseudonymizer.pseudonym(user) if self.pseudonymizer is not None else user

    # -- requests ------------------------------------------------------------------------------
    def items(self, user: str, k: int, anchor: list[str], cart: list[str]) -> dict[str, Any]:
        with self.lock.reading():
            records = self.model.recommend_items(user, k=k, anchor=[*cart, *anchor] or None)
        return {"user": user, "items": records}

    def bundles(self, user: str, **options: Any) -> dict[str, Any]:
        with self.lock.reading():
            return self.model.recommend_bundles(user, **options)

    def audience(
        self,
        items: list[str],
        top: int,
        min_probability: float | None,
        horizon_days: float | None = 30.0,
    ) -> dict:
        with self.lock.reading():
            return self.model.audience(
                items, n=top, min_probability=min_probability, horizon_days=horizon_days
            )

    def products(self) -> list[dict[str, Any]]:
        with self.lock.reading():
            model = self.model
            return [model._item_record(j) for j in range(len(model.items.classes_))]

    def ingest(self, events: Sequence[dict[str, Any]]) -> int:
        """Store events (committed before this returns) and fold them into the model."""
        if self.store is None:
            raise ValueError("this service has no event store (start it with --store FILE)")
        rows = [{**e, "user_id": self.shopper(str(e["user_id"]))} for e in events]
        if not rows:
            return 0
        frame = load_events(as_events(pd.DataFrame(rows)))  # refused here is never stored
        with self.writer:
            first, last = self.store.append(rows)  # on disk when this returns
            with self.lock.writing():
                # Events as loaded, repeats dropped: the history insertion sorts them and cuts
                # their baskets (prep.clean's count filter has nothing to do on new events).
                self.online.observe(deduplicate(frame))
                self.applied_seq = last
        return len(rows)

    def forget(self, user: str) -> dict[str, Any]:
        """Remove a shopper from the store, the running model and the saved model directory.

        Raises
        ------
        KeyError
            If neither the store nor the model knows the shopper.
        """
        if self.store is None:
            raise ValueError("this service has no event store (start it with --store FILE)")
        held = self.shopper(user)
        with self.store.locked(), self.writer:
            from_store = self.store.forget(held)
            model = self.model
            from_model = 0
            if model.users.code(held) >= 0:
                with self.lock.writing():
                    self.online.recount()
                    from_model = model.forget(held, pseudonymised=True)
                    self.online = OnlineFeedback(model)
                # The saved directory held the id too: write the running model (with every
                # event applied so far) in its place; readers go on meanwhile.
                model.store_seq = self.applied_seq
                model.save(self.model_dir)
                self.loaded_mtime = _mtime(self.model_dir)
        if not from_store and not from_model:
            raise KeyError(f"unknown shopper {user!r}")
        return {"user": user, "events_removed": {"store": from_store, "model": from_model}}

    def stats(self) -> dict[str, Any]:
        model = self.model
        return {
            "events": self.store.count() if self.store is not None else None,
            "store_seq": self.applied_seq,
            "model": self.describe(model),
            "pending_recount": self.online.pending,
            "reloads": self.reloads,
            "uptime_s": round(time.time() - self.started, 1),
        }

    def describe(self, model: Recommender | None = None) -> dict[str, Any]:
        model = model or self.model
        return {
            "path": str(self.model_dir),
            "shoppers": len(model.users.classes_),
            "items": len(model.items.classes_),
            "history_events": len(model.history),
            "folded_store_seq": model.store_seq,
            "pseudonyms": model.key_check is not None,
        }

    # -- background ----------------------------------------------------------------------------
    def _every(self, seconds: float, work) -> None:
        while not self._stop.wait(seconds):
            try:
                work()
            except Exception:  # keep serving; the log says what failed
                logger.exception("service: background work failed")

    def _recount(self) -> None:
        if self.online.pending:
            with self.writer, self.lock.writing():
                self.online.recount()

    def start(self) -> None:
        """Start the recount, reload and (with a retention period) hourly expiry threads."""
        expire = self.store is not None and self.store.retention_days is not None
        for seconds, work in (
            (self.recount_every, self._recount),
            (self.reload_every, self.reload_if_changed),
            (3600.0 if expire else 0.0, lambda: self.store.expire()),
        ):
            if seconds > 0:
                thread = threading.Thread(target=self._every, args=(seconds, work), daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
