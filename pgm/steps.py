"""Elimination steps: an order of eliminations turned into einsum calls.

A *slot* is a table of a plan (an input factor or a step's result); sets of variables or of
slots are Python-int bitsets (bit ``v``: variable or slot ``v``). :class:`StepBuilder` turns
each elimination into an einsum over the slots that mention the variable: grouped when there
are more operands than numpy takes, split into pairwise products when large, sent through BLAS
when a large matrix product, and merged with the step before when that saves a call or a pass
(see :class:`StepBuilder`). A matrix product without a case axis gets its axis moves planned
once (:func:`gemm_layout`): the executor then makes one ``numpy.matmul`` call.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from pgm.errors import TableSizeError
from pgm.ordering import bit_list

CASE = "Z"  # the einsum label of a batch's case axis
LABELS = string.ascii_letters.replace(CASE, "")
SUM, MAX = "sum", "max"
PAIRWISE_MIN = 1 << 12  # steps with tables this large are split into pairwise products
BLAS_MIN = 1 << 14  # a batch's pairwise sum steps this large that are matrix products: BLAS
GEMM_MIN = 1 << 11  # the same for a single query, whose matrix products have planned layouts
MAX_OPERANDS = 32  # numpy.einsum takes at most 64 operands; larger steps are grouped
MERGE_MAX = 256  # a single query's step takes in a deferred one if its loop stays this small


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
    groups the operands of a step that has more than ``MAX_OPERANDS``, splits a large step
    pairwise, or computes the final product over the query variables).
    """

    var: int | None  # the variable eliminated
    operands: tuple[int, ...]  # positions among the executor's tables: inputs, then results
    spec: str
    op: str
    out_scope: tuple[int, ...]  # variable ids of the result, axis order (case axis excluded)
    has_case: bool
    blas: bool  # contract through BLAS: large matrix products
    gemm: tuple | None  # a blas step without case axis: its planned matmul layout


def _is_gemm(scopes: Sequence[int], pair: Sequence[int]) -> bool:
    """Whether each slot of ``pair`` has a variable the other lacks: a matrix product, which
    numpy's planned einsum runs through BLAS. A table times a vector over some of its axes is
    not: the planned path then copies the table into a transposed order first."""
    a, b = scopes[pair[0]], scopes[pair[1]]
    return bool(a & ~b and b & ~a)


def gemm_layout(subs_a: str, subs_b: str, result: str, size: dict[str, int]) -> tuple | None:
    """The layout that :func:`kernels.reference.factor.factor_contract` takes for the einsum
    ``subs_a,subs_b->result`` (``size``: entries along each label), or ``None`` unless both
    operands keep a label the other lacks (a matrix-vector product gains nothing from BLAS
    over einsum's loop once its table is copied into matmul's order).

    Labels of both operands and the result are the batch ``P``, of both but not the result the
    contraction ``K``; ``a``'s other kept labels are ``M``, ``b``'s ``N``; labels of one operand
    only that the result lacks are summed out of it first.
    """
    batch, left, right = [], [], []
    for c in result:
        if c in subs_a:
            (batch if c in subs_b else left).append(c)
        elif c in subs_b:
            right.append(c)
    if not left or not right:
        return None
    inner, kept_a, sum_a = [], [], []
    for i, c in enumerate(subs_a):
        if c in subs_b:
            kept_a.append(c)
            if c not in result:
                inner.append(c)
        elif c in result:
            kept_a.append(c)
        else:
            sum_a.append(i)
    kept_b = [c for c in subs_b if c in subs_a or c in result]
    sum_b = [i for i, c in enumerate(subs_b) if c not in subs_a and c not in result]
    m = k = n = 1
    for c in left:
        m *= size[c]
    for c in inner:
        k *= size[c]
    for c in right:
        n *= size[c]
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


class _Deferred(NamedTuple):
    """A step before it is emitted. A sum step waits in this form until its result is used:
    the step that uses it may take its operands instead (one einsum for both), or emit it
    first."""

    operands: list[int]  # slots, each an input or an emitted step's result
    subs: list[str]  # their einsum labels
    var: int | None
    out_scope: tuple[int, ...]
    case: bool
    union: int  # bitset of the variables of its loop
    size: int  # entries of its loop
    summed: int  # entries along the axes it sums out
    blas: bool


class StepBuilder:
    """Turns an elimination order into steps.

    A *slot* is a table of the plan (an input factor or a step's result): ``scopes[s]`` is the
    bitset of its variables, ``subs[s]`` its einsum labels in axis order (the case label last
    when ``cases[s]``: it has a case axis). ``live`` is the bitset of the slots not yet
    multiplied into a step; ``holders[v]`` that of the slots that mention variable ``v`` (live
    or not), and ``adj[v]`` the union of the scopes of the input slots that mention ``v`` (the
    interaction graph as closed neighbourhoods, for ordering).

    A sum step is *deferred* until its result is used. The using step then takes the deferred
    operands into its own einsum when that loops over at most ``MERGE_MAX`` entries (small
    tables: one call instead of two) or when it only sums axes out of that one result (a chain
    of reductions: one pass over the large table instead of several); otherwise the deferred
    step is emitted first. ``position[s]`` is the index of slot ``s`` among the tables the
    executor holds (inputs first, then the emitted steps' results), ``-1`` while not emitted.
    """

    def __init__(
        self,
        cards: Sequence[int],
        names: Sequence[Any],
        labels: Sequence[str],
        limit: int,
        single: bool,
        sizes: dict[str, int] | None = None,
    ) -> None:
        """``cards``, ``names`` and ``labels`` (einsum labels, one character each) by variable
        id; ``limit``: the largest table allowed; ``single``: a plan for one case; ``sizes``:
        the cardinality at each label (built here if not given; a model may keep one)."""
        self.cards, self.names, self.labels, self.limit = cards, names, labels, limit
        self.sizes = dict(zip(labels, cards, strict=True)) if sizes is None else sizes
        self.merge_max = MERGE_MAX if single else 0  # a batch's cases multiply any loop
        self.blas_min = GEMM_MIN if single else BLAS_MIN
        self.batch = not single  # only a batch has case axes
        self.wide = len(names) > len(LABELS)
        self.scopes: list[int] = []
        self.subs: list[str] = []
        self.cases: list[bool] = []
        self.position: list[int] = []
        self.tables = 0  # tables the executor will hold so far
        self.deferred: dict[int, _Deferred] = {}
        self.holders = [0] * len(names)
        self.adj = [0] * len(names)
        self.live = 0
        self.steps: list[Step] = []
        self.width, self.biggest = 0, 1

    def add(
        self, scope: int, variables: Sequence[int], labels: str, case: bool, graph: bool = True
    ) -> None:
        """Make an input factor a slot: ``scope`` the bitset of its variables, ``variables``
        their ids, ``labels`` their einsum labels in axis order, ``case`` whether it has a
        case axis (last). ``graph=False`` when no variable will be eliminated one by one
        (``holders`` and ``adj`` are then not needed)."""
        bit = 1 << len(self.scopes)
        self.position.append(self.tables)
        self.tables += 1
        self.scopes.append(scope)
        self.subs.append(labels + CASE if case else labels)
        self.cases.append(case)
        self.live |= bit
        if graph:
            holders, adj = self.holders, self.adj
            for u in variables:
                holders[u] |= bit
                adj[u] |= scope

    def eliminate(self, var: int, op: str) -> None:
        self.emit(self.holders[var] & self.live, 1 << var, op, var)

    def finish(self, out: list[int]) -> None:
        """Multiply the slots still live into the variables ``out`` (in that axis order) and
        emit that last step."""
        if self.live:
            self.emit(self.live, ~bits(out), SUM, None, out)
            last = len(self.scopes) - 1
            if last in self.deferred:
                self._flush(last)

    def _flush(self, s: int) -> None:
        """Emit the deferred step whose result is slot ``s``."""
        self._append(s, self.deferred.pop(s), SUM, self.subs[s])

    def _append(self, s: int, step: _Deferred, op: str, result: str) -> None:
        """Emit ``step`` (``op`` its kind, ``result`` its output labels) as the step whose
        result is slot ``s``."""
        spec = ",".join(step.subs) + "->" + result
        if self.wide:  # letters for this step's variables
            letters = zip(bit_list(step.union), LABELS, strict=False)
            spec = spec.translate({ord(self.labels[u]): c for u, c in letters})
        position = self.position
        operands = tuple([position[o] for o in step.operands])
        position[s] = self.tables
        self.tables += 1
        gemm = None
        if step.blas and not step.case:
            gemm = gemm_layout(*step.subs, result, self.sizes)
        blas = step.blas and (gemm is not None or step.case)
        self.steps.append(
            Step(step.var, operands, spec, op, step.out_scope, step.case, blas, gemm)
        )

    def _pair(self, used: list[int], keep: int) -> tuple[int, int, str, None]:
        """Replace in ``used`` the pair of slots whose product spans the fewest entries by the
        slot of their product, and return the ``emit`` arguments of that product (it keeps
        ``keep`` and what the other operands mention, and sums out the rest)."""
        best = None
        for i, a in enumerate(used):
            for b in used[i + 1 :]:
                size = table_size(self.cards, self.scopes[a] | self.scopes[b])
                if best is None or size < best[0]:
                    best = (size, a, b)
        _, a, b = best
        used.remove(a)
        used.remove(b)
        needed = keep
        for s in used:
            needed |= self.scopes[s]
        used.append(len(self.scopes))  # the slot the pair's product will occupy
        return 1 << a | 1 << b, ~needed, SUM, None

    def emit(
        self, used_bits: int, drop: int, op: str, var: int | None, outs: list | None = None
    ) -> None:
        """Add the step(s) multiplying the slots of bitset ``used_bits`` and summing (or,
        ``op=MAX``, maximising ``var``) out the variables of bitset ``drop``: grouped products
        first if there are more than ``MAX_OPERANDS``, pairwise products first if the step is
        large. The result's axes follow ``outs`` if given, else ascending variable ids."""
        used = bit_list(used_bits)
        if len(used) > MAX_OPERANDS:
            while len(used) > MAX_OPERANDS:
                group, used = used[:MAX_OPERANDS], used[MAX_OPERANDS:]
                self.emit(bits(group), 0, SUM, None)
                used.append(len(self.scopes) - 1)
            used_bits = bits(used)
        scopes, cards, holders = self.scopes, self.cards, self.holders
        union = 0
        for s in used:
            union |= scopes[s]
        if outs is None:
            outs = bit_list(union & ~drop)
        summed = union & drop
        if summed & (summed - 1):
            summed_size = table_size(cards, summed)
        else:  # one variable (or none)
            summed_size = cards[summed.bit_length() - 1] if summed else 1
        out_size = 1
        for u in outs:
            out_size *= cards[u]
        size = out_size * summed_size
        if size >= PAIRWISE_MIN and len(used) > 2:
            self.emit(*self._pair(used, union & ~drop | (1 << var if op == MAX else 0)))
            self.emit(bits(used), drop, op, var, outs)
            return
        width = union.bit_count() - 1
        if size > self.limit or width >= len(LABELS):
            what = f"eliminating {self.names[var]!r}" if var is not None else "a product"
            raise TableSizeError(
                f"{what} would build a table of {size} entries over "
                f"{[self.names[u] for u in bit_list(union)]}, above max_table_size="
                f"{self.limit} (or over {len(LABELS)} variables); raise it or choose another "
                "elimination order"
            )
        if width > self.width:
            self.width = width
        if size > self.biggest:
            self.biggest = size
        case = self.batch and True in [self.cases[s] for s in used]
        labels = self.labels
        subs = (
            "".join([labels[u] for u in outs]) + CASE
            if case
            else "".join([labels[u] for u in outs])
        )
        blas = op == SUM and len(used) == 2 and size >= self.blas_min and _is_gemm(scopes, used)
        operands, op_subs, loop = self._absorb(used, op, size, summed_size, blas)
        target = len(scopes)
        bit = 1 << target
        self.live = self.live & ~used_bits | bit
        for u in outs:
            holders[u] |= bit
        scopes.append(union & ~drop)
        self.subs.append(subs)
        self.cases.append(case)
        self.position.append(-1)
        step = _Deferred(operands, op_subs, var, tuple(outs), case, *loop)
        if op == SUM:
            self.deferred[target] = step
        else:  # max-product: the first axis is var's
            self._append(target, step, op, labels[var] + subs)

    def _absorb(
        self, used: list[int], op: str, size: int, summed_size: int, blas: bool
    ) -> tuple[list[int], list[str], tuple[int, int, int, bool]]:
        """The operands and their labels of a sum step over slots ``used`` (``size`` entries,
        of which ``summed_size`` along the summed axes): a deferred slot is replaced by its
        operands when the step can take them in; other deferred slots are emitted first.
        Also returns ``(loop union, loop size, summed size, blas)`` of the resulting einsum."""
        operands: list[int] = []
        subs: list[str] = []
        deferred, union = self.deferred, 0
        for i, s in enumerate(used):
            d = deferred.get(s)
            if d is not None:
                if op == SUM and len(used) == 1:  # it only sums axes out of that result:
                    del deferred[s]  # the same loop, in one pass
                    return d.operands, d.subs, (d.union, d.size, d.summed * summed_size, d.blas)
                grown = size * d.summed
                fits = len(operands) + len(d.operands) + len(used) - i - 1 <= MAX_OPERANDS
                if op == SUM and grown <= self.merge_max and fits:  # small: one einsum for both
                    del deferred[s]
                    operands += d.operands
                    subs += d.subs
                    union |= d.union
                    size, summed_size, blas = grown, summed_size * d.summed, False
                    continue
                self._flush(s)
            operands.append(s)
            subs.append(self.subs[s])
            union |= self.scopes[s]
        return operands, subs, (union, size, summed_size, blas)
