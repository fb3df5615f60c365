"""Plans of variable elimination: the structure of a query, built once, run for any evidence.

A :class:`Plan` depends only on the structure of a query (the model version, which variables
are asked, which are observed in every case and which only in some, the elimination order, and
whether it serves one case or a batch); the numbers of the evidence enter only at execution
(:mod:`pgm.execution`). Planning works on sets of variables held as Python-int bitsets (bit
``v``: variable ``v``). :func:`build_plan`

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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pgm.compiled import CompiledModel, PreparedFactor
from pgm.errors import PGMError, UnknownVariableError
from pgm.ordering import bit_list, heuristic_code
from pgm.pruning import relevant_factors
from pgm.steps import Step, bits, build_steps, fused_steps, table_size

POSTERIOR, EVIDENCE, MAP = "posterior", "evidence", "map"  # query modes
_FUSE_MAX = 1024  # single queries whose variables span at most this many entries: one einsum


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
    inputs: tuple[PreparedFactor, ...] = field(repr=False)
    constants: tuple[PreparedFactor, ...] = field(repr=False)
    steps: tuple[Step, ...] = field(repr=False)


def build_plan(
    model: CompiledModel,
    query_ids: list[int],
    observed_ids: list[int],
    partial_ids: list[int],
    order: str | Sequence[Any],
    mode: str,
    single: bool,
    max_table_size: int,
) -> Plan:
    """Prune, order, and turn the eliminations into steps.

    Parameters
    ----------
    model : CompiledModel
    query_ids : list of int
        Query variable ids, in the result's axis order.
    observed_ids : list of int
        Ids of the variables observed in every case, ascending.
    partial_ids : list of int
        Ids of the variables a batch observes in some cases only, ascending.
    order : str or sequence
        A heuristic name of :data:`pgm.ordering.HEURISTICS`, or variable names to eliminate in
        that order.
    mode : {"posterior", "evidence", "map"}
    single : bool
        A plan for one case, or for a batch.
    max_table_size : int
        The largest table a step may build.

    A single sum-product query whose variables span at most ``_FUSE_MAX`` joint entries is
    one einsum (no ordering; its Python overhead would exceed the loop).

    Raises
    ------
    TableSizeError
        If a step would build a table larger than ``max_table_size``.
    """
    if isinstance(order, str):
        heuristic_code(order)  # an unknown name raises even when no ordering runs
    query, observed = bits(query_ids), bits(observed_ids)
    seeds = query | observed | bits(partial_ids)
    factors, constants = relevant_factors(
        model.scope_bits,
        model.factors_of,
        model.ancestors,
        query,
        observed,
        seeds,
        connected=mode != EVIDENCE,
    )
    if model.folds:
        factors = _with_folded_roots(model, factors, seeds)
    inputs = [model.prepared(f, observed) for f in factors]
    kept = query
    for prepared in inputs:
        kept |= prepared.scope
    partial_ids = [v for v in partial_ids if kept >> v & 1]  # those the query needs
    inputs += [model.likelihood(v) for v in partial_ids]
    hidden = kept & ~query
    fuse = single and mode != MAP and isinstance(order, str)
    if fuse and 1 << kept.bit_count() <= _FUSE_MAX:  # (a quick bound: 2+ states each)
        fuse = table_size(model.cards, kept) <= _FUSE_MAX
    else:
        fuse = False
    tables = [prepared.axes for prepared in inputs]
    built = fused_steps(tables, model.cards, query_ids, max_table_size) if fuse else None
    if built is None:
        if fuse:
            order_arg: Any = []
        elif isinstance(order, str):
            order_arg = heuristic_code(order)
        else:
            order_arg = explicit_order(
                model, order, hidden, query_ids, observed_ids, partial_ids, mode
            )
        built = build_steps(
            tables,
            None if single else [bool(prepared.pairs) for prepared in inputs],
            model.card_array,
            model.names,
            query_ids,
            order_arg,
            mode,
            single,
            max_table_size,
        )
    eliminated = built.order or bit_list(hidden)
    return Plan(
        variables=tuple([model.names[v] for v in query_ids]),
        evidence=tuple([model.names[v] for v in observed_ids + partial_ids]),
        order=tuple([model.names[v] for v in eliminated]),
        induced_width=max(built.width, 0),
        max_table_size=built.biggest,
        n_factors=len(factors),
        n_constants=len(constants),
        mode=mode,
        single=single,
        query_ids=tuple(query_ids),
        evidence_ids=observed_ids + partial_ids,
        inputs=tuple(inputs),
        constants=tuple([model.prepared(f, observed) for f in constants]),
        steps=built.steps,
    )


def _with_folded_roots(model: CompiledModel, factors: list[int], seeds: int) -> list[int]:
    """``factors`` with each CPD whose folded roots the query leaves hidden (none in bitset
    ``seeds``) replaced by its folded twin, and those roots' CPDs dropped."""
    out, dropped = [], 0
    for factor in factors:
        hit = model.folds.get(factor)
        if hit is not None and not hit[1] & seeds:
            factor = hit[0]
            dropped |= hit[1]
        out.append(factor)
    return [f for f in out if not dropped >> f & 1] if dropped else out


def explicit_order(
    model: CompiledModel,
    order: Sequence[Any],
    hidden: int,
    query_ids: list[int],
    observed_ids: list[int],
    partial_ids: list[int],
    mode: str,
) -> list[int]:
    """The listed variables that must go (bitset ``hidden``), in order; partially observed
    ones not listed go last; for MAP the query variables follow by id.

    Raises
    ------
    UnknownVariableError
        If ``order`` names an unknown variable.
    PGMError
        If it names a queried or observed variable, or misses one that must be eliminated.
    """
    given = set(query_ids) | set(observed_ids)
    eliminated = []
    for name in order:
        if name not in model.index:
            raise UnknownVariableError(f"unknown variable {name!r} in elimination_order")
        v = model.index[name]
        if v in given:
            raise PGMError(f"elimination_order names {name!r}, which is queried or observed")
        if hidden >> v & 1:
            eliminated.append(v)
    eliminated += [v for v in partial_ids if v not in eliminated]
    missing = hidden & ~bits(eliminated)
    if missing:
        raise PGMError(
            "elimination_order misses variables that must be eliminated: "
            f"{sorted((model.names[v] for v in bit_list(missing)), key=str)}"
        )
    if mode == MAP:
        eliminated += sorted(query_ids)
    return eliminated
