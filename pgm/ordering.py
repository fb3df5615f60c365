"""Greedy elimination orders on bitset graphs: one driver, three costs.

A graph is a list ``adj`` of closed neighbourhoods as Python ints: bit ``u`` of ``adj[v]`` is set
when ``u`` and ``v`` are adjacent, and bit ``v`` of ``adj[v]`` is always set (so the union of the
scopes of the factors that mention ``v`` is ``adj[v]``); a set of variables is an int with their
bits set.

The driver repeatedly picks the variable of least cost among those still to eliminate,
connects its neighbours (the fill-in edges that eliminating it creates) and removes it, so every
cost sees the graph as elimination has changed it. Ties go to the smaller variable id. The
variables of cost 0 wait in a bitset (the lowest bit is the next pick), the others in a heap
with lazy deletion. After an elimination only the costs that can have changed are updated:
with a fill cost, eliminating a variable of cost 0 (simplicial: no fill-in) lowers each
neighbour's cost by a closed form; otherwise the neighbours are re-costed, and so are the
variables next to two of them (a new fill-in edge may join two of their neighbours).

Costs of eliminating ``v`` with neighbours ``N(v)`` (``c`` = cardinality):

- ``"min_degree"``: ``|N(v)|``;
- ``"min_fill"``: the number of pairs in ``N(v)`` that are not yet adjacent;
- ``"weighted_min_fill"``: the sum of ``c(u) * c(w)`` over those missing pairs ``(u, w)``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence

from pgm.errors import PGMError

Cost = Callable[[int, Sequence[int], Sequence[int]], int]


def bit_list(bits: int) -> list[int]:
    """The positions of the set bits of ``bits`` (a non-negative int), ascending."""
    out = []
    while bits:
        top = bits.bit_length() - 1
        out.append(top)
        bits ^= 1 << top
    out.reverse()
    return out


def _min_degree(v: int, adj: Sequence[int], cards: Sequence[int]) -> int:
    return adj[v].bit_count() - 1


def _min_fill(v: int, adj: Sequence[int], cards: Sequence[int]) -> int:
    nbrs = rest = adj[v] & ~(1 << v)
    missed = 0  # each missing pair (a, b) is seen from a and from b
    while rest:
        a = rest & -rest
        missed += (nbrs & ~adj[a.bit_length() - 1]).bit_count()
        rest ^= a
    return missed // 2


def _weighted_min_fill(v: int, adj: Sequence[int], cards: Sequence[int]) -> int:
    nbrs = adj[v] & ~(1 << v)
    total = 0
    if nbrs & (nbrs - 1):
        for a in bit_list(nbrs):
            total += cards[a] * sum([cards[b] for b in bit_list(nbrs & ~adj[a])])
    return total // 2


COSTS: Mapping[str, Cost] = {
    "min_degree": _min_degree,
    "min_fill": _min_fill,
    "weighted_min_fill": _weighted_min_fill,
}

# The fill costs are 0 exactly for a simplicial ``v`` (its neighbours pairwise adjacent). When
# such a ``v`` is eliminated, a neighbour ``a`` loses ``v`` and the missing pairs ``(v, x)``,
# ``x`` in ``adj[a] & ~adj[v]``, and nothing else around ``a`` changes: its cost drops by
_DROPS: Mapping[str, Cost] = {
    "min_fill": lambda a, v, adj, cards: (adj[a] & ~adj[v]).bit_count(),
    "weighted_min_fill": lambda a, v, adj, cards: (
        cards[v] * sum([cards[x] for x in bit_list(adj[a] & ~adj[v])])
    ),
}


def heuristic_cost(heuristic: str) -> Cost:
    """The cost function named ``heuristic``: ``cost(v, adj, cards) -> int``.

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
    adj: Sequence[int],
    stages: Sequence[int],
    cards: Sequence[int],
    heuristic: str = "min_fill",
) -> list[int]:
    """Order the variables of ``stages`` for elimination, stage after stage.

    Parameters
    ----------
    adj : sequence of int
        Interaction graph as closed neighbourhoods (bitsets, indexed by variable id, ``v`` in
        ``adj[v]``); variables outside every stage are kept, never eliminated. Not modified.
    stages : sequence of int
        Bitsets of the variables to eliminate; all of a stage go before any of the next
        (max-product after sum-product for marginal MAP).
    cards : sequence of int
        Cardinality by variable id.
    heuristic : {"min_degree", "min_fill", "weighted_min_fill"}

    Returns
    -------
    list of int
        The elimination order.
    """
    cost = heuristic_cost(heuristic)
    drop = _DROPS.get(heuristic)  # None for min_degree, whose updates are cheap anyway
    adj = list(adj)
    order: list[int] = []
    for stage in stages:
        costs: dict[int, int] = {}
        zero = 0  # bitset of the variables of cost 0: the next picks, smallest id first
        heap: list[tuple[int, int]] = []  # the others, with stale entries
        for v in bit_list(stage):
            c = costs[v] = cost(v, adj, cards)
            if c:
                heap.append((c, v))
            else:
                zero |= 1 << v
        heapq.heapify(heap)
        while costs:
            if zero:
                gone = zero & -zero
                zero ^= gone
                v = gone.bit_length() - 1
            else:
                c, v = heapq.heappop(heap)
                if costs.get(v) != c:  # eliminated already, or a stale entry
                    continue
                gone = 1 << v
            c = costs.pop(v)
            order.append(v)
            nbrs = touched = adj[v] & ~gone
            if drop is not None and not c:  # no fill-in: the neighbours just lose v
                for a in bit_list(nbrs):
                    adj[a] &= ~gone
                    old = costs.get(a)
                    if old is not None and (less := drop(a, v, adj, cards)):
                        costs[a] = old - less
                        if old > less:
                            heapq.heappush(heap, (old - less, a))
                        else:
                            zero |= 1 << a
                continue
            for a in bit_list(nbrs):
                mine = adj[a]
                adj[a] = (mine | nbrs) & ~gone
                if drop is not None and nbrs & ~mine:  # a gained an edge: its neighbours may
                    touched |= adj[a]  # gain a fill pair
            for u in bit_list(touched):
                old = costs.get(u)
                if old is None:
                    continue
                common = adj[u] & nbrs
                if not nbrs >> u & 1 and not common & (common - 1):
                    continue  # u keeps its neighbours, at most one of them gained edges
                if old != (new := cost(u, adj, cards)):
                    costs[u] = new
                    if new:
                        zero &= ~(1 << u)
                        heapq.heappush(heap, (new, u))
                    else:
                        zero |= 1 << u
    return order
