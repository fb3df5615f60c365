"""Exact inference by variable elimination: plan first, then execute.

A :class:`Plan` depends only on the structure of a query (the model version, which variables
are asked, which are observed in every case and which only in some, the elimination order); the
numbers of the evidence enter only at execution. A plan

1. prunes barren nodes (in a Bayesian network, those that are not ancestors of a query or
   evidence variable sum to one and are dropped),
2. sets apart the constant factors (whole scope observed): gathered in one ``take``, multiplied
   into ``probability_of_evidence``, only checked for zero by posterior queries,
3. prunes the parts of the graph that the evidence separates from the query (they only scale
   the answer; ``probability_of_evidence`` keeps them),
4. orders the remaining variables (:func:`pgm.ordering.greedy_order` or an explicit list), unless
   a small single query is fused into one einsum,
5. turns each elimination step into one einsum over the factors that mention the variable
   (grouped when there are more operands than numpy takes).

Execution gathers every factor's evidence slice for all cases at once (a trailing case axis
``N``) and runs the steps; a single query is a batch of one. A variable observed in only some
cases of a batch is kept in the graph with a per-case likelihood factor (ones where it is not
observed). Sum-product and max-product run the same steps and differ only in the kernel of a
step (max steps keep an argmax for traceback).

Zero-probability evidence is reported when it makes the answer undefined within the part of the
network that the plan keeps; evidence that is impossible only inside a part separated from the
query is not seen by a posterior query (``probability_of_evidence`` sees it).
"""

from __future__ import annotations

import math
import string
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

import kernels
from pgm.errors import (
    PGMError,
    TableSizeError,
    UnknownVariableError,
    ZeroProbabilityError,
)
from pgm.factor import Factor
from pgm.ordering import greedy_order, heuristic_cost
from pgm.states import state_index, state_indices

_CASE = "Z"
_LABELS = string.ascii_letters.replace(_CASE, "")
_SUM, _MAX = "sum", "max"
_PAIRWISE_MIN = 1 << 14  # steps with tables this large are split into pairwise products
_BLAS_MIN = 1 << 15  # pairwise sum steps this large contract through numpy's BLAS path
_MAX_OPERANDS = 32  # numpy.einsum takes at most 64 operands; larger steps are grouped
_FUSE_MAX = 1024  # single queries whose variables span at most this many entries: one einsum
_POSTERIOR, _EVIDENCE, _MAP = "posterior", "evidence", "map"


@dataclass(frozen=True)
class _Compiled:
    """A model as integer-indexed factors: the input of planning, rebuilt when ``version`` moves.

    ``parents`` is given for a Bayesian network (factor ``i`` is then the CPD of variable ``i``)
    and ``None`` for a Markov network.
    """

    version: int
    names: list
    index: dict
    cards: list[int]
    states: list[list[str]]
    scopes: list[tuple[int, ...]]
    tables: list[np.ndarray]
    parents: list[list[int]] | None
    factors_of: list[list[int]]  # variable id -> ids of the factors that mention it


def _compile(model: Any) -> _Compiled:
    model.check_model()
    if hasattr(model, "get_cpds"):
        cpds = model.get_cpds()
        names = [c.variable for c in cpds]
        states = [c.state_names[c.variable] for c in cpds]
        factors = [(c.variables, c.values) for c in cpds]
    else:
        states_of = model._variable_states()
        names = [n for n in model.nodes() if n in states_of]
        states = [states_of[n] for n in names]
        factors = [(f.variables, f.values) for f in model.get_factors()]
    index = {n: i for i, n in enumerate(names)}
    scopes = [tuple(index[v] for v in scope) for scope, _ in factors]
    factors_of: list[list[int]] = [[] for _ in names]
    for f, scope in enumerate(scopes):
        for v in scope:
            factors_of[v].append(f)
    return _Compiled(
        version=model.version,
        names=names,
        index=index,
        cards=[len(s) for s in states],
        states=states,
        scopes=scopes,
        tables=[np.asarray(t, dtype=np.float64) for _, t in factors],
        parents=[list(s[1:]) for s in scopes] if hasattr(model, "get_cpds") else None,
        factors_of=factors_of,
    )


class _Input(NamedTuple):
    """A model factor prepared for gathering: evidence axes last, flattened into one.

    Gathering gives the case axis ``N`` LAST: einsum's inner loop then runs along the cases
    (contiguous and long) rather than along a variable of two or three states.
    """

    table: np.ndarray
    evidence_pos: np.ndarray  # ids of the observed variables (columns of the evidence), int64
    strides: np.ndarray  # row-major strides of the flattened evidence axes, int64
    pairs: tuple[tuple[int, int], ...]  # (id, stride) as Python ints, for a single case


class _Constants(NamedTuple):
    """The factors whose whole scope is observed, gathered in one ``take``.

    Entry ``k`` of a case is ``flat[offsets[k] + strides[k] @ ev[pos[k], case]]`` (``pos``:
    variable ids; ``pos`` and ``strides`` padded with zero strides to one width).
    """

    flat: np.ndarray  # (sum of table sizes,) float64
    offsets: np.ndarray  # (K,) int64
    pos: np.ndarray  # (K, M) int64
    strides: np.ndarray  # (K, M) int64

    def product(self, ev: np.ndarray) -> np.ndarray:
        """``(N,)`` product of the constant factors of each case of ``ev`` ``(n_variables, N)``."""
        if not self.offsets.size:
            return np.ones(ev.shape[1])
        rows = self.offsets[:, None] + (ev[self.pos] * self.strides[:, :, None]).sum(axis=1)
        return np.take(self.flat, rows).prod(axis=0)


_NO_CONSTANTS = _Constants(
    np.ones(0), np.zeros(0, np.int64), np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64)
)


class _Step(NamedTuple):
    """One elimination: multiply the factors in ``operands``, sum or max out ``var``.

    A step with ``var=None`` only multiplies (it groups the operands of a step that has more
    than ``_MAX_OPERANDS``, or computes the final product over the query variables).
    """

    var: int | None  # the variable eliminated
    operands: tuple[int, ...]  # slot numbers
    spec: str
    op: str
    out_scope: tuple[int, ...]  # variable ids of the result (case axis excluded)
    has_case: bool
    blas: bool  # contract through numpy's planned (BLAS) path: large two-operand sum steps


@dataclass(frozen=True)
class Plan:
    """The structure of one query, reusable for any evidence values.

    Attributes
    ----------
    variables : tuple
        Query variables, in the order of the result's axes (sorted by ``str``).
    evidence : tuple
        Observed variables, in the order the executor reads their states: the fully observed
        ones, then the partially observed ones (``-1`` = not observed in a case).
    order : tuple
        Variables eliminated, in order (pruned variables are absent; a fused plan sums them
        all out in one step and lists them by model order).
    induced_width : int
        Largest number of variables in one step's table, minus one.
    max_table_size : int
        Largest number of entries of a table built by a step (per case).
    n_factors : int
        Factors the steps multiply (after pruning; constant factors excluded).
    n_constants : int
        Factors whose whole scope is observed: gathered once per case and checked for zero
        (posterior queries) or multiplied in (probability of evidence).
    """

    variables: tuple
    evidence: tuple
    order: tuple
    induced_width: int
    max_table_size: int
    n_factors: int
    n_constants: int
    mode: str = field(repr=False)
    query_ids: tuple[int, ...] = field(repr=False)
    evidence_ids: list[int] = field(repr=False)
    inputs: tuple[_Input, ...] = field(repr=False)
    constants: _Constants = field(repr=False)
    steps: tuple[_Step, ...] = field(repr=False)


class _StepBuilder:
    """Turns an elimination order into steps.

    A *slot* is a table of the plan (an input factor or a step's result): its scope (variable
    ids) and whether it has a case axis. ``holders`` maps each variable to the live slots that
    mention it, so a step finds its operands without scanning every slot.
    """

    def __init__(self, cm: _Compiled, limit: int, variables: Iterable[int]) -> None:
        self.cards, self.names, self.limit = cm.cards, cm.names, limit
        self.slots: list[tuple[tuple[int, ...], bool]] = []
        self.holders: dict[int, set[int]] = {v: set() for v in variables}
        self.live: set[int] = set()
        self.steps: list[_Step] = []
        self.width, self.biggest = 0, 1

    def add(self, scope: tuple[int, ...], case: bool) -> None:
        s = len(self.slots)
        self.slots.append((scope, case))
        self.live.add(s)
        for u in scope:
            self.holders[u].add(s)

    def eliminate(self, var: int, op: str) -> None:
        used = sorted(self.holders[var])
        union = dict.fromkeys(chain.from_iterable(self.slots[s][0] for s in used))
        del union[var]
        self.emit(used, tuple(union), op, var)

    def finish(self, out: tuple[int, ...]) -> None:
        """Multiply the slots still live into ``out`` (the query variables, or a scalar)."""
        if self.live:
            self.emit(sorted(self.live), out, _SUM, None)

    def _pair(self, used: list[int], keep: tuple) -> tuple[list[int], tuple, str, None]:
        """Replace in ``used`` the pair of slots whose product spans the fewest entries by the
        slot of their product, and return the ``emit`` arguments of that product (it keeps
        ``keep`` and what the other operands mention, and sums out the rest)."""
        best = None
        for i, a in enumerate(used):
            for b in used[i + 1 :]:
                pair = dict.fromkeys(self.slots[a][0] + self.slots[b][0])
                size = math.prod(map(self.cards.__getitem__, pair))
                if best is None or size < best[0]:
                    best = (size, a, b, pair)
        _, a, b, pair = best
        used.remove(a)
        used.remove(b)
        needed = set(keep).union(*(self.slots[s][0] for s in used))
        used.append(len(self.slots))  # the slot the pair's product will occupy
        return [a, b], tuple(u for u in pair if u in needed), _SUM, None

    def emit(self, used: list[int], out: tuple, op: str, var: int | None) -> None:
        """Append the step(s) computing ``out`` from slots ``used``: grouped products first if
        there are more than ``_MAX_OPERANDS``, pairwise products first if the step is large."""
        while len(used) > _MAX_OPERANDS:
            group, used = used[:_MAX_OPERANDS], used[_MAX_OPERANDS:]
            scope = tuple(dict.fromkeys(chain.from_iterable(self.slots[s][0] for s in group)))
            self.emit(group, scope, _SUM, None)
            used.append(len(self.slots) - 1)
        scopes = [self.slots[s][0] for s in used]
        cases = [self.slots[s][1] for s in used]
        union = tuple(dict.fromkeys(chain.from_iterable(scopes)))
        size = math.prod(map(self.cards.__getitem__, union))
        if size >= _PAIRWISE_MIN and len(used) > 2:
            self.emit(*self._pair(used, out + (var,) if op == _MAX else out))
            self.emit(used, out, op, var)
            return
        if size > self.limit or len(union) > len(_LABELS):
            what = f"eliminating {self.names[var]!r}" if var is not None else "a product"
            raise TableSizeError(
                f"{what} would build a table of {size} entries over "
                f"{[self.names[u] for u in union]}, above max_table_size={self.limit} (or over "
                f"{len(_LABELS)} variables); raise it or choose another elimination order"
            )
        self.width, self.biggest = max(self.width, len(union) - 1), max(self.biggest, size)
        case = any(cases)
        lab = dict(zip(union, _LABELS, strict=False))
        subs = [
            "".join(map(lab.__getitem__, sc)) + (_CASE if c else "")
            for sc, c in zip(scopes, cases, strict=True)
        ]
        result = (var, *out) if op == _MAX else out  # max-product maxes out the first axis
        spec = (
            ",".join(subs) + "->" + "".join(map(lab.__getitem__, result)) + (_CASE if case else "")
        )
        blas = op == _SUM and len(used) == 2 and size >= _BLAS_MIN
        self.steps.append(_Step(var, tuple(used), spec, op, out, case, blas))
        for s, sc in zip(used, scopes, strict=True):
            self.live.discard(s)
            for u in sc:
                self.holders[u].discard(s)
        self.add(out, case)


class VariableElimination:
    """Exact queries on a :class:`~pgm.BayesianNetwork` or :class:`~pgm.MarkovNetwork`.

    Parameters
    ----------
    model : BayesianNetwork or MarkovNetwork
        Checked with ``check_model()``; a change of ``model.version`` re-reads it.
    max_table_size : int
        Refuse (``TableSizeError``) plans that would build a table with more entries than this.
    """

    def __init__(self, model: Any, max_table_size: int = 10_000_000) -> None:
        self.model = model
        self.max_table_size = int(max_table_size)
        self._compiled: _Compiled | None = None
        self._plans: dict[tuple, Plan] = {}  # by variable ids
        self._named: dict[tuple, Plan] = {}  # by the names as the caller gave them
        self._tables: dict[tuple, _Input] = {}  # prepared factors, per model version
        self._sum_product = kernels.get("factor_sum_product")
        self._max_product = kernels.get("factor_max_product")
        self._gather = kernels.get("factor_gather")

    # -- model and names ----------------------------------------------------------------------
    def _model(self) -> _Compiled:
        if self._compiled is None or self._compiled.version != self.model.version:
            self._compiled = _compile(self.model)
            self.clear_cache()
            self._tables.clear()
        return self._compiled

    @staticmethod
    def _ids(cm: _Compiled, variables: Iterable[Any], what: str) -> list[int]:
        out = []
        for v in variables:
            if v not in cm.index:
                raise UnknownVariableError(f"unknown {what} variable {v!r}")
            out.append(cm.index[v])
        if len(set(out)) != len(out):
            raise PGMError(f"{what} variables repeat a name: {list(variables)}")
        return out

    @staticmethod
    def _as_list(variables: Any) -> list:
        if variables is None:
            return []
        if isinstance(variables, (str, bytes)) or not isinstance(variables, Iterable):
            return [variables]
        return list(variables)

    def clear_cache(self) -> None:
        """Forget every cached plan (they are also dropped when ``model.version`` changes)."""
        self._plans.clear()
        self._named.clear()

    # -- planning -----------------------------------------------------------------------------
    def plan(
        self,
        variables: Sequence[Any],
        evidence_vars: Iterable[Any] = (),
        elimination_order: str | Sequence[Any] = "min_fill",
        partially_observed: Iterable[Any] = (),
    ) -> Plan:
        """The (cached) plan of a posterior query over ``variables`` given ``evidence_vars``.

        ``partially_observed`` are evidence variables that some cases of a batch leave
        unobserved; they stay in the graph with a per-case likelihood factor.

        Raises
        ------
        TableSizeError
            If a step would build a table larger than ``max_table_size``.
        """
        return self._plan(
            self._as_list(variables),
            list(evidence_vars),
            list(partially_observed),
            elimination_order,
            _POSTERIOR,
        )

    def _plan(
        self, variables: list, hard: list, soft: list, order: Any, mode: str, fuse: bool = True
    ) -> Plan:
        cm = self._model()
        order_key = order if isinstance(order, str) else tuple(order)
        named = (mode, tuple(variables), tuple(hard), tuple(soft), order_key, fuse)
        plan = self._named.get(named)
        if plan is not None:
            return plan
        q = sorted(set(self._ids(cm, variables, "query")), key=lambda i: str(cm.names[i]))
        e = sorted(self._ids(cm, hard, "evidence"))
        p = sorted(self._ids(cm, soft, "evidence"))
        both = set(q) & (set(e) | set(p))
        if both:
            raise PGMError(
                f"variables {[cm.names[i] for i in sorted(both)]} are both queried and observed"
            )
        if set(e) & set(p):
            raise PGMError("a variable is given both as observed and as partially observed")
        key = (mode, tuple(q), tuple(e), tuple(p), order_key, fuse)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._named) > 4096:
                self.clear_cache()
            plan = self._plans[key] = self._build(cm, q, e, p, order, mode, fuse)
        self._named[named] = plan
        return plan

    def _relevant(
        self, cm: _Compiled, q: list[int], e: list[int], p: list[int], mode: str
    ) -> tuple[dict[int, tuple[int, ...]], list[int]]:
        """``({factor id: scope without evidence}, [constant factor ids])`` of a query.

        Constant factors have their whole scope observed. Posterior queries drop the factors
        that the evidence separates from the query: what is left of ``P(X_j | all others)`` in a
        Bayesian network is the CPD of ``X_j`` and those of its children.
        """
        observed = set(e)
        factor_ids: Iterable[int] = range(len(cm.scopes))
        if cm.parents is not None:  # barren nodes: keep the CPDs of ancestors of q and e
            keep = set(q) | observed | set(p)
            stack = list(keep)
            while stack:
                for u in cm.parents[stack.pop()]:
                    if u not in keep:
                        keep.add(u)
                        stack.append(u)
            factor_ids = sorted(keep)
        reduced, constants = {}, []
        for f in factor_ids:
            scope = tuple([v for v in cm.scopes[f] if v not in observed])
            if scope:
                reduced[f] = scope
            else:
                constants.append(f)
        if mode == _EVIDENCE:
            return reduced, constants
        seen_v, seen_f, stack = set(q), set(), list(q)  # the query's connected part
        while stack:
            for f in cm.factors_of[stack.pop()]:
                if f in reduced and f not in seen_f:
                    seen_f.add(f)
                    for u in reduced[f]:
                        if u not in seen_v:
                            seen_v.add(u)
                            stack.append(u)
        return {f: s for f, s in reduced.items() if f in seen_f}, constants

    def _prepared(self, cm: _Compiled, f: int, observed: Container[int]) -> _Input:
        """Factor ``f`` with its observed axes moved last and flattened into one (cached per
        model); ``f = -1 - v`` is the likelihood of a partially observed variable ``v``: columns
        one-hot states, then a column of ones that index ``-1`` ("not observed") picks."""
        if f < 0:
            hit = self._tables.get((f,))
            if hit is None:
                v = -1 - f
                table = np.hstack([np.eye(cm.cards[v]), np.ones((cm.cards[v], 1))])
                hit = self._tables[(f,)] = _Input(
                    table, np.array([v], np.int64), np.ones(1, np.int64), ((v, 1),)
                )
            return hit
        table, scope = cm.tables[f], cm.scopes[f]
        mask = tuple([v in observed for v in scope])
        hit = self._tables.get((f, mask))
        if hit is None:
            ev_axes = [i for i, m in enumerate(mask) if m]
            rest = [i for i, m in enumerate(mask) if not m]
            if ev_axes and rest:
                table = table.transpose(rest + ev_axes)
            ev_cards = [cm.cards[scope[i]] for i in ev_axes]
            strides = [math.prod(ev_cards[k + 1 :]) for k in range(len(ev_axes))]
            table = np.ascontiguousarray(table.reshape((*table.shape[: len(rest)], -1)))
            ids = [scope[i] for i in ev_axes]
            hit = _Input(
                table if ev_axes else table[..., 0],
                np.array(ids, np.int64),
                np.array(strides, np.int64),
                tuple(zip(ids, strides, strict=True)),
            )
            self._tables[(f, mask)] = hit
        return hit

    def _constants(self, cm: _Compiled, constants: list[int], observed: set[int]) -> _Constants:
        parts = [self._prepared(cm, f, observed) for f in constants]
        if not parts:
            return _NO_CONSTANTS
        width = max(len(inp.evidence_pos) for inp in parts)
        pos = np.zeros((len(parts), width), np.int64)
        strides = np.zeros((len(parts), width), np.int64)
        for k, inp in enumerate(parts):
            pos[k, : inp.evidence_pos.size] = inp.evidence_pos
            strides[k, : inp.strides.size] = inp.strides
        sizes = [inp.table.size for inp in parts]
        return _Constants(
            flat=np.concatenate([inp.table.reshape(-1) for inp in parts]),
            offsets=np.array([0, *accumulate(sizes[:-1])], np.int64),
            pos=pos,
            strides=strides,
        )

    def _build(
        self,
        cm: _Compiled,
        q: list[int],
        e: list[int],
        p: list[int],
        order: Any,
        mode: str,
        fuse: bool,
    ) -> Plan:
        """Prune, order, and turn the eliminations into steps. With ``fuse``, a sum-product
        query whose variables span at most ``_FUSE_MAX`` joint entries is one einsum (no
        ordering; its Python overhead would exceed the loop)."""
        if isinstance(order, str):
            heuristic_cost(order)  # an unknown name raises even when no ordering runs
        reduced, constants = self._relevant(cm, q, e, p, mode)
        adj: dict[int, set[int]] = {v: set() for v in q}
        for scope in reduced.values():
            for v in scope:
                adj.setdefault(v, set()).update(scope)
        for v, nbrs in adj.items():
            nbrs.discard(v)
        query = set(q)
        p = [v for v in p if v in adj]  # partially observed variables the query needs
        hidden = [v for v in adj if v not in query]
        fuse = fuse and mode != _MAP and isinstance(order, str)
        if fuse and math.prod(cm.cards[v] for v in adj) <= _FUSE_MAX:
            elim = []
        elif isinstance(order, str):
            stages = [hidden, q] if mode == _MAP else [hidden]
            elim = greedy_order(adj, stages, cm.cards, order)
        else:
            elim = self._explicit_order(cm, order, hidden, q, e, p, mode)
        observed = set(e)
        inputs = [self._prepared(cm, f, observed) for f in reduced]
        inputs += [self._prepared(cm, -1 - v, observed) for v in p]
        scopes = [*reduced.values(), *((v,) for v in p)]
        build = _StepBuilder(cm, self.max_table_size, adj)
        build.width, build.biggest = len(q) - 1, math.prod(cm.cards[v] for v in q)
        for scope, inp in zip(scopes, inputs, strict=True):
            build.add(scope, bool(inp.evidence_pos.size))
        for k, v in enumerate(elim):
            build.eliminate(v, _MAX if mode == _MAP and k >= len(hidden) else _SUM)
        build.finish(tuple(q) if mode == _POSTERIOR else ())
        return Plan(
            variables=tuple(cm.names[i] for i in q),
            evidence=tuple(cm.names[i] for i in e + p),
            order=tuple(cm.names[i] for i in elim or sorted(hidden)),
            induced_width=max(build.width, 0),
            max_table_size=build.biggest,
            n_factors=len(reduced),
            n_constants=len(constants),
            mode=mode,
            query_ids=tuple(q),
            evidence_ids=e + p,
            inputs=tuple(inputs),
            constants=self._constants(cm, constants, observed),
            steps=tuple(build.steps),
        )

    @staticmethod
    def _explicit_order(cm, order, hidden, q, e, p, mode) -> list[int]:
        """The listed variables that must go, in order; partially observed ones not listed go
        last."""
        wanted = set(hidden)
        elim = []
        for name in order:
            if name not in cm.index:
                raise UnknownVariableError(f"unknown variable {name!r} in elimination_order")
            v = cm.index[name]
            if v in set(q) | set(e):
                raise PGMError(f"elimination_order names {name!r}, which is queried or observed")
            if v in wanted:
                elim.append(v)
        elim += [v for v in p if v not in elim]
        missing = wanted - set(elim)
        if missing:
            raise PGMError(
                "elimination_order misses variables that must be eliminated: "
                f"{sorted((cm.names[v] for v in missing), key=str)}"
            )
        if mode == _MAP:
            elim += greedy_order({v: set() for v in q}, [q], cm.cards, "min_degree")
        return elim

    # -- execution ----------------------------------------------------------------------------
    def _run(
        self, plan: Plan, ev: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """Execute ``plan`` on ``ev`` ``(n_variables, N)`` state indices by variable id (``-1``:
        unobserved, in the partially observed columns only).

        Returns the unnormalised result ``(N, *query cards)`` without the constant factors,
        their product ``(N,)``, and for MAP plans the argmax assignment
        ``{variable id: (N,) int64}``.
        """
        n = ev.shape[1]
        slots: list[Any] = []
        row = ev[:, 0].tolist() if n == 1 else None
        for inp in plan.inputs:
            if not inp.pairs:
                slots.append(inp.table)
            elif row is not None:  # one case: a view of the slice (index -1 = last column)
                r = sum([row[v] * stride for v, stride in inp.pairs]) % inp.table.shape[-1]
                slots.append(inp.table[..., r : r + 1])
            else:
                slots.append(self._gather(inp.table, inp.strides @ ev[inp.evidence_pos]))
        back = []
        for step in plan.steps:
            operands = [slots[s] for s in step.operands]
            for s in step.operands:
                slots[s] = None
            if step.op == _MAX:
                best, arg = self._max_product(step.spec, *operands)
                slots.append(best)
                back.append((step, arg))
            else:
                slots.append(self._sum_product(step.spec, *operands, blas=step.blas))
        if plan.steps:
            res = slots[-1]
        else:
            cm = self._model()
            res = np.ones([cm.cards[v] for v in plan.query_ids if plan.mode == _POSTERIOR])
        if plan.steps and plan.steps[-1].has_case:
            res = res.transpose(res.ndim - 1, *range(res.ndim - 1))  # cases first
        else:
            res = np.broadcast_to(res, (n, *res.shape))
        assign: dict[int, np.ndarray] = {}
        rows = np.arange(n)
        for step, arg in reversed(back):
            idx = tuple(assign[u] for u in step.out_scope)
            pick = arg[(*idx, rows)] if step.has_case else arg[idx]
            assign[step.var] = np.broadcast_to(pick, (n,))
        return res, plan.constants.product(ev), assign

    def _evidence_matrix(self, plan: Plan, evidence: Mapping[Any, Any]) -> np.ndarray:
        """``(n_variables, 1)`` int64: the state index of each observed variable of one case in
        the column of its id (other columns are not read)."""
        cm = self._model()
        ev = np.zeros((len(cm.names), 1), np.int64)
        ev[plan.evidence_ids, 0] = [
            state_index(v, cm.states[cm.index[v]], evidence[v]) for v in plan.evidence
        ]
        return ev

    def _batch_columns(
        self, evidence: pd.DataFrame | Mapping[Any, Any]
    ) -> tuple[dict[Any, np.ndarray], list, list, int]:
        """State indices of batch evidence: ``(columns, observed, partially observed, N)``.

        Columns observed in no case are dropped.
        """
        if isinstance(evidence, pd.DataFrame):
            raw = {c: evidence[c].to_numpy() for c in evidence.columns}
        else:
            raw = {k: np.asarray(v).reshape(-1) for k, v in evidence.items()}
        lengths = {len(v) for v in raw.values()}
        if len(lengths) > 1:
            raise PGMError(f"evidence columns have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 1
        cm = self._model()
        self._ids(cm, raw, "evidence")
        columns, hard, soft = {}, [], []
        for name, values in raw.items():
            idx = state_indices(name, cm.states[cm.index[name]], values, allow_missing=True)
            missing = idx < 0
            if n and missing.all():
                continue
            columns[name] = idx
            (soft if missing.any() else hard).append(name)
        return columns, hard, soft, n

    @staticmethod
    def _zero_error(z: np.ndarray, evidence: Mapping[Any, Any] | None, start: int = 0) -> None:
        """Raise naming the evidence (``evidence`` of one case) or the first zero case of a batch
        (``evidence=None``: the caller adds the row) if any entry of ``z`` is not positive."""
        if (z > 0).all():
            return
        bad = np.flatnonzero(~(z > 0))
        if evidence is not None:
            raise ZeroProbabilityError(f"evidence {dict(evidence)} has probability zero")
        case = start + int(bad[0])
        raise ZeroProbabilityError(f"evidence of case {case} has probability zero", case=case)

    def _batches(self, plan: Plan, columns: Mapping[Any, np.ndarray], n: int):
        """Yield ``(start, result, constants)`` over chunks of cases whose tables stay under
        2^23 entries."""
        ev = np.zeros((len(self._model().names), n), np.int64)
        for i, name in zip(plan.evidence_ids, plan.evidence, strict=True):
            ev[i] = columns[name]
        chunk = max(1, (1 << 23) // max(plan.max_table_size, 1))
        for start in range(0, n, chunk):
            res, const, _ = self._run(plan, ev[:, start : start + chunk])
            yield start, res, const

    @staticmethod
    def _with_row(err: ZeroProbabilityError, columns: Mapping[Any, np.ndarray]):
        row = {k: int(v[err.case]) for k, v in columns.items()}
        return ZeroProbabilityError(f"{err} (state indices {row}; -1 = unobserved)", case=err.case)

    # -- public queries -----------------------------------------------------------------------
    def query(
        self,
        variables: Sequence[Any],
        evidence: Mapping[Any, Any] | None = None,
        joint: bool = True,
        elimination_order: str | Sequence[Any] = "min_fill",
    ) -> Factor | dict[Any, Factor]:
        """Posterior ``P(variables | evidence)``.

        Parameters
        ----------
        variables : sequence
            Query variables.
        evidence : dict, optional
            ``{variable: state name or index}``.
        joint : bool
            One joint :class:`Factor` (axes sorted by ``str``), or a dict of marginals.
        elimination_order : {"min_fill", "min_degree", "weighted_min_fill"} or sequence
            Greedy heuristic, or the variables to eliminate in order (pruned ones are skipped;
            with ``joint=False`` the other query variables are appended).

        Raises
        ------
        ZeroProbabilityError
            If the evidence has probability zero.
        UnknownVariableError, UnknownStateError
            Naming the unknown variable or state.
        """
        variables = self._as_list(variables)
        evidence = dict(evidence or {})
        if not variables:
            raise PGMError("query needs at least one variable")
        groups = [variables] if joint else [[v] for v in variables]
        cm = self._model()
        out = {}
        for group in groups:
            order = elimination_order
            if not isinstance(order, str):  # the other query variables go last
                order = list(order) + [v for v in variables if v not in group and v not in order]
            plan = self._plan(group, list(evidence), [], order, _POSTERIOR)
            res, const, _ = self._run(plan, self._evidence_matrix(plan, evidence))
            z = res.reshape(1, -1).sum(axis=1) * (const > 0)
            self._zero_error(z, evidence)
            names = plan.variables
            out[group[0]] = Factor._canonical(
                names,
                [cm.cards[cm.index[v]] for v in names],
                res[0] / z[0],
                {v: cm.states[cm.index[v]] for v in names},
            )
        return out[variables[0]] if joint else out

    def probability_of_evidence(self, evidence: Mapping[Any, Any]) -> float:
        """``P(evidence)`` for a Bayesian network; the partition function restricted to the
        evidence (``Z`` for empty evidence) for a Markov network."""
        evidence = dict(evidence)
        plan = self._plan([], list(evidence), [], "min_fill", _EVIDENCE)
        res, const, _ = self._run(plan, self._evidence_matrix(plan, evidence))
        return float(res.reshape(-1)[0] * const[0])

    def batch_probability_of_evidence(
        self, evidence: pd.DataFrame | Mapping[Any, Any]
    ) -> np.ndarray:
        """``P(evidence)`` of many cases at once (one plan for the batch).

        Parameters
        ----------
        evidence : DataFrame or dict of array_like
            One column per observed variable, one row per case; state names or indices. An
            entry ``-1`` (index) or ``None``/NaN (name) leaves the variable unobserved in that
            case (it is summed out).

        Returns
        -------
        ndarray of float64, shape (N,)
            With ``N = 1`` when there are no columns. Ratios give joint conditionals, e.g.
            ``P(bundle | cart) = P(cart, bundle) / P(cart)``.
        """
        columns, hard, soft, n = self._batch_columns(evidence)
        plan = self._plan([], hard, soft, "min_fill", _EVIDENCE, fuse=False)
        parts = [res.reshape(-1) * const for _, res, const in self._batches(plan, columns, n)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def map_query(
        self,
        variables: Sequence[Any] | None = None,
        evidence: Mapping[Any, Any] | None = None,
        elimination_order: str | Sequence[Any] = "min_fill",
    ) -> dict[Any, str]:
        """Most probable joint state of ``variables`` given ``evidence``.

        With ``variables=None`` every unobserved variable is assigned (MPE); otherwise the other
        variables are summed out first (marginal MAP). Max-product with traceback; ties go to the
        lower state index.

        Returns
        -------
        dict
            ``{variable: state name}``.
        """
        evidence = dict(evidence or {})
        cm = self._model()
        if variables is None:
            variables = [n for n in cm.names if n not in evidence]
        variables = self._as_list(variables)
        plan = self._plan(variables, list(evidence), [], elimination_order, _MAP)
        best, const, assign = self._run(plan, self._evidence_matrix(plan, evidence))
        self._zero_error(best.reshape(1) * (const > 0), evidence)
        return {cm.names[v]: cm.states[v][int(assign[v][0])] for v in plan.query_ids}

    def batch_query(
        self,
        variables: Sequence[Any],
        evidence: pd.DataFrame | Mapping[Any, Any],
        elimination_order: str | Sequence[Any] = "min_fill",
    ) -> dict[Any, np.ndarray]:
        """Posterior marginals of each query variable for many evidence cases at once.

        Parameters
        ----------
        variables : sequence
            Query variables.
        evidence : DataFrame or dict of array_like
            One column per observed variable, one row per case; state names or indices. An
            entry ``-1`` (index) or ``None``/NaN (name) leaves the variable unobserved in that
            case. One plan serves the whole batch.

        Returns
        -------
        dict
            ``{variable: (N, card) float64}``, rows summing to one.

        Raises
        ------
        ZeroProbabilityError
            Naming the first case whose evidence has probability zero (``.case``).
        """
        columns, hard, soft, n = self._batch_columns(evidence)
        out = {}
        for var in self._as_list(variables):
            plan = self._plan([var], hard, soft, elimination_order, _POSTERIOR, fuse=False)
            parts = []
            for start, res, const in self._batches(plan, columns, n):
                z = res.sum(axis=1)
                try:
                    self._zero_error(z * (const > 0), None, start)
                except ZeroProbabilityError as err:
                    raise self._with_row(err, columns) from None
                parts.append(res / z[:, None])
            card = self._model().cards[plan.query_ids[0]]
            out[var] = np.concatenate(parts) if parts else np.zeros((0, card))
        return out
