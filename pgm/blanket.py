"""Posteriors of single variables given everything else: the Markov-blanket (Gibbs) conditionals.

For a Bayesian network and an assignment x of every other variable, the posterior of X_v needs no
elimination at all:

    P(X_v = s | x_-v)  ~  P(s | pa_v(x)) * prod_{c in children(v)} P(x_c | pa_c(x), X_v = s)

so only X_v's Markov blanket (parents, children, the children's other parents) matters. This
module computes it for many cases and many variables at once, in log space: one gather from all
the CPDs involved and one sum per variable (see :class:`_Program`). It is the fast path for
queries of the form P(X_v | all of its blanket observed), which variable elimination answers too
(and the tests check the two agree).

Letters: n cases, k states of X_v.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from pgm.errors import InferenceError, UnknownVariableError
from pgm.models import BayesianNetwork

__all__ = ["markov_blanket", "markov_blanket_posteriors"]


class _Prepared:
    """Blankets and gather programs of one model version, built on first use."""

    def __init__(self, model: BayesianNetwork) -> None:
        self.version = model.version
        self.blankets: dict[Any, frozenset] = {}
        self.programs: dict[tuple, _Program] = {}


class _Program:
    """How to gather ``log P(X_v = s | x_-v)`` (unnormalised) for a tuple of variables at once.

    Each requested variable ``v`` contributes one *term* per CPD that mentions it (its own and
    its children's). A term reads the flattened log-table of that CPD at
    ``offset + sum_a x[var_a] stride_a + s stride_v`` for every state ``s`` of ``v``: one gather
    over all terms and states, then a sum of each variable's consecutive terms.

    Letters: V variables, P terms, A the most other axes of a term, K the most states.

    Attributes
    ----------
    variables : tuple
        The V variables, in request order.
    cards : ndarray of int64, shape (V,)
    logs : ndarray of float64, shape (total,)
        Every CPD's log-table, flattened (C order), concatenated.
    offset, stride_v : ndarray of int64, shape (P,)
        Start of the term's table in ``logs``; stride of ``v``'s axis in it.
    axis_column, axis_stride : ndarray of int64, shape (P, A)
        Evidence column (index into ``columns``) and stride of the term's other axes; padded
        with column 0 and stride 0.
    columns : list
        The evidence variables the terms read, in column order (``columns_set``: as a set,
        which is the union of the variables' blankets).
    starts : ndarray of int64, shape (V,)
        First term of each variable (terms are grouped by variable, in request order).
    term_card : ndarray of int64, shape (P,)
        States of each term's variable.
    """

    def __init__(self, model: BayesianNetwork, variables: tuple) -> None:
        tables: dict[Any, tuple[int, np.ndarray, list]] = {}
        pieces, size = [], 0
        terms, starts = [], []
        for v in variables:
            starts.append(len(terms))
            for node in (v, *model.get_children(v)):
                if node not in tables:
                    cpd = model.get_cpds(node)
                    with np.errstate(divide="ignore"):  # C order: strides match the flat copy
                        table = np.ascontiguousarray(np.log(cpd.values))
                    tables[node] = (size, table, [node, *cpd.evidence])
                    pieces.append(table.reshape(-1))
                    size += table.size
                start, table, axes = tables[node]
                strides = [st // table.itemsize for st in table.strides]
                others = [(u, strides[i]) for i, u in enumerate(axes) if u != v]
                terms.append((start, strides[axes.index(v)], others))
        self.variables = variables
        self.cards = np.array([model.get_cardinality(v) for v in variables], dtype=np.int64)
        self.logs = np.concatenate(pieces) if pieces else np.zeros(0)
        self.columns = list(dict.fromkeys(u for _, _, others in terms for u, _ in others))
        self.columns_set = frozenset(self.columns)
        where = {u: i for i, u in enumerate(self.columns)}
        width = max((len(others) for _, _, others in terms), default=0)
        self.offset = np.array([t[0] for t in terms], dtype=np.int64)
        self.stride_v = np.array([t[1] for t in terms], dtype=np.int64)
        self.axis_column = np.zeros((len(terms), width), dtype=np.int64)
        self.axis_stride = np.zeros((len(terms), width), dtype=np.int64)
        for p, (_, _, others) in enumerate(terms):
            for a, (u, stride) in enumerate(others):
                self.axis_column[p, a], self.axis_stride[p, a] = where[u], stride
        self.starts = np.array(starts, dtype=np.int64)
        self.term_card = self.cards.repeat(np.diff(np.append(self.starts, len(terms))))

    def log_scores(self, evidence: np.ndarray) -> np.ndarray:
        """(n, V, K) float64 unnormalised log-posteriors (``-inf`` past a variable's states)
        from the (n, len(columns)) int64 ``evidence``."""
        n, k = evidence.shape[0], int(self.cards.max())
        if n == 0:
            return np.zeros((0, self.cards.size, k))
        base = self.offset + (evidence[:, self.axis_column] * self.axis_stride).sum(axis=2)
        states = np.minimum(np.arange(k), self.term_card[:, None] - 1)  # (P, K), clipped
        index = base[:, :, None] + states * self.stride_v[:, None]
        total = np.add.reduceat(self.logs[index], self.starts, axis=1)
        total[:, np.arange(k)[None, :] >= self.cards[:, None]] = -np.inf
        return total


_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MAX_PROGRAMS = 64  # gather programs kept per model version


def _prepare(model: BayesianNetwork) -> _Prepared:
    """The cache of ``model``, rebuilt when the model's version changed."""
    prep = _prepared.get(model)
    if prep is None or prep.version != model.version:
        prep = _prepared[model] = _Prepared(model)
    return prep


def markov_blanket(model: BayesianNetwork, variable: Any) -> frozenset:
    """Parents, children and the children's other parents of ``variable`` (cached per model
    version)."""
    prep = _prepare(model)
    if variable not in prep.blankets:
        if variable not in model:
            raise UnknownVariableError(f"unknown variable {variable!r}")
        blanket = set(model.get_parents(variable)) | set(model.get_children(variable))
        for child in model.get_children(variable):
            blanket |= set(model.get_parents(child))
        blanket.discard(variable)
        prep.blankets[variable] = frozenset(blanket)
    return prep.blankets[variable]


def markov_blanket_posteriors(
    model: BayesianNetwork,
    evidence: Mapping[Any, Any],
    variables: Iterable[Any] | None = None,
) -> dict[Any, np.ndarray]:
    """``P(X_v | its Markov blanket)`` for each requested variable and each case.

    Parameters
    ----------
    model : BayesianNetwork
        A checked model (every node has its CPD).
    evidence : mapping of variable to array_like of int, shape (n,)
        State indices of the observed variables, one entry per case. Every variable of the
        requested variables' Markov blankets must be present; the variable's own column, if
        given, is ignored.
    variables : iterable, optional
        Variables to compute (default: every variable whose blanket is in ``evidence``).

    Returns
    -------
    dict
        ``{variable: ndarray (n, k) float64}``, rows summing to one.

    Raises
    ------
    UnknownVariableError
        A requested variable is not in the model.
    InferenceError
        A blanket variable is missing from ``evidence`` (named), an index is out of range, or a
        case has probability zero for every state of the variable (named by case).
    """
    names = list(evidence)
    columns = [np.asarray(evidence[v], dtype=np.int64).reshape(-1) for v in names]
    sizes = {a.shape[0] for a in columns}
    if len(sizes) > 1:
        raise InferenceError(f"evidence columns have different lengths {sorted(sizes)}")
    n = sizes.pop() if sizes else 1
    unknown = [v for v in names if v not in model]
    if unknown:
        raise UnknownVariableError(f"unknown evidence variable {unknown[0]!r}")
    given = np.stack(columns, axis=1) if names else np.zeros((n, 0), dtype=np.int64)
    cards = np.array([model.get_cardinality(v) for v in names], dtype=np.int64)
    bad = np.flatnonzero(((given < 0) | (given >= cards)).any(axis=0))
    if bad.size:
        v = names[bad[0]]
        raise InferenceError(f"evidence of {v!r} holds a state index outside [0, {cards[bad[0]]})")
    observed = dict(zip(names, range(len(names)), strict=True))
    if variables is None:
        variables = [v for v in model.nodes() if markov_blanket(model, v) <= observed.keys()]
    variables = tuple(variables)
    prep = _prepare(model)
    program = prep.programs.get(variables)
    if program is None or not observed.keys() >= program.columns_set:
        for v in variables:
            missing = markov_blanket(model, v) - observed.keys()
            if missing:
                raise InferenceError(
                    f"P({v!r} | blanket) needs {sorted(map(str, missing))} observed in every case"
                )
    if not variables:
        return {}
    if program is None:
        if len(prep.programs) >= _MAX_PROGRAMS:  # forget the oldest
            del prep.programs[next(iter(prep.programs))]
        program = prep.programs[variables] = _Program(model, variables)
    matrix = given[:, [observed[u] for u in program.columns]]
    total = program.log_scores(matrix)
    top = total.max(axis=2, keepdims=True)
    impossible = ~np.isfinite(top[:, :, 0])
    if impossible.any():
        case, which = np.argwhere(impossible.T)[0][::-1]
        raise InferenceError(
            f"case {case}: the blanket of {variables[which]!r} has probability zero for every "
            "state"
        )
    p = np.exp(total - top)
    p /= p.sum(axis=2, keepdims=True)
    return {v: p[:, i, : program.cards[i]] for i, v in enumerate(variables)}
