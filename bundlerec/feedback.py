"""Feedback: fold new events into a fitted :class:`~bundlerec.recommender.Recommender` at once.

:class:`OnlineFeedback` is the feedback loop without retraining. :meth:`OnlineFeedback.observe`
inserts new events into the model's history, where the next request of that shopper reads them:
the sequence model's LSTM runs forward over the shopper's recent steps (the new ones included)
and the co-purchase network sees them as basket context, so the shopper's next answer changes
with no gradient step. New shoppers and items join the model (cold start from their
attributes). An event at most ``window`` seconds after the shopper's last one (and without a
``basket_id``) continues that basket, otherwise it opens a new one. :meth:`OnlineFeedback.recount`
then updates the co-purchase network's family counts in place for the baskets that changed since
the last recount (a Dirichlet count update: their old counts out, their new counts in). Both cost
grows with the new events, not with the history, except for array copies of the history when
rows are inserted (a ``memcpy``, measured in ``bench/bench_service.py``).

:func:`forget` removes a shopper: their events, their basket counts, their attribute row and their
id. Fine-tuning the sequence model's weights is separate and periodic
(:meth:`Recommender.update` with ``epochs > 0``, ``bundlerec update --epochs``), on the sequences
of the shoppers with new events only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bundlerec.catalogue import Catalogue, item_text, padded
from bundlerec.data import items_from_events
from bundlerec.prep import UNKNOWN, Encoder, Interactions, PriceScaler, align, to_interactions

if TYPE_CHECKING:
    from bundlerec.recommender import Recommender

__all__ = [
    "LazyBaselines",
    "OnlineFeedback",
    "forget",
    "grow_items",
    "grow_users",
    "merge_history",
]


def merge_history(history: Interactions, new: Interactions, n_users: int, n_items: int):
    """``history`` with the rows of ``new`` inserted in (user, timestamp) order.

    A new row goes after every history row of the same user with a timestamp at or before its
    own; basket codes are kept as given (the caller numbers them). The history is not sorted
    again: the rows are inserted at the positions found by binary search.

    Returns
    -------
    Interactions
        With ``n_users`` shoppers and ``n_items`` items (the grown encoders' sizes).
    """
    order = np.lexsort((np.arange(len(new)), new.timestamp, new.user))
    user, time = new.user[order], new.timestamp[order]
    first = np.searchsorted(history.user, user, side="left")
    last = np.searchsorted(history.user, user, side="right")
    pos = np.array(
        [
            a + np.searchsorted(history.timestamp[a:b], t, side="right")
            for a, b, t in zip(first, last, time)
        ],
        dtype=np.int64,
    )
    fields = ("user", "item", "basket", "timestamp", "event")
    merged = {f: np.insert(getattr(history, f), pos, getattr(new, f)[order]) for f in fields}
    return Interactions(**merged, n_users=n_users, n_items=n_items)


def _rows_of_baskets(history: Interactions, users: np.ndarray, baskets: np.ndarray):
    """The rows of ``history`` in ``baskets`` (all owned by ``users``), found per user."""
    first = np.searchsorted(history.user, users, side="left")
    last = np.searchsorted(history.user, users, side="right")
    rows = np.concatenate([np.arange(a, b) for a, b in zip(first, last)] or [np.zeros(0, int)])
    rows = rows[np.isin(history.basket[rows], baskets)]
    mask = np.zeros(len(history), dtype=bool)
    mask[rows] = True
    return history.subset(mask)


class OnlineFeedback:
    """The feedback loop of a fitted model, without retraining (see the module docstring).

    Parameters
    ----------
    model : Recommender
        Fitted; changed in place.

    Attributes
    ----------
    pending : int
        Events observed since the last :meth:`recount`.
    """

    def __init__(self, model: Recommender) -> None:
        self.model = model
        self._counted = model.history  # the history the network's counts describe
        self._baskets: set[int] = set()  # baskets changed since
        self._users: set[int] = set()  # and their owners
        self.pending = 0

    def observe(
        self,
        frame: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
    ) -> Interactions:
        """Insert canonical events (:func:`bundlerec.data.load_events`, repeats dropped) into
        the history.

        Returns the encoded new rows (their final basket codes). The co-purchase counts follow at
        the next :meth:`recount`.
        """
        model = self.model
        if frame.empty:
            return model.history.subset(np.zeros(len(model.history), dtype=bool))
        grow_items(model, frame, items)
        grow_users(model, frame, users)
        n_users, n_items = len(model.users.classes_), len(model.items.classes_)
        _grow_sequence_users(model)
        new = to_interactions(frame, model.users, model.items, window=model.window)
        history = model.history
        explicit = np.zeros(len(new), dtype=bool)
        if "basket_id" in frame.columns and frame["basket_id"].notna().any():
            # Rows are sorted by (user, timestamp, row) in both the frame and ``new``.
            codes = model.users.transform(frame["user_id"])
            order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(), codes))
            explicit = frame["basket_id"].notna().to_numpy()[order]
        n_old = history.n_baskets
        basket = new.basket + n_old
        # A basket of loose events that starts within ``window`` of the shopper's last event
        # continues the shopper's last basket.
        for s in np.flatnonzero(np.r_[True, new.basket[1:] != new.basket[:-1]]):
            u, stop = new.user[s], np.searchsorted(history.user, new.user[s], side="right")
            if explicit[s] or stop == 0 or history.user[stop - 1] != u:
                continue
            if 0 <= new.timestamp[s] - history.timestamp[stop - 1] <= model.window:
                basket[new.basket == new.basket[s]] = history.basket[stop - 1]
        fresh = basket >= n_old
        basket[fresh] = n_old + np.unique(basket[fresh], return_inverse=True)[1]
        new = Interactions(new.user, new.item, basket, new.timestamp, new.event, n_users, n_items)
        model.history = merge_history(history, new, n_users, n_items)
        model._history_grew(len(history), np.unique(new.user))
        model._counts = model._together = model._backoff = None  # rebuilt on first use
        self._baskets.update(np.unique(new.basket).tolist())
        self._users.update(np.unique(new.user).tolist())
        self.pending += len(new)
        return new

    def recount(self) -> None:
        """Update the co-purchase network's counts for the baskets changed since the last call:
        their counts at that time are removed and their current counts added
        (:meth:`~bundlerec.models.copurchase.CoPurchaseNetwork.count_baskets`)."""
        if not self._baskets:
            return
        model = self.model
        users = np.array(sorted(self._users), dtype=np.int64)
        baskets = np.array(sorted(self._baskets), dtype=np.int64)
        network = model.network
        if network.counts is None:  # saved before counts: the Dirichlet prior update instead
            network.update(_rows_of_baskets(model.history, users, baskets))
        else:
            before = _rows_of_baskets(self._counted, users[users < self._counted.n_users], baskets)
            network.count_baskets(before, sign=-1)
            network.count_baskets(_rows_of_baskets(model.history, users, baskets))
        self._counted = model.history
        self._baskets.clear()
        self._users.clear()
        self.pending = 0

    def touched(self, max_len: int) -> Interactions:
        """The last ``max_len`` events of every shopper with events since the last
        :meth:`recount` (what a periodic fine-tuning trains on)."""
        history = self.model.history
        users = np.array(sorted(self._users), dtype=np.int64)
        first = np.searchsorted(history.user, users, side="left")
        last = np.searchsorted(history.user, users, side="right")
        mask = np.zeros(len(history), dtype=bool)
        for a, b in zip(np.maximum(first, last - max_len), last):
            mask[a:b] = True
        return history.subset(mask)


def _grow_sequence_users(model: Recommender) -> None:
    """Give the sequence model the attribute rows of shoppers added to ``model.users``."""
    seq = model.sequence
    n_users = len(model.users.classes_)
    if n_users == seq.n_users_:
        return
    # The user tower reads a shopper's attribute codes from its ``codes`` buffer (row u + 1).
    rows = seq._known_codes(model.user_features, n_users, seq._net.users.sizes, seq._user_names)
    seq._net.users.register_buffer("codes", rows)
    seq.n_users_ = n_users


class LazyBaselines(Mapping):
    """The baselines by name, fitted on first access (an update leaves them to be refitted
    when an evaluation asks for them, so its cost does not grow with the history)."""

    def __init__(self, fit: Callable[[], dict]) -> None:
        self._fit = fit
        self._models: dict | None = None

    def _get(self) -> dict:
        if self._models is None:
            self._models = self._fit()
        return self._models

    def __getitem__(self, name: str):
        return self._get()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def forget(model: Recommender, user: str) -> int:
    """Remove shopper ``user`` (an id as the model holds it) from ``model``; return the number of
    events removed.

    Their baskets leave the co-purchase network's counts (a network saved before counts has its
    CPTs re-estimated from the remaining history, structure kept), their events leave the
    history (later shoppers' codes move down by one, baskets are renumbered), their attribute row
    leaves the user features and the sequence model's user tower, and their id leaves the
    encoder. Weights trained on their events stay (they hold no id).

    Raises
    ------
    KeyError
        If the model does not know ``user``.
    """
    code = model.users.code(user)
    if code < 0:
        raise KeyError(f"unknown shopper {user!r}")
    history, network = model.history, model.network
    first, last = np.searchsorted(history.user, [code, code + 1], side="left")
    mine = np.zeros(len(history), dtype=bool)
    mine[first:last] = True
    if network.counts is None:
        network.counts = {
            cpd.variable: np.zeros(np.shape(cpd.get_values())) for cpd in network.model.get_cpds()
        }
        network.n_rows = 0
        network.count_baskets(history.subset(~mine))
    else:
        network.count_baskets(history.subset(mine), sign=-1)
    rest = history.subset(~mine)
    user = np.where(rest.user > code, rest.user - 1, rest.user)
    n_users = history.n_users - 1
    model.history = Interactions(
        user,
        rest.item,
        pd.factorize(rest.basket)[0].astype(np.int64),
        rest.timestamp,
        rest.event,
        n_users,
        rest.n_items,
    )
    model.user_features = {k: np.delete(v, code) for k, v in model.user_features.items()}
    network.set_user_features(model.user_features)
    classes = [c for k, c in enumerate(model.users.classes_) if k != code]
    model.users = Encoder.from_json({**model.users.to_json(), "classes": classes})
    seq = model.sequence
    seq._net.users.register_buffer("codes", np.delete(seq._net.users.codes, code + 1, axis=0))
    seq.n_users_ -= 1
    model._counts = model._together = model._backoff = None
    model._touched = None  # shoppers' codes moved: the audience index is rebuilt whole
    return int(mine.sum())


def _fresh(frame: pd.DataFrame, column: str, known: Encoder) -> list[str]:
    """The ids of ``frame[column]`` that ``known`` lacks, sorted."""
    labels = frame[column].astype(str).unique()
    # One dict lookup per distinct label (no index of every known id built per call).
    return sorted(label for label in labels if known.code(label) < 0)


def _rows(table: pd.DataFrame | None, column: str, fresh: list[str]) -> pd.DataFrame:
    """The rows of ``table`` of the ``fresh`` ids, aligned with them (all-missing where
    ``table`` has none)."""
    table = table if table is not None else pd.DataFrame({column: fresh})
    return align(table, column, Encoder().fit(fresh))


def _attribute_codes(aligned: pd.DataFrame, states: dict, n: int) -> dict[str, np.ndarray]:
    """``{name: (n,) int64}`` codes of the fitted attribute encoders (``states``) for new rows;
    a missing value or column gets the reserved "unknown" code."""
    codes = {}
    for name, state in states.items():
        values = aligned[name] if name in aligned.columns else pd.Series([None] * n)
        codes[name] = Encoder.from_json(state).transform(values.fillna(UNKNOWN).astype(str))
    return codes


def grow_items(model: Recommender, frame: pd.DataFrame, items: pd.DataFrame | None) -> None:
    """Append the items of ``frame`` that ``model`` does not know: the one way new items join a
    model, from events (:meth:`OnlineFeedback.observe`) or before any event
    (:meth:`Recommender.add_items`).

    New items get codes after the known ones, attribute codes from ``items`` (default: the
    attributes the events carry, :func:`bundlerec.data.items_from_events`; encoded with the
    fitted encoders; unknown values and items without a row get the reserved "unknown" codes),
    a price from ``items`` or the events' median, a cost and a text (``title``,
    ``description``) from ``items``, a zero id embedding in the sequence model (which reads their
    attributes and text) and the smoothed prior of an unseen item in the network. Items with a
    row in ``items`` then start from their most similar known items
    (:meth:`Recommender._start_from_donors`, :mod:`bundlerec.new_arrivals`); the others keep the
    mean bias of the known items.
    """
    fresh = _fresh(frame, "item_id", model.items)
    if not fresh:
        return
    if items is None:
        items = items_from_events(frame)  # the attributes the events carry, if any
    aligned = _rows(items, "item_id", fresh)
    feats = _attribute_codes(aligned, model.item_state["attributes"], len(fresh))
    price = np.full(len(fresh), np.nan)
    if "price" in aligned.columns:
        price = aligned["price"].to_numpy(dtype=float)
    if "price" in frame.columns:
        median = frame.groupby("item_id", observed=True)["price"].median()
        from_events = median.reindex(list(fresh)).to_numpy(dtype=float)
        price = np.where(np.isnan(price), from_events, price)
    if model.item_state["price_scaler"] is not None:
        feats["price_bucket"] = PriceScaler.from_json(model.item_state["price_scaler"]).bucketize(
            price
        )
    if "category" in aligned.columns:
        category = aligned["category"].astype(object).where(aligned["category"].notna())
        category = np.where(category.isna(), np.asarray(fresh, dtype=object), category)
    else:
        category = np.asarray(fresh, dtype=object)
    cost = np.full(len(fresh), np.nan)
    if "cost" in aligned.columns:
        cost = aligned["cost"].to_numpy(dtype=float)
    text = item_text(items, fresh)
    feats = {name: feats[name] for name in model.catalogue.features}
    n_old = len(model.items.classes_)
    model.items = model.items.extend(fresh)
    cat = model.catalogue
    model.catalogue = Catalogue(
        {n: np.concatenate([v, feats[n]]) for n, v in cat.features.items()},
        np.concatenate([cat.category, category.astype(str).astype(object)]),
        np.concatenate([cat.price, price]),
        cost=np.concatenate([padded(cat.cost, n_old, np.nan), cost]),
        text=np.concatenate([padded(cat.text, n_old, ""), text]),
    )
    model.sequence.grow_items(len(fresh), feats or None, list(text))
    model.network.grow_items(len(fresh))
    if items is not None:
        described = np.isin(np.asarray(fresh, dtype=object), items["item_id"].astype(str))
        model._start_from_donors(n_old + np.flatnonzero(described))


def grow_users(model: Recommender, frame: pd.DataFrame, users: pd.DataFrame | None) -> None:
    """Append the shoppers of ``frame`` that ``model`` does not know, with their attributes."""
    fresh = _fresh(frame, "user_id", model.users)
    if not fresh:
        return
    aligned = _rows(users, "user_id", fresh)
    for name, codes in _attribute_codes(aligned, model.user_state, len(fresh)).items():
        codes[codes >= len(model.user_state[name]["classes"])] = -1  # no training shopper had it
        model.user_features[name] = np.concatenate([model.user_features[name], codes])
    model.users = model.users.extend(fresh)
    model.network.set_user_features(model.user_features)
