"""Elimination steps: an elimination order turned into einsum calls (plain Python; the spec).

Letters: F input tables, A their axes in all, V variables, Q query variables, E eliminations,
S emitted steps, K operands of all steps, U loop variables of all steps. Sets of variables or
of slots are Python-int bitsets (bit ``v``: variable or slot ``v``).

Slots
    A *slot* is a table of the plan: an input table (slots ``0 .. F-1``) or the result of a
    step. A slot has a scope (its variables), an axis order (an input's ``axes``, a step's
    ``outs``) and maybe a trailing case axis. A slot is *live* until a step multiplies it in;
    eliminating ``v`` multiplies the live slots that mention ``v`` and sums (or maxes) ``v``
    out. A step with more than ``max_operands`` operands is preceded by products of groups of
    them; a step of at least ``pairwise_min`` entries with three or more operands is preceded
    by the product of its cheapest pair (the pair whose union spans the fewest entries, the
    first such pair in slot order), which sums out what no other operand and no output needs.
    A sum step of two operands that is a matrix product (each has a variable the other lacks)
    of at least ``matmul_min`` entries is a BLAS candidate.

Deferral and merging
    A sum step is *deferred* until its result is used; only then is it emitted, or merged.
    The step that uses it takes the deferred step's operands into its own einsum (one call
    instead of two) when its loop stays within ``merge_max`` entries and within
    ``max_operands`` operands (``merge_max`` is 0 for a batch: its case axis multiplies every
    loop),
    or, for a sum step with that result as its only operand, always: a chain of reductions of
    one table is one pass over it. A merged step is no BLAS candidate, except a chain, which
    keeps the flag of the step it continues. A deferred step that is not merged is emitted
    just before the step that uses it. Max steps are emitted at once; the last step (the
    product into the query variables) is emitted at the end.

Positions
    The executor holds the input tables at positions ``0 .. F-1`` and appends each emitted
    step's result: step ``k`` writes position ``F + k``. Operands are given as positions.

Renaming
    Each step's einsum spec names the ``i``-th variable of that step's loop (ascending id) by
    ``LETTERS[i]`` and a case axis by ``CASE`` (always last), so any model fits in the letters
    as long as no step loops over more than ``len(LETTERS)`` variables. An operand is written
    in its own axis order; a sum step's output is its ``outs``; a max step's output is the
    eliminated variable first, then ``outs`` (the executor maximises over that first axis).

Settings
    ``max_operands``, ``pairwise_min``, ``matmul_min`` and ``merge_max`` travel in the problem
    array (:func:`pack_problem` fills in the defaults below), so a compiled twin reads them as
    data, never as constants frozen into its code.

Table sizes are products of cardinalities saturated at ``2**63 - 1`` (the largest int64), so
a fast twin can use int64 arithmetic: every decision compares them with bounds below that
(only the choice among pairs that all span more entries differs from exact sizes: the first
such pair is then taken, and refused, since ``limit`` is below the bound).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from kernels.reference.planning import _members, greedy_order

__all__ = ["fused_step_spec", "pack_problem", "plan_steps"]

CASE = "Z"  # the einsum label of a batch's case axis
LETTERS = string.ascii_letters.replace(CASE, "")  # a step's variables, by rank in its loop
# default settings (see "Settings" above)
PAIRWISE_MIN = 1 << 12  # steps with tables this large are split into pairwise products
BLAS_MIN = 1 << 14  # a batch's pairwise sum steps this large that are matrix products: BLAS
GEMM_MIN = 1 << 11  # the same for a single query, whose matrix products have planned layouts
MAX_OPERANDS = 32  # numpy.einsum takes at most 64 operands; larger steps are grouped
MERGE_MAX = 256  # a single query's step takes in a deferred one if its loop stays this small

SUM, MAX = 0, 1  # step kinds (column 1 of ``steps``)
POSTERIOR, EVIDENCE, MAP = 0, 1, 2  # query modes
SATURATED = (1 << 63) - 1  # table sizes stop here


def _times(a: int, b: int) -> int:
    """``a * b`` saturated at ``SATURATED``."""
    return min(a * b, SATURATED)


def _entries(cards: list[int], variables: list[int]) -> int:
    """Entries of a table over ``variables`` (saturated)."""
    return min(math.prod([cards[v] for v in variables]), SATURATED)


def _bits(ids: list[int]) -> int:
    """The bitset of the ids ``ids``."""
    out = 0
    for i in ids:
        out |= 1 << i
    return out


def matmul_layout(a: Sequence, b: Sequence, result: Sequence, size: Any) -> tuple | None:
    """The axis moves that turn the einsum ``a,b->result`` into one (batched) matrix product,
    or ``None`` unless each operand keeps a variable the other lacks (a table times a vector
    over some of its axes gains nothing from BLAS once copied into matmul's order).

    ``a``, ``b``, ``result``: the variables (or labels) of the operands' and the result's axes;
    ``size[v]``: entries along ``v``. Variables of both operands and the result are the batch
    ``P``, of both but not the result the contraction ``K``; ``a``'s other kept variables are
    ``M``, ``b``'s ``N``; those of one operand only that the result lacks are summed out of it
    first. Returns ``(sum_a, perm_a, shape_a, sum_b, perm_b, shape_b, shape_out, perm_out)``,
    tuples of int, as :func:`kernels.reference.factor.factor_contract` takes them.
    """
    batch, left, right = [], [], []
    for c in result:
        if c in a:
            (batch if c in b else left).append(c)
        elif c in b:
            right.append(c)
    if not left or not right:
        return None
    inner, kept_a, sum_a = [], [], []
    for i, c in enumerate(a):
        if c in b:
            kept_a.append(c)
            if c not in result:
                inner.append(c)
        elif c in result:
            kept_a.append(c)
        else:
            sum_a.append(i)
    kept_b = [c for c in b if c in a or c in result]
    sum_b = [i for i, c in enumerate(b) if c not in a and c not in result]
    m, k, n = (math.prod([size[c] for c in part]) for part in (left, inner, right))
    order = batch + left + right
    head = (math.prod([size[c] for c in batch]),) if batch else ()
    return (
        tuple(sum_a),
        tuple([kept_a.index(c) for c in batch + left + inner]),
        (*head, m, k),
        tuple(sum_b),
        tuple([kept_b.index(c) for c in batch + inner + right]),
        (*head, k, n),
        tuple([size[c] for c in order]),
        tuple([order.index(c) for c in result]),
    )


def encode_layout(layout: tuple | None) -> list[int]:
    """A :func:`matmul_layout` as ints: each of its eight tuples as its length, then its
    entries (empty for ``None``)."""
    if layout is None:
        return []
    return [x for part in layout for x in (len(part), *part)]


class _Refused(Exception):
    """A step would build a table over the bounds: ``var`` (``-1`` for a product), its
    ``size`` in entries and the bitset ``union`` of its variables."""

    def __init__(self, var: int, size: int, union: int) -> None:
        super().__init__(var, size, union)
        self.var, self.size, self.union = var, size, union


class _Pending(NamedTuple):
    """One einsum: the step as it will be emitted (a sum step waits in this form)."""

    operands: list[int]  # slots, each an input or an emitted step's result
    var: int  # the variable eliminated (the last, when a chain); -1 for a product
    outs: tuple[int, ...]  # variables of the result, axis order (case axis excluded)
    case: bool  # the result has a case axis
    union: int  # bitset of the variables of the loop
    summed: int  # entries along the axes it sums out
    blas: bool  # a BLAS candidate


class _Emitted(NamedTuple):
    """One emitted step, the row of the arrays ``plan_steps`` returns."""

    var: int
    op: int
    case: bool
    blas: bool
    operands: list[int]  # positions
    outs: tuple[int, ...]
    union: list[int]  # loop variables, ascending
    spec: str
    gemm: list[int]  # the encoded matmul layout of a BLAS step without case axis, or []


class _Settings(NamedTuple):
    """The bounds of a plan, read from the problem array (see "Settings")."""

    max_operands: int  # most operands of one einsum; more are grouped first
    pairwise_min: int  # a step of this many entries or more is split into pairwise products
    matmul_min: int  # a two-operand matrix product of this many entries or more: BLAS
    merge_max: int  # a deferred step merges into its user while the loop stays this small


class _Planner:
    """The slots of one plan and the steps emitted so far (see the module docstring).

    ``scopes``, ``axes``, ``cases`` and ``position`` (``-1`` while deferred) by slot;
    ``holders[v]``: bitset of the slots that mention variable ``v`` (live or not);
    ``pending``: the deferred sum steps by the slot of their result.
    """

    def __init__(self, cards: list[int], limit: int, single: bool, settings: _Settings) -> None:
        self.cards, self.limit, self.settings = cards, limit, settings
        self.batch = not single  # only a batch has case axes
        self.every = (1 << len(cards)) - 1
        self.scopes: list[int] = []
        self.axes: list[tuple[int, ...]] = []
        self.cases: list[bool] = []
        self.position: list[int] = []
        self.holders = [0] * len(cards)
        self.live = 0
        self.pending: dict[int, _Pending] = {}
        self.emitted: list[_Emitted] = []
        self.tables = 0  # positions taken so far
        self.width, self.biggest = 0, 1

    def _new_slot(self, axes: tuple[int, ...], scope: int, case: bool, position: int) -> int:
        slot = len(self.scopes)
        self.scopes.append(scope)
        self.axes.append(axes)
        self.cases.append(case)
        self.position.append(position)
        self.live |= 1 << slot
        for u in axes:
            self.holders[u] |= 1 << slot
        return slot

    def add_input(self, axes: tuple[int, ...], case: bool) -> None:
        """Make an input table (``axes``: its variables in axis order) the next slot."""
        self._new_slot(axes, _bits(list(axes)), self.batch and case, self.tables)
        self.tables += 1

    def eliminate(self, var: int, op: int) -> None:
        """Sum (``op=SUM``) or maximise (``op=MAX``) ``var`` out of the live slots."""
        self.product(self.holders[var] & self.live, self.every & ~(1 << var), op, var)

    def finish(self, out: list[int]) -> None:
        """Multiply the live slots into the variables ``out`` (that axis order); emit all."""
        if self.live:
            self.product(self.live, _bits(out), SUM, -1, out)
            self._flush(len(self.scopes) - 1)

    def product(
        self, used: int, keep: int, op: int, var: int, outs: list[int] | None = None
    ) -> None:
        """Add the step(s) multiplying the slots of bitset ``used`` and keeping, of their
        variables, those of bitset ``keep`` (a max step: maximising out ``var``, the only
        one it drops). The result's axes follow ``outs`` if given, else ascending ids."""
        slots = _members(used)
        most = self.settings.max_operands
        while len(slots) > most:  # a product of each leading group first
            self.product(_bits(slots[:most]), self.every, SUM, -1)
            slots = slots[most:] + [len(self.scopes) - 1]
        union = 0
        for s in slots:
            union |= self.scopes[s]
        if outs is None:
            outs = _members(union & keep)
        summed = _entries(self.cards, _members(union & ~keep))
        size = _times(_entries(self.cards, outs), summed)
        if size >= self.settings.pairwise_min and len(slots) > 2:
            spared = union & keep | (1 << var if op == MAX else 0)
            self._pair(slots, spared)  # replaces the pair by its product's slot
            self.product(_bits(slots), keep, op, var, outs)
            return
        if size > self.limit or union.bit_count() > len(LETTERS):
            raise _Refused(var, size, union)
        self.width = max(self.width, union.bit_count() - 1)
        self.biggest = max(self.biggest, size)
        case = True in [self.cases[s] for s in slots]
        blas = op == SUM and len(slots) == 2 and size >= self.settings.matmul_min
        blas = blas and self._is_gemm(*slots)
        step = self._absorb(slots, var, tuple(outs), case, op, size, summed, blas)
        self.live &= ~_bits(slots)
        target = self._new_slot(tuple(outs), union & keep, case, -1)
        if op == SUM:
            self.pending[target] = step
        else:
            self._emit(target, step, op)

    def _is_gemm(self, a: int, b: int) -> bool:
        """Whether each of slots ``a`` and ``b`` has a variable the other lacks: a matrix
        product (a table times a vector over some of its axes is not)."""
        only_a = self.scopes[a] & ~self.scopes[b]
        return bool(only_a and self.scopes[b] & ~self.scopes[a])

    def _pair(self, slots: list[int], spared: int) -> None:
        """Emit the product of the pair of ``slots`` whose union spans the fewest entries,
        keeping ``spared`` and what the other slots mention, and put its slot in place of the
        pair in ``slots`` (last)."""
        best = None
        for i, a in enumerate(slots):
            for b in slots[i + 1 :]:
                size = _entries(self.cards, _members(self.scopes[a] | self.scopes[b]))
                if best is None or size < best[0]:
                    best = (size, a, b)
        _, a, b = best
        slots.remove(a)
        slots.remove(b)
        needed = spared
        for s in slots:
            needed |= self.scopes[s]
        self.product(1 << a | 1 << b, needed, SUM, -1)
        slots.append(len(self.scopes) - 1)

    def _absorb(
        self,
        slots: list[int],
        var: int,
        outs: tuple[int, ...],
        case: bool,
        op: int,
        size: int,
        summed: int,
        blas: bool,
    ) -> _Pending:
        """The einsum of a step over ``slots`` (``size`` entries, ``summed`` of them along the
        summed axes): each deferred operand is merged (its operands taken in) when the step
        can take it, else emitted first."""
        operands: list[int] = []
        union = 0
        for i, s in enumerate(slots):
            d = self.pending.get(s)
            if d is not None:
                if op == SUM and len(slots) == 1:  # a chain of reductions: one pass
                    del self.pending[s]
                    return d._replace(
                        var=var, outs=outs, case=case, summed=_times(d.summed, summed)
                    )
                grown = _times(size, d.summed)
                fits = len(operands) + len(d.operands) + len(slots) - i - 1
                fits = fits <= self.settings.max_operands
                if op == SUM and grown <= self.settings.merge_max and fits:  # small: one einsum
                    del self.pending[s]
                    operands += d.operands
                    union |= d.union
                    size, summed, blas = grown, _times(summed, d.summed), False
                    continue
                self._flush(s)
            operands.append(s)
            union |= self.scopes[s]
        return _Pending(operands, var, outs, case, union, summed, blas)

    def _flush(self, slot: int) -> None:
        """Emit the deferred step whose result is ``slot``, if it still waits."""
        step = self.pending.pop(slot, None)
        if step is not None:
            self._emit(slot, step, SUM)

    def _emit(self, slot: int, step: _Pending, op: int) -> None:
        """Emit ``step`` (kind ``op``) as the step whose result is ``slot``."""
        loop = _members(step.union)
        letter = {v: LETTERS[i] for i, v in enumerate(loop)}

        def labels(s: int) -> str:
            return "".join([letter[v] for v in self.axes[s]]) + (CASE if self.cases[s] else "")

        result = (letter[step.var] if op == MAX else "") + labels(slot)
        spec = ",".join([labels(s) for s in step.operands]) + "->" + result
        operands = [self.position[s] for s in step.operands]
        self.position[slot] = self.tables
        self.tables += 1
        blas, gemm = step.blas, []
        if blas and not step.case:  # a matrix product: its axis moves planned once
            a, b = (self.axes[s] for s in step.operands)
            gemm = encode_layout(matmul_layout(a, b, self.axes[slot], self.cards))
            blas = bool(gemm)
        self.emitted.append(
            _Emitted(step.var, op, step.case, blas, operands, step.outs, loop, spec, gemm)
        )


PROBLEM_HEADER = 11  # entries before the tables in a problem array
PLAN_HEADER = 7  # entries before ``order`` in a plan array


def pack_problem(
    tables: Sequence[Sequence[int]],
    cases: Sequence[bool] | None,
    query: Sequence[int],
    elim: Sequence[int],
    heuristic: int,
    mode: int,
    single: bool,
    limit: int,
    *,
    max_operands: int = MAX_OPERANDS,
    pairwise_min: int = PAIRWISE_MIN,
    matmul_min: int | None = None,
    merge_max: int | None = None,
) -> np.ndarray:
    """The int64 problem array of :func:`plan_steps`: ``[F, Q, E, heuristic, mode, single,
    limit, max_operands, pairwise_min, matmul_min, merge_max]``, then ``axes_off`` (F+1),
    ``axes`` (A), ``cases`` (F, 0/1), ``query`` (Q) and ``elim`` (E) (see :func:`plan_steps`
    for their meaning; ``cases=None``: no case axes).

    The settings default to ``MAX_OPERANDS``, ``PAIRWISE_MIN``, ``GEMM_MIN`` (a single case)
    or ``BLAS_MIN`` (a batch), and ``MERGE_MAX`` (a single case) or 0 (a batch).
    """
    if matmul_min is None:
        matmul_min = GEMM_MIN if single else BLAS_MIN
    if merge_max is None:
        merge_max = MERGE_MAX if single else 0  # a batch's cases multiply any loop
    header = [len(tables), len(query), len(elim), heuristic, mode, int(single), limit]
    header += [max_operands, pairwise_min, matmul_min, merge_max]
    offsets = [0]
    for t in tables:
        offsets.append(offsets[-1] + len(t))
    return np.array(
        header
        + offsets
        + [v for t in tables for v in t]
        + ([0] * len(tables) if cases is None else [int(c) for c in cases])
        + list(query)
        + list(elim),
        np.int64,
    )


def fused_step_spec(
    tables: Sequence[Sequence[int]], cards: Sequence[int], query: Sequence[int], limit: int
) -> str | None:
    """The einsum spec of the one step :func:`plan_steps` plans for a single case without
    eliminations (``elim`` empty, ``heuristic`` -1, default settings): every table multiplied
    into the query's axes. Built without the planner, whose fixed cost exceeds this one step.

    Parameters
    ----------
    tables : sequence of sequence of int
        Each input table's variable ids in axis order (F tables).
    cards : sequence of int
        Cardinality by variable id.
    query : sequence of int
        The query variables, in the result's axis order.
    limit : int
        The largest table the step may build.

    Returns
    -------
    str or None
        The spec, or ``None`` where the planner would not make that one step: no tables, more
        than ``MAX_OPERANDS`` of them, a loop of ``PAIRWISE_MIN`` entries or more (it may be
        split pairwise), above ``limit`` or over more than ``len(LETTERS)`` variables (refused).
    """
    loop: set[int] = set()
    for axes in tables:
        loop.update(axes)
    size = math.prod([cards[v] for v in loop])
    too_many = len(tables) > MAX_OPERANDS or len(loop) > len(LETTERS)
    if not tables or too_many or size >= PAIRWISE_MIN or size > limit:
        return None
    letter = {v: LETTERS[i] for i, v in enumerate(sorted(loop))}
    spec = ",".join(["".join([letter[v] for v in axes]) for axes in tables])
    return spec + "->" + "".join([letter[v] for v in query])


def _unpack_problem(problem: np.ndarray) -> tuple:
    """``(tables, cases, query, elim, heuristic, mode, single, limit, settings)`` of a
    problem array."""
    flat = np.asarray(problem).tolist()
    if len(flat) < PROBLEM_HEADER:
        raise ValueError(f"a problem array has at least {PROBLEM_HEADER} entries; got {len(flat)}")
    n_tables, n_query, n_elim, heuristic, mode, single, limit = flat[:7]
    settings = _Settings(*flat[7:PROBLEM_HEADER])
    offsets = flat[PROBLEM_HEADER : PROBLEM_HEADER + n_tables + 1]
    at = PROBLEM_HEADER + n_tables + 1
    if (
        len(offsets) != n_tables + 1
        or offsets[0] != 0
        or any(b < a for a, b in zip(offsets, offsets[1:]))
    ):
        raise ValueError(f"axes_off must rise from 0 over F+1 = {n_tables + 1} entries: {offsets}")
    axes = flat[at : at + offsets[-1]]
    at += offsets[-1]
    cases, query = flat[at : at + n_tables], flat[at + n_tables : at + n_tables + n_query]
    elim = flat[at + n_tables + n_query :]
    if len(axes) != offsets[-1] or len(cases) != n_tables or len(query) != n_query:
        raise ValueError("the problem array is shorter than its header says")
    if len(elim) != n_elim:
        raise ValueError(f"the problem array holds {len(elim)} eliminations, its header {n_elim}")
    tables = [axes[offsets[f] : offsets[f + 1]] for f in range(n_tables)]
    return (
        tables,
        [bool(c) for c in cases],
        query,
        elim,
        heuristic,
        mode,
        bool(single),
        limit,
        settings,
    )


def _pack_plan(info: list[int], order: list[int], rows: list, groups: list[list]) -> np.ndarray:
    """The int64 plan array: ``info`` (5), ``S``, ``len(order)``, ``order``, ``rows`` (4 per
    step), then each group of int sequences as its offsets (relative to the group's values,
    ``len(group) + 1``) followed by its values."""
    out = [*info, len(rows), len(order), *order]
    for row in rows:
        out += row
    for group in groups:
        at = [0]
        for seq in group:
            at.append(at[-1] + len(seq))
        out += at
        for seq in group:
            out += seq
    return np.array(out, np.int64)


def _check(
    axes: list,
    offsets: list,
    n_tables: int,
    cards: list,
    query: list,
    elim: list,
    flags: tuple,
    settings: _Settings,
) -> None:
    """Raise ``ValueError`` naming the first inconsistency of the inputs of ``plan_steps``."""
    heuristic, mode, limit = flags
    n = len(cards)
    if len(offsets) != n_tables + 1 or offsets[0] != 0 or offsets[-1] != len(axes):
        raise ValueError(
            f"axes_off must have F+1 = {n_tables + 1} entries from 0 to len(axes) = "
            f"{len(axes)}; got {offsets}"
        )
    if any(b < a for a, b in zip(offsets, offsets[1:])):
        raise ValueError(f"axes_off must not decrease; got {offsets}")
    for name, ids in (("axes", axes), ("query", query), ("elim", elim)):
        bad = [v for v in ids if not 0 <= v < n]
        if bad:
            raise ValueError(f"{name} holds variable ids outside [0, {n}): {bad}")
    for f in range(n_tables):
        table = axes[offsets[f] : offsets[f + 1]]
        if len(set(table)) != len(table):
            raise ValueError(f"table {f} repeats a variable: {table}")
    for name, ids in (("query", query), ("elim", elim)):
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name} repeats a variable: {ids}")
    if any(c < 1 for c in cards):
        raise ValueError(f"cards must be positive; got {cards}")
    if heuristic not in (-1, 0, 1, 2) or mode not in (POSTERIOR, EVIDENCE, MAP):
        raise ValueError(f"heuristic must be -1..2 and mode 0..2; got {heuristic}, {mode}")
    if not 0 <= limit < SATURATED:
        raise ValueError(f"limit must be in [0, 2**63 - 1); got {limit}")
    if not 2 <= settings.max_operands <= 64 or min(settings) < 0:
        raise ValueError(
            f"max_operands must be in [2, 64] and the other settings >= 0; got {settings}"
        )


def plan_steps(problem: np.ndarray, cards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn an elimination order into einsum steps over the input tables.

    Parameters
    ----------
    problem : ndarray of int64, shape (P,)
        :func:`pack_problem` of:

        - ``tables``: each input table's variable ids in axis order (case axis excluded;
          empty: a scalar table), F tables;
        - ``cases``: whether each table has a trailing case axis (read only for a batch);
        - ``query``: the query variables, in the result's axis order;
        - ``elim``: the elimination order, used when ``heuristic < 0``; empty then: no
          eliminations one by one, only the final product (a fused plan);
        - ``heuristic``: ``-1`` use ``elim``; ``0`` min degree, ``1`` min fill, ``2`` weighted
          min fill: order the hidden variables (those of the tables not in ``query``) by
          :func:`kernels.reference.planning.greedy_order` on the interaction graph of the
          tables, then, for MAP, the query variables;
        - ``mode``: ``0`` posterior (the result is over ``query``), ``1`` evidence (a scalar),
          ``2`` MAP (the first ``n_hidden`` eliminations sum, the rest maximise; a scalar);
        - ``single``: a plan for one case (small steps merged, no case axes) or a batch;
        - ``limit``: the largest table (entries per case) a step may build, in
          ``[0, 2**63 - 1)``;
        - the settings ``max_operands`` (in ``[2, 64]``), ``pairwise_min``, ``matmul_min``
          and ``merge_max`` (see the module docstring).
    cards : ndarray of int64, shape (V,)
        Cardinality by variable id.

    Returns
    -------
    plan : ndarray of int64, shape (R,)
        In order (``S`` steps):

        - ``[status, width, biggest, err_var, err_size]``: ``width`` the most variables of one
          step's table minus one (at least ``Q - 1``), ``biggest`` its most entries (at least
          the query's). ``status`` 0: ok (``err_var = err_size = 0``); 1: a step would build a
          table of more than ``limit`` entries or over more than ``len(LETTERS)`` variables:
          ``err_var`` the variable being eliminated (``-1`` for a product), ``err_size`` that
          table's entries (saturated), and the steps stop before it;
        - ``S``, then ``E'`` and the order: the variables eliminated (``elim`` when
          ``heuristic < 0``);
        - per step ``[var or -1, op (0 sum, 1 max), case axis (0/1), blas (0/1)]``; ``blas``:
          a BLAS candidate (see the module docstring) that is a matrix product when it has
          no case axis (its layout is then in the last group);
        - four groups of int sequences, each as ``S + 1`` offsets (relative to the group's
          values) followed by its values: per step its operands as positions (inputs ``0 ..
          F-1``, then step ``j``'s result at ``F + j``); its result variables in axis order
          (case axis excluded); its loop variables, ascending (with status 1 one more
          sequence: the variables of the refused table, so ``S + 2`` offsets); its matmul
          layout (:func:`matmul_layout` of its two operands' and its result's axes, encoded
          by :func:`encode_layout`), empty unless a BLAS step without case axis.
    spec : ndarray of uint8, shape (bytes,)
        The steps' einsum specs in ASCII, joined by ``;`` (empty without steps); variables
        renamed per step (see the module docstring).

    Raises
    ------
    ValueError
        Naming the inconsistency: a problem array that does not hold what its header says,
        offsets that do not rise, ids outside ``[0, V)``, a variable repeated in a table,
        ``query`` or ``elim``, a card below 1, an unknown ``heuristic`` or ``mode``, a
        ``limit`` or a setting out of range.
    """
    unpacked = _unpack_problem(problem)
    tables, case_l, query_l, elim_l, heuristic, mode, single, limit, settings = unpacked
    card_l = np.asarray(cards).tolist()
    axes_l = [v for t in tables for v in t]
    offsets = [0]
    for t in tables:
        offsets.append(offsets[-1] + len(t))
    flags = (heuristic, mode, limit)
    _check(axes_l, offsets, len(case_l), card_l, query_l, elim_l, flags, settings)
    plan = _Planner(card_l, limit, single, settings)
    adj = [0] * len(card_l)  # the interaction graph, closed neighbourhoods
    kept = _bits(query_l)
    for table, case in zip(tables, case_l, strict=True):
        plan.add_input(tuple(table), case)
        scope = _bits(table)
        kept |= scope
        for u in table:
            adj[u] |= scope
    hidden = kept & ~_bits(query_l)
    if heuristic >= 0:
        stages = [hidden, _bits(query_l)] if mode == MAP else [hidden]
        width = (len(card_l) + 7) // 8
        rows = [s.to_bytes(width, "little") for s in adj + stages]
        grid = np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), width)
        elim_l = greedy_order(
            grid[: len(adj)], grid[len(adj) :], np.asarray(card_l, np.int64), heuristic
        ).tolist()
    plan.width, plan.biggest = len(query_l) - 1, _entries(card_l, query_l)
    refused = None
    try:
        for k, v in enumerate(elim_l):
            plan.eliminate(v, MAX if mode == MAP and k >= hidden.bit_count() else SUM)
        plan.finish(query_l if mode == POSTERIOR else [])
    except _Refused as err:
        refused = err
    done = plan.emitted
    info = [0, plan.width, plan.biggest, 0, 0]
    unions = [s.union for s in done]
    if refused is not None:
        info[0], info[3], info[4] = 1, refused.var, refused.size
        unions.append(_members(refused.union))
    rows = [[s.var, s.op, int(s.case), int(s.blas)] for s in done]
    groups = [[s.operands for s in done], [s.outs for s in done], unions, [s.gemm for s in done]]
    spec = np.frombuffer(";".join([s.spec for s in done]).encode("ascii"), np.uint8).copy()
    return _pack_plan(info, elim_l, rows, groups), spec
