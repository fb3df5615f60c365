"""Non-learned baselines: popularity, basket co-occurrence, item k-NN and item transitions.

Every model follows the shared contract: ``fit(train: Interactions, **side_info) -> self`` and
``score(cases: Cases) -> ndarray (n, I) float32``, higher is better (``fit`` accepts the
contract's ``**side_info`` keywords and ignores them: no baseline uses side information).
Item-to-item models keep an (I, I) ``scipy.sparse`` CSR matrix ``S`` and score a case from its
context items ``C``::

    score_j = sum_{i in C} S[i, j]        (aggregate="sum")
    score_j = max_{i in C} S[i, j]        (aggregate="max")

Training data are validated by :class:`bundlerec.prep.Interactions` itself (codes in range,
sorted by user and time). Letters: ``N`` events, ``I`` items, ``U`` users, ``B`` baskets, ``n``
cases. Context items are de-duplicated per case; cases with an empty context score 0
everywhere. Scoring runs over chunks of cases so that the sparse intermediates stay small for
large catalogues. Everything is deterministic: no random state is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from bundlerec.data import EVENT_TYPES

if TYPE_CHECKING:
    from bundlerec.cases import Cases
    from bundlerec.prep import Interactions

__all__ = ["NotFittedError", "Popularity", "CoOccurrence", "ItemKNN", "Transition"]

PURCHASE = EVENT_TYPES.index("purchase")
"""Event code of a purchase (``Interactions.event`` indexes :data:`bundlerec.data.EVENT_TYPES`)."""

_CHUNK_CASES = 1024


class NotFittedError(ValueError):
    """A model was asked to score before ``fit``."""


def _event_mask(train: Interactions, events: Sequence[int] | None) -> np.ndarray:
    """(N,) bool: the events whose type is in ``events`` (all events when None)."""
    if events is None:
        return np.ones(train.item.shape[0], dtype=bool)
    return np.isin(train.event, np.asarray(events, dtype=np.int64))


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """(R, C) float64 CSR with 1 wherever a (row, col) pair occurs at least once."""
    m = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _context(cases: Cases, n_items: int, last_only: bool = False) -> sp.csr_matrix:
    """(n, I) binary CSR of each case's valid context items (or only of its last one)."""
    ctx, lengths = cases.context, cases.lengths
    slots = np.arange(ctx.shape[1])
    valid = slots == lengths[:, None] - 1 if last_only else slots < lengths[:, None]
    rows, slots = np.nonzero(valid)
    items = ctx[rows, slots]
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(
            f"Cases.context holds item codes outside [0, n_items={n_items}) within its lengths: "
            f"min {items.min()}, max {items.max()}"
        )
    return _binary(rows, items, (ctx.shape[0], n_items))


def _inverse(x: np.ndarray) -> np.ndarray:
    """Element-wise ``1 / x`` with 0 where ``x`` is 0 (items or rows never seen)."""
    return np.divide(1.0, x, out=np.zeros_like(x, dtype=np.float64), where=x > 0)


def _zero_diagonal(m: sp.csr_matrix) -> sp.csr_matrix:
    m = m.tocsr()
    m.setdiag(0.0)
    m.eliminate_zeros()
    return m


def _keep_top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row (ties: lower column first)."""
    m = m.tocsr()
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, row))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - m.indptr[row[order]]
    keep = rank < k
    return sp.csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)


def _aggregate(ctx: sp.csr_matrix, sim: sp.csr_matrix, how: Literal["sum", "max"]) -> np.ndarray:
    """(n, I) float32: ``sim`` rows of each case's context items, summed or maxed."""
    out = np.zeros((ctx.shape[0], sim.shape[1]), dtype=np.float32)
    for start in range(0, ctx.shape[0], _CHUNK_CASES):
        part = ctx[start : start + _CHUNK_CASES]
        if how == "sum":
            out[start : start + part.shape[0]] = (part @ sim).toarray()
            continue
        case_of, item = part.nonzero()
        rows = sim[item]
        case_of = np.repeat(case_of + start, np.diff(rows.indptr))
        np.maximum.at(out, (case_of, rows.indices), rows.data.astype(np.float32))
    return out


def _check_neighbours(neighbours: int | None) -> int | None:
    if neighbours is not None and (isinstance(neighbours, bool) or neighbours < 1):
        raise ValueError(f"neighbours must be a positive integer or None, got {neighbours!r}")
    return neighbours


class _ItemModel:
    """Shared fitted-state checks of the baselines."""

    n_items: int | None = None

    def _fitted_items(self) -> int:
        if self.n_items is None:
            raise NotFittedError(f"{type(self).__name__} must be fitted before score()")
        return self.n_items


class Popularity(_ItemModel):
    """Most-popular items: the same score for every case.

    Parameters
    ----------
    events : sequence of int or None, default (PURCHASE,)
        Event types that are counted; None counts every event.

    Attributes
    ----------
    counts_ : ndarray, shape (I,), float32
        Number of counted events per item.
    """

    def __init__(self, events: Sequence[int] | None = (PURCHASE,)) -> None:
        self.events = events

    def fit(self, train: Interactions, **side_info: Any) -> Popularity:
        """Count the events of each item; returns ``self``."""
        items = train.item[_event_mask(train, self.events)]
        self.counts_ = np.bincount(items, minlength=train.n_items).astype(np.float32)
        self.n_items = train.n_items
        return self

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32: ``counts_`` repeated for each case."""
        self._fitted_items()
        return np.repeat(self.counts_[None, :], len(cases.users), axis=0)


class CoOccurrence(_ItemModel):
    """Association-rule confidence between items bought in the same basket.

    ``conf[i, j] = P(j | i) = |baskets with i and j| / |baskets with i|`` (``conf[i, i] = 0``);
    a case scores ``sum_{i in context} conf[i, j]`` (``aggregate="sum"``, the default: evidence
    from several context items adds up) or ``max_{i in context} conf[i, j]``
    (``aggregate="max"``: the single strongest rule).

    Parameters
    ----------
    aggregate : {"sum", "max"}, default "sum"
    events : sequence of int or None, default (PURCHASE,)
        Event types that put an item in its basket; None uses every event.
    neighbours : int or None, default None
        Keep only the ``neighbours`` most confident consequents per item (None keeps all).

    Attributes
    ----------
    confidence_ : scipy.sparse.csr_matrix, shape (I, I), float64
    """

    def __init__(
        self,
        aggregate: Literal["sum", "max"] = "sum",
        events: Sequence[int] | None = (PURCHASE,),
        neighbours: int | None = None,
    ) -> None:
        if aggregate not in ("sum", "max"):
            raise ValueError(f"aggregate must be 'sum' or 'max', got {aggregate!r}")
        self.aggregate = aggregate
        self.events = events
        self.neighbours = _check_neighbours(neighbours)

    def fit(self, train: Interactions, **side_info: Any) -> CoOccurrence:
        """Build the confidence matrix from the training baskets; returns ``self``."""
        keep = _event_mask(train, self.events)
        n_baskets = int(train.basket.max(initial=-1)) + 1
        baskets = _binary(train.basket[keep], train.item[keep], (n_baskets, train.n_items))
        together = (baskets.T @ baskets).tocsr()
        conf = _zero_diagonal(sp.diags(_inverse(together.diagonal())) @ together)
        if self.neighbours is not None:
            conf = _keep_top_per_row(conf, self.neighbours)
        self.confidence_ = conf
        self.n_items = train.n_items
        return self

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32 confidence aggregated over each case's context items."""
        n_items = self._fitted_items()
        return _aggregate(_context(cases, n_items), self.confidence_, self.aggregate)


class ItemKNN(_ItemModel):
    """Item-based k-nearest neighbours with cosine similarity of binary item columns.

    ``sim[i, j] = |R_i & R_j| / sqrt(|R_i| |R_j|)`` where ``R_i`` is the set of users (or
    baskets) that interacted with item ``i``; ``sim[i, i] = 0`` and only the ``neighbours``
    most similar items of each item are kept. A case scores ``sum_{i in context} sim[i, j]``.

    Parameters
    ----------
    neighbours : int, default 50
    by : {"user", "basket"}, default "user"
        Rows of the interaction matrix whose columns are compared.
    events : sequence of int or None, default None
        Event types that count as an interaction; None uses every event.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix, shape (I, I), float64
    """

    def __init__(
        self,
        neighbours: int = 50,
        by: Literal["user", "basket"] = "user",
        events: Sequence[int] | None = None,
    ) -> None:
        if by not in ("user", "basket"):
            raise ValueError(f"by must be 'user' or 'basket', got {by!r}")
        if neighbours is None:
            raise ValueError("ItemKNN needs a positive number of neighbours, got None")
        self.neighbours = _check_neighbours(neighbours)
        self.by = by
        self.events = events

    def fit(self, train: Interactions, **side_info: Any) -> ItemKNN:
        """Build the top-``neighbours`` cosine similarity matrix; returns ``self``."""
        keep = _event_mask(train, self.events)
        owner = train.user if self.by == "user" else train.basket
        n_rows = train.n_users if self.by == "user" else int(owner.max(initial=-1)) + 1
        inter = _binary(owner[keep], train.item[keep], (n_rows, train.n_items))
        overlap = (inter.T @ inter).tocsr()
        inv = sp.diags(_inverse(np.sqrt(overlap.diagonal())))
        cosine = _zero_diagonal(inv @ overlap @ inv)
        self.similarity_ = _keep_top_per_row(cosine, self.neighbours)
        self.n_items = train.n_items
        return self

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32 similarity summed over each case's context items."""
        n_items = self._fitted_items()
        return _aggregate(_context(cases, n_items), self.similarity_, "sum")


class Transition(_ItemModel):
    """First-order item transitions within each user's chronological sequence.

    Consecutive events of one user on the same item are merged first (a view, cart and
    purchase of ``a`` form one step), then every step ``a -> b`` of a user's sequence is
    counted. A case scores ``P(next = j | last = i) = count(i -> j) / count(i -> .)`` for its
    last context item ``i`` (the row-normalised counts: the ranking equals that of the raw
    counts). Intended for the next-item protocol, where the context is the user's history.

    Parameters
    ----------
    events : sequence of int or None, default None
        Event types that form the sequences; None uses every event.

    Attributes
    ----------
    counts_ : scipy.sparse.csr_matrix, shape (I, I), float64
        Transition counts ``count(i -> j)``.
    """

    def __init__(self, events: Sequence[int] | None = None) -> None:
        self.events = events

    def fit(self, train: Interactions, **side_info: Any) -> Transition:
        """Count the item-to-item steps of every user's sequence; returns ``self``."""
        keep = _event_mask(train, self.events)
        user, item = train.user[keep], train.item[keep]
        same_user = user[1:] == user[:-1]
        step = np.ones(item.size, dtype=bool)
        step[1:] = ~same_user | (item[1:] != item[:-1])
        user, item = user[step], item[step]
        pair = user[1:] == user[:-1]
        src, dst = item[:-1][pair], item[1:][pair]
        counts = sp.csr_matrix((np.ones(src.size), (src, dst)), (train.n_items, train.n_items))
        counts.sum_duplicates()
        self.counts_ = counts
        out_degree = np.asarray(counts.sum(axis=1)).ravel()
        self._probability = (sp.diags(_inverse(out_degree)) @ counts).tocsr()
        self.n_items = train.n_items
        return self

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32 transition probabilities from each case's last context item."""
        n_items = self._fitted_items()
        return _aggregate(_context(cases, n_items, last_only=True), self._probability, "sum")
