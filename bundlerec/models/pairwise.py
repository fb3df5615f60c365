"""The pairwise co-purchase network: an auto-logistic (Ising) Markov network over items.

One binary indicator ``x_j`` per item among the ``n_top`` most frequent in baskets, with the
energy (``p(x) = exp(-E(x)) / Z``)

.. math:: E(x) = -\\sum_j b_j x_j - \\sum_{(j,k) \\in \\mathcal{E}} w_{jk} x_j x_k,

one bias per item and one weight per pair bought together in at least ``min_count`` training
baskets (the edge set is sparse). Unlike a Chow-Liu tree, every such pair keeps its own term.

Learning maximises the pseudo-likelihood (Besag): each conditional
``P(x_j = 1 | x_-j) = sigmoid(eta_j)``, ``eta_j = b_j + sum_k W_jk x_k`` with ``W`` symmetric,

.. math:: L(b, w) = \\frac{1}{N} \\sum_n \\sum_j
   \\left[\\log(1 + e^{\\eta_{nj}}) - x_{nj} \\eta_{nj}\\right] + \\frac{\\lambda}{2} \\|w\\|^2,

a convex, smooth function of ``(b, w)`` whose gradient is, with ``R = sigmoid(eta) - X``,
``dL/db = 1^T R / N`` and ``dL/dw_jk = ((X^T R)_jk + (X^T R)_kj) / N + lambda w_jk``. It is
minimised by scipy's L-BFGS-B on the full batch: the objective is deterministic and convex with a
few thousand parameters over baskets that fit in memory, so a quasi-Newton method converges in a
few hundred iterations with no step size or epoch count to tune (corenn's Adam would add both).
Biases are not penalised.

Inference ("the basket is known except the bundle"): evidence items (anchor, cart) are observed
1 and every network item outside a candidate set ``C`` is observed 0; the items of ``C`` are
free. Then ``x_C`` is an Ising model with fields ``h_j = b_j + sum_{k in evidence} W_jk`` and
couplings ``W_CC``, and ``log P(x_S = 1 | evidence)`` for ``S`` in ``C`` is exact: by enumerating
the ``2^|C|`` states (with the superset sums of all subsets at once) or by variable elimination on
a :class:`pgm.MarkovNetwork` of ``C``. Summing the items outside ``C`` out instead would need
inference over all ``n_top`` items (not exact in general); the pseudo-likelihood was fitted on the
same convention (each item given the rest of its basket observed).

Letters: N baskets, I items of the vocabulary, T network items (``n_top``), E edges, K candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from scipy.special import expit, log_expit, logsumexp

import pgm
from bundlerec.models.copurchase import basket_matrix, context_presence

if TYPE_CHECKING:
    from bundlerec.cases import Cases
    from bundlerec.prep import Interactions

__all__ = ["PairwiseNetwork", "pseudo_likelihood"]

MAX_ENUMERATION = 16
"""Largest candidate set that ``method="auto"`` enumerates (2^16 states); above, pgm."""


def pseudo_likelihood(
    bias: np.ndarray,
    weights: np.ndarray,
    edges: np.ndarray,
    baskets: sp.csr_matrix,
    l2: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean negative log pseudo-likelihood of baskets, plus the L2 penalty, and its gradient.

    Parameters
    ----------
    bias : ndarray, shape (T,), float64
        ``b``.
    weights : ndarray, shape (E,), float64
        ``w``, one per edge.
    edges : ndarray, shape (E, 2), int64
        Item positions ``(j, k)``, ``j < k``, in ``0 .. T-1``.
    baskets : scipy.sparse.csr_matrix, shape (N, T)
        Binary indicators ``X``.
    l2 : float
        ``lambda``, the penalty on ``w``.

    Returns
    -------
    loss : float
        ``L(b, w)`` (see the module docstring).
    grad_bias : ndarray, shape (T,), float64
    grad_weights : ndarray, shape (E,), float64
    """
    n, t = baskets.shape
    coupling = _symmetric(weights, edges, t)
    eta = np.asarray(baskets @ coupling)
    eta += bias[None, :]
    # X is binary with one stored entry per (basket, item): its terms are read at the entries,
    # never from a dense copy of X (the fit's time is in these (N, T) passes).
    rows, cols = _entries(baskets)
    loss = float(np.logaddexp(0.0, eta).sum() - eta[rows, cols].sum()) / n
    residual = expit(eta, out=eta)
    residual[rows, cols] -= 1.0
    cross = np.asarray(baskets.T @ residual)
    grad_bias = residual.sum(axis=0) / n
    grad_weights = (cross[edges[:, 0], edges[:, 1]] + cross[edges[:, 1], edges[:, 0]]) / n
    loss += 0.5 * l2 * float(weights @ weights)
    return loss, grad_bias, grad_weights + l2 * weights


def _entries(baskets: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every stored entry of a CSR matrix, (nnz,) int64 each."""
    rows = np.repeat(np.arange(baskets.shape[0]), np.diff(baskets.indptr))
    return rows, baskets.indices.astype(np.int64)


def _symmetric(weights: np.ndarray, edges: np.ndarray, t: int) -> np.ndarray:
    """(T, T) dense symmetric ``W`` with zero diagonal from the edge weights."""
    coupling = np.zeros((t, t))
    coupling[edges[:, 0], edges[:, 1]] = weights
    coupling[edges[:, 1], edges[:, 0]] = weights
    return coupling


@lru_cache(maxsize=8)
def _bits(k: int) -> np.ndarray:
    """(2^K, K) int64 read-only table: entry ``(m, i)`` is bit ``i`` of ``m``."""
    table = (np.arange(1 << k)[:, None] >> np.arange(k)[None, :]) & 1
    table.flags.writeable = False
    return table


def _superset_log_sums(log_p: np.ndarray, k: int) -> np.ndarray:
    """``g[m] = log sum_{s superset of m} p[s]`` over the 2^K bit masks (K passes of logaddexp).

    State ``s`` has candidate ``i`` on where bit ``i`` of ``s`` is set.
    """
    g = log_p.copy()
    for bit in range(k):
        view = g.reshape(-1, 2, 1 << bit)
        view[:, 0, :] = np.logaddexp(view[:, 0, :], view[:, 1, :])
    return g


class PairwiseNetwork:
    """Auto-logistic Markov network of co-purchases; exact bundle coherence given an anchor.

    Parameters
    ----------
    n_top : int
        Number of network items (the most frequent by basket count; ties to the lower code).
    min_count : int
        A pair gets a weight when at least this many training baskets hold both items.
    l2 : float
        L2 penalty ``lambda`` on the pair weights (per basket, see the module docstring).
    n_candidates : int
        Default size K of the candidate set: the non-evidence network items with the highest
        :meth:`conditional`.
    max_iter : int
        L-BFGS-B iteration limit.
    """

    def __init__(
        self,
        n_top: int = 300,
        min_count: int = 2,
        l2: float = 1e-4,
        n_candidates: int = 14,
        max_iter: int = 500,
    ) -> None:
        if n_top < 2 or min_count < 1 or l2 < 0 or n_candidates < 1:
            raise ValueError(
                "need n_top >= 2, min_count >= 1, l2 >= 0, n_candidates >= 1; got "
                f"{n_top}, {min_count}, {l2}, {n_candidates}"
            )
        self.n_top = int(n_top)
        self.min_count = int(min_count)
        self.l2 = float(l2)
        self.n_candidates = int(n_candidates)
        self.max_iter = int(max_iter)
        self.items: np.ndarray | None = None

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, train: Interactions) -> PairwiseNetwork:
        """Choose the network items and edges from ``train``'s baskets, then learn ``b`` and ``w``.

        Parameters
        ----------
        train : Interactions
            Every event counts as the item being in its basket (as in
            :func:`bundlerec.models.copurchase.basket_matrix`).
        """
        full = basket_matrix(train)
        full = full[np.asarray(full.sum(axis=1)).ravel() > 0]  # basket codes left as gaps
        counts = np.asarray(full.sum(axis=0)).ravel()
        order = np.lexsort((np.arange(counts.size), -counts))
        items = np.sort(order[: min(self.n_top, int((counts > 0).sum()))])
        if items.size < 2:
            raise ValueError("the pairwise network needs at least 2 items that were bought")
        baskets = sp.csr_matrix(full[:, items])
        together = sp.triu(baskets.T @ baskets, k=1).tocoo()
        keep = together.data >= self.min_count
        edges = np.stack([together.row[keep], together.col[keep]], axis=1).astype(np.int64)
        edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))]
        n = baskets.shape[0]
        share = (counts[items] + 0.5) / (n + 1.0)
        start = np.concatenate([np.log(share) - np.log1p(-share), np.zeros(len(edges))])
        t = items.size

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            loss, gb, gw = pseudo_likelihood(theta[:t], theta[t:], edges, baskets, self.l2)
            return loss, np.concatenate([gb, gw])

        result = scipy.optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter},
        )
        self.items = items.astype(np.int64)
        self.bias = result.x[:t].copy()
        self.edges = edges
        self.weights = result.x[t:].copy()
        self.n_items = int(train.n_items)
        self.prior = np.log((counts + 1.0) / (n + 2.0))
        self.loss = float(result.fun)
        self._index()
        return self

    def _index(self) -> None:
        """Derived lookups: item code -> network position, and the dense coupling matrix."""
        self.position = np.full(self.n_items, -1, dtype=np.int64)
        self.position[self.items] = np.arange(self.items.size)
        self.coupling = _symmetric(self.weights, self.edges, self.items.size)

    def _check_fitted(self) -> None:
        if self.items is None:
            raise ValueError("PairwiseNetwork is not fitted: call fit() first")

    # -- inference --------------------------------------------------------------------------
    def _fields(self, evidence_items: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Network positions of the evidence (unique, in the network) and the fields ``h``."""
        self._check_fitted()
        ev = np.asarray(list(evidence_items), dtype=np.int64).reshape(-1)
        if ev.size and (ev.min() < 0 or ev.max() >= self.n_items):
            raise KeyError(f"evidence items outside [0, {self.n_items}): {ev.tolist()}")
        pos = np.unique(self.position[ev])
        pos = pos[pos >= 0]
        return pos, self.bias + self.coupling[:, pos].sum(axis=1)

    def conditional(self, evidence_items: Sequence[int]) -> np.ndarray:
        """``P(x_j = 1 | evidence items = 1, other network items = 0)`` for every item.

        Parameters
        ----------
        evidence_items : sequence of int
            Item codes observed in the basket (anchor and cart); codes outside the network are
            ignored.

        Returns
        -------
        ndarray, shape (I,), float64
            ``sigmoid(h_j)`` for network items, 1 for the evidence items, the smoothed basket
            frequency for items outside the network.
        """
        pos, fields = self._fields(evidence_items)
        out = np.exp(self.prior)
        out[self.items] = expit(fields)
        out[self.items[pos]] = 1.0
        return out

    def score(self, cases: Cases) -> np.ndarray:
        """Basket completion: ``log`` :meth:`conditional` of every case's context, all at once.

        For case ``n`` with network-item indicators ``c_n`` (its context items), network item
        ``j`` scores ``log sigmoid(b_j + (c_n W)_j)`` (``log 1 = 0`` for the context items
        themselves): one (n, T) x (T, T) product for all cases. Items outside the network score
        their log smoothed basket frequency minus 1000, below every network item as in
        :meth:`CoPurchaseNetwork.score <bundlerec.models.copurchase.CoPurchaseNetwork.score>`;
        items added after the fit (codes ``>= n_items``) score the lowest of those.

        Parameters
        ----------
        cases : Cases
            ``n`` cases over ``I >= n_items`` items.

        Returns
        -------
        ndarray, shape (n, I), float32
        """
        self._check_fitted()
        if cases.n_items < self.n_items:
            raise ValueError(
                f"cases over {cases.n_items} items; the network was fitted on {self.n_items}"
            )
        presence = context_presence(cases, self.items, self.n_items)
        fields = self.bias + presence.astype(np.float64) @ self.coupling  # (n, T)
        log_p = np.where(presence == 1, 0.0, log_expit(fields))
        outside = np.full(cases.n_items, self.prior.min() - 1e3)
        outside[: self.n_items] = self.prior - 1e3
        out = np.empty((presence.shape[0], outside.size), dtype=np.float32)
        out[:] = outside[None, :]
        out[:, self.items] = log_p
        return out

    def candidates(self, evidence_items: Sequence[int], size: int | None = None) -> np.ndarray:
        """Item codes of the ``size`` (default ``n_candidates``) non-evidence network items with
        the highest :meth:`conditional` (ties to the lower code), shape (K,), int64."""
        pos, fields = self._fields(evidence_items)
        size = self.n_candidates if size is None else int(size)
        fields = fields.copy()
        fields[pos] = -np.inf
        free = self.items.size - pos.size
        order = np.lexsort((np.arange(fields.size), -fields))[: min(size, free)]
        return self.items[np.sort(order)]

    def _restricted(
        self, evidence_items: Sequence[int], candidates: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate positions (K,), their fields (K,) and couplings (K, K) given the evidence."""
        pos, fields = self._fields(evidence_items)
        cand = self.position[np.asarray(list(candidates), dtype=np.int64)]
        if (cand < 0).any() or np.isin(cand, pos).any() or np.unique(cand).size != cand.size:
            raise ValueError("candidates must be distinct network items outside the evidence")
        return cand, fields[cand], self.coupling[np.ix_(cand, cand)]

    def subset_log_probs(
        self, evidence_items: Sequence[int], candidates: Sequence[int]
    ) -> np.ndarray:
        """``log P(x_S = 1 | evidence)`` for every subset ``S`` of the candidates, exactly.

        The ``2^K`` states of the candidates are enumerated (the other network items observed
        0), then summed over supersets. Entry ``m`` is the subset whose candidate ``i`` (in the
        given order) is in ``S`` where bit ``i`` of ``m`` is set.

        Returns
        -------
        ndarray, shape (2^K,), float64
        """
        _, h, w = self._restricted(evidence_items, candidates)
        k = h.size
        if k > 24:
            raise ValueError(f"enumeration of {k} candidates (2^{k} states) is too large")
        states = _bits(k).astype(np.float64)
        energy = states @ h + 0.5 * np.einsum("si,si->s", states @ w, states)
        return _superset_log_sums(energy - logsumexp(energy), k)

    def dependence(self, evidence_items: Sequence[int], candidates: Sequence[int]) -> np.ndarray:
        """``log P(x_S = 1 | evidence) - sum_{j in S} log P(x_j = 1 | evidence)`` for every
        subset ``S`` of the candidates: how much more (> 0) or less likely the network finds the
        items of ``S`` bought together than its own marginals taken as independent.

        Both terms come from one :meth:`subset_log_probs` table (the same candidate set), so the
        empty set and every single item score 0 and the marginals cancel: the table isolates the
        pair weights' effect, and a recommender can multiply its own per-item probabilities by
        ``exp(dependence)`` to get a joint estimate.

        Returns
        -------
        ndarray, shape (2^K,), float64
            Indexed by bit mask like :meth:`subset_log_probs`.
        """
        table = self.subset_log_probs(evidence_items, candidates)
        k = int(table.size).bit_length() - 1
        return table - _bits(k) @ table[1 << np.arange(k)]

    def markov_network(
        self, evidence_items: Sequence[int], candidates: Sequence[int]
    ) -> pgm.MarkovNetwork:
        """The candidates' conditional model as a :class:`pgm.MarkovNetwork` (variables
        ``"i<code>"``, states 0/1): unary factors ``exp(h_j x_j)``, pairwise ``exp(w x_j x_k)``."""
        _, h, w = self._restricted(evidence_items, candidates)
        names = [f"i{int(c)}" for c in candidates]
        return pgm.MarkovNetwork.from_ising(w, h, names)

    def coherence(
        self,
        bundles: Sequence[Sequence[int]],
        evidence_items: Sequence[int],
        candidates: Sequence[int] | None = None,
        method: str = "auto",
    ) -> np.ndarray:
        """``log P(every item of a bundle in the basket | evidence)``, many bundles at once.

        The candidate set ``C`` is ``candidates`` (default :meth:`candidates`) plus every network
        item of the bundles; the items of ``C`` outside a bundle are summed out exactly, the
        other network items are observed 0, the evidence items 1. Bundle items that are evidence
        contribute 0 (already bought); items outside the network contribute their log smoothed
        basket frequency (taken as independent).

        Parameters
        ----------
        bundles : sequence of sequences of int
            Item codes.
        evidence_items : sequence of int
            Anchor and cart item codes.
        candidates : sequence of int, optional
            Network items to sum over besides the bundles' own.
        method : {"auto", "enumerate", "pgm"}
            Enumeration of the ``2^K`` states (:meth:`subset_log_probs`), or
            :meth:`pgm.VariableElimination.batch_probability_of_evidence` on
            :meth:`markov_network`; ``"auto"`` enumerates when ``K <= 16``.

        Returns
        -------
        ndarray, shape (len(bundles),), float64
        """
        if method not in ("auto", "enumerate", "pgm"):
            raise ValueError(f"method must be 'auto', 'enumerate' or 'pgm', got {method!r}")
        pos, _ = self._fields(evidence_items)
        evidence = set(self.items[pos].tolist())
        inside = [[int(j) for j in b if self.position[int(j)] >= 0] for b in bundles]
        out = np.array(
            [sum(self.prior[int(j)] for j in b if self.position[int(j)] < 0) for b in bundles],
            dtype=np.float64,
        )
        base = self.candidates(evidence_items) if candidates is None else candidates
        pool = sorted(({int(j) for j in base} | {j for b in inside for j in b}) - evidence)
        if not pool:
            return out
        col = {j: i for i, j in enumerate(pool)}
        masks = np.array(
            [sum(1 << col[j] for j in set(b) - evidence) for b in inside], dtype=np.int64
        )
        if method == "enumerate" or (method == "auto" and len(pool) <= MAX_ENUMERATION):
            return out + self.subset_log_probs(evidence_items, pool)[masks]
        model = self.markov_network(evidence_items, pool)
        engine = pgm.VariableElimination(model)
        columns = {
            f"i{j}": np.where((masks >> col[j]) & 1 == 1, 1, -1).astype(np.int64) for j in pool
        }
        joint = engine.batch_probability_of_evidence(columns)
        if joint.size != masks.size:  # no bundle constrains any candidate
            joint = np.full(masks.size, float(joint[0]))
        log_z = np.log(engine.probability_of_evidence({}))
        return out + np.log(np.maximum(joint, 1e-300)) - log_z

    def best_bundles(
        self,
        evidence_items: Sequence[int],
        size: int,
        k: int = 1,
        candidates: Sequence[int] | None = None,
    ) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """The ``k`` subsets of ``size`` candidates with the highest ``log P(x_S = 1 | evidence)``.

        Parameters
        ----------
        evidence_items : sequence of int
            Anchor and cart item codes (not part of the returned bundles).
        size : int
            Items per bundle, evidence excluded.
        k : int
            Number of bundles.
        candidates : sequence of int, optional
            Default :meth:`candidates`.

        Returns
        -------
        bundles : list of tuple of int
            Item codes in increasing order, best first (ties to the lower subset index).
        log_probs : ndarray, shape (len(bundles),), float64
        """
        pool = np.sort(
            self.candidates(evidence_items) if candidates is None else np.asarray(candidates)
        )
        if size < 1 or size > pool.size:
            return [], np.zeros(0)
        table = self.subset_log_probs(evidence_items, pool)
        masks = np.arange(table.size)
        bits = (masks[:, None] >> np.arange(pool.size)[None, :]) & 1
        masks = masks[bits.sum(axis=1) == size]
        best = masks[np.lexsort((masks, -table[masks]))[:k]]
        bundles = [tuple(int(c) for c in pool[(m >> np.arange(pool.size)) & 1 == 1]) for m in best]
        return bundles, table[best]

    # -- saving -----------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Plain arrays (``numpy.savez`` without pickle) that :meth:`from_state` rebuilds from."""
        self._check_fitted()
        return {
            "config": np.array(
                [self.n_top, self.min_count, self.n_candidates, self.max_iter, self.n_items],
                dtype=np.int64,
            ),
            "l2": np.array(self.l2),
            "items": self.items,
            "bias": self.bias,
            "edges": self.edges,
            "weights": self.weights,
            "prior": self.prior,
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> PairwiseNetwork:
        """Rebuild a fitted network from :meth:`get_state`'s arrays (shapes are checked)."""
        n_top, min_count, n_candidates, max_iter, n_items = (int(v) for v in state["config"])
        self = cls(n_top, min_count, float(state["l2"]), n_candidates, max_iter)
        self.items = np.asarray(state["items"], dtype=np.int64)
        self.bias = np.asarray(state["bias"], dtype=np.float64)
        self.edges = np.asarray(state["edges"], dtype=np.int64).reshape(-1, 2)
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        self.prior = np.asarray(state["prior"], dtype=np.float64)
        self.n_items = n_items
        t = self.items.size
        if (
            self.bias.shape != (t,)
            or self.weights.shape != (len(self.edges),)
            or self.prior.shape != (n_items,)
            or (self.edges.size and (self.edges.min() < 0 or self.edges.max() >= t))
        ):
            raise ValueError("saved pairwise network arrays do not match each other")
        self._index()
        return self
