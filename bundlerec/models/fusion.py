"""Fusion of several scorers into one calibrated probability (the seed's "model ensemble").

Each component's scores are standardised per case over the recommendable items
(``z = (s - mean) / std``), and a logistic regression on the standardised scores,

    P(item is the held-out item | case) = sigmoid(b + sum_m w_m z_m),

is fitted on a validation split: the held-out items are positives, items drawn uniformly from the
rest of the catalogue are negatives (weighted so that the base rate is that of the full catalogue,
which keeps the probabilities calibrated). The fitted weights are readable (``weights``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

if TYPE_CHECKING:
    from bundlerec.cases import Cases
    from bundlerec.evaluation import Scorer

__all__ = ["Fusion", "standardize"]


def standardize(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per-row z-scores of ``scores`` (n, I) over the ``allowed`` (n, I) bool entries.

    Rows with zero spread get zeros; excluded entries are standardised with the same statistics.
    """
    s = np.where(allowed, scores, 0.0).astype(np.float64)
    count = np.maximum(allowed.sum(axis=1, keepdims=True), 1)
    mean = s.sum(axis=1, keepdims=True) / count
    var = (np.where(allowed, scores - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count
    std = np.sqrt(var)
    return np.where(std > 0, (scores - mean) / np.where(std > 0, std, 1.0), 0.0)


class Fusion:
    """Calibrated logistic combination of component scorers.

    Parameters
    ----------
    components : dict of str to scorer
        Fitted models with ``score(cases) -> (n, I)``; their order fixes the weight order.
    n_negatives : int
        Negatives sampled per validation case.
    l2 : float
        Ridge penalty on the weights (not the bias).
    seed : int
    """

    def __init__(
        self,
        components: dict[str, Scorer],
        n_negatives: int = 50,
        l2: float = 1e-3,
        seed: int = 0,
    ) -> None:
        if not components:
            raise ValueError("Fusion needs at least one component")
        self.components = dict(components)
        self.n_negatives = int(n_negatives)
        self.l2 = float(l2)
        self.seed = int(seed)
        self.weights: dict[str, float] | None = None
        self.bias = 0.0

    def _features(self, cases: Cases) -> np.ndarray:
        """(M, n, I) standardised component scores."""
        n = cases.users.shape[0]
        allowed = np.ones((n, 0), dtype=bool)
        feats = []
        for model in self.components.values():
            s = np.asarray(model.score(cases), dtype=np.float64)
            if allowed.shape[1] != s.shape[1]:
                allowed = ~cases.exclude.toarray().astype(bool)
            feats.append(standardize(s, allowed))
        return np.stack(feats)

    def fit(self, valid: Cases) -> Fusion:
        """Fit the weights on validation cases (their targets are the positives)."""
        n = valid.users.shape[0]
        if n == 0:
            raise ValueError("Fusion.fit needs at least one validation case")
        z = self._features(valid)
        n_items = z.shape[2]
        rng = np.random.default_rng(self.seed)
        rows, cols = np.nonzero(valid.targets >= 0)
        pos = (rows, valid.targets[rows, cols])
        neg_rows = np.repeat(np.arange(n), self.n_negatives)
        neg = (neg_rows, rng.integers(0, n_items, size=neg_rows.size))
        x = np.concatenate([z[:, pos[0], pos[1]], z[:, neg[0], neg[1]]], axis=1).T
        y = np.concatenate([np.ones(pos[0].size), np.zeros(neg_rows.size)])
        # Negatives stand for the whole catalogue: weight them up to its size.
        w = np.concatenate(
            [np.ones(pos[0].size), np.full(neg_rows.size, n_items / self.n_negatives)]
        )
        w /= w.mean()

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            logit = x @ theta[1:] + theta[0]
            nll = -(w * (y * log_expit(logit) + (1 - y) * log_expit(-logit))).mean()
            r = (expit(logit) - y) * w / y.size
            grad = np.concatenate([[r.sum()], x.T @ r + 2 * self.l2 * theta[1:]])
            return nll + self.l2 * float(theta[1:] @ theta[1:]), grad

        theta0 = np.concatenate([[np.log(1.0 / n_items)], np.ones(x.shape[1])])
        res = minimize(loss, theta0, jac=True, method="L-BFGS-B")
        self.bias = float(res.x[0])
        self.weights = {name: float(v) for name, v in zip(self.components, res.x[1:])}
        return self

    def score(self, cases: Cases) -> np.ndarray:
        """(n, I) float32 calibrated probabilities."""
        if self.weights is None:
            raise ValueError("Fusion is not fitted: call fit() first")
        z = self._features(cases)
        logit = np.tensordot(np.array(list(self.weights.values())), z, axes=1) + self.bias
        return expit(logit).astype(np.float32)
