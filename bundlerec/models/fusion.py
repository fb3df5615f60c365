"""Fusion of several scorers into one calibrated probability (the seed's "model ensemble").

Each component's scores become a per-case *log-rank* feature over the recommendable items,

    z_m(i) = -log rank_m(i)        (rank 1 = the component's best item; ties share the mean rank)

so that components on different scales (logits, log-probabilities with a floor far below every
learned value, counts) weigh in by their orderings alone. The fused probability is

    P(item is the held-out item | case) = sigmoid(b + sum_m w_m z_m),   w_m = a * c_m.

Both parts are learned on validation cases. The mixture ``c`` (non-negative, summing to one) is
the point of a simplex grid of step 1 / ``resolution`` with the best validation NDCG@10: the
grid holds every single component (its vertices), so on the validation cases the fusion ranks
at least as well as its best component. The scale ``a`` and bias ``b`` come from a logistic
regression of the fused feature: the held-out items are positives, items drawn uniformly from
the rest of the catalogue are negatives, weighted so that the base rate is that of the full
catalogue (a case's probabilities sum to about its number of held-out items): the
probabilities are calibrated. The fitted ``weights`` (``a c_m`` per component) and ``bias``
are readable and are all the state.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from bundlerec.metrics import top_k
from bundlerec.parallel import map_blocks

if TYPE_CHECKING:
    from bundlerec.cases import Cases
    from bundlerec.evaluation import Scorer

__all__ = ["Fusion", "log_rank", "simplex_grid"]

_TOP = 10
_DEPTH = 64  # fast top-k: each component's best max(4 k, _DEPTH) items are read first
_BLOCK = 1 << 19


def log_rank(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per-row ``-log rank`` of ``scores`` (n, I) among the ``allowed`` (n, I) bool entries.

    Rank 1 is the highest allowed score; tied scores share their mean rank; excluded entries
    rank after every allowed one (tied with allowed ``-inf`` scores). Returns float64 (n, I),
    at most 0: the same numbers as ``-log(scipy.stats.rankdata(-masked, axis=1))``.

    One sort per row (:func:`_row_order`) orders the items; in that order each run of equal
    keys spans the 0-based positions ``first .. last`` and shares the mean rank
    ``(first + last + 2) / 2``, a half-integer whose ``log`` is looked up in a table.
    """
    return _log_rank_of_keys(_keys(scores, allowed))


def _keys(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(n, I) ascending sort keys: ``-scores`` where allowed, ``+inf`` elsewhere (float)."""
    s = np.asarray(scores)
    s = s if s.dtype in (np.float32, np.float64) else s.astype(np.float64)
    return np.where(allowed, -s, np.inf)


@lru_cache(maxsize=4)
def _log_half(n_items: int) -> np.ndarray:
    """(2 I - 1,) float64 read-only table: entry ``h - 2`` is ``log(h / 2)``, h = 2 * rank."""
    table = np.log(np.arange(2, 2 * n_items + 1) / 2.0)
    table.flags.writeable = False
    return table


def _log_rank_of_keys(key: np.ndarray) -> np.ndarray:
    """(n, I) float64 ``-log`` mean rank of the float ``key`` (n, I), rank 1 = smallest."""
    n, n_items = key.shape
    out = np.empty((n, n_items), dtype=np.float64)
    log_half = _log_half(n_items)
    # Blocks of rows keep the temporaries cache-sized (whole batches are memory-bound).
    step = max(1, _BLOCK // max(n_items, 1))
    for i in range(0, n, step):
        out[i : i + step] = _neg_log_mean_rank(key[i : i + step], log_half)
    return out


def _neg_log_mean_rank(key: np.ndarray, log_half: np.ndarray) -> np.ndarray:
    """(b, I) ``-log`` mean rank of the ascending float ``key`` (b, I), rank 1 = smallest."""
    b, n_items = key.shape
    order = _row_order(key)
    ordered = np.take_along_axis(key, order, axis=1)
    pos = np.arange(n_items)
    new_run = np.ones((b, n_items), dtype=bool)
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new_run[:, 1:])
    first = np.maximum.accumulate(np.where(new_run, pos, 0), axis=1)
    ends = np.ones((b, n_items), dtype=bool)
    ends[:, :-1] = new_run[:, 1:]
    last = np.minimum.accumulate(np.where(ends, pos, n_items)[:, ::-1], axis=1)[:, ::-1]
    out = np.empty((b, n_items), dtype=np.float64)
    np.put_along_axis(out, order, -log_half[first + last], axis=1)
    return out


def _row_order(key: np.ndarray) -> np.ndarray:
    """(n, I) indices that sort each row of float ``key`` (n, I) ascending; ties in any order.

    float32 rows are sorted as int64 words ``(order-preserving bits) << 32 | column``: a plain
    numeric sort (vectorised) that is several times faster than ``np.argsort``. The float bits
    as int32 order like the floats once a negative float's magnitude bits are flipped.
    NaN-free input.
    """
    n_items = key.shape[1]
    if key.dtype != np.float32 or n_items >= 1 << 31:
        return np.argsort(key, axis=1)
    bits = key.view(np.int32)
    packed = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).astype(np.int64) << 32
    packed |= np.arange(n_items, dtype=np.int64)
    packed.sort(axis=1)
    return packed & 0xFFFFFFFF


def _logit(weights: list[float], feats: list[np.ndarray], bias: float) -> np.ndarray:
    """float64 ``b + sum_m w_m z_m`` of same-shaped float64 ``feats``.

    Summed element by element in component order (no BLAS), so that an item gets
    bit-identical numbers from the full catalogue and from a candidate subset.
    """
    acc = weights[0] * feats[0]
    for w, z in zip(weights[1:], feats[1:]):
        acc += w * z
    acc += bias
    return acc


def _fuse(weights: list[float], feats: list[np.ndarray], bias: float) -> np.ndarray:
    """float32 calibrated probabilities ``sigmoid(_logit(weights, feats, bias))``."""
    return expit(_logit(weights, feats, bias)).astype(np.float32)


def _certified_top(
    keys: list[np.ndarray],
    allowed: np.ndarray,
    weights: list[float],
    bias: float,
    k: int,
    depth: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact fused top-``k`` of a block of rows from each component's ``depth`` best items.

    Parameters
    ----------
    keys : list of M ndarray, shape (b, I), float
        Per component the ascending keys of :func:`_keys` (a row holding NaN gets a
        meaningless list: the caller sends it to the full path).
    allowed : ndarray, shape (b, I), bool
        Recommendable items.
    weights : list of M float
        Non-negative component weights.
    bias : float
        Fused logit bias.
    k, depth : int
        List length and number of best items per component (``1 <= depth <= I``).

    Returns
    -------
    items : ndarray, shape (b, k), int64
    probs : ndarray, shape (b, k), float32
    ok : ndarray, shape (b,), bool
        Rows whose list is certified exact; the other rows' lists are meaningless.

    Notes
    -----
    Each component's row is sorted by value only (a vectorised sort, several times cheaper
    than ordering the items). With ``t_m`` its ``depth``-th smallest key, the candidates are
    the allowed items with key ``<= t_m`` in *some* component. A candidate's mean rank in
    every component comes from two binary searches in the sorted row (keys below it, keys
    equal to it), so its fused probability is exact. Any other allowed item has key
    ``> t_m`` in every component, hence a mean rank ``>= c_m + 1`` with ``c_m`` the number
    of keys ``<= t_m``; as every weight is non-negative its logit is at most
    ``b + sum_m w_m z(c_m + 1)`` (rounded sums and products are monotone). A row is certified
    when all its allowed items are candidates, or when it has ``k`` candidates and the
    ``k``-th probability strictly beats that bound (a margin guards the sigmoid's last bit):
    no other item can then enter the list or tie with its last entry.
    """
    b, n_items = allowed.shape
    log_half = _log_half(n_items)
    ordered = [np.sort(key, axis=1) for key in keys]
    cand = np.zeros((b, n_items), dtype=bool)
    for key, srt in zip(keys, ordered):
        cand |= key <= srt[:, depth - 1, None]
    cand &= allowed
    rows, cols = np.divmod(np.flatnonzero(cand), n_items)  # faster than a 2-D nonzero
    counts = np.bincount(rows, minlength=b)
    ends = np.cumsum(counts)
    feats, edges = [], []
    for key, srt in zip(keys, ordered):
        vals = key[rows, cols]
        index = np.empty(rows.size, dtype=np.int64)
        n_in = np.empty(b, dtype=np.int64)
        for r in range(b):
            at = slice(ends[r] - counts[r], ends[r])
            # 0-based first + last position of the run of the candidate's key, and n_in.
            right = np.searchsorted(srt[r], np.append(vals[at], srt[r, depth - 1]), "right")
            index[at] = np.searchsorted(srt[r], vals[at]) + right[:-1]
            n_in[r] = right[-1]
        feats.append(-log_half[index - 1])
        edges.append(-log_half[np.minimum(2 * n_in, 2 * n_items - 2)])
    probs = _fuse(weights, feats, bias)
    order = np.lexsort((cols, -probs, rows))
    rows, cols, probs = rows[order], cols[order], probs[order]
    slot = np.arange(rows.size) - np.repeat(ends - counts, counts)
    keep = slot < k
    items = np.full((b, k), -1, dtype=np.int64)
    top = np.full((b, k), np.nan, dtype=np.float32)
    items[rows[keep], slot[keep]] = cols[keep]
    top[rows[keep], slot[keep]] = probs[keep]
    logit = _logit(weights, edges, bias)
    beaten = expit(logit + 1e-9 * (1.0 + np.abs(logit))).astype(np.float32)
    everything = counts == np.count_nonzero(allowed, axis=1)
    return items, top, everything | ((counts >= k) & (top[:, -1] > beaten))


def simplex_grid(m: int, resolution: int) -> np.ndarray:
    """(G, m) float64: every mixture with entries in ``{0, 1/r, ..., 1}`` summing to one.

    The vertices (one component alone) come first, in component order.
    """
    if m < 1 or resolution < 1:
        raise ValueError(f"need m >= 1 and resolution >= 1, got {m} and {resolution}")
    rows = []
    for bars in combinations(range(resolution + m - 1), m - 1):
        edges = np.array([-1, *bars, resolution + m - 1])
        rows.append(np.diff(edges) - 1)
    grid = np.array(rows, dtype=np.float64) / resolution
    vertex = (grid == 1).any(axis=1)
    return np.concatenate([grid[vertex][::-1], grid[~vertex]])


def _ndcg_at_top(fused: np.ndarray, allowed: np.ndarray, targets: np.ndarray) -> float:
    """Mean NDCG@10 of one target per case (``targets`` (n,)), ties counted against it."""
    rows = np.arange(targets.size)
    own = fused[rows, targets]
    above = (np.where(allowed, fused, -np.inf) >= own[:, None]).sum(axis=1) - 1
    hit = allowed[rows, targets] & (above < _TOP)
    return float(np.where(hit, 1.0 / np.log2(above + 2.0), 0.0).mean())


class Fusion:
    """Calibrated logistic combination of component scorers' log-ranks.

    Parameters
    ----------
    components : dict of str to scorer
        Fitted models with ``score(cases) -> (n, I)``; their order fixes the weight order.
    n_negatives : int
        Negatives sampled per validation case for the calibration.
    resolution : int
        Steps per unit of the mixture grid (``resolution + 1`` mixtures for two components).
    seed : int
        Seeds the negatives.

    Attributes
    ----------
    weights : dict of str to float or None
        ``a c_m`` per component after :meth:`fit` (None before).
    bias : float
        ``b``.
    """

    def __init__(
        self,
        components: dict[str, Scorer],
        n_negatives: int = 50,
        resolution: int = 20,
        seed: int = 0,
    ) -> None:
        if not components:
            raise ValueError("Fusion needs at least one component")
        self.components = dict(components)
        self.n_negatives = int(n_negatives)
        self.resolution = int(resolution)
        self.seed = int(seed)
        self.weights: dict[str, float] | None = None
        self.bias = 0.0

    def _scores(self, name: str, cases: Cases, shape: tuple[int, int]) -> np.ndarray:
        """(n, I) scores of component ``name``, checked against the (n, I) ``shape``."""
        s = np.asarray(self.components[name].score(cases))
        if s.shape != shape:
            raise ValueError(
                f"component {name!r} returned scores of shape {s.shape}, expected {shape}"
            )
        return s

    def _features(
        self, cases: Cases, names: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(M, n, I) log-rank features of the components ``names`` (default: all) and the
        (n, I) bool recommendable items."""
        allowed = cases.allowed()
        names = list(self.components) if names is None else names
        feats = [log_rank(self._scores(name, cases, allowed.shape), allowed) for name in names]
        return np.stack(feats), allowed

    def fit(self, valid: Cases) -> Fusion:
        """Choose the mixture and calibrate it on validation cases (targets are positives)."""
        n = valid.users.shape[0]
        if n == 0:
            raise ValueError("Fusion.fit needs at least one validation case")
        z, allowed = self._features(valid)
        n_items = z.shape[2]
        target = valid.targets[:, 0]
        # Only targets that may be recommended teach anything: a target among the case's
        # excluded items (a repeat of the history) has the worst rank by construction.
        known = (target >= 0) & allowed[np.arange(n), np.maximum(target, 0)]
        if not known.any():
            raise ValueError("Fusion.fit: every validation target is among its case's exclusions")
        grid = simplex_grid(z.shape[0], self.resolution)
        quality = [
            _ndcg_at_top(np.tensordot(c, z[:, known], axes=1), allowed[known], target[known])
            for c in grid
        ]
        mix = grid[int(np.argmax(quality))]
        fused = np.tensordot(mix, z, axes=1)
        rng = np.random.default_rng(self.seed)
        rows = np.nonzero(known)[0]
        cols = np.zeros(rows.size, dtype=np.int64)
        neg_rows = np.repeat(rows, self.n_negatives)
        neg_cols = rng.integers(0, n_items, size=neg_rows.size)
        miss = (neg_cols[:, None] != valid.targets[neg_rows]).all(axis=1)
        miss &= allowed[neg_rows, neg_cols]  # negatives stand for the recommendable items
        neg_rows, neg_cols = neg_rows[miss], neg_cols[miss]
        x = np.concatenate([fused[rows, valid.targets[rows, cols]], fused[neg_rows, neg_cols]])
        y = np.concatenate([np.ones(rows.size), np.zeros(neg_rows.size)])
        # Negatives (drawn from the catalogue, held-out items dropped) stand for all the other
        # items: weight them up to the catalogue's size.
        w = np.concatenate(
            [np.ones(rows.size), np.full(neg_rows.size, n_items / self.n_negatives)]
        )
        w /= w.mean()

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            logit = theta[0] + theta[1] * x
            nll = -(w * (y * log_expit(logit) + (1 - y) * log_expit(-logit))).mean()
            r = (expit(logit) - y) * w / y.size
            return nll, np.array([r.sum(), r @ x])

        theta0 = np.array([np.log(1.0 / n_items), 1.0])
        res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=[(None, None), (0, None)])
        self.bias = float(res.x[0])
        self.weights = {name: float(res.x[1] * c) for name, c in zip(self.components, mix)}
        return self

    def _used(self) -> list[str]:
        """Fitted components of non-zero weight (a zero weight adds exactly 0 to a logit)."""
        if self.weights is None:
            raise ValueError("Fusion is not fitted: call fit() first")
        return [name for name, w in self.weights.items() if w != 0]

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32 calibrated probabilities."""
        used = self._used()
        if not used:
            n = np.shape(cases.users)[0]
            n_items = cases.exclude.shape[1]
            return np.full((n, n_items), expit(self.bias), dtype=np.float32)
        z, _ = self._features(cases, used)
        return _fuse([self.weights[name] for name in used], list(z), self.bias)

    def top_k(
        self, cases: Cases, k: int, depth: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most probable recommendable items of every case, best first.

        Exactly ``metrics.top_k(self.score(cases), k, exclude=cases.exclude)`` (ties by the
        lower item code) and those items' probabilities, without ranking the whole catalogue
        where :func:`_certified_top` can prove a list from each component's best items (the
        depth grows fourfold for uncertified rows; the rest take the full path).

        Parameters
        ----------
        cases : Cases
            ``n`` cases over ``I`` items.
        k : int
            List length (may exceed the number of recommendable items).
        depth : int, optional
            Best items read per component at first (default ``max(4 k, 64)``); only speed
            depends on it.

        Returns
        -------
        items : ndarray, shape (n, k), int64
            Item codes, right-padded with -1 when a case has fewer than ``k`` allowed items.
        probs : ndarray, shape (n, k), float32
            Their fused probabilities (NaN at padding).
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        used = self._used()
        allowed = cases.allowed()
        n, n_items = allowed.shape
        weights = [self.weights[name] for name in used]
        scores = [self._scores(name, cases, allowed.shape) for name in used]
        depth = max(4 * k, _DEPTH) if depth is None else int(depth)
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        items = np.full((n, k), -1, dtype=np.int64)
        probs = np.full((n, k), np.nan, dtype=np.float32)
        # Rows go by cache-sized blocks: keys are made per block, never for the whole batch.
        step = max(1, _BLOCK // max(n_items, 1))
        todo = np.arange(n) if min(weights, default=-1) >= 0 else np.zeros(0, dtype=np.int64)
        rest = [np.setdiff1d(np.arange(n), todo)]
        while todo.size and 2 * depth <= n_items:

            def certify(rows: np.ndarray, depth: int = depth) -> np.ndarray:
                # A run of consecutive rows (the first round) is read as a view, not gathered.
                at = slice(rows[0], rows[-1] + 1) if rows[-1] - rows[0] < rows.size else rows
                keys = [_keys(s[at], allowed[at]) for s in scores]
                top, p, ok = _certified_top(keys, allowed[at], weights, self.bias, k, depth)
                for key in keys:  # NaN scores: the full path decides what they mean
                    ok &= ~np.isnan(key).any(axis=1)
                items[rows[ok]], probs[rows[ok]] = top[ok], p[ok]
                return ok

            done = np.concatenate(map_blocks(certify, todo, step))
            todo, depth = todo[~done], 4 * depth

        def rank_all(rows: np.ndarray) -> None:
            if used:
                z = [_log_rank_of_keys(_keys(s[rows], allowed[rows])) for s in scores]
                fused = _fuse(weights, z, self.bias)
            else:
                fused = np.full((rows.size, n_items), expit(self.bias), dtype=np.float32)
            top = top_k(fused, k, exclude=~allowed[rows])
            items[rows] = top
            probs[rows] = np.where(top >= 0, np.take_along_axis(fused, top, axis=1), np.nan)

        map_blocks(rank_all, np.sort(np.concatenate([*rest, todo])), step)
        return items, probs
