"""Evidence retraction: how much each piece of evidence moves a target's probability.

For each target ``t`` at a state ``s_t`` and the evidence ``E`` (a target that is itself
observed is left out of its own evidence: ``E_t = E \\ {t}``), :func:`leave_one_out` gives

.. math:: P(t = s_t \\mid E_t) \\quad\\text{and}\\quad P(t = s_t \\mid E_t \\setminus \\{v\\})
   \\text{ for every piece } v \\in E_t,

the numbers of an explanation (which piece of evidence raises ``t`` most, and by how much).
Asked one by one, these are ``1 + |E_t|`` posterior queries per target, each with its own plan
(no two evidence sets are alike). Here one query for the joint ``P(T, E)`` of the targets and
the evidence variables (no evidence: one plan, cached by the set of variables) serves every
target and every subset: with ``J`` that table summed over the variables outside
``{t} | E_t`` and ``e`` the observed states,

.. math:: P(t = s_t \\mid E_t) = \\frac{J(s_t, e)}{\\sum_{x} J(x, e)}, \\qquad
   P(t = s_t \\mid E_t \\setminus \\{v\\}) =
   \\frac{\\sum_{y} J(s_t, e_{-v}, v = y)}{\\sum_{x, y} J(x, e_{-v}, v = y)}.

The joint has ``prod`` of the cardinalities entries; past ``max_entries`` (a long list of
evidence) the per-subset queries run instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pgm.errors import ZeroProbabilityError
from pgm.states import state_index

__all__ = ["leave_one_out"]

MAX_ENTRIES = 1 << 16  # the largest joint table read; larger ones: one query per subset


def leave_one_out(
    engine: Any,
    targets: Mapping[Any, Any],
    evidence: Mapping[Any, Any],
    max_entries: int = MAX_ENTRIES,
) -> dict[Any, tuple[float, np.ndarray]]:
    """``P(t = s_t | E_t)`` and each ``P(t = s_t | E_t without v)`` (see the module doc).

    Parameters
    ----------
    engine : VariableElimination
        The engine of the model queried.
    targets : dict
        ``{variable: state name or index}``.
    evidence : dict
        ``{variable: state name or index}``; may include targets (observed at their states).
    max_entries : int
        The largest joint table (product of the cardinalities of the targets and the evidence
        variables) read at once; above it, ``1 + |E_t|`` posterior queries per target.

    Returns
    -------
    dict
        ``{t: (P(t = s_t | E_t), (|E_t|,) float64)}``: the second entry holds
        ``P(t = s_t | E_t without v)`` for the pieces ``v`` of ``E_t`` in the order of
        ``evidence``.

    Raises
    ------
    ZeroProbabilityError
        If some ``E_t`` has probability zero.
    UnknownVariableError, UnknownStateError
        Naming the unknown variable or state.
    """
    targets, evidence = dict(targets), dict(evidence)
    if not targets:
        return {}
    names = list(dict.fromkeys([*targets, *evidence]))
    size = 1
    for name in names:
        size *= engine.model.get_cardinality(name)
    if size > max_entries:
        return _by_subsets(engine, targets, evidence)
    joint = engine.query(names)
    axis = {name: i for i, name in enumerate(joint.variables)}
    states = joint.state_names
    out = {}
    for t, s in targets.items():
        pieces = [v for v in evidence if v != t]
        table = np.einsum(joint.values, list(range(len(names))), [axis[v] for v in [t, *pieces]])
        at = [state_index(v, states[v], evidence[v]) for v in pieces]
        fixed = table[(slice(None), *at)]
        total = fixed.sum()
        if not total > 0:
            given = {v: evidence[v] for v in pieces}
            raise ZeroProbabilityError(f"evidence {given} has probability zero")
        s = state_index(t, states[t], s)
        without = np.empty(len(pieces))
        for k in range(len(pieces)):
            free = table[(slice(None), *at[:k], slice(None), *at[k + 1 :])]
            without[k] = free[s].sum() / free.sum()
        out[t] = (float(fixed[s] / total), without)
    return out


def _by_subsets(
    engine: Any, targets: dict[Any, Any], evidence: dict[Any, Any]
) -> dict[Any, tuple[float, np.ndarray]]:
    """:func:`leave_one_out` by one posterior query per evidence set."""

    def probability(t: Any, s: Any, given: dict[Any, Any]) -> float:
        posterior = engine.query([t], evidence=given or None)
        return float(posterior.values[state_index(t, posterior.state_names[t], s)])

    out = {}
    for t, s in targets.items():
        given = {v: state for v, state in evidence.items() if v != t}
        without = [probability(t, s, {u: x for u, x in given.items() if u != v}) for v in given]
        out[t] = (probability(t, s, given), np.array(without, dtype=np.float64))
    return out
