"""Greedy elimination orders: one driver, three costs.

The driver repeatedly picks the variable of least cost among those still to eliminate,
connects its neighbours (the fill-in edges that eliminating it creates) and removes it, so every
cost sees the graph as elimination has changed it. Ties go to the smaller variable id. Costs
live in a heap with lazy deletion; after an elimination only the variables whose cost can have
changed are re-costed: the neighbours of the eliminated variable and, for the fill costs, the
neighbours of each end of a new fill-in edge (their own neighbourhoods gained an edge).

Costs of eliminating ``v`` with neighbours ``N(v)`` (``c`` = cardinality):

- ``"min_degree"``: ``|N(v)|``;
- ``"min_fill"``: the number of pairs in ``N(v)`` that are not yet adjacent;
- ``"weighted_min_fill"``: the sum of ``c(u) * c(w)`` over those missing pairs ``(u, w)``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence

from pgm.errors import PGMError

Adjacency = dict[int, set[int]]


def _min_degree(v: int, adj: Adjacency, cards: Sequence[int]) -> float:
    return len(adj[v])


def _min_fill(v: int, adj: Adjacency, cards: Sequence[int]) -> float:
    nbrs = adj[v]  # each missing pair (a, b) is seen from a and from b; a itself is in nbrs
    return (sum(map(len, map(nbrs.difference, map(adj.__getitem__, nbrs)))) - len(nbrs)) // 2


def _weighted_min_fill(v: int, adj: Adjacency, cards: Sequence[int]) -> float:
    nbrs = adj[v]
    return sum(cards[a] * sum(cards[b] for b in nbrs - adj[a] if b != a) for a in nbrs) // 2


COSTS: Mapping[str, Callable[[int, Adjacency, Sequence[int]], float]] = {
    "min_degree": _min_degree,
    "min_fill": _min_fill,
    "weighted_min_fill": _weighted_min_fill,
}


def heuristic_cost(heuristic: str) -> Callable[[int, Adjacency, Sequence[int]], float]:
    """The cost function named ``heuristic``.

    Raises
    ------
    PGMError
        Naming the known heuristics, if ``heuristic`` is not one of them.
    """
    try:
        return COSTS[heuristic]
    except KeyError:
        raise PGMError(
            f"unknown elimination heuristic {heuristic!r}; expected one of {sorted(COSTS)} "
            "or an explicit list of variables"
        ) from None


def greedy_order(
    adjacency: Mapping[int, Iterable[int]],
    stages: Sequence[Iterable[int]],
    cards: Sequence[int],
    heuristic: str = "min_fill",
) -> list[int]:
    """Order the variables of ``stages`` for elimination, stage after stage.

    Parameters
    ----------
    adjacency : mapping int -> iterable of int
        Interaction graph (symmetric); variables outside every stage are kept, never eliminated.
    stages : sequence of iterables of int
        Variables to eliminate; all of a stage go before any of the next (max-product after
        sum-product for marginal MAP).
    cards : sequence of int
        Cardinality by variable id.
    heuristic : {"min_degree", "min_fill", "weighted_min_fill"}

    Returns
    -------
    list of int
        The elimination order.
    """
    cost = heuristic_cost(heuristic)
    adj = {v: set(n) for v, n in adjacency.items()}
    order: list[int] = []
    for stage in stages:
        costs = {v: cost(v, adj, cards) for v in stage}
        heap = [(c, v) for v, c in costs.items()]
        heapq.heapify(heap)
        while heap:
            c, v = heapq.heappop(heap)
            if costs.get(v) != c:  # eliminated already, or a stale entry
                continue
            del costs[v]
            order.append(v)
            nbrs = adj.pop(v)
            touched = set(nbrs)
            for a in nbrs:
                mine = adj[a]
                mine.discard(v)
                before = len(mine)
                mine.update(nbrs)
                mine.discard(a)
                if len(mine) != before and cost is not _min_degree:
                    touched |= mine  # a gained an edge: its neighbours may gain a fill pair
            for u in touched:
                if u in costs:
                    new = cost(u, adj, cards)
                    if new != costs[u]:
                        costs[u] = new
                        heapq.heappush(heap, (new, u))
    return order
