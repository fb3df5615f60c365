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

from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

if TYPE_CHECKING:
    from bundlerec.cases import Cases
    from bundlerec.evaluation import Scorer

__all__ = ["Fusion", "log_rank", "simplex_grid"]

_TOP = 10
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
    s = np.asarray(scores)
    s = s if s.dtype in (np.float32, np.float64) else s.astype(np.float64)
    key = np.where(allowed, -s, np.inf)
    n, n_items = key.shape
    out = np.empty((n, n_items), dtype=np.float64)
    log_half = np.log(np.arange(2, 2 * n_items + 1) / 2.0)  # log(h / 2), h = 2 * mean rank
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

    def _features(
        self, cases: Cases, names: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(M, n, I) log-rank features of the components ``names`` (default: all) and the
        (n, I) bool recommendable items."""
        allowed = cases.exclude.toarray() == 0
        feats = []
        for name in self.components if names is None else names:
            s = np.asarray(self.components[name].score(cases))
            if s.shape != allowed.shape:
                raise ValueError(
                    f"component {name!r} returned scores of shape {s.shape}, "
                    f"expected {allowed.shape}"
                )
            feats.append(log_rank(s, allowed))
        return np.stack(feats), allowed

    def fit(self, valid: Cases) -> Fusion:
        """Choose the mixture and calibrate it on validation cases (targets are positives)."""
        n = valid.users.shape[0]
        if n == 0:
            raise ValueError("Fusion.fit needs at least one validation case")
        z, allowed = self._features(valid)
        n_items = z.shape[2]
        target = valid.targets[:, 0]
        known = target >= 0
        grid = simplex_grid(z.shape[0], self.resolution)
        quality = [
            _ndcg_at_top(np.tensordot(c, z[:, known], axes=1), allowed[known], target[known])
            for c in grid
        ]
        mix = grid[int(np.argmax(quality))]
        fused = np.tensordot(mix, z, axes=1)
        rng = np.random.default_rng(self.seed)
        rows, cols = np.nonzero(valid.targets >= 0)
        neg_rows = np.repeat(np.arange(n), self.n_negatives)
        neg_cols = rng.integers(0, n_items, size=neg_rows.size)
        miss = (neg_cols[:, None] != valid.targets[neg_rows]).all(axis=1)
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

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32 calibrated probabilities."""
        if self.weights is None:
            raise ValueError("Fusion is not fitted: call fit() first")
        # A component of weight 0 adds exactly 0 to every logit: it is not scored at all.
        used = [name for name, w in self.weights.items() if w != 0]
        if not used:
            n = np.shape(cases.users)[0]
            n_items = cases.exclude.shape[1]
            return np.full((n, n_items), expit(self.bias), dtype=np.float32)
        z, _ = self._features(cases, used)
        weights = np.array([self.weights[name] for name in used])
        return expit(np.tensordot(weights, z, axes=1) + self.bias).astype(np.float32)
