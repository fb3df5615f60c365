"""Greedy elimination orders on interaction graphs (plain Python; the specification).

Letters: V variables, B bytes per bitset row (``ceil(V / 8)`` or more), S stages. A set of
variables is a little-endian bitset: bit ``u`` (byte ``u // 8``, bit ``u % 8`` of a uint8 row,
as ``int.to_bytes(B, "little")`` writes it) is set when ``u`` is in the set. The graph is given
as closed neighbourhoods: row ``v`` of ``adj`` holds ``v`` and its neighbours.

The driver repeatedly picks the variable of least cost among those of the current stage still
to eliminate (ties to the smaller id), connects its neighbours (the fill-in edges that
eliminating it creates) and removes it, so every cost sees the graph as elimination has changed
it. Costs of eliminating ``v`` with neighbours ``N(v)`` (``c`` = cardinality), by heuristic
code:

- ``0`` (min degree): ``|N(v)|``;
- ``1`` (min fill): the number of pairs in ``N(v)`` that are not yet adjacent;
- ``2`` (weighted min fill): the sum of ``c(u) c(w)`` over those missing pairs ``(u, w)``.

This twin works on Python-int bitsets: the variables of cost 0 wait in a bitset (the lowest bit
is the next pick), the others in a heap with lazy deletion, and after an elimination only the
costs that can have changed are updated: with a fill cost, eliminating a variable of cost 0
(simplicial: no fill-in) lowers each neighbour's cost by a closed form; otherwise the neighbours
are re-costed, and so are the variables next to two of them (a new fill-in edge may join two of
their neighbours).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["greedy_order"]

Cost = Callable[[int, Sequence[int], Sequence[int]], int]


def _members(bits: int) -> list[int]:
    """The set bits of ``bits``, ascending."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
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
        for a in _members(nbrs):
            total += cards[a] * sum([cards[b] for b in _members(nbrs & ~adj[a])])
    return total // 2


COSTS: tuple[Cost, ...] = (_min_degree, _min_fill, _weighted_min_fill)
"""``cost(v, adj, cards) -> int`` by heuristic code, ``adj`` as Python-int bitsets."""


def _drop(heuristic: int, a: int, v: int, adj: Sequence[int], cards: Sequence[int]) -> int:
    """How much the fill cost of ``a`` drops when its simplicial neighbour ``v`` goes: ``a``
    loses ``v`` and the missing pairs ``(v, x)``, ``x`` in ``adj[a] & ~adj[v]``, and nothing
    else around ``a`` changes."""
    missing = adj[a] & ~adj[v]
    if heuristic == 1:
        return missing.bit_count()
    return cards[v] * sum([cards[x] for x in _members(missing)])


def greedy_order(
    adj: np.ndarray, stages: np.ndarray, cards: np.ndarray, heuristic: int
) -> np.ndarray:
    """Order the variables of ``stages`` for elimination, stage after stage.

    Parameters
    ----------
    adj : ndarray of uint8, shape (V, B)
        Closed neighbourhoods as bitset rows (bit ``v`` of row ``v`` set). Not modified.
    stages : ndarray of uint8, shape (S, B)
        Disjoint bitsets of the variables to eliminate; all of a stage go before any of the
        next. Variables in no stage are kept.
    cards : ndarray of int64, shape (V,)
        Cardinality by variable id.
    heuristic : int
        ``0`` min degree, ``1`` min fill, ``2`` weighted min fill.

    Returns
    -------
    ndarray of int64, shape (K,)
        The elimination order (``K``: the variables of all stages).
    """
    cost = COSTS[heuristic]
    graph = [int.from_bytes(row.tobytes(), "little") for row in adj]
    weights = [int(c) for c in cards]
    order: list[int] = []
    for row in stages:
        _eliminate_stage(
            graph, int.from_bytes(row.tobytes(), "little"), weights, heuristic, cost, order
        )
    return np.array(order, dtype=np.int64)


def _eliminate_stage(
    adj: list[int], stage: int, cards: list[int], heuristic: int, cost: Cost, order: list[int]
) -> None:
    """Append the variables of bitset ``stage`` to ``order`` as greedy picks, updating the
    bitset graph ``adj`` in place."""
    fill = heuristic != 0  # min degree re-costs the neighbours only, cheap anyway
    costs: dict[int, int] = {}
    zero = 0  # bitset of the variables of cost 0: the next picks, smallest id first
    heap: list[tuple[int, int]] = []  # the others, with stale entries
    for v in _members(stage):
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
        if fill and not c:  # no fill-in: the neighbours just lose v
            for a in _members(nbrs):
                adj[a] &= ~gone
                old = costs.get(a)
                if old is not None and (less := _drop(heuristic, a, v, adj, cards)):
                    costs[a] = old - less
                    if old > less:
                        heapq.heappush(heap, (old - less, a))
                    else:
                        zero |= 1 << a
            continue
        for a in _members(nbrs):
            mine = adj[a]
            adj[a] = (mine | nbrs) & ~gone
            if fill and nbrs & ~mine:  # a gained an edge: its neighbours may gain a fill pair
                touched |= adj[a]
        for u in _members(touched):
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
