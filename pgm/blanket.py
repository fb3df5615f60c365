"""Posteriors of single variables given everything else: the Markov-blanket (Gibbs) conditionals.

For a Bayesian network and an assignment x of every other variable, the posterior of X_v needs no
elimination at all:

    P(X_v = s | x_-v)  ~  P(s | pa_v(x)) * prod_{c in children(v)} P(x_c | pa_c(x), X_v = s)

so only X_v's Markov blanket (parents, children, the children's other parents) matters. This module
computes it for many cases and many variables at once, with one gather per CPD involved, in log
space. It is the fast path for queries of the form P(X_v | all of its blanket observed), which
variable elimination answers too (and the tests check the two agree).

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
    """Blankets and log-CPD tables of one model version, built on first use per variable."""

    def __init__(self, model: BayesianNetwork) -> None:
        self.version = model.version
        self.blankets: dict[Any, frozenset] = {}
        self.families: dict[Any, tuple[np.ndarray, list]] = {}


_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


def _log_family(model: BayesianNetwork, node: Any) -> tuple[np.ndarray, list]:
    """log of the CPD table of ``node`` (child axis first) and its parents in axis order."""
    prep = _prepare(model)
    if node not in prep.families:
        cpd = model.get_cpds(node)
        with np.errstate(divide="ignore"):
            prep.families[node] = (np.log(cpd.values), list(cpd.evidence))
    return prep.families[node]


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
    columns = {v: np.asarray(a, dtype=np.int64).reshape(-1) for v, a in evidence.items()}
    sizes = {a.shape[0] for a in columns.values()}
    if len(sizes) > 1:
        raise InferenceError(f"evidence columns have different lengths {sorted(sizes)}")
    n = sizes.pop() if sizes else 1
    for v, a in columns.items():
        if v not in model:
            raise UnknownVariableError(f"unknown evidence variable {v!r}")
        card = model.get_cardinality(v)
        if a.size and (a.min() < 0 or a.max() >= card):
            raise InferenceError(f"evidence of {v!r} holds a state index outside [0, {card})")
    if variables is None:
        variables = [v for v in model.nodes() if markov_blanket(model, v) <= columns.keys()]
    out: dict[Any, np.ndarray] = {}
    for v in variables:
        missing = markov_blanket(model, v) - columns.keys()
        if missing:
            raise InferenceError(
                f"P({v!r} | blanket) needs {sorted(map(str, missing))} observed in every case"
            )
        k = model.get_cardinality(v)
        states = np.arange(k)
        total = np.zeros((n, k))
        for node in [v, *model.get_children(v)]:
            table, parents = _log_family(model, node)
            index = []
            for axis_var in [node, *parents]:
                if axis_var == v:
                    index.append(states[None, :])
                else:
                    index.append(columns[axis_var][:, None])
            total += table[tuple(index)]
        top = total.max(axis=1, keepdims=True)
        impossible = ~np.isfinite(top[:, 0])
        if impossible.any():
            case = int(np.flatnonzero(impossible)[0])
            raise InferenceError(
                f"case {case}: the blanket of {v!r} has probability zero for every state"
            )
        p = np.exp(total - top)
        out[v] = p / p.sum(axis=1, keepdims=True)
    return out
