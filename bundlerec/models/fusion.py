"""Fusion of several scorers into one calibrated, per-shopper probability (the seed's "model
ensemble").

Each component ``m`` gives two per-case features of an item ``i`` over the case's
recommendable items ``A``:

    z_m(i) = -log rank_m(i)                       (rank 1 = the component's best item; ties
                                                   share the mean rank)
    l_m(i) = max(s_m(i) - log sum_{j in A} exp s_m(j), log 1e-8)     (the log-share)

``z`` weighs a component in by its ordering alone (components on different scales: logits,
log-probabilities, counts); ``l`` is the component's own log-probability of the item, the
log-softmax of its scores over ``A``: for the sequence model (logits) its next-item
distribution, for the co-purchase network (``log P(item in basket | case)``) its share of the
basket mass, ``log P(i) - log sum_j P(j)``. The floor keeps items a component calls
impossible (the network's ``-1e3`` for items outside it) from dominating a logit. The fused
probability is

    P(item is the held-out item | case) = sigmoid(b + sum_m w_m z_m + sum_m v_m l_m).

The log-ranks alone give every case the same probability at each rank; the log-shares make it
depend on how sure the components are for *this* shopper (a sharply peaked sequence model
gives its first item more than a flat one does).

Everything is learned on validation cases, in two steps:

1. **Rank-only fusion** (``v = 0``): the mixture ``c`` (non-negative, summing to one) of the
   log-ranks is the point of a simplex grid of step 1 / ``resolution`` with the best
   validation NDCG@10 (the grid holds every single component, so the fusion ranks at least as
   well as its best component on validation), and ``w_m = a c_m`` and ``b`` come from a
   logistic regression of the fused feature.
2. **Joint fusion**: a logistic regression of all ``2 M`` features with non-negative weights
   (started from step 1). The weights kept are the largest step ``t`` of 1, 3/4, 1/2, 1/4 from
   the rank-only weights towards the joint ones, ``(1 - t) rank-only + t joint``, whose
   validation NDCG@10 is at most two standard errors of the paired per-case difference below
   the rank-only fusion's (the two rank the same within validation noise), with bias and scale
   refitted by a logistic regression of that one combined feature (a positive scale keeps the
   order); without such a step the rank-only fusion is kept (``v = 0``). A partial step keeps
   the probabilities per shopper where the full joint fit would rank worse.

Both regressions take the held-out items (those a case may recommend) as positives and items
drawn uniformly from each case's recommendable items as negatives, drawn from *every*
validation case, those whose held-out item is excluded (a repeat of the history) included, and
weighted up to the catalogue's size: the probabilities are calibrated against what the shoppers
did, a case's probabilities summing to about its chance of a recommendable held-out item.

State: ``weights`` maps each component's name to ``w_m`` and ``name + ":log_share"`` to
``v_m`` (a missing key is a zero weight, so rank-only weights saved by earlier versions load
unchanged), and ``bias`` is ``b``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

import corenn
from bundlerec.metrics import top_k
from bundlerec.parallel import map_blocks

if TYPE_CHECKING:
    from bundlerec.cases import Cases
    from bundlerec.evaluation import Scorer

__all__ = ["Fusion", "SHARE", "log_rank", "log_share", "logistic", "simplex_grid"]

SHARE = ":log_share"  # suffix of a component's log-share weight in ``Fusion.weights``
_TOP = 10
_DEPTH = 64  # fast top-k: each component's best max(4 k, _DEPTH) items are read first
_BLOCK = 1 << 19
_FLOOR = float(np.log(1e-8))  # log-share floor
_BIG = 1e300  # scores are clipped to +-_BIG: infinite scores make no NaN in a log-share
_SE_TOLERANCE = 2.0  # the joint fusion may rank this many standard errors below rank-only
_STEPS = (1.0, 0.75, 0.5, 0.25)  # steps from the rank-only towards the joint weights


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


def log_share(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per-row floored log-softmax of ``scores`` (n, I) over the ``allowed`` (n, I) bool entries.

    ``l(i) = max(s(i) - log sum_{j allowed} exp s(j), log 1e-8)``, float64 (n, I), for every
    entry (excluded ones too, against the same normaliser). Scores are clipped to
    ``+-1e300`` first, so ``+inf`` scores get 0 (certain) and ``-inf`` ones the floor; a row
    with no allowed entry is at the floor; NaN propagates.
    """
    lse = _row_lse(scores, allowed)[:, None]
    return _share_of(np.asarray(scores, dtype=np.float64), lse)


def _row_lse(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(n,) float64 ``log sum exp`` of the clipped ``scores`` (n, I) over ``allowed``.

    ``+inf`` for a row with no allowed entry. Row by row the same numbers whatever rows come
    with it (reductions along contiguous rows, and the precision chosen per row), so blocks of
    rows agree with the full batch. Rows of float32 scores that are all finite (the sequence
    model's logits) are reduced in float32 with float64 sums: within about 1e-8 of the float64
    value and 3x faster, which matters in batch serving (10,000 shoppers x 50,000 items spent
    most of their time here); other rows go through float64.
    """
    s = np.asarray(scores)
    if s.dtype != np.float32:
        return _lse_rows(np.clip(s.astype(np.float64, copy=False), -_BIG, _BIG), allowed)
    finite = np.isfinite(s).all(axis=1)
    if finite.all():
        return _lse_rows(s, allowed)
    out = np.empty(s.shape[0], dtype=np.float64)
    out[finite] = _lse_rows(s[finite], allowed[finite])
    wide = np.clip(s[~finite].astype(np.float64), -_BIG, _BIG)
    out[~finite] = _lse_rows(wide, allowed[~finite])
    return out


def _lse_rows(s: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """:func:`_row_lse` in the precision of ``s`` (float32 rows all finite, or clipped float64
    where NaN propagates), with float64 sums."""
    s = np.where(allowed, s, s.dtype.type(-np.inf))
    top = s.max(axis=1, initial=-np.inf)
    empty = top == -np.inf
    top = np.where(empty, 0.0, top).astype(s.dtype)
    s -= top[:, None]
    with np.errstate(under="ignore", invalid="ignore"):
        np.exp(s, out=s)
    with np.errstate(divide="ignore"):  # log 0: only in empty rows
        total = np.log(s.sum(axis=1, dtype=np.float64))
    return np.where(empty, np.inf, top.astype(np.float64) + total)


def _share_of(values: np.ndarray, lse: np.ndarray) -> np.ndarray:
    """float64 ``max(clip(values) - lse, floor)``: non-decreasing in ``values`` (float64)."""
    return np.maximum(np.clip(values, -_BIG, _BIG) - lse, _FLOOR)


def _certified_top(
    keys: list[np.ndarray],
    lse: list[np.ndarray],
    allowed: np.ndarray,
    weights: np.ndarray,
    bias: float,
    k: int,
    depth: int,
    ordered: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact fused top-``k`` of a block of rows from each component's ``depth`` best items.

    Parameters
    ----------
    keys : list of M ndarray, shape (b, I), float
        Per component the ascending keys of :func:`_keys` (a row holding NaN gets a
        meaningless list: the caller sends it to the full path).
    lse : list of M ndarray, shape (b,), float64
        Per component :func:`_row_lse` of its scores (read only where its log-share weight is
        non-zero).
    allowed : ndarray, shape (b, I), bool
        Recommendable items.
    weights : ndarray, shape (M, 2), float
        Non-negative weights of each component's log-rank and log-share (``w_m``, ``v_m``).
    bias : float
        Fused logit bias.
    k, depth : int
        List length and number of best items per component (``1 <= depth <= I``).
    ordered : list of M ndarray, shape (b, I), float, optional
        ``np.sort(key, axis=1)`` of each of ``keys``, when the caller has them already (a
        caller trying several depths sorts once).

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
    equal to it), and its log-share from its score and the row's normaliser, so its fused
    probability is exact. Any other allowed item has key ``> t_m`` in every component, hence
    a mean rank ``>= c_m + 1`` with ``c_m`` the number of keys ``<= t_m``, and a score below
    ``-t_m``, hence a log-share at most that of ``-t_m`` (the log-share is non-decreasing in
    the score); as every weight is non-negative its logit is at most
    ``b + sum_m w_m z(c_m + 1) + v_m l(-t_m)`` (rounded sums and products are monotone). A
    row is certified when all its allowed items are candidates, or when it has ``k``
    candidates and the ``k``-th probability strictly beats that bound (a margin guards the
    sigmoid's last bit): no other item can then enter the list or tie with its last entry.
    """
    b, n_items = allowed.shape
    log_half = _log_half(n_items)
    if ordered is None:
        ordered = [corenn.sort_rows(key) for key in keys]
    cand = np.zeros((b, n_items), dtype=bool)
    for key, srt in zip(keys, ordered):
        cand |= key <= srt[:, depth - 1, None]
    cand &= allowed
    rows, cols = np.divmod(np.flatnonzero(cand), n_items)  # faster than a 2-D nonzero
    counts = np.bincount(rows, minlength=b)
    ends = np.cumsum(counts)
    feats, edges, used = [], [], []
    for key, srt, norm, (w_rank, w_share) in zip(keys, ordered, lse, weights):
        vals = key[rows, cols]
        if w_rank != 0:
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
            used.append(w_rank)
        if w_share != 0:
            feats.append(_share_of(-vals.astype(np.float64), norm[rows]))
            edges.append(_share_of(-srt[:, depth - 1].astype(np.float64), norm))
            used.append(w_share)
    if not used:  # every weight is 0: every logit is the bias
        feats, edges, used = [np.zeros(rows.size)], [np.zeros(b)], [0.0]
    probs = _fuse(used, feats, bias)
    order = np.lexsort((cols, -probs, rows))
    rows, cols, probs = rows[order], cols[order], probs[order]
    slot = np.arange(rows.size) - np.repeat(ends - counts, counts)
    keep = slot < k
    items = np.full((b, k), -1, dtype=np.int64)
    top = np.full((b, k), np.nan, dtype=np.float32)
    items[rows[keep], slot[keep]] = cols[keep]
    top[rows[keep], slot[keep]] = probs[keep]
    logit = _logit(used, edges, bias)
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


def _ndcg_cases(fused: np.ndarray, allowed: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(n,) float64 NDCG@10 of one recommendable target per case (``targets`` (n,)) in the
    float (n, I) ``fused`` scores over the (n, I) bool ``allowed`` items; ties count against
    the target."""
    rows = np.arange(targets.size)
    own = fused[rows, targets]
    above = (np.where(allowed, fused, -np.inf) >= own[:, None]).sum(axis=1) - 1
    return np.where(above < _TOP, 1.0 / np.log2(above + 2.0), 0.0)


def _mix(c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """float64 ``sum_m c_m z_m`` of ``z`` (M, ...), summed element by element in component
    order: an entry gets the same bits whatever array it sits in."""
    acc = c[0] * z[0]
    for w, zm in zip(c[1:], z[1:]):
        acc = acc + w * zm
    return acc


def _grid_ndcg(grid: np.ndarray, z: np.ndarray, allowed: np.ndarray, targets: np.ndarray):
    """(G,) float64 mean NDCG@10 of each mixture of ``grid`` (G, M) (non-negative, summing to
    one): ``_ndcg_cases(_mix(c, z), allowed, targets).mean()`` for each ``c``, where ``z``
    (M, n, I) are log-ranks (:func:`log_rank`), ``allowed`` (n, I) bool and ``targets`` (n,)
    recommendable.

    Without mixing every item of every case: an allowed item whose log-rank is at least the
    target's in every component is ahead of it (or tied) under every mixture (products by
    ``c_m >= 0`` and their running sums round monotonically); one below it in every component
    is behind it under every mixture (two log-ranks differ by at least ``log(1 + 1 / (2 I))``, so
    ``c_m`` of it, with ``c_m >= 1 / resolution``, is far above the sums' rounding). Only the
    other items are mixed, and only in cases with fewer than 10 items always ahead (the others
    score 0 everywhere).
    """
    m, n, n_items = z.shape
    z_target = z[:, np.arange(n), targets]  # (M, n)
    ahead = np.zeros(n, dtype=np.int64)
    case_of, cols = [], []
    step = max(1, _BLOCK // max(m * n_items, 1))
    for start in range(0, n, step):
        rows = np.arange(start, min(start + step, n))
        at_least = z[:, rows] >= z_target[:, rows, None]  # (M, b, I)
        others = allowed[rows]
        others[np.arange(rows.size), targets[rows]] = False
        always = at_least.all(axis=0) & others
        ahead[rows] = always.sum(axis=1)
        r, c = np.nonzero(at_least.any(axis=0) & ~always & others & (ahead[rows] < _TOP)[:, None])
        case_of.append(rows[r])
        cols.append(c)
    case_of, cols = np.concatenate(case_of), np.concatenate(cols)
    z_open = z[:, case_of, cols]  # (M, U)
    live = ahead < _TOP
    out = np.empty(len(grid))
    for g, c in enumerate(grid):
        beats = _mix(c, z_open) >= _mix(c, z_target)[case_of]
        above = ahead + np.bincount(case_of, weights=beats, minlength=n).astype(np.int64)
        out[g] = np.where(live & (above < _TOP), 1.0 / np.log2(above + 2.0), 0.0).mean()
    return out


def logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, theta0: np.ndarray) -> np.ndarray:
    """Weighted logistic regression with non-negative slopes.

    Parameters
    ----------
    x : ndarray, shape (N, F), float64
        Features.
    y : ndarray, shape (N,), float64
        Labels in {0, 1}.
    w : ndarray, shape (N,), float64
        Sample weights (mean 1).
    theta0 : ndarray, shape (F + 1,), float64
        Start: bias, then the F slopes (>= 0).

    Returns
    -------
    ndarray, shape (F + 1,), float64
        Bias and slopes minimising the weighted mean negative log-likelihood (L-BFGS-B).
    """

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logit = theta[0] + x @ theta[1:]
        nll = -(w * (y * log_expit(logit) + (1 - y) * log_expit(-logit))).mean()
        r = (expit(logit) - y) * w / y.size
        return nll, np.concatenate([[r.sum()], r @ x])

    bounds = [(None, None)] + [(0, None)] * x.shape[1]
    return minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds).x


class Fusion:
    """Calibrated logistic combination of component scorers' log-ranks and log-shares.

    Parameters
    ----------
    components : dict of str to scorer
        Fitted models with ``score(cases) -> (n, I)``; their order fixes the weight order.
        Names may not end in ``":log_share"``.
    n_negatives : int
        Negatives sampled per validation case for the calibration.
    resolution : int
        Steps per unit of the mixture grid (``resolution + 1`` mixtures for two components).
    seed : int
        Seeds the negatives.
    log_shares : bool, default True
        Try the joint fusion with the log-shares (step 2 of the module docstring); False keeps
        the rank-only fusion (one probability per rank, up to ties).

    Attributes
    ----------
    weights : dict of str to float or None
        After :meth:`fit` (None before): ``w_m`` under each component's name and ``v_m`` under
        ``name + ":log_share"``; a missing key weighs 0.
    bias : float
        ``b``.
    validation : dict of str to float or None
        After :meth:`fit`: mean validation NDCG@10 of the rank-only (``ndcg_rank``) and joint
        (``ndcg_joint``, NaN without ``log_shares``) fusions, the standard error of their
        paired difference (``se``) and the step towards the joint weights that was kept
        (``joint``: 1, 0.75, 0.5, 0.25, or 0 for the rank-only fusion).
    """

    def __init__(
        self,
        components: dict[str, Scorer],
        n_negatives: int = 50,
        resolution: int = 20,
        seed: int = 0,
        log_shares: bool = True,
    ) -> None:
        if not components:
            raise ValueError("Fusion needs at least one component")
        bad = [name for name in components if name.endswith(SHARE)]
        if bad:
            raise ValueError(f"component names may not end in {SHARE!r}: {bad}")
        self.components = dict(components)
        self.n_negatives = int(n_negatives)
        self.resolution = int(resolution)
        self.seed = int(seed)
        self.log_shares = bool(log_shares)
        self.weights: dict[str, float] | None = None
        self.bias = 0.0
        self.validation: dict[str, float] | None = None

    def _scores(self, name: str, cases: Cases, shape: tuple[int, int]) -> np.ndarray:
        """(n, I) scores of component ``name``, checked against the (n, I) ``shape``."""
        s = np.asarray(self.components[name].score(cases))
        if s.shape != shape:
            raise ValueError(
                f"component {name!r} returned scores of shape {s.shape}, expected {shape}"
            )
        return s

    def fit(self, valid: Cases) -> Fusion:
        """Choose the mixture, calibrate it, then try the joint fusion, on validation cases.

        Targets (first column) are the positives; see the module docstring for the steps.
        """
        n = valid.users.shape[0]
        if n == 0:
            raise ValueError("Fusion.fit needs at least one validation case")
        allowed = valid.allowed()
        scores = [self._scores(name, valid, allowed.shape) for name in self.components]
        z = np.stack([log_rank(s, allowed) for s in scores])
        n_items = allowed.shape[1]
        target = valid.targets[:, 0]
        # Only targets that may be recommended are positives: a target among the case's
        # excluded items (a repeat of the history) has the worst rank by construction.
        known = (target >= 0) & allowed[np.arange(n), np.maximum(target, 0)]
        if not known.any():
            raise ValueError("Fusion.fit: every validation target is among its case's exclusions")
        rows = np.nonzero(known)[0]
        grid = simplex_grid(z.shape[0], self.resolution)
        z_known, truth = z[:, rows], (allowed[rows], target[rows])
        quality = _grid_ndcg(grid, z_known, *truth)
        mix = grid[int(np.argmax(quality))]
        # Negatives come from every case: one whose held-out item is excluded says that no
        # recommendable item was it. They stand for all the case's other items.
        rng = np.random.default_rng(self.seed)
        neg_rows = np.repeat(np.nonzero(target >= 0)[0], self.n_negatives)
        neg_cols = rng.integers(0, n_items, size=neg_rows.size)
        miss = (neg_cols[:, None] != valid.targets[neg_rows]).all(axis=1)
        miss &= allowed[neg_rows, neg_cols]
        at_rows = np.concatenate([rows, neg_rows[miss]])
        at_cols = np.concatenate([target[rows], neg_cols[miss]])
        y = np.concatenate([np.ones(rows.size), np.zeros(at_rows.size - rows.size)])
        w = np.where(y == 1, 1.0, n_items / self.n_negatives)
        w /= w.mean()
        z_at = z[:, at_rows, at_cols].T
        b, a = logistic(z_at @ mix[:, None], y, w, np.array([np.log(1.0 / n_items), 1.0]))
        rank_only = np.stack([a * mix, np.zeros_like(mix)], axis=1)  # (M, 2)
        self.weights, self.bias = self._as_dict(rank_only), float(b)
        ndcg_rank = _ndcg_cases(_logit(list(a * mix), list(z_known), 0.0), *truth)
        self.validation = {
            "ndcg_rank": float(ndcg_rank.mean()),
            "ndcg_joint": np.nan,
            "se": np.nan,
            "joint": 0.0,
        }
        if not self.log_shares:
            return self
        share = np.stack([log_share(s, allowed) for s in scores])
        x = np.concatenate([z_at, share[:, at_rows, at_cols].T], axis=1)
        theta = logistic(x, y, w, np.concatenate([[b], rank_only.T.ravel()]))
        joint = theta[1:].reshape(2, -1).T  # (M, 2)
        # Component by component, log-rank then log-share, as score() sums them.
        feats = [f for pair in zip(z_known, share[:, rows]) for f in pair]
        for step in _STEPS:
            mixed = (1.0 - step) * rank_only + step * joint  # (M, 2)
            ndcg_step = _ndcg_cases(_logit(list(mixed.ravel()), feats, 0.0), *truth)
            diff = ndcg_step - ndcg_rank
            se = float(diff.std() / np.sqrt(diff.size))
            if step == 1.0:
                self.validation.update(ndcg_joint=float(ndcg_step.mean()), se=se)
            if diff.mean() >= -_SE_TOLERANCE * se:
                break
        else:
            return self
        if step == 1.0:
            self.weights, self.bias = self._as_dict(joint), float(theta[0])
        else:  # bias and scale of the combined feature, as in step 1
            combined = x @ mixed.T.ravel()
            b, a = logistic(combined[:, None], y, w, np.array([theta[0], 1.0]))
            self.weights, self.bias = self._as_dict(a * mixed), float(b)
        self.validation.update(joint=step)
        return self

    def _as_dict(self, weights: np.ndarray) -> dict[str, float]:
        """``weights`` (M, 2) float as the state dict (log-share keys only where non-zero)."""
        out = {name: float(w) for name, w in zip(self.components, weights[:, 0])}
        out.update(
            {name + SHARE: float(v) for name, v in zip(self.components, weights[:, 1]) if v}
        )
        return out

    def _used(self) -> tuple[list[str], np.ndarray]:
        """The fitted components with a non-zero weight (a zero weight adds exactly 0 to a
        logit) and their (M', 2) float64 log-rank and log-share weights."""
        if self.weights is None:
            raise ValueError("Fusion is not fitted: call fit() first")
        unknown = [key for key in self.weights if key.removesuffix(SHARE) not in self.components]
        if unknown:
            raise ValueError(f"Fusion weights name no component: {unknown}")
        table = np.array(
            [
                [self.weights.get(name, 0.0), self.weights.get(name + SHARE, 0.0)]
                for name in self.components
            ],
            dtype=np.float64,
        ).reshape(-1, 2)
        on = (table != 0).any(axis=1)
        return [name for name, used in zip(self.components, on) if used], table[on]

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32 calibrated probabilities."""
        used, weights = self._used()
        allowed = cases.allowed()
        if not used:
            return np.full(allowed.shape, expit(self.bias), dtype=np.float32)
        scores = [self._scores(name, cases, allowed.shape) for name in used]
        return _fuse_rows(scores, allowed, weights, self.bias)

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
        used, weights = self._used()
        allowed = cases.allowed()
        n, n_items = allowed.shape
        scores = [self._scores(name, cases, allowed.shape) for name in used]
        depth = max(4 * k, _DEPTH) if depth is None else int(depth)
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        items = np.full((n, k), -1, dtype=np.int64)
        probs = np.full((n, k), np.nan, dtype=np.float32)
        # Rows go by cache-sized blocks: keys are made per block, never for the whole batch.
        step = max(1, _BLOCK // max(n_items, 1))
        todo = np.arange(n) if used and weights.min() >= 0 else np.zeros(0, dtype=np.int64)
        rest = [np.setdiff1d(np.arange(n), todo)]
        while todo.size and 2 * depth <= n_items:

            def certify(rows: np.ndarray, depth: int = depth) -> np.ndarray:
                # A run of consecutive rows (the first round) is read as a view, not gathered.
                at = slice(rows[0], rows[-1] + 1) if rows[-1] - rows[0] < rows.size else rows
                keys = [_keys(s[at], allowed[at]) for s in scores]
                lse = [
                    _row_lse(s[at], allowed[at]) if v else None
                    for s, v in zip(scores, weights[:, 1])
                ]
                top, p, ok = _certified_top(keys, lse, allowed[at], weights, self.bias, k, depth)
                for key in keys:  # NaN scores: the full path decides what they mean
                    ok &= ~np.isnan(key).any(axis=1)
                items[rows[ok]], probs[rows[ok]] = top[ok], p[ok]
                return ok

            done = np.concatenate(map_blocks(certify, todo, step))
            todo, depth = todo[~done], 4 * depth

        def rank_all(rows: np.ndarray) -> None:
            if used:
                fused = _fuse_rows([s[rows] for s in scores], allowed[rows], weights, self.bias)
            else:
                fused = np.full((rows.size, n_items), expit(self.bias), dtype=np.float32)
            top = top_k(fused, k, exclude=~allowed[rows])
            items[rows] = top
            probs[rows] = np.where(top >= 0, np.take_along_axis(fused, top, axis=1), np.nan)

        map_blocks(rank_all, np.sort(np.concatenate([*rest, todo])), step)
        return items, probs

    def prefixes(self, cases: Cases, k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Ever longer exact prefixes of one case's fused ranking, for a caller that stops at
        the first prefix that settles its question (the bundle search of
        :meth:`bundlerec.recommender.Recommender.compose`).

        Yields the case's top-``k`` recommendable items and their :meth:`score` probabilities
        as :meth:`top_k` gives them (without padding), then its top-``2 k``, top-``4 k``, ...:
        every recommendable item not yet yielded has a lower probability than every yielded
        one, or an equal one and a higher item code. The components are scored and their rows
        sorted once; each list is certified by :func:`_certified_top` (from each component's
        ``2 k`` best items, four times more while those do not prove it). A list shorter than
        asked for holds every recommendable item and is the last. Once a list would need more
        than half the catalogue (and at once where a weight is negative or a score NaN), the
        last yield is every item of the catalogue, excluded ones too, in code order, with
        :meth:`score`'s probabilities.

        Parameters
        ----------
        cases : Cases
            One case over ``I`` items.
        k : int
            Length of the first prefix.

        Yields
        ------
        items : ndarray, shape (k',), int64
        probs : ndarray, shape (k',), float32
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        used, weights = self._used()
        allowed = cases.allowed()
        if allowed.shape[0] != 1:
            raise ValueError(f"prefixes takes one case, got {allowed.shape[0]}")
        n_items = allowed.shape[1]
        scores = [self._scores(name, cases, allowed.shape) for name in used]
        keys = [_keys(s, allowed) for s in scores]
        if used and weights.min() >= 0 and not any(np.isnan(key).any() for key in keys):
            lse = [_row_lse(s, allowed) if v else None for s, v in zip(scores, weights[:, 1])]
            ordered = [corenn.sort_rows(key) for key in keys]
            depth = 2 * k
            while 2 * depth <= n_items:
                top, p, ok = _certified_top(
                    keys, lse, allowed, weights, self.bias, k, depth, ordered
                )
                if not ok[0]:
                    depth *= 4
                    continue
                found = top[0] >= 0
                yield top[0][found], p[0][found]
                if not found.all():
                    return
                k, depth = 2 * k, max(depth, 4 * k)
        if used:
            fused = _fuse_rows(scores, allowed, weights, self.bias)[0]
        else:
            fused = np.full(n_items, expit(self.bias), dtype=np.float32)
        yield np.arange(n_items), fused


def _fuse_rows(
    scores: list[np.ndarray], allowed: np.ndarray, weights: np.ndarray, bias: float
) -> np.ndarray:
    """(b, I) float32 fused probabilities of a block of rows.

    ``scores``: per component (b, I) real scores; ``allowed``: (b, I) bool; ``weights``:
    (M, 2) float log-rank and log-share weights. Features are summed in the order component
    by component, log-rank before log-share, zero weights skipped, as in
    :func:`_certified_top`.
    """
    feats, used = [], []
    for s, (w_rank, w_share) in zip(scores, weights):
        if w_rank != 0:
            feats.append(log_rank(s, allowed))
            used.append(w_rank)
        if w_share != 0:
            feats.append(log_share(s, allowed))
            used.append(w_share)
    return _fuse(used, feats, bias)
