"""Elimination steps: an order of eliminations turned into einsum calls.

The planning itself is the kernel ``plan_steps`` (:mod:`kernels.reference.steps` defines it:
slots, deferral, merging, pairwise splits, renaming; a Numba twin runs it for single cases):
given the axes of the input tables and the elimination order (or a greedy heuristic), packed
into one array by the kernel ``pack_problem``, it returns the steps as integer arrays, their
einsum specs as one ASCII buffer, and for each matrix product without a case axis its planned
axis moves (the executor then makes one ``numpy.matmul`` call). :func:`build_steps` turns
those into :class:`Step` records for the executor. Only ``kernels.get`` is used: the step
kernels' thresholds and letters stay inside them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

import kernels
from pgm.errors import TableSizeError
from pgm.ordering import bit_list

SUM, MAX = "sum", "max"
MODES = {"posterior": 0, "evidence": 1, "map": 2}  # the kernel's query modes
_PLAN_HEADER = 7  # the plan array's fields before its order (see the kernel's Returns)


def bits(ids: Iterable[int]) -> int:
    """The bitset of the variable (or slot) ids ``ids``."""
    out = 0
    for v in ids:
        out |= 1 << v
    return out


def table_size(cards: Sequence[int], variables: int) -> int:
    """Number of entries of a table over the variables of bitset ``variables``."""
    return math.prod([cards[v] for v in bit_list(variables)])


class Step(NamedTuple):
    """One einsum: multiply the tables ``operands``, sum out the labels the output lacks (or,
    for a max step, max out ``var``, the output's first axis).

    A sum step may carry out several eliminations (small ones merged, or a chain of reductions
    of one table); ``var`` is then the last. A step with ``var=None`` only multiplies (it
    groups the operands of a step that has more operands than einsum takes at once, splits a
    large step pairwise, or computes the final product over the query variables).
    """

    var: int | None  # the variable eliminated
    operands: tuple[int, ...]  # positions among the executor's tables: inputs, then results
    spec: str
    op: str
    out_scope: tuple[int, ...]  # variable ids of the result, axis order (case axis excluded)
    has_case: bool
    blas: bool  # contract through BLAS: large matrix products
    gemm: tuple | None  # a blas step without case axis: its matmul layout (factor_contract)


class StepPlan(NamedTuple):
    """The steps of a plan, and what planning found."""

    steps: tuple[Step, ...]
    order: list[int]  # the variables eliminated, in order
    width: int  # the most variables of a step's table, minus one (at least -1)
    biggest: int  # the most entries of a step's table


def _layout(flat: list[int]) -> tuple[tuple[int, ...], ...]:
    """The matmul layout encoded in ``flat`` (each of its eight tuples as its length, then its
    entries, as the kernel ``plan_steps`` writes it)."""
    parts, at = [], 0
    for _ in range(8):
        parts.append(tuple(flat[at + 1 : at + 1 + flat[at]]))
        at += flat[at] + 1
    return tuple(parts)


def build_steps(
    tables: Sequence[tuple[int, ...]],
    cases: Sequence[bool] | None,
    cards: np.ndarray,
    names: Sequence[Any],
    query: Sequence[int],
    order: Sequence[int] | int,
    mode: str,
    single: bool,
    limit: int,
) -> StepPlan:
    """Plan the steps of an elimination with the kernel ``plan_steps``.

    Parameters
    ----------
    tables : sequence of tuple of int
        The input tables: their variable ids in axis order.
    cases : sequence of bool or None
        Whether each table has a trailing case axis (``None``: none has).
    cards : ndarray of int64, shape (V,)
        Cardinality by variable id.
    names : sequence
        Variable names by id, for error messages.
    query : sequence of int
        The query variables, in the result's axis order.
    order : sequence of int or int
        The elimination order, or a heuristic code of :func:`pgm.ordering.heuristic_code`.
    mode : {"posterior", "evidence", "map"}
    single : bool
        A plan for one case, or for a batch.
    limit : int
        The largest table a step may build.

    Raises
    ------
    TableSizeError
        If a step would build a table of more than ``limit`` entries (or over more variables
        than einsum has letters).
    """
    explicit = not isinstance(order, int)
    problem = kernels.get("pack_problem")(
        tables,
        cases,
        query,
        order if explicit else (),
        -1 if explicit else order,
        MODES[mode],
        single,
        limit,
    )
    plan, spec = kernels.get("plan_steps", cards)(problem, cards)
    flat = plan.tolist()
    status, width, biggest, err_var, err_size, n, n_elim = flat[:_PLAN_HEADER]
    at = _PLAN_HEADER + n_elim
    elim, rows = flat[_PLAN_HEADER:at], flat[at : at + 4 * n]
    groups = []  # (offsets, start of the values) of operands, outputs, loops, layouts
    at += 4 * n
    for count in (n, n, n + status, n):
        offsets = flat[at : at + count + 1]
        groups.append((offsets, at + count + 1))
        at += count + 1 + offsets[-1]
    if status:
        offsets, base = groups[2]
        what = f"eliminating {names[err_var]!r}" if err_var >= 0 else "a product"
        refused = [names[u] for u in flat[base + offsets[-2] : base + offsets[-1]]]
        if err_size > limit:
            why = f"above max_table_size={limit}; raise it or choose another elimination order"
        else:
            why = "more variables than einsum has letters; choose another elimination order"
        raise TableSizeError(
            f"{what} would build a table of {err_size} entries over {refused} "
            f"({len(refused)} variables), {why}"
        )
    texts = spec.tobytes().decode("ascii").split(";") if spec.size else []
    (ops, o), (outs, u), _, (gemm, g) = groups
    steps = []
    for k in range(n):
        var, op, case, blas = rows[4 * k : 4 * k + 4]
        steps.append(
            Step(
                None if var < 0 else var,
                tuple(flat[o + ops[k] : o + ops[k + 1]]),
                texts[k],
                MAX if op else SUM,
                tuple(flat[u + outs[k] : u + outs[k + 1]]),
                case == 1,
                blas == 1,
                _layout(flat[g + gemm[k] : g + gemm[k + 1]]) if blas and not case else None,
            )
        )
    return StepPlan(tuple(steps), elim, width, biggest)


def fused_steps(
    tables: Sequence[tuple[int, ...]],
    cards: Sequence[int],
    query: Sequence[int],
    limit: int,
) -> StepPlan | None:
    """The plan :func:`build_steps` returns for a single case with no elimination order (one
    einsum multiplying every table into the query's axes), built without the planning kernel,
    whose fixed cost exceeds this one step (the kernel ``fused_step_spec`` writes its spec);
    ``None`` where the kernel would group, split or refuse that step, or where there are no
    tables: :func:`build_steps` then plans it."""
    spec = kernels.get("fused_step_spec")(tables, cards, query, limit)
    if spec is None:
        return None
    loop = set()
    for variables in tables:
        loop.update(variables)
    step = Step(None, tuple(range(len(tables))), spec, SUM, tuple(query), False, False, None)
    return StepPlan((step,), [], len(loop) - 1, math.prod([cards[v] for v in loop]))
