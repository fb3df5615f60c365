"""Evaluation and serving cases: one row per shopper situation, in one shape for every model.

Letters: n cases, L context length, M targets per case, I items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bundlerec.prep import Interactions, user_sequences

__all__ = ["Cases", "basket_completion_cases", "history_cases", "next_item_cases"]


@dataclass(frozen=True)
class Cases:
    """Evaluation (or serving) cases: one row per shopper situation.

    Attributes
    ----------
    users : numpy.ndarray, shape (n,), int64
        User codes, -1 for an unknown user.
    context : numpy.ndarray, shape (n, L), int64
        Item codes right-padded with -1: the user's chronological history (next item) or the
        visible items of a basket (basket completion).
    lengths : numpy.ndarray, shape (n,), int64
        Number of valid context items per row (``0 <= lengths <= L``).
    targets : numpy.ndarray, shape (n, M), int64
        Held-out item codes right-padded with -1, ``M >= 1``.
    exclude : scipy.sparse.csr_matrix, shape (n, I), bool
        Items never to recommend for that case (already in the history or basket).
    """

    users: np.ndarray
    context: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray
    exclude: sp.csr_matrix

    def __post_init__(self) -> None:
        n = len(self.users)
        for name, ndim in (("users", 1), ("context", 2), ("lengths", 1), ("targets", 2)):
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.dtype != np.int64 or array.ndim != ndim:
                raise TypeError(f"Cases.{name} must be a {ndim}-D int64 array")
            if len(array) != n:
                raise ValueError(f"Cases.{name} has {len(array)} rows, users has {n}")
        if self.targets.shape[1] < 1:
            raise ValueError("Cases.targets needs at least one column")
        if ((self.lengths < 0) | (self.lengths > self.context.shape[1])).any():
            raise ValueError(f"Cases.lengths must lie in [0, {self.context.shape[1]}]")
        if not sp.issparse(self.exclude) or self.exclude.format != "csr":
            raise TypeError("Cases.exclude must be a scipy.sparse csr_matrix")
        if self.exclude.shape[0] != n or self.exclude.dtype != bool:
            raise ValueError(f"Cases.exclude must be a bool matrix with {n} rows")

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        """I, the number of item codes (columns of ``exclude``)."""
        return self.exclude.shape[1]

    def allowed(self) -> np.ndarray:
        """(n, I) bool: True where an item may be recommended (not in ``exclude``).

        Written from the stored entries (a fill and one scatter), which is several times
        faster than densifying ``exclude`` and comparing.
        """
        coo = self.exclude.tocoo()
        hit = coo.data != 0  # explicitly stored False entries exclude nothing
        out = np.ones(self.exclude.shape, dtype=bool)
        out[coo.row[hit], coo.col[hit]] = False
        return out

    def rows(self, index: slice | np.ndarray) -> Cases:
        """The cases selected by ``index`` (a slice or an int array of row numbers)."""
        return Cases(
            self.users[index],
            self.context[index],
            self.lengths[index],
            self.targets[index],
            self.exclude[index],
        )


def _exclude(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_items: int) -> sp.csr_matrix:
    """A bool (n_rows, n_items) CSR matrix that is True at the distinct (rows, cols) pairs."""
    pairs = np.unique(rows * n_items + cols)
    return sp.csr_matrix(
        (np.ones(len(pairs), dtype=bool), (pairs // n_items, pairs % n_items)),
        shape=(n_rows, n_items),
    )


def _positions(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a key array in contiguous runs: run index per row, position in run, run sizes."""
    change = np.ones(len(groups), dtype=bool)
    change[1:] = groups[1:] != groups[:-1]
    starts = np.flatnonzero(change)
    run = np.cumsum(change) - 1
    sizes = np.diff(np.r_[starts, len(groups)]).astype(np.int64)
    return run, np.arange(len(groups)) - starts[run], sizes


def _known(users: np.ndarray, known_users: int | None) -> np.ndarray:
    """User codes as int64 with codes >= ``known_users`` (reserved: unknown) set to -1."""
    users = users.astype(np.int64)
    if known_users is not None:
        users[users >= known_users] = -1
    return users


def next_item_cases(
    train: Interactions,
    test_targets: Interactions,
    *,
    max_len: int = 50,
    horizon: int = 1,
    known_users: int | None = None,
) -> Cases:
    """One case per user with test events: predict the next item(s) from the train history.

    Parameters
    ----------
    train : Interactions
        Training events (filter first, e.g. ``train.purchases()``); the history of a user is
        the most recent ``max_len`` of them.
    test_targets : Interactions
        Held-out events encoded with the same encoders (e.g. from ``split_leave_last_out``).
    max_len : int
        L, the context length.
    horizon : int
        M, the number of a user's first test items (in time order) used as targets.
    known_users : int, optional
        User codes at or above it (the reserved unknown-user code of
        ``to_interactions(..., unknown_users="reserve")``) are reported as -1.

    Returns
    -------
    Cases
        Rows in increasing user code; ``exclude`` marks every item of the user's whole train
        history (so a repeat purchase of a history item cannot be recommended).
    """
    if (train.n_users, train.n_items) != (test_targets.n_users, test_targets.n_items):
        raise ValueError("train and test_targets use different encoders (vocabulary sizes)")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    run, position, _ = _positions(test_targets.user)
    users = test_targets.user[position == 0]
    targets = np.full((len(users), horizon), -1, dtype=np.int64)
    first = position < horizon
    targets[run[first], position[first]] = test_targets.item[first]
    history, lengths = user_sequences(train, max_len)
    case_of = np.full(train.n_users, -1, dtype=np.int64)
    case_of[users] = np.arange(len(users))
    rows = case_of[train.user]
    seen = rows >= 0
    return Cases(
        users=_known(users, known_users),
        context=history[users],
        lengths=lengths[users],
        targets=targets,
        exclude=_exclude(rows[seen], train.item[seen], len(users), train.n_items),
    )


def basket_completion_cases(
    baskets: Interactions | Sequence[Sequence[int]],
    n_items: int | None,
    rng: np.random.Generator,
    *,
    known_users: int | None = None,
) -> Cases:
    """Hide one item of each basket with at least two distinct items; the rest is the context.

    Parameters
    ----------
    baskets : Interactions or sequence of int sequences
        Held-out baskets: encoded events grouped by their ``basket`` code (filter first, e.g.
        ``test.purchases()``), or plain lists of item codes (users are then unknown, -1).
        Repeated items in a basket count once.
    n_items : int or None
        I; None takes it from ``baskets`` (Interactions only).
    rng : numpy.random.Generator
        Chooses the hidden item, uniformly within each basket.
    known_users : int, optional
        User codes at or above it are reported as -1 (see :func:`next_item_cases`).

    Returns
    -------
    Cases
        One row per eligible basket in basket order; context = the other items in basket order
        (L = largest basket size - 1), targets = the hidden item (M = 1), exclude = the context.
    """
    if isinstance(baskets, Interactions):
        n_items = baskets.n_items if n_items is None else n_items
        order = np.argsort(baskets.basket, kind="stable")
        group, item, user = baskets.basket[order], baskets.item[order], baskets.user[order]
    else:
        if n_items is None:
            raise ValueError("n_items is required when baskets are plain item lists")
        parts = [np.asarray(b, dtype=np.int64).reshape(-1) for b in baskets]
        item = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        group = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        user = np.full(len(item), -1, dtype=np.int64)
        if ((item < 0) | (item >= n_items)).any():
            raise ValueError(f"basket item codes must lie in [0, {n_items})")
    first = np.sort(np.unique(group * n_items + item, return_index=True)[1])
    group, item, user = group[first], item[first], user[first]
    run, position, sizes = _positions(group)
    eligible = sizes >= 2
    hidden = np.full(len(sizes), -1, dtype=np.int64)
    hidden[eligible] = rng.integers(0, sizes[eligible])
    case = np.cumsum(eligible) - 1
    n = int(eligible.sum())
    in_case = eligible[run]
    is_hidden = position == hidden[run]
    targets = np.full((n, 1), -1, dtype=np.int64)
    targets[case[run[is_hidden]], 0] = item[is_hidden]
    shown = in_case & ~is_hidden
    column = position - (position > hidden[run])
    width = int(sizes.max()) - 1 if n else 0
    context = np.full((n, width), -1, dtype=np.int64)
    context[case[run[shown]], column[shown]] = item[shown]
    starts = np.flatnonzero(position == 0)
    return Cases(
        users=_known(user[starts[eligible]], known_users),
        context=context,
        lengths=(sizes[eligible] - 1).astype(np.int64),
        targets=targets,
        exclude=_exclude(case[run[shown]], item[shown], n, n_items),
    )


def history_cases(
    train: Interactions, baskets: Interactions, rng: np.random.Generator, *, max_len: int = 50
) -> Cases:
    """A known shopper with an empty cart (a home page): predict an item of the next basket.

    One case per basket of ``baskets`` whose shopper has ``train`` events before the basket's
    first event: the context is the shopper's most recent ``max_len`` of those events (every
    event type, as :class:`~bundlerec.recommender.Recommender` serves a shopper), the target one
    of the basket's distinct items, drawn uniformly. Nothing is excluded: baskets repeat items
    bought before.

    Parameters
    ----------
    train : Interactions
        Events before the baskets (sorted by user and time, as :class:`Interactions` are).
    baskets : Interactions
        Held-out events grouped by their ``basket`` code, encoded like ``train``.
    rng : numpy.random.Generator
        Draws the target of each case.
    max_len : int
        L, the context length (>= 1).

    Returns
    -------
    Cases
        Rows in increasing basket code; ``targets`` (n, 1); ``exclude`` empty.
    """
    if (train.n_users, train.n_items) != (baskets.n_users, baskets.n_items):
        raise ValueError("train and baskets use different encoders (vocabulary sizes)")
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    order = np.lexsort((baskets.timestamp, baskets.basket))
    group, item = baskets.basket[order], baskets.item[order]
    user, time = baskets.user[order], baskets.timestamp[order]
    _, position, _ = _positions(group)
    first = position == 0
    bounds = np.r_[np.flatnonzero(first), len(group)]
    starts = np.searchsorted(train.user, user[first], side="left")
    stops = np.searchsorted(train.user, user[first], side="right")
    before = np.array(
        [
            a + np.searchsorted(train.timestamp[a:b], t, side="left")
            for a, b, t in zip(starts, stops, time[first])
        ],
        dtype=np.int64,
    ).reshape(-1)
    kept = np.flatnonzero(before > starts)
    items = [np.unique(item[bounds[r] : bounds[r + 1]]) for r in kept]
    picks = rng.integers(0, [len(c) for c in items]) if kept.size else np.zeros(0, np.int64)
    context = np.full((kept.size, max_len), -1, dtype=np.int64)
    lengths = np.minimum(before[kept] - starts[kept], max_len).astype(np.int64)
    for row, r in enumerate(kept):
        context[row, : lengths[row]] = train.item[before[r] - lengths[row] : before[r]]
    return Cases(
        users=user[first][kept].astype(np.int64),
        context=context,
        lengths=lengths,
        targets=np.array([c[p] for c, p in zip(items, picks)], dtype=np.int64).reshape(-1, 1),
        exclude=sp.csr_matrix((kept.size, train.n_items), dtype=bool),
    )
