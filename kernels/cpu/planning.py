"""Numba greedy elimination orders: names, signatures and results of
:mod:`kernels.reference.planning` (letters and bitset rows as defined there).

The graph is unpacked once into an adjacency matrix and neighbour lists; a cost is then a loop
over the pairs of a variable's neighbours (``O(d^2)``, no scan of all ``V``). After an
elimination the neighbours are re-costed from scratch; with a fill cost, every other variable
next to both ends of a new fill-in edge loses that missing pair (nothing else around it
changes). The next pick is the least
``(cost, id)`` among the stage's remaining variables, one scan per pick. Integer work only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["greedy_order"]


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
    return _greedy_order(
        np.ascontiguousarray(adj, dtype=np.uint8),
        np.ascontiguousarray(stages, dtype=np.uint8),
        np.ascontiguousarray(cards, dtype=np.int64),
        np.int64(heuristic),
    )


@njit(cache=True, _nrt=False)
def _cost(v, linked, nbrs, degree, cards, heuristic):
    """The cost of eliminating ``v`` (see the module of the reference twin)."""
    d = degree[v]
    if heuristic == 0:
        return np.int64(d)
    total = np.int64(0)
    for i in range(d):
        a = nbrs[v, i]
        for j in range(i + 1, d):
            b = nbrs[v, j]
            if not linked[a, b]:
                total += 1 if heuristic == 1 else cards[a] * cards[b]
    return total


@njit(cache=True, _nrt=False)
def _set_bits(row, out):
    """Write the positions of the set bits of the little-endian bitset ``row`` (uint8 bytes)
    into ``out``, ascending, and return how many there are."""
    count = 0
    for k in range(row.shape[0]):
        byte = np.int64(row[k])
        while byte:
            low = byte & -byte
            out[count] = 8 * k + _low_bit(low)
            byte ^= low
            count += 1
    return count


@njit(cache=True)
def _greedy_order(adj, stages, cards, heuristic):
    n = adj.shape[0]
    linked = np.zeros((n, n), np.bool_)
    nbrs = np.empty((n, n), np.int64)  # nbrs[v, :degree[v]]: the neighbours of v, any order
    degree = np.zeros(n, np.int64)
    members = np.empty(8 * max(adj.shape[1], stages.shape[1]), np.int64)
    for u in range(n):
        for i in range(_set_bits(adj[u], members)):
            v = members[i]
            if v != u and v < n:
                linked[u, v] = True
                nbrs[u, degree[u]] = v
                degree[u] += 1
    order = np.empty(n, np.int64)
    done = 0
    cost = np.zeros(n, np.int64)
    near = np.zeros(n, np.int64)  # near[u] == the current pick's number: u neighbours it
    todo = np.empty(n, np.int64)  # the stage's variables still to eliminate, any order
    waiting = np.zeros(n, np.bool_)
    for s in range(stages.shape[0]):
        left = _set_bits(stages[s], todo)
        for i in range(left):
            v = todo[i]
            waiting[v] = True
            cost[v] = _cost(v, linked, nbrs, degree, cards, heuristic)
        while left:
            best = 0
            for i in range(1, left):
                u, w = todo[i], todo[best]
                if cost[u] < cost[w] or (cost[u] == cost[w] and u < w):
                    best = i
            v = todo[best]
            left -= 1
            todo[best] = todo[left]
            waiting[v] = False
            order[done] = v
            done += 1
            _eliminate(v, done, near, waiting, cost, linked, nbrs, degree, cards, heuristic)
    return order[:done].copy()


@njit(cache=True, _nrt=False)
def _eliminate(v, pick, near, waiting, cost, linked, nbrs, degree, cards, heuristic):
    """Remove ``v`` from the graph, join its neighbours pairwise, and update the costs of the
    waiting variables: its neighbours are re-costed; with a fill cost, a variable next to both
    ends of a fill-in edge (not a neighbour of ``v``) loses that missing pair."""
    d = degree[v]
    for i in range(d):  # the neighbours lose v
        a = nbrs[v, i]
        near[a] = pick
        linked[a, v] = False
        for j in range(degree[a]):
            if nbrs[a, j] == v:
                degree[a] -= 1
                nbrs[a, j] = nbrs[a, degree[a]]
                break
    degree[v] = 0
    for i in range(d):  # and become pairwise adjacent
        a = nbrs[v, i]
        for j in range(i + 1, d):
            b = nbrs[v, j]
            if linked[a, b]:
                continue
            if heuristic != 0:
                pair = 1 if heuristic == 1 else cards[a] * cards[b]
                for k in range(degree[a]):
                    u = nbrs[a, k]
                    if waiting[u] and near[u] != pick and linked[b, u]:
                        cost[u] -= pair
            linked[a, b] = True
            linked[b, a] = True
            nbrs[a, degree[a]] = b
            degree[a] += 1
            nbrs[b, degree[b]] = a
            degree[b] += 1
    for i in range(d):
        a = nbrs[v, i]
        if waiting[a]:
            cost[a] = _cost(a, linked, nbrs, degree, cards, heuristic)


@njit(cache=True, _nrt=False)
def _low_bit(low):
    """The position of the single set bit of the byte ``low``."""
    k = 0
    while low > 1:
        low >>= 1
        k += 1
    return k
