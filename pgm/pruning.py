"""The part of a model that a query needs, found with bitsets.

Sets of variables (or of factors) are Python ints: bit ``v`` is set when variable ``v`` is in
the set. Per model, :func:`ancestor_sets` gives each variable of a Bayesian network its
ancestral set once; per query, :func:`relevant_factors` is then a few ORs and one walk over the
query's connected part. :func:`fold_roots` sums, once per model, the roots that only one child
mentions into that child's CPD (a query that leaves them hidden then never orders them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pgm.ordering import bit_list


def ancestor_sets(parents: Sequence[Sequence[int]]) -> list[int]:
    """Bitset of ``v`` and all its ancestors, for each variable ``v`` of a DAG.

    Parameters
    ----------
    parents : sequence of sequences of int
        ``parents[v]``: the parent ids of ``v`` (acyclic).
    """
    out: list[int | None] = [None] * len(parents)
    for root in range(len(parents)):
        stack = [root]  # depth-first, each variable finished after its parents
        while stack:
            v = stack[-1]
            if out[v] is not None:  # reached twice before it was finished
                stack.pop()
                continue
            todo = [u for u in parents[v] if out[u] is None]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            bits = 1 << v
            for u in parents[v]:
                bits |= out[u]
            out[v] = bits
    return out


def relevant_factors(
    scopes: Sequence[int],
    factors_of: Sequence[Sequence[int]],
    ancestors: Sequence[int] | None,
    query: int,
    observed: int,
    seeds: int,
    connected: bool,
) -> tuple[list[int], list[int]]:
    """The factors a query multiplies, and those whose whole scope is observed.

    Parameters
    ----------
    scopes : sequence of int
        Scope bitset of each factor.
    factors_of : sequence of sequences of int
        Ids of the factors that mention each variable.
    ancestors : sequence of int or None
        For a Bayesian network (factor ``v`` is the CPD of variable ``v``), the ancestral set of
        each variable (:func:`ancestor_sets`): the CPDs outside the ancestral set of ``seeds``
        are barren (they sum to one) and dropped. ``None`` for a Markov network.
    query : int
        Bitset of the query variables.
    observed : int
        Bitset of the variables observed in every case.
    seeds : int
        Bitset of every variable the query names (query, observed, partially observed).
    connected : bool
        Keep only the factors connected to ``query`` once the observed variables are removed
        (the others only scale a posterior); ``False`` for the probability of evidence.

    Returns
    -------
    factors : list of int
        Ids of the factors with an unobserved variable that the query needs (in the order the
        walk from the query finds them, or ascending when not ``connected``).
    constants : list of int
        Ids, ascending, of the kept factors whose whole scope is observed.
    """
    if ancestors is None:
        kept = maybe_constant = (1 << len(scopes)) - 1
    else:
        kept = 0
        for v in bit_list(seeds):
            kept |= ancestors[v]
        maybe_constant = kept & observed  # the CPD of an unobserved variable mentions it
    hidden = ~observed
    constants = [f for f in bit_list(maybe_constant) if not scopes[f] & hidden]
    if not connected:
        return [f for f in bit_list(kept) if scopes[f] & hidden], constants
    factors = []
    reached = frontier = query
    while frontier:  # grow the query's part through shared unobserved variables
        grown = 0
        for v in bit_list(frontier):
            for f in factors_of[v]:
                if kept >> f & 1:
                    kept ^= 1 << f  # each factor is taken once
                    factors.append(f)
                    grown |= scopes[f]
        frontier = grown & hidden & ~reached
        reached |= frontier
    return factors, constants


def fold_roots(
    scopes: Sequence[Sequence[int]],
    tables: Sequence[np.ndarray],
    factors_of: Sequence[list[int]],
    bayesian: bool = True,
) -> dict[int, tuple[tuple[int, ...], np.ndarray, int]]:
    """Sum each root that only one CPD mentions besides its own into that child's CPD.

    For a Bayesian network (factor ``v`` is the CPD of variable ``v``): a root ``r`` (scope
    ``(r,)``) whose variable only its own CPD and one child's CPD ``c`` mention can be summed
    out before any query that neither asks nor observes ``r``::

        T_c(x_c, rest) = sum_{r} P(r) P(x_c | r, rest)

    (every such root of ``c`` at once). The caller uses ``T_c`` in place of the CPDs of ``c``
    and its folded roots only when no folded root is queried or observed.

    Parameters
    ----------
    scopes : sequence of sequences of int
        Variable ids of each factor, in axis order.
    tables : sequence of ndarray of float64
        Factor tables, one axis per scope entry.
    factors_of : sequence of lists of int
        Ids of the factors that mention each variable.
    bayesian : bool
        ``False`` for a Markov network: nothing is folded (its factors are not CPDs).

    Returns
    -------
    dict
        ``{c: (scope of T_c, T_c, bitset of the folded roots)}``, for each child with a root
        to fold.
    """
    roots: dict[int, list[int]] = {}
    for r, scope in enumerate(scopes if bayesian else ()):
        if len(scope) == 1 and scope[0] == r and len(factors_of[r]) == 2:
            roots.setdefault(sum(factors_of[r]) - r, []).append(r)
    out = {}
    for c, rs in roots.items():
        scope = scopes[c]
        args = [tables[c], list(range(len(scope)))]
        for r in rs:
            args += [tables[r], [scope.index(r)]]
        kept = [i for i, v in enumerate(scope) if v not in rs]
        table = np.einsum(*args, kept)
        out[c] = (tuple([scope[i] for i in kept]), table, sum(1 << r for r in rs))
    return out
