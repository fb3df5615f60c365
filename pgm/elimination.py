"""Exact inference by variable elimination: plan first, then execute.

A :class:`Plan` depends only on the structure of a query (the model version, which variables
are asked, which are observed in every case and which only in some, the elimination order, and
whether it serves one case or a batch); the numbers of the evidence enter only at execution.
Planning works on sets of variables held as Python-int bitsets (bit ``v``: variable ``v``). A
plan

1. prunes barren nodes (in a Bayesian network, those that are not ancestors of a query or
   evidence variable sum to one and are dropped: one OR of ancestral sets compiled per model),
   and takes a CPD with its single-child roots summed in (once per model) when the query
   leaves those roots hidden,
2. sets apart the constant factors (whole scope observed): looked up per case, multiplied
   into ``probability_of_evidence``, only checked for zero by posterior queries,
3. prunes the parts of the graph that the evidence separates from the query (they only scale
   the answer; ``probability_of_evidence`` keeps them), see :mod:`pgm.pruning`,
4. orders the remaining variables (the greedy ordering of :mod:`pgm.ordering`, or an explicit
   list), unless a small single query is fused into one einsum,
5. turns each elimination into an einsum over the factors that mention the variable
   (grouped when there are more operands than numpy takes, split into pairwise products when
   large; large matrix products through BLAS, as one ``matmul`` with the axis moves planned
   when there is no case axis), and merges einsums: a step that only sums
   axes out of the previous result joins it (one pass over a large table), and a single
   query's small steps join the step that uses their result (one call instead of several).

Steps 4 and 5 are one call of the kernel ``plan_steps`` (see :mod:`pgm.steps`); each step's
einsum names the variables of its loop by letters in id order, so any model fits as long as no
step loops over more than 51 variables.

A single query (``query``, ``map_query``, ``probability_of_evidence``) slices each factor at
its evidence: a view, no case axis. A batch gathers every factor's evidence slice for all cases
at once (a trailing case axis ``N``) and runs the same kind of steps; a variable observed in
only some cases of a batch is kept in the graph with a per-case likelihood factor (ones where
it is not observed). Sum-product and max-product run the same steps and differ
only in the kernel of a step (max steps keep an argmax for traceback).

Zero-probability evidence is reported when it makes the answer undefined within the part of the
network that the plan keeps; evidence that is impossible only inside a part separated from the
query is not seen by a posterior query (``probability_of_evidence`` sees it).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

import kernels
from pgm.errors import (
    PGMError,
    UnknownVariableError,
    ZeroProbabilityError,
)
from pgm.factor import Factor
from pgm.ordering import bit_list, heuristic_code
from pgm.pruning import ancestor_sets, fold_roots, relevant_factors
from pgm.states import state_index, state_indices
from pgm.steps import MAX, Step, bits, build_steps, fused_steps, table_size

_FUSE_MAX = 1024  # single queries whose variables span at most this many entries: one einsum
_INPUTS_MAX = 512  # prepared factors kept per compiled model
_INPUTS_LOCK = threading.Lock()
_POSTERIOR, _EVIDENCE, _MAP = "posterior", "evidence", "map"


class _Input(NamedTuple):
    """A model factor prepared for one evidence pattern: observed axes last, flattened into one.

    A batch gathers the case axis ``N`` LAST: einsum's inner loop then runs along the cases
    (contiguous and long) rather than along a variable of two or three states. A single case
    takes the view ``table[..., r]``.
    """

    table: np.ndarray
    scope: int  # bitset of the unobserved variables (the leading axes)
    axes: tuple[int, ...]  # their ids, in axis order
    evidence_pos: np.ndarray  # ids of the observed variables (columns of the evidence), int64
    strides: np.ndarray  # row-major strides of the flattened evidence axes, int64
    pairs: tuple[tuple[int, int], ...]  # (id, stride) as Python ints, for a single case


class _Kernels(NamedTuple):
    """The factor kernels for numpy tables, looked up once per compiled model."""

    sum_product: Any
    max_product: Any
    gather: Any
    contract: Any

    @classmethod
    def lookup(cls) -> _Kernels:
        return cls(*[kernels.get(f"factor_{name}") for name in cls._fields])


@dataclass(frozen=True)
class _Compiled:
    """A model as integer-indexed factors: the input of planning, rebuilt when ``version`` moves.

    Factor ``i`` of a Bayesian network is the CPD of variable ``i``; ``ancestors`` is ``None``
    for a Markov network. The factors past the model's are CPDs with roots folded in
    (:func:`pgm.pruning.fold_roots`): ``folds`` maps a CPD to its folded twin; no variable's
    ``factors_of`` lists a folded one.
    """

    version: int
    names: list
    index: dict
    cards: list[int]
    states: list[list[str]]
    state_ids: list[dict[str, int]]  # variable id -> {state name: index}
    card_array: np.ndarray  # cards as int64, shape (n_variables,), for the planning kernel
    scopes: list[tuple[int, ...]]
    scope_bits: list[int]  # factor id -> bitset of its scope
    tables: list[np.ndarray]
    factors_of: list[list[int]]  # variable id -> ids of the factors that mention it
    ancestors: list[int] | None  # variable id -> bitset of it and its ancestors
    folds: dict[int, tuple[int, int]]  # CPD id -> (id of its folded table, bitset of roots)
    kernels: _Kernels  # chosen when the version is compiled (``kernels.get``)
    unobserved: list  # factor id -> its _Input without evidence (None until asked), see prepared
    inputs: dict[tuple, _Input] = field(default_factory=dict, repr=False)  # see ``prepared``

    def prepared(self, f: int, observed: int) -> _Input:
        """Factor ``f`` for the variables of bitset ``observed``: its observed axes moved last
        and flattened into one. Cached per (factor, its observed variables): a factor without
        evidence in ``unobserved``, the others in ``inputs``, at most ``_INPUTS_MAX`` entries
        (the oldest go first). Every engine on this version shares them.
        """
        seen = self.scope_bits[f] & observed
        if not seen:  # the common case: one list lookup
            hit = self.unobserved[f]
            if hit is None:
                hit = self.unobserved[f] = self._prepare(f, 0)
            return hit
        hit = self.inputs.get((f, seen))
        return hit if hit is not None else self._keep((f, seen), self._prepare(f, seen))

    def _prepare(self, f: int, observed: int) -> _Input:
        table, scope = self.tables[f], self.scopes[f]
        ev_axes = [i for i, v in enumerate(scope) if observed >> v & 1]
        rest = [i for i, v in enumerate(scope) if not observed >> v & 1]
        if ev_axes and rest:
            table = table.transpose(rest + ev_axes)
        ev_cards = [self.cards[scope[i]] for i in ev_axes]
        strides = [math.prod(ev_cards[k + 1 :]) for k in range(len(ev_axes))]
        table = np.ascontiguousarray(table.reshape((*table.shape[: len(rest)], -1)))
        ids = [scope[i] for i in ev_axes]
        return _Input(
            table if ev_axes else table[..., 0],
            bits(scope[i] for i in rest),
            tuple(scope[i] for i in rest),
            np.array(ids, np.int64),
            np.array(strides, np.int64),
            tuple(zip(ids, strides, strict=True)),
        )

    def likelihood(self, v: int) -> _Input:
        """The per-case likelihood of a partially observed variable ``v``: columns one-hot
        states, then a column of ones that index ``-1`` ("not observed") picks (cached)."""
        hit = self.inputs.get((-1 - v,))
        if hit is not None:
            return hit
        card = self.cards[v]
        table = np.hstack([np.eye(card), np.ones((card, 1))])
        return self._keep(
            (-1 - v,),
            _Input(
                table,
                1 << v,
                (v,),
                np.array([v], np.int64),
                np.ones(1, np.int64),
                ((v, 1),),
            ),
        )

    def _keep(self, key: tuple, hit: _Input) -> _Input:
        with _INPUTS_LOCK:  # engines on one model may run in several threads
            while len(self.inputs) >= _INPUTS_MAX:
                del self.inputs[next(iter(self.inputs))]
            self.inputs[key] = hit
        return hit


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(model: Any) -> _Compiled:
    """The compiled form of ``model``'s current version, shared by every engine on it (a new
    engine on an unchanged model neither re-checks nor recompiles it)."""
    cm = _COMPILED.get(model)
    if cm is None or cm.version != model.version:
        cm = _COMPILED[model] = _compile(model)
    return cm


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
    n = len(names)
    tables = [np.asarray(t, dtype=np.float64) for _, t in factors]
    bayesian = hasattr(model, "get_cpds")
    cards = [len(s) for s in states]
    folds = {}
    for c, (scope, table, roots) in fold_roots(scopes, tables, factors_of, bayesian).items():
        folds[c] = (len(tables), roots)
        scopes.append(scope)
        tables.append(table)
    return _Compiled(
        version=model.version,
        names=names,
        index=index,
        cards=cards,
        states=states,
        state_ids=[{s: i for i, s in enumerate(st)} for st in states],
        card_array=np.array(cards, dtype=np.int64),
        scopes=scopes,
        scope_bits=[sum(1 << v for v in set(scope)) for scope in scopes],
        tables=tables,
        factors_of=factors_of,
        ancestors=ancestor_sets([s[1:] for s in scopes[:n]]) if bayesian else None,
        folds=folds,
        kernels=_Kernels.lookup(),
        unobserved=[None] * len(tables),
    )


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
        Factors the steps multiply (after pruning and folding roots; constant factors
        excluded).
    n_constants : int
        Factors whose whole scope is observed: looked up once per case and checked for zero
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
    single: bool = field(repr=False)  # one case, no case axis; else a batch
    query_ids: tuple[int, ...] = field(repr=False)
    evidence_ids: list[int] = field(repr=False)
    inputs: tuple[_Input, ...] = field(repr=False)
    constants: tuple[_Input, ...] = field(repr=False)
    steps: tuple[Step, ...] = field(repr=False)


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

    # -- model and names ----------------------------------------------------------------------
    def _model(self) -> _Compiled:
        if self._compiled is None or self._compiled.version != self.model.version:
            self._compiled = _compiled(self.model)
            self.clear_cache()
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
        unobserved; they stay in the graph with a per-case likelihood factor. The plan is the
        one :meth:`query` runs, or with ``partially_observed``, the one :meth:`batch_query`
        runs.

        Raises
        ------
        TableSizeError
            If a step would build a table larger than ``max_table_size``.
        """
        soft = list(partially_observed)
        return self._plan(
            self._as_list(variables),
            list(evidence_vars),
            soft,
            elimination_order,
            _POSTERIOR,
            single=not soft,
        )

    def _plan(
        self, variables: list, hard: list, soft: list, order: Any, mode: str, single: bool = True
    ) -> Plan:
        cm = self._model()
        order_key = order if isinstance(order, str) else tuple(order)
        named = (mode, tuple(variables), tuple(hard), tuple(soft), order_key, single)
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
        key = (mode, tuple(q), tuple(e), tuple(p), order_key, single)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._named) > 4096:
                self.clear_cache()
            plan = self._plans[key] = self._build(cm, q, e, p, order, mode, single)
        self._named[named] = plan
        return plan

    def _build(
        self,
        cm: _Compiled,
        q: list[int],
        e: list[int],
        p: list[int],
        order: Any,
        mode: str,
        single: bool,
    ) -> Plan:
        """Prune, order, and turn the eliminations into steps. A single sum-product query whose
        variables span at most ``_FUSE_MAX`` joint entries is one einsum (no ordering; its
        Python overhead would exceed the loop)."""
        if isinstance(order, str):
            heuristic_code(order)  # an unknown name raises even when no ordering runs
        query, observed = bits(q), bits(e)
        factors, constants = relevant_factors(
            cm.scope_bits,
            cm.factors_of,
            cm.ancestors,
            query,
            observed,
            query | observed | bits(p),
            connected=mode != _EVIDENCE,
        )
        if cm.folds:
            factors = self._fold(cm, factors, query | observed | bits(p))
        inputs = [cm.prepared(f, observed) for f in factors]
        kept = query
        for inp in inputs:
            kept |= inp.scope
        p = [v for v in p if kept >> v & 1]  # partially observed variables the query needs
        inputs += [cm.likelihood(v) for v in p]
        hidden = kept & ~query
        fuse = single and mode != _MAP and isinstance(order, str)
        if fuse and 1 << kept.bit_count() <= _FUSE_MAX:  # (a quick bound: 2+ states each)
            fuse = table_size(cm.cards, kept) <= _FUSE_MAX
        else:
            fuse = False
        tables = [inp.axes for inp in inputs]
        built = fused_steps(tables, cm.cards, q, self.max_table_size) if fuse else None
        if built is None:
            if fuse:
                order_arg: Any = []
            elif isinstance(order, str):
                order_arg = heuristic_code(order)
            else:
                order_arg = self._explicit_order(cm, order, hidden, q, e, p, mode)
            cases = None if single else [bool(inp.pairs) for inp in inputs]
            built = build_steps(
                tables,
                cases,
                cm.card_array,
                cm.names,
                q,
                order_arg,
                mode,
                single,
                self.max_table_size,
            )
        elim = built.order
        return Plan(
            variables=tuple([cm.names[i] for i in q]),
            evidence=tuple([cm.names[i] for i in e + p]),
            order=tuple([cm.names[i] for i in elim or bit_list(hidden)]),
            induced_width=max(built.width, 0),
            max_table_size=built.biggest,
            n_factors=len(factors),
            n_constants=len(constants),
            mode=mode,
            single=single,
            query_ids=tuple(q),
            evidence_ids=e + p,
            inputs=tuple(inputs),
            constants=tuple([cm.prepared(f, observed) for f in constants]),
            steps=built.steps,
        )

    @staticmethod
    def _fold(cm: _Compiled, factors: list[int], seeds: int) -> list[int]:
        """``factors`` with each CPD whose folded roots the query leaves hidden (none in bitset
        ``seeds``) replaced by its folded twin, and those roots' CPDs dropped."""
        out, dropped = [], 0
        for f in factors:
            hit = cm.folds.get(f)
            if hit is not None and not hit[1] & seeds:
                f = hit[0]
                dropped |= hit[1]
            out.append(f)
        return [f for f in out if not dropped >> f & 1] if dropped else out

    @staticmethod
    def _explicit_order(cm, order, hidden, q, e, p, mode) -> list[int]:
        """The listed variables that must go (bitset ``hidden``), in order; partially observed
        ones not listed go last; for MAP the query variables follow by id."""
        elim = []
        for name in order:
            if name not in cm.index:
                raise UnknownVariableError(f"unknown variable {name!r} in elimination_order")
            v = cm.index[name]
            if v in set(q) | set(e):
                raise PGMError(f"elimination_order names {name!r}, which is queried or observed")
            if hidden >> v & 1:
                elim.append(v)
        elim += [v for v in p if v not in elim]
        missing = hidden & ~bits(elim)
        if missing:
            raise PGMError(
                "elimination_order misses variables that must be eliminated: "
                f"{sorted((cm.names[v] for v in bit_list(missing)), key=str)}"
            )
        if mode == _MAP:
            elim += sorted(q)
        return elim

    # -- execution ----------------------------------------------------------------------------
    def _execute(self, plan: Plan, slots: list[Any]) -> tuple[Any, list]:
        """Run the steps of ``plan`` on its input tables ``slots`` (extended in place).

        Returns the last step's table (``None`` without steps) and, for max steps,
        ``[(step, argmax table)]`` in step order.
        """
        back = []
        run = self._compiled.kernels
        for step in plan.steps:
            operands = [slots[s] for s in step.operands]
            for s in step.operands:
                slots[s] = None
            if step.op == MAX:
                best, arg = run.max_product(step.spec, *operands)
                slots.append(best)
                back.append((step, arg))
            elif step.gemm is not None:
                slots.append(run.contract(*operands, step.gemm))
            else:
                slots.append(run.sum_product(step.spec, *operands, blas=step.blas))
        return (slots[-1] if plan.steps else None), back

    def _run_single(self, plan: Plan, row: list[int]) -> tuple[Any, float, dict[int, int]]:
        """Execute a single-case ``plan`` on ``row``: the state index of each observed variable
        at its id (other entries are not read).

        Returns the unnormalised result (shape: the query cardinalities; ``1.0`` without
        steps) without the constant factors, their product, and for MAP plans the argmax
        assignment ``{variable id: state index}``.
        """
        slots: list[Any] = []
        for inp in plan.inputs:
            if inp.pairs:
                r = 0
                for v, stride in inp.pairs:
                    r += row[v] * stride
                slots.append(inp.table[..., r])
            else:
                slots.append(inp.table)
        const = 1.0
        for inp in plan.constants:
            r = 0
            for v, stride in inp.pairs:
                r += row[v] * stride
            const *= inp.table.item(r)
        res, back = self._execute(plan, slots)
        assign: dict[int, int] = {}
        for step, arg in reversed(back):
            assign[step.var] = int(arg[tuple([assign[u] for u in step.out_scope])])
        return (1.0 if res is None else res), const, assign

    def _run_batch(self, plan: Plan, ev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Execute a batch ``plan`` on ``ev`` ``(n_variables, N)`` state indices by variable id
        (``-1``: unobserved, in the partially observed rows only).

        Returns the unnormalised result ``(N, *query cards)`` without the constant factors,
        and their product ``(N,)``.
        """
        n = ev.shape[1]
        gather = self._compiled.kernels.gather
        slots = [
            gather(inp.table, inp.strides @ ev[inp.evidence_pos]) if inp.pairs else inp.table
            for inp in plan.inputs
        ]
        res, _ = self._execute(plan, slots)
        if res is None:
            res = np.ones([self._model().cards[v] for v in plan.query_ids])
        if plan.steps and plan.steps[-1].has_case:
            res = res.transpose(res.ndim - 1, *range(res.ndim - 1))  # cases first
        else:
            res = np.broadcast_to(res, (n, *res.shape))
        return res, self._constant_product(plan.constants, ev)

    @staticmethod
    def _constant_product(constants: Sequence[_Input], ev: np.ndarray) -> np.ndarray:
        """``(N,)`` product of the constant factors of each case, in one ``take``: entry ``k``
        of a case is ``flat[offsets[k] + strides[k] @ ev[pos[k], case]]`` (``pos`` and
        ``strides`` padded with zero strides to one width)."""
        if not constants:
            return np.ones(ev.shape[1])
        width = max(inp.evidence_pos.size for inp in constants)
        pos = np.zeros((len(constants), width), np.int64)
        strides = np.zeros((len(constants), width), np.int64)
        for k, inp in enumerate(constants):
            pos[k, : inp.evidence_pos.size] = inp.evidence_pos
            strides[k, : inp.strides.size] = inp.strides
        sizes = [inp.table.size for inp in constants]
        offsets = np.cumsum([0, *sizes[:-1]])
        flat = np.concatenate([inp.table.reshape(-1) for inp in constants])
        rows = offsets[:, None] + (ev[pos] * strides[:, :, None]).sum(axis=1)
        return np.take(flat, rows).prod(axis=0)

    def _evidence_row(self, plan: Plan, evidence: Mapping[Any, Any]) -> list[int]:
        """The state index of each observed variable of one case at its id (0 elsewhere)."""
        cm = self._model()
        row = [0] * len(cm.names)
        for v, name in zip(plan.evidence_ids, plan.evidence, strict=True):
            value = evidence[name]
            i = cm.state_ids[v].get(value) if isinstance(value, str) else None
            row[v] = state_index(name, cm.states[v], value) if i is None else i
        return row

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
    def _zero_error(z: np.ndarray, start: int) -> None:
        """Raise naming the first case of a batch (``start`` + its row in ``z``) whose entry of
        ``z`` is not positive (the caller adds the row's evidence)."""
        if (z > 0).all():
            return
        case = start + int(np.flatnonzero(~(z > 0))[0])
        raise ZeroProbabilityError(f"evidence of case {case} has probability zero", case=case)

    def _batches(self, plan: Plan, columns: Mapping[Any, np.ndarray], n: int):
        """Yield ``(start, result, constants)`` over chunks of cases whose tables stay under
        2^23 entries."""
        ev = np.zeros((len(self._model().names), n), np.int64)
        for i, name in zip(plan.evidence_ids, plan.evidence, strict=True):
            ev[i] = columns[name]
        chunk = max(1, (1 << 23) // max(plan.max_table_size, 1))
        for start in range(0, n, chunk):
            res, const = self._run_batch(plan, ev[:, start : start + chunk])
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
            res, const, _ = self._run_single(plan, self._evidence_row(plan, evidence))
            z = float(res.sum()) if const > 0 else 0.0
            if not z > 0:
                raise ZeroProbabilityError(f"evidence {evidence} has probability zero")
            out[group[0]] = Factor._canonical(
                plan.variables,
                [cm.cards[v] for v in plan.query_ids],
                res / z,
                {cm.names[v]: cm.states[v] for v in plan.query_ids},
            )
        return out[variables[0]] if joint else out

    def probability_of_evidence(self, evidence: Mapping[Any, Any]) -> float:
        """``P(evidence)`` for a Bayesian network; the partition function restricted to the
        evidence (``Z`` for empty evidence) for a Markov network."""
        evidence = dict(evidence)
        plan = self._plan([], list(evidence), [], "min_fill", _EVIDENCE)
        res, const, _ = self._run_single(plan, self._evidence_row(plan, evidence))
        return float(res) * const

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
        plan = self._plan([], hard, soft, "min_fill", _EVIDENCE, single=False)
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
        best, const, assign = self._run_single(plan, self._evidence_row(plan, evidence))
        if not float(best) * const > 0:
            raise ZeroProbabilityError(f"evidence {evidence} has probability zero")
        return {cm.names[v]: cm.states[v][assign[v]] for v in plan.query_ids}

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
            plan = self._plan([var], hard, soft, elimination_order, _POSTERIOR, single=False)
            parts = []
            for start, res, const in self._batches(plan, columns, n):
                z = res.sum(axis=1)
                try:
                    self._zero_error(z * (const > 0), start)
                except ZeroProbabilityError as err:
                    raise self._with_row(err, columns) from None
                parts.append(res / z[:, None])
            card = self._model().cards[plan.query_ids[0]]
            out[var] = np.concatenate(parts) if parts else np.zeros((0, card))
        return out
