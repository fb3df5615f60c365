"""A model's compiled form: integer-indexed factors, the input of planning and execution.

Built once per model version (after ``check_model``) and shared by every engine on that model
(kept in a ``WeakKeyDictionary``): a new engine on an unchanged model neither re-checks nor
recompiles it. Scopes and ancestral sets are Python-int bitsets (bit ``v``: variable ``v``).
A factor prepared for an evidence pattern (its observed axes moved last and flattened into
one) is cached here too, so every plan on the model shares it.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

import kernels
from pgm.pruning import ancestor_sets, fold_roots
from pgm.steps import bits

_PREPARED_MAX = 512  # prepared factors kept per compiled model
_PREPARED_LOCK = threading.Lock()


class PreparedFactor(NamedTuple):
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


class FactorKernels(NamedTuple):
    """The factor kernels of one device, looked up once (per compiled model for numpy tables,
    per engine for the GPU)."""

    sum_product: Any
    max_product: Any
    gather: Any
    contract: Any

    @classmethod
    def lookup(cls, device: str = "cpu") -> FactorKernels:
        return cls(*[kernels.get(f"factor_{name}", device=device) for name in cls._fields])


@dataclass(frozen=True)
class CompiledModel:
    """A model as integer-indexed factors, rebuilt when ``version`` moves.

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
    kernels: FactorKernels  # chosen when the version is compiled (``kernels.get``)
    unobserved: list  # factor id -> its PreparedFactor without evidence (None until asked)
    prepared_cache: dict[tuple, PreparedFactor] = field(default_factory=dict, repr=False)

    def prepared(self, factor: int, observed: int) -> PreparedFactor:
        """Factor ``factor`` for the variables of bitset ``observed``: its observed axes moved
        last and flattened into one. Cached per (factor, its observed variables): a factor
        without evidence in ``unobserved``, the others in ``prepared_cache``, at most
        ``_PREPARED_MAX`` entries (the oldest go first). Every engine on this version shares
        them.
        """
        seen = self.scope_bits[factor] & observed
        if not seen:  # the common case: one list lookup
            hit = self.unobserved[factor]
            if hit is None:
                hit = self.unobserved[factor] = self._prepare(factor, 0)
            return hit
        hit = self.prepared_cache.get((factor, seen))
        if hit is None:
            hit = self._keep((factor, seen), self._prepare(factor, seen))
        return hit

    def _prepare(self, factor: int, observed: int) -> PreparedFactor:
        table, scope = self.tables[factor], self.scopes[factor]
        observed_axes = [i for i, v in enumerate(scope) if observed >> v & 1]
        rest = [i for i, v in enumerate(scope) if not observed >> v & 1]
        if observed_axes and rest:
            table = table.transpose(rest + observed_axes)
        observed_cards = [self.cards[scope[i]] for i in observed_axes]
        strides = [math.prod(observed_cards[k + 1 :]) for k in range(len(observed_axes))]
        table = np.ascontiguousarray(table.reshape((*table.shape[: len(rest)], -1)))
        ids = [scope[i] for i in observed_axes]
        return PreparedFactor(
            table if observed_axes else table[..., 0],
            bits(scope[i] for i in rest),
            tuple(scope[i] for i in rest),
            np.array(ids, np.int64),
            np.array(strides, np.int64),
            tuple(zip(ids, strides, strict=True)),
        )

    def likelihood(self, variable: int) -> PreparedFactor:
        """The per-case likelihood of a partially observed ``variable``: columns one-hot
        states, then a column of ones that index ``-1`` ("not observed") picks (cached)."""
        hit = self.prepared_cache.get((-1 - variable,))
        if hit is not None:
            return hit
        card = self.cards[variable]
        table = np.hstack([np.eye(card), np.ones((card, 1))])
        return self._keep(
            (-1 - variable,),
            PreparedFactor(
                table,
                1 << variable,
                (variable,),
                np.array([variable], np.int64),
                np.ones(1, np.int64),
                ((variable, 1),),
            ),
        )

    def _keep(self, key: tuple, hit: PreparedFactor) -> PreparedFactor:
        with _PREPARED_LOCK:  # engines on one model may run in several threads
            while len(self.prepared_cache) >= _PREPARED_MAX:
                del self.prepared_cache[next(iter(self.prepared_cache))]
            self.prepared_cache[key] = hit
        return hit


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_model(model: Any) -> CompiledModel:
    """The compiled form of ``model``'s current version, shared by every engine on it."""
    hit = _COMPILED.get(model)
    if hit is None or hit.version != model.version:
        hit = _COMPILED[model] = _compile(model)
    return hit


def _compile(model: Any) -> CompiledModel:
    model.check_model()
    bayesian = hasattr(model, "get_cpds")
    if bayesian:
        cpds = model.get_cpds()
        names = [c.variable for c in cpds]
        states = [c.state_names[c.variable] for c in cpds]
        factors = [(c.variables, c.values) for c in cpds]
    else:
        states_of = model._variable_states()
        names = [name for name in model.nodes() if name in states_of]
        states = [states_of[name] for name in names]
        factors = [(f.variables, f.values) for f in model.get_factors()]
    index = {name: i for i, name in enumerate(names)}
    scopes = [tuple(index[v] for v in scope) for scope, _ in factors]
    factors_of: list[list[int]] = [[] for _ in names]
    for factor, scope in enumerate(scopes):
        for v in scope:
            factors_of[v].append(factor)
    n_variables = len(names)
    tables = [np.asarray(table, dtype=np.float64) for _, table in factors]
    cards = [len(s) for s in states]
    folds = {}
    for cpd, (scope, table, roots) in fold_roots(scopes, tables, factors_of, bayesian).items():
        folds[cpd] = (len(tables), roots)
        scopes.append(scope)
        tables.append(table)
    return CompiledModel(
        version=model.version,
        names=names,
        index=index,
        cards=cards,
        states=states,
        state_ids=[{s: i for i, s in enumerate(names_of)} for names_of in states],
        card_array=np.array(cards, dtype=np.int64),
        scopes=scopes,
        scope_bits=[sum(1 << v for v in set(scope)) for scope in scopes],
        tables=tables,
        factors_of=factors_of,
        ancestors=ancestor_sets([s[1:] for s in scopes[:n_variables]]) if bayesian else None,
        folds=folds,
        kernels=FactorKernels.lookup(),
        unobserved=[None] * len(tables),
    )
