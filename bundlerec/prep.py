"""Preparation of canonical events: cleaning, baskets, encoding, splits and sequences.

The pipeline is ``load_events -> clean -> split_* -> encode_split -> user_sequences``. Every
encoder and scaler is fitted on the training part only; test rows whose user or item the training
data never saw are dropped (with a warning) when test events become :class:`Interactions`.

Letters: N events, U users, I items, L sequence length.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bundlerec.data import EVENT_TYPES, DataWarning

__all__ = [
    "EVENT_TYPES",
    "UNKNOWN",
    "EncodedSplit",
    "Encoder",
    "Interactions",
    "PriceScaler",
    "align",
    "assign_baskets",
    "clean",
    "deduplicate",
    "encode_attributes",
    "encode_split",
    "fill_missing",
    "filter_min_counts",
    "split_baskets",
    "split_global_time",
    "split_leave_last_out",
    "to_interactions",
    "user_sequences",
]

UNKNOWN = "<unknown>"
"""The explicit value that :func:`fill_missing` puts in place of a missing attribute."""

_PURCHASE = EVENT_TYPES.index("purchase")


@dataclass(frozen=True)
class Interactions:
    """Encoded events, sorted by (user, timestamp, original row order).

    Attributes
    ----------
    user : numpy.ndarray, shape (N,), int64
        User codes in ``0 .. n_users-1``.
    item : numpy.ndarray, shape (N,), int64
        Item codes in ``0 .. n_items-1``.
    basket : numpy.ndarray, shape (N,), int64
        Basket codes, numbered by first appearance (contiguous ``0 .. n_baskets-1`` when built by
        :func:`to_interactions`; a :meth:`subset` may leave gaps).
    timestamp : numpy.ndarray, shape (N,), int64
        Seconds since the epoch.
    event : numpy.ndarray, shape (N,), int8
        Codes into :data:`EVENT_TYPES` (0 view, 1 click, 2 cart, 3 purchase).
    n_users, n_items : int
        Sizes of the user and item vocabularies.
    """

    user: np.ndarray
    item: np.ndarray
    basket: np.ndarray
    timestamp: np.ndarray
    event: np.ndarray
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        n = len(self.user)
        for name, dtype in (
            ("user", np.int64),
            ("item", np.int64),
            ("basket", np.int64),
            ("timestamp", np.int64),
            ("event", np.int8),
        ):
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != (n,):
                raise TypeError(f"Interactions.{name} must be a ({n},) {np.dtype(dtype)} array")
        for name, array, high in (
            ("user", self.user, self.n_users),
            ("item", self.item, self.n_items),
            ("event", self.event, len(EVENT_TYPES)),
        ):
            if n and (array.min() < 0 or array.max() >= high):
                raise ValueError(f"Interactions.{name} codes outside [0, {high})")
        if n and self.basket.min() < 0:
            raise ValueError("Interactions.basket codes must be >= 0")
        step_user = np.diff(self.user)
        if (step_user < 0).any() or ((step_user == 0) & (np.diff(self.timestamp) < 0)).any():
            raise ValueError("Interactions must be sorted by (user, timestamp)")

    def __len__(self) -> int:
        return len(self.user)

    @property
    def n_baskets(self) -> int:
        """One more than the largest basket code (0 when empty)."""
        return int(self.basket.max()) + 1 if len(self) else 0

    def subset(self, mask: np.ndarray) -> Interactions:
        """The rows where ``mask`` (shape (N,), bool) holds, order and vocabularies kept."""
        mask = np.asarray(mask, dtype=bool)
        return Interactions(
            self.user[mask],
            self.item[mask],
            self.basket[mask],
            self.timestamp[mask],
            self.event[mask],
            self.n_users,
            self.n_items,
        )

    def purchases(self) -> Interactions:
        """Only the purchase events."""
        return self.subset(self.event == _PURCHASE)


class Encoder:
    """Map text labels (ids, categorical values) to contiguous int64 codes.

    Classes are the distinct labels seen by :meth:`fit`, sorted as text (then any added by
    :meth:`extend`, in the order given); class ``k`` gets code
    ``k``. At :meth:`transform` an unknown label gets :attr:`unknown_code`: ``-1`` by default, or
    the reserved code ``len(classes)`` when ``reserve_unknown=True`` (then :attr:`n_codes` counts
    it, e.g. as an embedding row for "never seen"). Labels are compared as text (``7 == "7"``).

    Parameters
    ----------
    reserve_unknown : bool
        Reserve code ``len(classes)`` for unknown labels instead of returning -1.
    """

    def __init__(self, *, reserve_unknown: bool = False) -> None:
        self.reserve_unknown = bool(reserve_unknown)
        self.classes_: tuple[str, ...] | None = None
        self._index: pd.Index | None = None
        self._codes: dict[str, int] | None = None  # label -> code, built on the first code()

    @staticmethod
    def _labels(values: Iterable[Any]) -> pd.Series:
        series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
        return series.astype(str).where(series.notna())

    def _require_fit(self) -> pd.Index:
        if self._index is None:
            raise ValueError("Encoder is not fitted: call fit() first")
        return self._index

    def fit(self, values: Iterable[Any]) -> Encoder:
        """Learn the classes from ``values`` (1-D, no missing values)."""
        labels = self._labels(values)
        if labels.isna().any():
            raise ValueError(
                f"Encoder.fit: {int(labels.isna().sum())} missing value(s); fill them first"
            )
        self.classes_ = tuple(sorted(set(labels.tolist())))
        self._index = pd.Index(self.classes_, dtype=object)
        self._codes = None
        return self

    def code(self, label: Any) -> int:
        """The code of one label (:attr:`unknown_code` if unknown): a dict lookup, for serving
        one request without :meth:`transform`'s per-call cost."""
        self._require_fit()
        if self._codes is None:
            self._codes = {c: k for k, c in enumerate(self.classes_)}
        if label is None or (isinstance(label, float) and label != label):
            return self.unknown_code
        return self._codes.get(str(label), self.unknown_code)

    @property
    def n_codes(self) -> int:
        """Number of codes in use: the classes plus the reserved unknown code, if any."""
        return len(self._require_fit()) + self.reserve_unknown

    @property
    def unknown_code(self) -> int:
        """The code of unknown labels: ``len(classes)`` if reserved, else -1."""
        return len(self._require_fit()) if self.reserve_unknown else -1

    def transform(self, values: Iterable[Any], *, strict: bool = False) -> np.ndarray:
        """Codes of ``values``, shape (n,), int64.

        Raises
        ------
        KeyError
            With ``strict=True``, when a label is unknown (the count and an example are named).
        """
        labels = self._labels(values)
        codes = self._require_fit().get_indexer(labels.to_numpy(dtype=object)).astype(np.int64)
        unknown = codes < 0
        if unknown.any():
            if strict:
                example = labels.iloc[int(np.flatnonzero(unknown)[0])]
                raise KeyError(f"{int(unknown.sum())} unknown label(s), e.g. {example!r}")
            codes[unknown] = self.unknown_code
        return codes

    def extend(self, labels: Iterable[Any]) -> Encoder:
        """A new encoder with ``labels`` appended after the classes (existing codes unchanged).

        Used when feedback brings new ids: the appended classes are not in sorted order, which
        only :meth:`fit` guarantees. Labels already known are ignored.
        """
        known = set(self._require_fit())
        new = [str(x) for x in dict.fromkeys(self._labels(labels).tolist()) if str(x) not in known]
        return Encoder.from_json(
            {"classes": [*self.classes_, *new], "reserve_unknown": self.reserve_unknown}
        )

    def fit_transform(self, values: Iterable[Any]) -> np.ndarray:
        """:meth:`fit` then :meth:`transform`."""
        return self.fit(values).transform(values)

    def inverse_transform(self, codes: np.ndarray) -> np.ndarray:
        """Labels (object array of str) of ``codes``; a code that is not a class is a KeyError."""
        codes = np.asarray(codes, dtype=np.int64)
        n = len(self._require_fit())
        bad = (codes < 0) | (codes >= n)
        if bad.any():
            raise KeyError(f"{int(bad.sum())} code(s) outside [0, {n}), e.g. {codes[bad][0]}")
        return np.asarray(self.classes_, dtype=object)[codes]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able state: ``{"classes": [str, ...], "reserve_unknown": bool}``."""
        self._require_fit()
        return {"classes": list(self.classes_), "reserve_unknown": self.reserve_unknown}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Encoder:
        """Rebuild an encoder from :meth:`to_json` output."""
        try:
            classes, reserve = state["classes"], state["reserve_unknown"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"not an Encoder state: {state!r:.80}") from err
        if not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
            raise ValueError("Encoder state: classes must be distinct strings")
        encoder = cls(reserve_unknown=reserve)
        encoder.classes_ = tuple(classes)
        encoder._index = pd.Index(encoder.classes_, dtype=object)
        return encoder


class PriceScaler:
    r"""Standardise and bucket prices with statistics fitted on training prices.

    ``standardize`` returns :math:`z = (\log(1 + p) - \mu) / \sigma` with :math:`\mu, \sigma` the
    mean and standard deviation of :math:`\log(1 + p)` over the training prices (:math:`\sigma = 1`
    when they are all equal); a missing price (NaN) gets :math:`z = 0`, the training mean.
    ``bucketize`` returns the quantile bucket ``0 .. n_buckets_-1`` (edges at the training
    quantiles ``k / n_buckets``; tied edges are merged, so ``n_buckets_`` may be smaller than
    asked); a missing price gets the reserved bucket ``n_buckets_``.

    Parameters
    ----------
    n_buckets : int
        Requested number of quantile buckets (>= 1).
    """

    def __init__(self, n_buckets: int = 5) -> None:
        if int(n_buckets) < 1:
            raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
        self.n_buckets = int(n_buckets)
        self.mean_: float | None = None
        self.std_: float | None = None
        self.edges_: np.ndarray | None = None

    @staticmethod
    def _prices(prices: Iterable[float]) -> np.ndarray:
        p = np.asarray(prices, dtype=np.float64)
        if (p < 0).any() or np.isinf(p).any():
            raise ValueError("prices must be finite and >= 0 (NaN marks an unknown price)")
        return p

    def fit(self, prices: Iterable[float]) -> PriceScaler:
        """Fit on training prices, shape (n,), float (NaN ignored, at least one price needed)."""
        p = self._prices(prices)
        known = np.log1p(p[~np.isnan(p)])
        if known.size == 0:
            raise ValueError("PriceScaler.fit needs at least one known price")
        self.mean_ = float(known.mean())
        self.std_ = float(known.std()) or 1.0
        quantiles = np.quantile(known, np.arange(1, self.n_buckets) / self.n_buckets)
        self.edges_ = np.unique(quantiles)
        return self

    def _require_fit(self) -> np.ndarray:
        if self.edges_ is None:
            raise ValueError("PriceScaler is not fitted: call fit() first")
        return self.edges_

    @property
    def n_buckets_(self) -> int:
        """Number of price buckets after merging tied edges (the unknown bucket excluded)."""
        return len(self._require_fit()) + 1

    def standardize(self, prices: Iterable[float]) -> np.ndarray:
        """Standardised log prices, shape (n,), float64; NaN -> 0."""
        self._require_fit()
        z = (np.log1p(self._prices(prices)) - self.mean_) / self.std_
        return np.where(np.isnan(z), 0.0, z)

    def bucketize(self, prices: Iterable[float]) -> np.ndarray:
        """Price buckets, shape (n,), int64 in ``0 .. n_buckets_``; NaN -> ``n_buckets_``."""
        p = np.log1p(self._prices(prices))
        buckets = np.searchsorted(self._require_fit(), p, side="right").astype(np.int64)
        buckets[np.isnan(p)] = self.n_buckets_
        return buckets

    def to_json(self) -> dict[str, Any]:
        """A JSON-able state."""
        return {
            "n_buckets": self.n_buckets,
            "mean": self.mean_,
            "std": self.std_,
            "edges": self.edges_.tolist() if self.edges_ is not None else None,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> PriceScaler:
        """Rebuild a scaler from :meth:`to_json` output."""
        scaler = cls(state["n_buckets"])
        scaler.mean_, scaler.std_ = state["mean"], state["std"]
        if state["edges"] is not None:
            scaler.edges_ = np.asarray(state["edges"], dtype=np.float64)
        return scaler


def deduplicate(events: pd.DataFrame, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Drop repeated events, keeping the first.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical events.
    keys : iterable of str, optional
        Columns that identify an event; default ``user_id, item_id, timestamp, event`` and
        ``basket_id`` when present.
    """
    if keys is None:
        keys = [
            c
            for c in ("user_id", "item_id", "timestamp", "event", "basket_id")
            if c in events.columns
        ]
    return events.drop_duplicates(subset=list(keys), keep="first").reset_index(drop=True)


def filter_min_counts(
    events: pd.DataFrame, *, min_user: int = 1, min_item: int = 1
) -> pd.DataFrame:
    """Keep users with >= ``min_user`` events and items with >= ``min_item`` events.

    The two filters are applied in turn until neither removes a row (a fixed point: in the result
    every user and every item meets its minimum), which may remove everything.
    """
    while True:
        user_counts = events.groupby("user_id", sort=False)["user_id"].transform("size")
        item_counts = events.groupby("item_id", sort=False)["item_id"].transform("size")
        keep = (user_counts.to_numpy() >= min_user) & (item_counts.to_numpy() >= min_item)
        if keep.all():
            return events.reset_index(drop=True)
        events = events[keep]


def fill_missing(
    frame: pd.DataFrame, columns: Iterable[str] | None = None, value: str = UNKNOWN
) -> pd.DataFrame:
    """Fill missing categorical attributes with an explicit ``value`` (default ``"<unknown>"``).

    ``columns`` defaults to every non-numeric column other than the ids.
    """
    if columns is None:
        columns = [
            c
            for c in frame.columns
            if c not in ("user_id", "item_id", "basket_id")
            and not pd.api.types.is_numeric_dtype(frame[c])
        ]
    return frame.fillna({c: value for c in columns})


def _user_order(events: pd.DataFrame) -> np.ndarray:
    """Row positions sorted by (user_id, timestamp, row order)."""
    users = pd.factorize(events["user_id"], sort=True)[0]
    rows = np.arange(len(events))
    return np.lexsort((rows, events["timestamp"].to_numpy(), users))


def assign_baskets(events: pd.DataFrame, window: int = 1800) -> np.ndarray:
    """Basket numbers of events, shape (N,), int64.

    A row with a ``basket_id`` belongs to the basket (user_id, basket_id). Rows without one (all
    rows when the column is absent) are grouped per user by time: sorted by time, a user's event
    joins the previous event's basket when it comes at most ``window`` seconds after it (session
    gaps). Numbers follow first appearance in (user, timestamp, row) order.
    """
    if window < 0:
        raise ValueError(f"window must be >= 0 seconds, got {window}")
    order = _user_order(events)
    users = pd.factorize(events["user_id"], sort=True)[0][order]
    times = events["timestamp"].to_numpy()[order]
    if "basket_id" in events.columns:
        given = events["basket_id"].to_numpy(dtype=object)[order]
        explicit = pd.notna(given)
    else:
        given, explicit = np.full(len(order), None, dtype=object), np.zeros(len(order), bool)
    n_explicit = 0
    label = np.zeros(len(order), dtype=np.int64)
    if explicit.any():
        pairs = pd.MultiIndex.from_arrays([users[explicit], given[explicit]])
        label[explicit], uniques = pd.factorize(pairs)
        n_explicit = len(uniques)
    loose = ~explicit
    u, t = users[loose], times[loose]
    starts = np.ones(len(u), dtype=bool)
    starts[1:] = (u[1:] != u[:-1]) | (t[1:] - t[:-1] > window)
    label[loose] = n_explicit + np.cumsum(starts) - 1
    baskets = np.empty(len(order), dtype=np.int64)
    baskets[order] = pd.factorize(label)[0]
    return baskets


def clean(
    events: pd.DataFrame, *, min_user: int = 1, min_item: int = 1, window: int = 1800
) -> pd.DataFrame:
    """Deduplicate, filter by minimum counts, sort by (user_id, timestamp, row order) and add an
    int64 ``basket`` column (:func:`assign_baskets` with ``window`` seconds)."""
    events = filter_min_counts(deduplicate(events), min_user=min_user, min_item=min_item)
    events = events.iloc[_user_order(events)].reset_index(drop=True)
    return events.assign(basket=assign_baskets(events, window))


def split_leave_last_out(
    events: pd.DataFrame, n_last: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's last ``n_last`` events (by timestamp, then row order).

    Users with at most ``n_last`` events stay wholly in train. Every test event of a user is at
    or after all of that user's train events.

    Returns
    -------
    train, test : pandas.DataFrame
        Disjoint row subsets in the input order.
    """
    if n_last < 1:
        raise ValueError(f"n_last must be >= 1, got {n_last}")
    order = _user_order(events)
    sorted_users = events["user_id"].to_numpy(dtype=object)[order]
    size = pd.Series(sorted_users).groupby(sorted_users, sort=False).transform("size").to_numpy()
    from_end = size - 1 - pd.Series(sorted_users).groupby(sorted_users, sort=False).cumcount()
    test = np.zeros(len(events), dtype=bool)
    test[order] = (from_end.to_numpy() < n_last) & (size > n_last)
    return events[~test].reset_index(drop=True), events[test].reset_index(drop=True)


def split_global_time(
    events: pd.DataFrame, *, cut: Any = None, test_share: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split at one moment: train = events before ``cut``, test = events at or after it.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical events.
    cut : int, str or pandas.Timestamp, optional
        Epoch seconds or a datetime (naive = UTC).
    test_share : float, optional
        In (0, 1): the cut is the ``1 - test_share`` quantile of the timestamps. Give exactly one
        of ``cut`` and ``test_share``.
    """
    if (cut is None) == (test_share is None):
        raise ValueError("give exactly one of cut and test_share")
    times = events["timestamp"].to_numpy()
    if test_share is not None:
        if not 0 < test_share < 1:
            raise ValueError(f"test_share must be in (0, 1), got {test_share}")
        cut = int(np.quantile(times, 1 - test_share, method="higher"))
    elif not isinstance(cut, (int, np.integer)):
        stamp = pd.Timestamp(cut)
        stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
        cut = int(stamp.to_datetime64().astype("datetime64[s]").astype(np.int64))
    test = times >= cut
    return events[~test].reset_index(drop=True), events[test].reset_index(drop=True)


def split_baskets(
    events: pd.DataFrame, test_share: float, seed: int | np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a random share of baskets (needs the ``basket`` column of :func:`clean`).

    ``round(test_share * n_baskets)`` baskets, drawn without replacement with
    ``numpy.random.default_rng(seed)``, go wholly to test; no basket is split.
    """
    if "basket" not in events.columns:
        raise KeyError("split_baskets needs a 'basket' column: run clean() first")
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    rng = np.random.default_rng(seed)
    baskets = np.unique(events["basket"].to_numpy())
    chosen = rng.choice(baskets, size=round(test_share * len(baskets)), replace=False)
    test = np.isin(events["basket"].to_numpy(), chosen)
    return events[~test].reset_index(drop=True), events[test].reset_index(drop=True)


def to_interactions(
    events: pd.DataFrame,
    users: Encoder,
    items: Encoder,
    *,
    window: int = 1800,
    unknown_users: str = "drop",
) -> Interactions:
    """Encode events with fitted encoders.

    Rows whose item is unknown to ``items`` are dropped with a :class:`DataWarning` giving the
    count. Rows of users unknown to ``users`` are dropped the same way when
    ``unknown_users="drop"``; with ``"reserve"`` they are kept under the reserved user code
    ``K = len(users.classes_)`` and ``n_users = K + 1`` (cold-start shoppers, e.g. held-out
    baskets of one-basket users; cases builders report them as -1 given ``known_users=K``).
    Baskets come from the ``basket`` column if present, else from :func:`assign_baskets` with
    ``window``; they are renumbered by first appearance.
    """
    if unknown_users not in ("drop", "reserve"):
        raise ValueError(f"unknown_users must be 'drop' or 'reserve', got {unknown_users!r}")
    n_known = len(users._require_fit())
    user = users.transform(events["user_id"])
    item = items.transform(events["item_id"])
    new_user = (user < 0) | (user >= n_known)
    keep = (item >= 0) & (item < len(items._require_fit()))
    if unknown_users == "reserve":
        user[new_user] = n_known
    else:
        keep &= ~new_user
    if not keep.all():
        warnings.warn(
            f"dropped {int((~keep).sum())} event(s) with an item"
            f"{'' if unknown_users == 'reserve' else ' or user'} unknown to the encoders",
            DataWarning,
            stacklevel=2,
        )
    if "basket" in events.columns:
        basket = events["basket"].to_numpy(dtype=np.int64)
    else:
        basket = assign_baskets(events, window)
    timestamp = events["timestamp"].to_numpy(dtype=np.int64)
    event = np.asarray(events["event"].cat.codes, dtype=np.int8)
    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((rows, timestamp[rows], user[rows]))]
    return Interactions(
        user=user[rows],
        item=item[rows],
        basket=pd.factorize(basket[rows])[0].astype(np.int64),
        timestamp=timestamp[rows],
        event=event[rows],
        n_users=n_known + (unknown_users == "reserve"),
        n_items=len(items.classes_),
    )


@dataclass(frozen=True)
class EncodedSplit:
    """A train/test split encoded with id encoders fitted on train only.

    ``known_users`` is the number of real user codes (``len(users.classes_)``); with
    ``unknown_users="reserve"`` both parts have ``n_users = known_users + 1``.
    """

    train: Interactions
    test: Interactions
    users: Encoder
    items: Encoder

    @property
    def known_users(self) -> int:
        """Number of user codes that stand for training users."""
        return len(self.users.classes_)


def encode_split(
    train: pd.DataFrame, test: pd.DataFrame, *, window: int = 1800, unknown_users: str = "drop"
) -> EncodedSplit:
    """Fit user and item encoders on ``train`` and encode both parts with
    :func:`to_interactions` (test rows with unseen items are dropped; unseen users are dropped or
    get the reserved code, as ``unknown_users`` says)."""
    users = Encoder().fit(train["user_id"])
    items = Encoder().fit(train["item_id"])
    return EncodedSplit(
        to_interactions(train, users, items, window=window, unknown_users=unknown_users),
        to_interactions(test, users, items, window=window, unknown_users=unknown_users),
        users,
        items,
    )


def align(table: pd.DataFrame, key: str, ids: Encoder) -> pd.DataFrame:
    """Rows of an items/users ``table`` in code order: row ``k`` describes ``ids.classes_[k]``;
    ids without a row get missing values; rows of unknown ids are left out."""
    if key not in table.columns:
        raise KeyError(f"table has no {key!r} column")
    return table.set_index(key).reindex(pd.Index(ids.classes_, name=key)).reset_index()


def encode_attributes(
    table: pd.DataFrame,
    key: str,
    ids: Encoder,
    encoders: dict[str, Encoder] | None = None,
) -> tuple[np.ndarray, dict[str, Encoder]]:
    """Encode the categorical attributes of the known ids.

    Parameters
    ----------
    table : pandas.DataFrame
        Canonical items or users table.
    key : str
        ``"item_id"`` or ``"user_id"``.
    ids : Encoder
        The fitted id encoder (training ids).
    encoders : dict of str to Encoder, optional
        Fitted attribute encoders (e.g. loaded with a model); default: fit new ones with
        ``reserve_unknown=True`` on the aligned table.

    Returns
    -------
    codes : numpy.ndarray, shape (n_ids, C), int64
        Row ``k`` holds the codes of ``ids.classes_[k]``'s C text attributes; missing values are
        filled with ``"<unknown>"`` first.
    encoders : dict of str to Encoder
        One encoder per attribute column, in column order.
    """
    aligned = align(table, key, ids)
    text = [
        c for c in aligned.columns if c != key and not pd.api.types.is_numeric_dtype(aligned[c])
    ]
    aligned = fill_missing(aligned, text)
    if encoders is None:
        encoders = {c: Encoder(reserve_unknown=True).fit(aligned[c]) for c in text}
    missing = [c for c in encoders if c not in aligned.columns]
    if missing:
        raise KeyError(f"table lacks attribute column(s) {missing}")
    codes = np.zeros((len(aligned), len(encoders)), dtype=np.int64)
    for j, (column, encoder) in enumerate(encoders.items()):
        codes[:, j] = encoder.transform(aligned[column])
    return codes, encoders


def user_sequences(interactions: Interactions, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-user item histories, right-padded.

    Parameters
    ----------
    interactions : Interactions
        Sorted encoded events (filter first, e.g. ``interactions.purchases()``).
    max_len : int
        L, the longest history kept: a user's most recent ``max_len`` events.

    Returns
    -------
    items : numpy.ndarray, shape (U, L), int64
        Row ``u`` holds user ``u``'s items in time order, padded on the right with -1.
    lengths : numpy.ndarray, shape (U,), int64
        Number of valid entries per row.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    counts = np.bincount(interactions.user, minlength=interactions.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(interactions)) - starts[interactions.user]
    skip = np.maximum(counts - max_len, 0)[interactions.user]
    keep = position >= skip
    items = np.full((interactions.n_users, max_len), -1, dtype=np.int64)
    items[interactions.user[keep], (position - skip)[keep]] = interactions.item[keep]
    return items, np.minimum(counts, max_len).astype(np.int64)
