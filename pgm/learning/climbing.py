"""Structure learning by greedy hill climbing over add, remove and reverse moves."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pgm.errors import PGMError
from pgm.learning.encoding import Data, encode
from pgm.learning.scores import check_score, family_score
from pgm.models import BayesianNetwork


# -- hill climbing -----------------------------------------------------------------------------
def _reachability(adj: np.ndarray) -> np.ndarray:
    """``reach[a, b]``: a directed path of length >= 1 from ``a`` to ``b`` (transitive closure)."""
    reach = adj.copy()
    while True:
        grown = reach | ((reach.astype(np.float32) @ reach.astype(np.float32)) > 0)
        if np.array_equal(grown, reach):
            return reach
        reach = grown


class _Climber:
    """State of a greedy search: adjacency, local scores and the gain of every single move.

    ``add_gain[u, v]`` = score change of adding ``u -> v`` (family of ``v`` only),
    ``remove_gain[u, v]`` = that of removing it; a reversal is a removal plus an addition.
    Family scores are cached by (child, parent set), so a move rescores two families at most.
    """

    def __init__(self, enc: Data, score: str, ess: float, adj: np.ndarray) -> None:
        self.enc, self.score, self.ess = enc, score, ess
        self.adj = adj
        d = adj.shape[0]
        self.cache: dict[tuple[int, tuple[int, ...]], float] = {}
        self.local = np.zeros(d)
        self.add_gain = np.full((d, d), -np.inf)
        self.remove_gain = np.full((d, d), -np.inf)
        for v in range(d):
            self.refresh(v)

    def family(self, child: int, parents: Sequence[int]) -> float:
        key = (child, tuple(sorted(parents)))
        if key not in self.cache:
            self.cache[key] = family_score(self.enc, child, key[1], self.score, self.ess)
        return self.cache[key]

    def refresh(self, v: int) -> None:
        parents = [int(p) for p in np.flatnonzero(self.adj[:, v])]
        self.local[v] = self.family(v, parents)
        for u in range(self.adj.shape[0]):
            if u == v:
                continue
            if self.adj[u, v]:
                rest = [p for p in parents if p != u]
                self.remove_gain[u, v] = self.family(v, rest) - self.local[v]
                self.add_gain[u, v] = -np.inf
            else:
                self.add_gain[u, v] = self.family(v, [*parents, u]) - self.local[v]
                self.remove_gain[u, v] = -np.inf

    def gains(self, max_indegree: int | None, tabu: deque) -> np.ndarray:
        """``(3, d, d)`` gains of add / remove / reverse ``u -> v``; ``-inf`` where illegal."""
        adj = self.adj
        reach = _reachability(adj)
        room = np.ones(adj.shape[0], dtype=bool)
        if max_indegree is not None:
            room = adj.sum(axis=0) < max_indegree
        add_ok = ~adj & ~reach.T & room[None, :]
        # after removing u -> v, is there still a path u ~> v (through another child of u)?
        other_path = (adj.astype(np.float32) @ reach.astype(np.float32)) > 0
        reverse_ok = adj & ~other_path & room[:, None]
        out = np.stack(
            [
                np.where(add_ok, self.add_gain, -np.inf),
                self.remove_gain.copy(),
                np.where(reverse_ok, self.remove_gain + self.add_gain.T, -np.inf),
            ]
        )
        for kind, u, v in tabu:
            out[kind, u, v] = -np.inf
        return out

    def apply(self, kind: int, u: int, v: int) -> tuple[int, int, int]:
        """Perform a move; return the move that would undo it (for the tabu list)."""
        if kind == 0:
            self.adj[u, v] = True
            self.refresh(v)
            return 1, u, v
        self.adj[u, v] = False
        if kind == 1:
            self.refresh(v)
            return 0, u, v
        self.adj[v, u] = True
        self.refresh(v)
        self.refresh(u)
        return 2, v, u


_MOVES = ("add", "remove", "reverse")


@dataclass(frozen=True)
class ClimbTrace:
    """What :func:`hill_climb` did.

    Attributes
    ----------
    scores : ndarray of float64, shape (n_moves + 1,)
        Total score of the start structure, then after each move; increasing.
    moves : list of (str, hashable, hashable)
        ``("add" | "remove" | "reverse", u, v)``: the move applied to the edge ``u -> v``.
    """

    scores: np.ndarray
    moves: list[tuple[str, Any, Any]]


def hill_climb(
    data: Any,
    score: str = "bic",
    max_indegree: int | None = None,
    start: BayesianNetwork | None = None,
    max_iter: int = 1000,
    tabu_length: int = 100,
    epsilon: float = 1e-4,
    equivalent_sample_size: float = 10.0,
    state_names: Mapping | None = None,
    return_trace: bool = False,
) -> BayesianNetwork | tuple[BayesianNetwork, ClimbTrace]:
    """Greedy structure search over DAGs with a tabu list.

    Each iteration evaluates every legal single-edge move (add, remove or reverse ``u -> v``;
    acyclicity from the transitive closure of the current graph) by its local change of the
    decomposable score and applies the best one, provided it improves the score by more than
    ``epsilon``; the inverses of the last ``tabu_length`` moves are forbidden. The score
    therefore never decreases. Ties go to the first move in the order add, remove, reverse,
    then by column order of ``u`` and ``v``.

    Parameters
    ----------
    data : DataFrame or ndarray
        See the module docstring; every column becomes a node.
    score : {"bic", "bdeu"}, default "bic"
        See :func:`structure_score`.
    max_indegree : int, optional
        Largest number of parents of a node.
    start : BayesianNetwork, optional
        Initial structure (its nodes must be columns of ``data``); default no edges.
    max_iter : int, default 1000
        Largest number of moves.
    tabu_length : int, default 100
    epsilon : float, default 1e-4
        Smallest score gain that counts as an improvement.
    equivalent_sample_size : float, default 10
        ESS of the BDeu score.
    state_names : dict, optional
    return_trace : bool, default False
        Also return a :class:`ClimbTrace` (scores and moves).

    Returns
    -------
    BayesianNetwork or (BayesianNetwork, ClimbTrace)
        Structure only (no CPDs), nodes in column order; with the trace if asked.
    """
    check_score(score, equivalent_sample_size)
    if max_indegree is not None and max_indegree < 0:
        raise PGMError(f"max_indegree must be >= 0, got {max_indegree}")
    enc = encode(data, state_names)
    d = len(enc.names)
    adj = np.zeros((d, d), dtype=bool)
    if start is not None:
        for u, v in start.edges():
            adj[enc.column(u), enc.column(v)] = True
    climber = _Climber(enc, score, equivalent_sample_size, adj)
    tabu: deque = deque(maxlen=max(tabu_length, 0))
    scores, moves = [float(climber.local.sum())], []
    for _ in range(max_iter):
        gains = climber.gains(max_indegree, tabu)
        kind, u, v = (int(i) for i in np.unravel_index(int(np.argmax(gains)), gains.shape))
        if not gains[kind, u, v] > epsilon:
            break
        tabu.append(climber.apply(kind, u, v))
        scores.append(float(climber.local.sum()))
        moves.append((_MOVES[kind], enc.names[u], enc.names[v]))
    model = BayesianNetwork()
    model.add_nodes_from(enc.names)
    model.add_edges_from([(enc.names[u], enc.names[v]) for u, v in np.argwhere(climber.adj)])
    return (model, ClimbTrace(np.array(scores), moves)) if return_trace else model
