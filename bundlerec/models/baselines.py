"""Non-learned baselines: popularity, co-occurrence, item k-NN, transitions, EASE and rules.

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

__all__ = [
    "NotFittedError",
    "Popularity",
    "CoOccurrence",
    "ItemKNN",
    "Transition",
    "EASE",
    "AssociationRules",
]

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
    log : bool, default False
        Score ``log(1 + count)`` instead of the count (the same ranking): as a fusion
        component, whose log-share is a softmax of the scores, popularity then weighs items in
        proportion to ``1 + count``.

    Attributes
    ----------
    counts_ : ndarray, shape (I,), float32
        Number of counted events per item.
    """

    def __init__(self, events: Sequence[int] | None = (PURCHASE,), log: bool = False) -> None:
        self.events = events
        self.log = bool(log)

    def fit(self, train: Interactions, **side_info: Any) -> Popularity:
        """Count the events of each item; returns ``self``."""
        items = train.item[_event_mask(train, self.events)]
        self.counts_ = np.bincount(items, minlength=train.n_items).astype(np.float32)
        self.n_items = train.n_items
        return self

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32: ``counts_`` (with ``log``, ``log(1 + counts_)``) repeated for each
        case."""
        self._fitted_items()
        values = np.log1p(self.counts_) if self.log else self.counts_
        return np.repeat(values[None, :], len(cases.users), axis=0)


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


def _rows_matrix(
    train: Interactions, by: Literal["user", "basket"], events: Sequence[int] | None
) -> sp.csr_matrix:
    """(R, I) binary CSR: which items each user or each basket (with a counted event) holds.

    Baskets are renumbered ``0 .. R-1`` over the baskets that hold at least one counted event,
    so ``R`` is the number of such baskets (users: ``R = n_users``).
    """
    keep = _event_mask(train, events)
    if by == "user":
        return _binary(train.user[keep], train.item[keep], (train.n_users, train.n_items))
    baskets, rows = np.unique(train.basket[keep], return_inverse=True)
    return _binary(rows.ravel(), train.item[keep], (baskets.size, train.n_items))


class EASE(_ItemModel):
    """EASE (Steck, 2019): closed-form item-item regression with a zero diagonal.

    With ``X`` the (R, K) binary matrix of rows (baskets or users) by the K kept items,

        G = X^T X + l2 Id,    P = G^{-1},    B = Id - P diag(1 / diag(P))

    (so ``B_jj = 0`` and ``B_ij = -P_ij / P_jj``), the solution of
    ``min_B ||X - X B||_F^2 + l2 ||B||_F^2`` subject to ``diag(B) = 0``. A case scores
    ``score_j = sum_{i in context} B[i, j]``.

    Fitting costs O(K^3) time and O(K^2) memory, so only the ``max_items`` most frequent items
    (by number of rows holding them; ties: lower code) are modelled, K = min(I, max_items).
    Context items outside them are ignored, and items outside them score one below the lowest
    kept score of the case (tied among themselves, so the lower code ranks first); so do items
    added after the fit (cases over ``I' >= I`` items score ``I'`` columns). With ``keep``, each
    row of ``B`` keeps only its ``keep`` entries of largest magnitude (ties: any, but the same
    for the same ``B``), stored as a sparse matrix: K x keep entries instead of K^2 (the fusion
    component of :class:`~bundlerec.recommender.Recommender` is saved so).

    Parameters
    ----------
    l2 : float, default 500.0
        Ridge strength (> 0). Chosen on inner splits of training data (docs/evaluation.md).
    by : {"basket", "user"}, default "basket"
        Rows of ``X``: baskets model what is bought together (the bundle question); users
        also pool items bought on different visits.
    events : sequence of int or None, default None
        Event types that put an item in its row; None uses every event.
    max_items : int, default 5000
        K's upper bound (5,000 items: a 200 MB Gram matrix, a few seconds to invert).
    keep : int or None, default None
        Entries of ``B`` kept per row (None: all, a dense ``B``).

    Attributes
    ----------
    kept_ : ndarray, shape (K,), int64
        Codes of the modelled items, increasing.
    weights_ : ndarray (K, K) float32, or scipy.sparse.csr_matrix (K, K) float32 with ``keep``
        ``B`` over the kept items.
    """

    def __init__(
        self,
        l2: float = 500.0,
        by: Literal["basket", "user"] = "basket",
        events: Sequence[int] | None = None,
        max_items: int = 5000,
        keep: int | None = None,
    ) -> None:
        if not l2 > 0:
            raise ValueError(f"l2 must be positive (G must be invertible), got {l2!r}")
        if by not in ("user", "basket"):
            raise ValueError(f"by must be 'user' or 'basket', got {by!r}")
        if isinstance(max_items, bool) or max_items < 1:
            raise ValueError(f"max_items must be a positive integer, got {max_items!r}")
        self.l2 = l2
        self.by = by
        self.events = events
        self.max_items = max_items
        if keep is not None and (isinstance(keep, bool) or keep < 1):
            raise ValueError(f"keep must be a positive integer or None, got {keep!r}")
        self.keep = keep

    def fit(self, train: Interactions, **side_info: Any) -> EASE:
        """Solve for ``B`` over the most frequent items; returns ``self``."""
        x = _rows_matrix(train, self.by, self.events)
        freq = np.asarray(x.sum(axis=0)).ravel()
        order = np.lexsort((np.arange(train.n_items), -freq))
        self.kept_ = np.sort(order[: self.max_items]).astype(np.int64)
        xk = x[:, self.kept_]
        gram = (xk.T @ xk).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0.0)
        self.weights_ = b.astype(np.float32) if self.keep is None else _largest(b, self.keep)
        self.n_items = train.n_items
        return self

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I') float32, ``I'`` the cases' items (at least the fitted ``I``): rows of ``B``
        summed over each case's (kept) context items."""
        n_fitted = self._fitted_items()
        n_items = cases.exclude.shape[1]
        if n_items < n_fitted:
            raise ValueError(f"cases over {n_items} items; EASE was fitted on {n_fitted}")
        ctx = _context(cases, n_items)[:, self.kept_].astype(np.float32)
        outside = np.ones(n_items, dtype=bool)
        outside[self.kept_] = False
        out = np.empty((ctx.shape[0], n_items), dtype=np.float32)
        for start in range(0, ctx.shape[0], _CHUNK_CASES):
            kept = ctx[start : start + _CHUNK_CASES] @ self.weights_
            kept = kept.toarray() if sp.issparse(kept) else np.asarray(kept)
            block = out[start : start + kept.shape[0]]
            block[:, self.kept_] = kept
            block[:, outside] = kept.min(axis=1, initial=0.0)[:, None] - 1.0
        return out

    def get_state(self) -> dict[str, Any]:
        """Plain arrays and numbers (``corenn.save``, no pickle) :meth:`from_state` rebuilds
        from: the settings, ``kept_`` and ``B`` (dense, or its CSR arrays with ``keep``)."""
        n_items = self._fitted_items()
        b = self.weights_
        weights = (
            {"data": b.data, "indices": b.indices, "indptr": b.indptr}
            if sp.issparse(b)
            else {"dense": b}
        )
        config = {"l2": float(self.l2), "by": self.by, "max_items": int(self.max_items)}
        config["events"] = None if self.events is None else [int(e) for e in self.events]
        config["keep"] = self.keep
        return {"config": config, "n_items": n_items, "kept": self.kept_, "weights": weights}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EASE:
        """Rebuild a fitted EASE from :meth:`get_state`'s output (shapes are checked)."""
        self = cls(**state["config"])
        self.n_items = int(state["n_items"])
        self.kept_ = np.asarray(state["kept"], dtype=np.int64)
        k, w = self.kept_.size, state["weights"]
        if "dense" in w:
            self.weights_ = np.asarray(w["dense"], dtype=np.float32)
        else:
            parts = (w["data"].astype(np.float32), w["indices"], w["indptr"])
            self.weights_ = sp.csr_matrix(parts, shape=(k, k))
        if (
            self.weights_.shape != (k, k)
            or (k and (self.kept_.min() < 0 or self.kept_.max() >= self.n_items))
            or (
                sp.issparse(self.weights_)
                and self.weights_.indices.size
                and self.weights_.indices.max() >= k
            )
        ):
            raise ValueError("saved EASE arrays do not match each other")
        return self


def _largest(b: np.ndarray, keep: int) -> sp.csr_matrix:
    """(K, K) float32 CSR of the ``keep`` entries of largest magnitude of each row of float
    ``b`` (K, K) (all of them when ``keep >= K``)."""
    k = b.shape[0]
    if k == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    keep = min(keep, k)
    cols = np.sort(np.argpartition(-np.abs(b), keep - 1, axis=1)[:, :keep], axis=1)
    data = np.take_along_axis(b, cols, axis=1).astype(np.float32)
    indptr = np.arange(0, k * keep + 1, keep)
    return sp.csr_matrix((data.ravel(), cols.ravel(), indptr), shape=(k, k))


def _row_pairs(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of stored columns a < b within each row of ``m``: (row, a, b), int64.

    Vectorised over rows, one pass per column distance ``d``: the entries at positions ``p``
    and ``p + d`` of one row form a pair (columns are sorted within rows).
    """
    m = m.tocsr()
    m.sort_indices()
    counts = np.diff(m.indptr)
    row_of = np.repeat(np.arange(m.shape[0]), counts)
    end = m.indptr[1:][row_of]
    pos = np.arange(m.indices.size)
    rows, firsts, seconds = [], [], []
    for d in range(1, int(counts.max(initial=0))):
        ok = pos + d < end
        rows.append(row_of[ok])
        firsts.append(m.indices[pos[ok]])
        seconds.append(m.indices[pos[ok] + d])
        pos, end = pos[ok], end[ok]
        row_of = row_of[ok]
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return tuple(np.concatenate(part).astype(np.int64) for part in (rows, firsts, seconds))


_BLOCK_ENTRIES = 1 << 24
"""Bound on the stored entries of each product of one block in ``AssociationRules.fit`` (the
antecedents' basket columns plus the product's rows, counted from above)."""


def _blocks(cost: np.ndarray, budget: int) -> list[slice]:
    """Consecutive slices of ``cost`` (K,) whose sums stay <= ``budget`` (or hold one element)."""
    total = np.concatenate([[0.0], np.cumsum(cost, dtype=np.float64)])
    out, start = [], 0
    while start < cost.size:
        stop = int(np.searchsorted(total, total[start] + budget, side="right")) - 1
        stop = max(stop, start + 1)
        out.append(slice(start, stop))
        start = stop
    return out


def _kept_entries(m: sp.csr_matrix, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col), int64, of the stored entries of CSR ``m`` where ``keep`` (over ``m.data``)."""
    at = np.flatnonzero(keep)
    return np.searchsorted(m.indptr, at, side="right") - 1, m.indices[at].astype(np.int64)


class AssociationRules(_ItemModel):
    """Association rules from frequent itemsets of two and three items, mined Apriori-style.

    Over the R baskets (with a counted event), ``support(S) = |baskets holding S| / R``; an
    itemset is frequent when its support is positive and ``>= min_support`` (pairs are counted
    among frequent items only, triples among frequent pairs: Apriori's pruning). Every frequent
    itemset ``S = A + {j}`` with ``|A|`` in {1, 2} gives the rule ``A -> j`` with

        confidence = support(S) / support(A),    lift = confidence / support({j}),

    kept when ``confidence >= min_confidence``; each antecedent pair keeps only its
    ``max_consequents`` strongest rules. A case scores

        score_j = max { metric(A -> j) : A a subset of the case's context }

    and 0 when no rule applies (so a triple rule needs two context items).

    ``fit`` counts pairs with the Gram matrix ``X^T X`` of the (R, I) basket-item matrix and the
    triples of each frequent pair ``{a, b}`` as ``(X_a * X_b)^T X`` (baskets holding both, times
    ``X``), both in blocks of antecedents whose products have at most ``2**24`` entries each,
    keeping only the frequent counts of each block: memory is bounded by one block plus the rules
    kept.

    Parameters
    ----------
    min_support : float, default 0.0005
        Minimum support of an itemset, a share of the baskets in [0, 1]. Chosen on inner
        splits of training data (docs/evaluation.md).
    min_confidence : float, default 0.0
        Minimum confidence of a rule, in [0, 1]. A threshold can only set weak rules' scores
        to 0, never lift a better item, so it is off by default.
    metric : {"lift", "confidence"}, default "confidence"
        The rule strength that scores.
    events : sequence of int or None, default None
        Event types that put an item in its basket; None uses every event.
    max_consequents : int or None, default 100
        Rules kept per antecedent pair: its ``max_consequents`` strongest by ``metric`` (ties:
        lower item code first); None keeps all (the rule set grows like the frequent triples,
        which explodes when ``min_support * R`` is a few baskets and baskets are long). This
        bounds the pair rules to ``max_consequents`` times the frequent pairs. It only lowers
        scores, and an item's score can change only when at least ``max_consequents`` other
        items score at least as high: each case's ``max_consequents`` best items (context
        items included) keep their exact scores, so a top-``k`` ranking that excludes the
        context is unchanged (up to ties) whenever ``k + len(context) <= max_consequents``.
        Single-item antecedents keep all their rules (at most two per frequent pair).

    Attributes
    ----------
    n_baskets_ : int
        R.
    item_rules_ : scipy.sparse.csr_matrix, shape (I, I), float64
        ``metric(a -> j)`` at ``[a, j]``.
    pairs_ : ndarray, shape (P, 2), int64
        Antecedent pairs ``(a, b)``, ``a < b``, of the triple rules, sorted.
    pair_rules_ : scipy.sparse.csr_matrix, shape (P, I), float64
        ``metric({a, b} -> j)`` at ``[p, j]`` for ``pairs_[p] = (a, b)``.
    """

    def __init__(
        self,
        min_support: float = 0.0005,
        min_confidence: float = 0.0,
        metric: Literal["lift", "confidence"] = "confidence",
        events: Sequence[int] | None = None,
        max_consequents: int | None = 100,
    ) -> None:
        if not 0 <= min_support <= 1:
            raise ValueError(f"min_support must lie in [0, 1], got {min_support!r}")
        if not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must lie in [0, 1], got {min_confidence!r}")
        if metric not in ("lift", "confidence"):
            raise ValueError(f"metric must be 'lift' or 'confidence', got {metric!r}")
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.metric = metric
        self.events = events
        if max_consequents is not None and (
            isinstance(max_consequents, bool) or max_consequents < 1
        ):
            raise ValueError(
                f"max_consequents must be a positive integer or None, got {max_consequents!r}"
            )
        self.max_consequents = max_consequents

    def _frequent(self, count: np.ndarray) -> np.ndarray:
        return (count > 0) & (count / self.n_baskets_ >= self.min_support)

    def _rules(self, together, antecedent, consequent_count):
        """Metric of rules with the given itemset and antecedent counts; NaN where dropped."""
        conf = together / antecedent
        value = conf if self.metric == "confidence" else conf * self.n_baskets_ / consequent_count
        return np.where(conf >= self.min_confidence, value, np.nan)

    def fit(self, train: Interactions, **side_info: Any) -> AssociationRules:
        """Count frequent items, pairs and triples and derive the rules; returns ``self``."""
        n_items = train.n_items
        x = _rows_matrix(train, "basket", self.events)
        self.n_baskets_ = max(x.shape[0], 1)
        count = np.asarray(x.sum(axis=0)).ravel()
        x = (x @ sp.diags(self._frequent(count).astype(np.float64))).tocsr()
        x.eliminate_zeros()
        xc = x.tocsc()
        # an antecedent's row of a product ``holds^T X`` has at most ``reach`` entries: the
        # summed sizes of the baskets holding it (and at most I)
        size_x = sp.diags(np.diff(x.indptr).astype(np.float64)) @ x
        reach = np.asarray(size_x.sum(axis=0)).ravel()
        pa, pb, pc, pw = self._pairs(xc, x, size_x, count + np.minimum(reach, n_items))
        self.item_rules_ = self._matrix(
            [
                (pa, pb, self._rules(pc, count[pa], count[pb])),
                (pb, pa, self._rules(pc, count[pb], count[pa])),
            ],
            n_items,
            n_items,
        )
        # triples {a, b, j}: the row of pair p = (a, b) holds |baskets with a, b and j| for the
        # items j that form a frequent pair with one of the block's first items (Apriori: the
        # others cannot be frequent with a)
        partners = _binary(np.concatenate([pa, pb]), np.concatenate([pb, pa]), (n_items, n_items))
        blocks = []
        for part in _blocks(count[pa] + count[pb] + np.minimum(pw, n_items), _BLOCK_ENTRIES):
            holds = xc[:, pa[part]].multiply(xc[:, pb[part]])
            items = np.unique(partners[np.unique(pa[part])].indices).astype(np.int64)
            t = (holds.T @ xc[:, items]).tocsr()
            keep = self._frequent(t.data)
            row, col = _kept_entries(t, keep)
            col, together = items[col], t.data[keep]
            keep = (col != pa[part][row]) & (col != pb[part][row])
            row, col, together = row[keep], col[keep], together[keep]
            value = self._rules(together, pc[part][row], count[col])
            block = self._matrix([(row, col, value)], part.stop - part.start, n_items)
            if self.max_consequents is not None:
                block = _keep_top_per_row(block, self.max_consequents)
            blocks.append(block)
        pair_rules = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n_items))
        used = np.flatnonzero(np.diff(pair_rules.indptr))
        self.pairs_ = np.stack([pa[used], pb[used]], axis=1)
        self.pair_rules_ = pair_rules[used]
        self.n_items = n_items
        return self

    def _pairs(self, xc, x, size_x, cost):
        """Frequent pairs (a, b), a < b, sorted: a, b, their count and summed basket sizes."""
        parts = []
        for part in _blocks(cost, _BLOCK_ENTRIES):
            left = xc[:, part]
            gram, weight = (left.T @ x).tocsr(), (left.T @ size_x).tocsr()
            gram.sort_indices()
            weight.sort_indices()  # the same stored entries as gram's, in the same order
            keep = self._frequent(gram.data)
            a, b = _kept_entries(gram, keep)
            a += part.start
            upper = b > a
            parts.append((a[upper], b[upper], gram.data[keep][upper], weight.data[keep][upper]))
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    @staticmethod
    def _matrix(parts, n_rows: int, n_cols: int) -> sp.csr_matrix:
        """CSR from (row, col, value) parts, entries with a NaN value (dropped rules) left out."""
        rows, cols, values = (np.concatenate(p) for p in zip(*parts, strict=True))
        ok = ~np.isnan(values)
        return sp.csr_matrix((values[ok], (rows[ok], cols[ok])), shape=(n_rows, n_cols))

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32: the strongest applicable rule of each item, 0 without one."""
        n_items = self._fitted_items()
        ctx = _context(cases, n_items)
        out = _aggregate(ctx, self.item_rules_, "max")
        pair_keys = self.pairs_[:, 0] * n_items + self.pairs_[:, 1]
        for start in range(0, ctx.shape[0], _CHUNK_CASES):
            part = ctx[start : start + _CHUNK_CASES]
            case, a, b = _row_pairs(part)
            key = a * n_items + b
            at = np.minimum(np.searchsorted(pair_keys, key), max(pair_keys.size - 1, 0))
            found = pair_keys[at] == key if pair_keys.size else np.zeros(key.size, dtype=bool)
            held = _binary(case[found], at[found], (part.shape[0], pair_keys.size))
            block = out[start : start + part.shape[0]]
            np.maximum(block, _aggregate(held, self.pair_rules_, "max"), out=block)
        return out
