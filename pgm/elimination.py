"""Exact inference by variable elimination: plan first, then execute.

A :class:`Plan` depends only on the structure of a query (the model version, which variables
are asked and which are observed, the elimination order); the numbers of the evidence enter only
at execution. A plan

1. prunes barren nodes (in a Bayesian network, those that are not ancestors of a query or
   evidence variable sum to one and are dropped),
2. prunes the parts of the graph that the evidence separates from the query (they only scale
   the answer; ``probability_of_evidence`` keeps them),
3. orders the remaining variables (:func:`pgm.ordering.greedy_order` or an explicit list),
4. turns each elimination step into one einsum over the factors that mention the variable.

Execution gathers every factor's evidence slice for all cases at once (a leading case axis
``N``) and runs the steps; a single query is a batch of one. Sum-product and max-product run the
same steps and differ only in the kernel of a step (max steps keep an argmax for traceback).

Zero-probability evidence is reported when it makes the answer undefined within the part of the
network that the plan keeps; evidence that is impossible only inside a part separated from the
query is not seen by a posterior query (``probability_of_evidence`` sees it).
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from pgm.ordering import greedy_order
from pgm.states import state_index, state_indices

_CASE = "Z"
_LABELS = string.ascii_letters.replace(_CASE, "")
_SUM, _MAX = "sum", "max"
_PATH_MIN = 1 << 14  # steps with tables this large contract pairwise along an einsum path
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
    return _Compiled(
        version=model.version,
        names=names,
        index=index,
        cards=[len(s) for s in states],
        states=states,
        scopes=scopes,
        tables=[np.asarray(t, dtype=np.float64) for _, t in factors],
        parents=[list(s[1:]) for s in scopes] if hasattr(model, "get_cpds") else None,
    )


class _Input(NamedTuple):
    """A model factor prepared for gathering: evidence axes first, flattened into one."""

    table: np.ndarray
    evidence_pos: np.ndarray  # positions in the plan's evidence vector, int64
    strides: np.ndarray  # row-major strides of the flattened evidence axes, int64


class _Step(NamedTuple):
    """One elimination: multiply the factors in ``operands``, sum or max out ``var``."""

    var: int  # the variable eliminated
    operands: tuple[int, ...]  # slot numbers
    spec: str
    op: str
    out_scope: tuple[int, ...]  # variable ids of the result (case axis excluded)
    has_case: bool
    path: list | bool  # einsum contraction path for large steps, else False (one C loop)


@dataclass(frozen=True)
class Plan:
    """The structure of one query, reusable for any evidence values.

    Attributes
    ----------
    variables : tuple
        Query variables, in the order of the result's axes (sorted by ``str``).
    evidence : tuple
        Observed variables, in the order the executor reads their states.
    order : tuple
        Variables eliminated, in order (pruned variables are absent).
    induced_width : int
        Largest number of variables in one step's table, minus one.
    max_table_size : int
        Largest number of entries of a table built by a step (per case).
    n_factors : int
        Factors left after pruning.
    """

    variables: tuple
    evidence: tuple
    order: tuple
    induced_width: int
    max_table_size: int
    n_factors: int
    mode: str = field(repr=False)
    query_ids: tuple[int, ...] = field(repr=False)
    inputs: tuple[_Input, ...] = field(repr=False)
    steps: tuple[_Step, ...] = field(repr=False)
    final_spec: str = field(repr=False)
    final_operands: tuple[int, ...] = field(repr=False)
    final_has_case: bool = field(repr=False)


def _spec(scopes: Sequence[tuple[int, ...]], cases: Sequence[bool], out, out_case: bool) -> str:
    ids = list(dict.fromkeys([v for s in scopes for v in s] + list(out)))
    if len(ids) > len(_LABELS):
        raise TableSizeError(f"an elimination step spans {len(ids)} variables; at most 51")
    lab = {v: _LABELS[i] for i, v in enumerate(ids)}

    def sub(scope, case):
        return (_CASE if case else "") + "".join(lab[v] for v in scope)

    inputs = ",".join(sub(s, c) for s, c in zip(scopes, cases, strict=True))
    return inputs + "->" + sub(out, out_case)


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
        self._plans: dict[tuple, Plan] = {}
        self._tables: dict[tuple, np.ndarray] = {}
        self._sum_product = kernels.get("factor_sum_product")
        self._max_product = kernels.get("factor_max_product")
        self._gather = kernels.get("factor_gather")

    # -- model and names ----------------------------------------------------------------------
    def _model(self) -> _Compiled:
        if self._compiled is None or self._compiled.version != self.model.version:
            self._compiled = _compile(self.model)
            self._plans.clear()
            self._tables.clear()
        return self._compiled

    def _ids(self, variables: Iterable[Any], what: str) -> list[int]:
        cm = self._model()
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

    # -- planning -----------------------------------------------------------------------------
    def plan(
        self,
        variables: Sequence[Any],
        evidence_vars: Iterable[Any] = (),
        elimination_order: str | Sequence[Any] = "min_fill",
    ) -> Plan:
        """The (cached) plan of a posterior query over ``variables`` given ``evidence_vars``.

        Raises
        ------
        TableSizeError
            If a step would build a table larger than ``max_table_size``.
        """
        return self._plan(
            self._as_list(variables), list(evidence_vars), elimination_order, _POSTERIOR
        )

    def _plan(self, variables: list, evidence_vars: list, order: Any, mode: str) -> Plan:
        cm = self._model()
        q = sorted(set(self._ids(variables, "query")), key=lambda i: str(cm.names[i]))
        e = sorted(self._ids(evidence_vars, "evidence"))
        both = set(q) & set(e)
        if both:
            raise PGMError(
                f"variables {[cm.names[i] for i in sorted(both)]} are both queried and observed"
            )
        order_key = order if isinstance(order, str) else tuple(order)
        key = (mode, tuple(q), tuple(e), order_key)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 4096:
                self._plans.clear()
            plan = self._plans[key] = self._build(cm, q, e, order, mode)
        return plan

    def _relevant(self, cm: _Compiled, q: list[int], e: list[int], mode: str) -> dict:
        """``{factor id: scope without evidence}`` of the factors the query needs."""
        observed = set(e)
        factor_ids: Iterable[int] = range(len(cm.scopes))
        if cm.parents is not None:  # barren nodes: keep the CPDs of ancestors of q and e
            keep = set(q) | observed
            stack = list(keep)
            while stack:
                for p in cm.parents[stack.pop()]:
                    if p not in keep:
                        keep.add(p)
                        stack.append(p)
            factor_ids = sorted(keep)
        reduced = {f: tuple(v for v in cm.scopes[f] if v not in observed) for f in factor_ids}
        if mode == _EVIDENCE:
            return reduced
        adj: dict[int, set[int]] = {}  # drop parts that the evidence separates from the query
        for scope in reduced.values():
            for v in scope:
                adj.setdefault(v, set()).update(scope)
        reach, stack = set(q), list(q)
        while stack:
            for u in adj.get(stack.pop(), ()):
                if u not in reach:
                    reach.add(u)
                    stack.append(u)
        return {f: s for f, s in reduced.items() if not s or s[0] in reach}

    def _input(self, cm: _Compiled, f: int, observed: dict[int, int]) -> _Input:
        """Factor ``f`` with its observed axes moved first and flattened (cached per model)."""
        ev_axes = tuple(i for i, v in enumerate(cm.scopes[f]) if v in observed)
        key = (f, ev_axes)
        table = self._tables.get(key)
        if table is None:
            table = cm.tables[f]
            if ev_axes:
                rest = [i for i in range(table.ndim) if i not in ev_axes]
                table = table.transpose(list(ev_axes) + rest)
                table = np.ascontiguousarray(table.reshape((-1, *table.shape[len(ev_axes) :])))
            self._tables[key] = table
        ev_cards = [cm.cards[cm.scopes[f][i]] for i in ev_axes]
        strides = [math.prod(ev_cards[k + 1 :]) for k in range(len(ev_axes))]
        return _Input(
            table=table,
            evidence_pos=np.array([observed[cm.scopes[f][i]] for i in ev_axes], np.int64),
            strides=np.array(strides, dtype=np.int64),
        )

    def _build(self, cm: _Compiled, q: list[int], e: list[int], order: Any, mode: str) -> Plan:
        reduced = self._relevant(cm, q, e, mode)
        adj: dict[int, set[int]] = {v: set() for v in q}
        for scope in reduced.values():
            for v in scope:
                adj.setdefault(v, set()).update(u for u in scope if u != v)
        query = set(q)
        hidden = [v for v in adj if v not in query]
        if isinstance(order, str):
            stages = [hidden, q] if mode == _MAP else [hidden]
            elim = greedy_order(adj, stages, cm.cards, order)
        else:
            elim = self._explicit_order(cm, order, hidden, q, e, mode)
        observed = {v: i for i, v in enumerate(e)}
        inputs = [self._input(cm, f, observed) for f in reduced]
        slots = [
            (scope, bool(inp.evidence_pos.size))
            for scope, inp in zip(reduced.values(), inputs, strict=True)
        ]
        live = set(range(len(slots)))
        steps, width, biggest = [], len(q) - 1, math.prod(cm.cards[v] for v in q)
        for k, v in enumerate(elim):
            op = _MAX if mode == _MAP and k >= len(hidden) else _SUM
            used = sorted(s for s in live if v in slots[s][0])
            union = tuple(dict.fromkeys(u for s in used for u in slots[s][0]))
            size = math.prod(cm.cards[u] for u in union)
            if size > self.max_table_size:
                raise TableSizeError(
                    f"eliminating {cm.names[v]!r} would build a table of {size} entries over "
                    f"{[cm.names[u] for u in union]}, above max_table_size="
                    f"{self.max_table_size}; raise it or choose another elimination order"
                )
            width, biggest = max(width, len(union) - 1), max(biggest, size)
            out = tuple(u for u in union if u != v)
            case = any(slots[s][1] for s in used)
            spec = _spec(
                [slots[s][0] for s in used],
                [slots[s][1] for s in used],
                out + (v,) if op == _MAX else out,
                case,
            )
            path: list | bool = False
            if size >= _PATH_MIN and len(used) > 2:
                shapes = [
                    ((1,) if slots[s][1] else ()) + tuple(cm.cards[u] for u in slots[s][0])
                    for s in used
                ]
                dummies = [np.broadcast_to(np.empty(1), shape) for shape in shapes]
                path = np.einsum_path(spec, *dummies, optimize="greedy")[0]
            steps.append(_Step(v, tuple(used), spec, op, out, case, path))
            live.difference_update(used)
            live.add(len(slots))
            slots.append((out, case))
        final = sorted(live)
        final_q = () if mode == _MAP else tuple(q)
        final_case = any(slots[s][1] for s in final)
        return Plan(
            variables=tuple(cm.names[i] for i in q),
            evidence=tuple(cm.names[i] for i in e),
            order=tuple(cm.names[i] for i in elim),
            induced_width=max(width, 0),
            max_table_size=biggest,
            n_factors=len(inputs),
            mode=mode,
            query_ids=tuple(q),
            inputs=tuple(inputs),
            steps=tuple(steps),
            final_spec=_spec(
                [slots[s][0] for s in final], [slots[s][1] for s in final], final_q, final_case
            ),
            final_operands=tuple(final),
            final_has_case=final_case,
        )

    @staticmethod
    def _explicit_order(cm, order, hidden, q, e, mode) -> list[int]:
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
    def _run(self, plan: Plan, ev: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Execute ``plan`` on ``ev`` ``(N, n_evidence)`` state indices.

        Returns the unnormalised result ``(N, *query cards)`` and, for MAP plans, the argmax
        assignment ``{variable id: (N,) int64}``.
        """
        n = ev.shape[0]
        slots: list[Any] = []
        for inp in plan.inputs:
            if inp.evidence_pos.size:
                slots.append(self._gather(inp.table, ev[:, inp.evidence_pos] @ inp.strides))
            else:
                slots.append(inp.table)
        back = []
        for step in plan.steps:
            operands = [slots[s] for s in step.operands]
            for s in step.operands:
                slots[s] = None
            if step.op == _MAX:
                best, arg = self._max_product(step.spec, *operands, path=step.path)
                slots.append(best)
                back.append((step, arg))
            else:
                slots.append(self._sum_product(step.spec, *operands, path=step.path))
        if plan.final_operands:
            res = self._sum_product(plan.final_spec, *(slots[s] for s in plan.final_operands))
        else:
            cm = self._model()
            res = np.ones([cm.cards[v] for v in plan.query_ids])
        if not plan.final_has_case:
            res = np.broadcast_to(res, (n, *res.shape))
        assign: dict[int, np.ndarray] = {}
        rows = np.arange(n)
        for step, arg in reversed(back):
            idx = tuple(assign[u] for u in step.out_scope)
            pick = arg[(rows, *idx)] if step.has_case else arg[idx]
            assign[step.var] = np.broadcast_to(pick, (n,))
        return res, assign

    def _evidence_matrix(self, plan: Plan, evidence: Mapping[Any, Any], n: int | None):
        """``(N, n_evidence)`` int64 state indices in the plan's evidence order."""
        cm = self._model()
        cols = []
        for name in plan.evidence:
            i = cm.index[name]
            if n is None:
                cols.append([state_index(name, cm.states[i], evidence[name])])
            else:
                cols.append(state_indices(name, cm.states[i], evidence[name]))
        rows = 1 if n is None else n
        return np.array(cols, dtype=np.int64).T.reshape(rows, len(plan.evidence))

    @staticmethod
    def _zero_error(z: np.ndarray, evidence: Any, batch: bool) -> None:
        bad = np.flatnonzero(~(z > 0))
        if not bad.size:
            return
        if batch:
            case = int(bad[0])
            row = {k: np.asarray(v)[case] for k, v in evidence.items()}
            raise ZeroProbabilityError(
                f"evidence of case {case} has probability zero: {row}", case=case
            )
        raise ZeroProbabilityError(f"evidence {dict(evidence)} has probability zero")

    def _posterior(
        self, variables: list, evidence: Mapping, order: Any
    ) -> tuple[Plan, np.ndarray]:
        plan = self._plan(variables, list(evidence), order, _POSTERIOR)
        res, _ = self._run(plan, self._evidence_matrix(plan, evidence, None))
        z = res.reshape(1, -1).sum(axis=1)
        self._zero_error(z, evidence, batch=False)
        return plan, res[0] / z[0]

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
            plan, values = self._posterior(group, evidence, order)
            names = plan.variables
            out[group[0]] = Factor._canonical(
                names,
                [cm.cards[cm.index[v]] for v in names],
                values,
                {v: cm.states[cm.index[v]] for v in names},
            )
        return out[variables[0]] if joint else out

    def probability_of_evidence(self, evidence: Mapping[Any, Any]) -> float:
        """``P(evidence)`` for a Bayesian network; the partition function restricted to the
        evidence (``Z`` for empty evidence) for a Markov network."""
        evidence = dict(evidence)
        plan = self._plan([], list(evidence), "min_fill", _EVIDENCE)
        res, _ = self._run(plan, self._evidence_matrix(plan, evidence, None))
        return float(res.reshape(-1)[0])

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
        plan = self._plan(variables, list(evidence), elimination_order, _MAP)
        best, assign = self._run(plan, self._evidence_matrix(plan, evidence, None))
        self._zero_error(best.reshape(1), evidence, batch=False)
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
            One column per observed variable, one row per case; state names or indices.

        Returns
        -------
        dict
            ``{variable: (N, card) float64}``, rows summing to one.

        Raises
        ------
        ZeroProbabilityError
            Naming the first case whose evidence has probability zero (``.case``).
        """
        if isinstance(evidence, pd.DataFrame):
            columns = {c: evidence[c].to_numpy() for c in evidence.columns}
        else:
            columns = {k: np.asarray(v).reshape(-1) for k, v in evidence.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise PGMError(f"evidence columns have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 1
        out = {}
        for var in self._as_list(variables):
            plan = self._plan([var], list(columns), elimination_order, _POSTERIOR)
            ev = self._evidence_matrix(plan, columns, n)
            chunk = max(1, (1 << 23) // max(plan.max_table_size, 1))
            parts = []
            for start in range(0, n, chunk):
                res, _ = self._run(plan, ev[start : start + chunk])
                z = res.sum(axis=1)
                try:
                    self._zero_error(z, {}, batch=True)
                except ZeroProbabilityError as err:
                    case = start + err.case
                    row = {k: v[case] for k, v in columns.items()}
                    raise ZeroProbabilityError(
                        f"evidence of case {case} has probability zero: {row}", case=case
                    ) from None
                parts.append(res / z[:, None])
            card = self._model().cards[plan.query_ids[0]]
            out[var] = np.concatenate(parts) if parts else np.zeros((0, card))
        return out
