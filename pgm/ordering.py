"""Greedy elimination orders on bitset graphs: min degree, min fill, weighted min fill.

A graph is a list ``adj`` of closed neighbourhoods as Python ints: bit ``u`` of ``adj[v]`` is set
when ``u`` and ``v`` are adjacent, and bit ``v`` of ``adj[v]`` is always set (so the union of the
scopes of the factors that mention ``v`` is ``adj[v]``); a set of variables is an int with their
bits set. :func:`greedy_order` packs them into bitset rows of bytes and runs the kernel
``greedy_order`` (:mod:`kernels.reference.planning` defines the costs, the tie-breaking and the
fill-in edges; :mod:`kernels.cpu.planning` is its compiled twin).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import kernels
from pgm.errors import PGMError

HEURISTICS = ("min_degree", "min_fill", "weighted_min_fill")
"""The greedy heuristics, at their kernel codes."""

_CODES = {name: code for code, name in enumerate(HEURISTICS)}


def bit_list(bits: int) -> list[int]:
    """The positions of the set bits of ``bits`` (a non-negative int), ascending."""
    out = []
    while bits:
        top = bits.bit_length() - 1
        out.append(top)
        bits ^= 1 << top
    out.reverse()
    return out


def heuristic_code(heuristic: str) -> int:
    """The kernel code of the heuristic named ``heuristic``.

    Raises
    ------
    PGMError
        Naming the known heuristics, if ``heuristic`` is not one of them.
    """
    code = _CODES.get(heuristic)
    if code is None:
        raise PGMError(
            f"unknown elimination heuristic {heuristic!r}; expected one of {sorted(_CODES)} "
            "or an explicit list of variables"
        )
    return code


def bitset_rows(sets: Sequence[int], n: int) -> np.ndarray:
    """``(len(sets), ceil(n / 8))`` uint8: each bitset of variables ``< n`` as little-endian
    bytes, the rows the planning kernels take."""
    width = (n + 7) // 8
    packed = b"".join([s.to_bytes(width, "little") for s in sets])
    return np.frombuffer(packed, np.uint8).reshape(len(sets), width)


def greedy_order(
    adj: Sequence[int],
    stages: Sequence[int],
    cards: Sequence[int] | np.ndarray,
    heuristic: str = "min_fill",
) -> list[int]:
    """Order the variables of ``stages`` for elimination, stage after stage.

    Parameters
    ----------
    adj : sequence of int
        Interaction graph as closed neighbourhoods (bitsets, indexed by variable id, ``v`` in
        ``adj[v]``); variables outside every stage are kept, never eliminated. Not modified.
    stages : sequence of int
        Disjoint bitsets of the variables to eliminate; all of a stage go before any of the next
        (max-product after sum-product for marginal MAP).
    cards : sequence of int or ndarray of int64, shape (V,)
        Cardinality by variable id.
    heuristic : {"min_degree", "min_fill", "weighted_min_fill"}

    Returns
    -------
    list of int
        The elimination order.
    """
    code = heuristic_code(heuristic)
    cards = np.asarray(cards, dtype=np.int64)
    n = len(adj)
    order = kernels.get("greedy_order", cards)(
        bitset_rows(adj, n), bitset_rows(stages, n), cards, code
    )
    return order.tolist()
