"""Numba greedy elimination orders: names, signatures and results of
:mod:`kernels.reference.planning` (letters and bitset rows as defined there).

The graph is held as ``uint64`` words, ``W = ceil(V / 64)`` per variable: ``adj[v]`` is the
open neighbourhood of ``v``. A cost is then a few word operations per neighbour: with ``N(v)``
the neighbours of ``v``, min fill counts, for each ``a`` in ``N(v)``, the members of
``N(v) - N(a) - {a}`` (each missing pair twice). Eliminating ``v`` joins its neighbours
pairwise; the costs re-computed are those of the waiting variables next to ``v`` or to one of its
neighbours (a variable elsewhere keeps its neighbourhood, and no new edge joins two of its
neighbours). The next pick is the least ``(cost, id)`` among the stage's remaining variables,
one scan per pick. Integer work only.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from kernels.cpu._bits import allocating_helper, helper, popcount

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


@njit(cache=True)
def _greedy_order(adj, stages, cards, heuristic):
    """The twin's entry on uint8 rows: packs them into words and calls :func:`order_words`."""
    n = adj.shape[0]
    words = (n + 63) // 64
    graph = _words(adj, n, words)
    for u in range(n):  # open neighbourhoods: no self loop
        graph[u, u // 64] &= ~(np.uint64(1) << np.uint64(u % 64))
    return order_words(graph, _words(stages, n, words), cards, heuristic)


@helper
def _words_into(rows, n, out):
    """OR the bytes of the uint8 rows ``rows`` (bits ``< n``) into the zeroed words ``out``."""
    for r in range(rows.shape[0]):
        for k in range(min(rows.shape[1], (n + 7) // 8)):
            byte = np.uint64(rows[r, k])
            if 8 * k + 8 > n:  # bits past V are not variables
                byte &= (np.uint64(1) << np.uint64(n - 8 * k)) - np.uint64(1)
            out[r, k // 8] |= byte << np.uint64(8 * (k % 8))


@allocating_helper
def _words(rows, n, words):
    """``(R, W)`` uint64 words of the ``(R, B)`` uint8 bitset rows ``rows`` (bits ``< n``)."""
    out = np.zeros((rows.shape[0], max(words, 1)), np.uint64)
    _words_into(rows, n, out)
    return out


@allocating_helper
def order_words(adj, stages, cards, heuristic):
    """The greedy order on a graph of ``uint64`` words (used by the step planner too).

    ``adj``: ``(V, W)`` uint64, open neighbourhoods (modified: the graph as elimination leaves
    it); ``stages``: ``(S, W)`` uint64; ``cards``: ``(V,)`` int64; ``heuristic``: 0, 1 or 2.
    Returns the order, int64 ``(K,)``.
    """
    n = adj.shape[0]
    order = np.empty(n, np.int64)
    cost = np.zeros(n, np.int64)
    waiting = np.zeros(n, np.int64)  # 1 while in the stage's todo list
    todo = np.empty(n, np.int64)  # the stage's variables still to eliminate, any order
    touched = np.empty(adj.shape[1], np.uint64)  # written by _eliminate
    done = 0
    for s in range(stages.shape[0]):
        left = 0
        for w in range(stages.shape[1]):
            bits = stages[s, w]
            while bits:
                v = 64 * w + trailing_zeros(bits)
                bits &= bits - np.uint64(1)
                todo[left] = v
                left += 1
                waiting[v] = 1
        for i in range(left):
            cost[todo[i]] = _cost(todo[i], adj, cards, heuristic)
        while left:
            best = 0
            for i in range(1, left):
                u, b = todo[i], todo[best]
                if cost[u] < cost[b] or (cost[u] == cost[b] and u < b):
                    best = i
            v = todo[best]
            left -= 1
            todo[best] = todo[left]
            waiting[v] = 0
            order[done] = v
            done += 1
            _eliminate(v, adj, touched, heuristic)
            for w in range(adj.shape[1]):  # re-cost the waiting variables it touched
                bits = touched[w]
                while bits:
                    u = 64 * w + trailing_zeros(bits)
                    bits &= bits - np.uint64(1)
                    if waiting[u]:
                        cost[u] = _cost(u, adj, cards, heuristic)
    return order[:done]


@helper
def _cost(v, adj, cards, heuristic):
    """The cost of eliminating ``v`` (see the module of the reference twin)."""
    total = np.int64(0)
    if heuristic == 0:
        for w in range(adj.shape[1]):
            total += popcount(adj[v, w])
        return total
    for wa in range(adj.shape[1]):
        bits = adj[v, wa]
        while bits:
            a = 64 * wa + trailing_zeros(bits)
            bits &= bits - np.uint64(1)
            for w in range(adj.shape[1]):  # N(v) - N(a) - {a}: the pairs (a, b) missing
                missing = adj[v, w] & ~adj[a, w]
                if w == wa:
                    missing &= ~(np.uint64(1) << np.uint64(a % 64))
                if heuristic == 1:
                    total += popcount(missing)
                else:
                    while missing:
                        total += cards[a] * cards[64 * w + trailing_zeros(missing)]
                        missing &= missing - np.uint64(1)
    return total // 2


@helper
def _eliminate(v, adj, touched, heuristic):
    """Remove ``v`` from the graph and join its neighbours pairwise; set ``touched`` to the
    variables whose cost can have changed (its neighbours, and theirs for a fill cost)."""
    words = adj.shape[1]
    for w in range(words):
        touched[w] = adj[v, w]
    for wa in range(words):
        bits = adj[v, wa]
        while bits:
            a = 64 * wa + trailing_zeros(bits)
            bits &= bits - np.uint64(1)
            for w in range(words):
                adj[a, w] |= adj[v, w]
            adj[a, wa] &= ~(np.uint64(1) << np.uint64(a % 64))
            adj[a, v // 64] &= ~(np.uint64(1) << np.uint64(v % 64))
            if heuristic != 0:
                for w in range(words):
                    touched[w] |= adj[a, w]
    for w in range(words):
        adj[v, w] = 0
