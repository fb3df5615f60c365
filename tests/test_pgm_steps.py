"""The step-planning kernel: its Numba twin against the reference on random elimination
problems, and the plans of the networks of ``tests/networks`` under both backends."""

from __future__ import annotations

from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import kernels
import pgm
from kernels.cpu.steps import plan_steps as fast
from kernels.reference.steps import pack_problem
from kernels.reference.steps import plan_steps as reference
from pgm.steps import build_steps, fused_steps

NETWORKS = Path(__file__).resolve().parent / "networks"


def random_problem(rng: np.random.Generator) -> tuple:
    """``(problem, cards)`` of ``plan_steps``: random tables over up to 70 variables (past
    the 64 of the fast path), query, mode, order (explicit or a heuristic), batch or single,
    limit, and at times settings other than the defaults."""
    n = int(rng.choice([4, 8, 16, 40, 70]))
    cards = rng.integers(1, 5, n).astype(np.int64)
    tables = []
    for _ in range(int(rng.integers(1, 3 * n + 2))):  # at times past MAX_OPERANDS per step
        size = int(rng.integers(0, min(n, 5) + 1))
        tables.append(rng.permutation(rng.choice(n, size, replace=False)).tolist())
    used = np.unique(np.concatenate(tables)).astype(np.int64)
    mode = int(rng.integers(0, 3))
    query = rng.choice(used, min(len(used), int(rng.integers(0, 4))), replace=False)
    query = query.astype(np.int64) if mode != 1 else np.zeros(0, np.int64)
    hidden = rng.permutation(np.setdiff1d(used, query)).astype(np.int64)
    heuristic = int(rng.integers(-1, 3))
    if heuristic < 0 and mode == 2:
        elim = np.concatenate([hidden, rng.permutation(query)]).astype(np.int64)
    elif heuristic < 0 and rng.random() < 0.2:
        elim = np.zeros(0, np.int64)  # a fused plan: only the final product
    else:
        elim = hidden
    cases = rng.random(len(tables)) < 0.5
    limit = int(rng.choice([10**7, 10**4, int(rng.integers(1, 300))]))
    single = bool(rng.random() < 0.6)
    settings = {}
    if rng.random() < 0.3:  # small bounds: many groups, pairwise splits, matmuls, merges
        settings = {
            "max_operands": int(rng.integers(2, 9)),
            "pairwise_min": int(rng.integers(0, 64)),
            "matmul_min": int(rng.integers(0, 64)),
            "merge_max": int(rng.integers(0, 64)),
        }
    problem = pack_problem(tables, cases, query, elim, heuristic, mode, single, limit, **settings)
    return problem, cards


@given(seed=st.integers(0, 2**32 - 1))
def test_numba_plan_equals_reference(seed):
    """Every array the Numba kernel returns equals the reference's, on 40 random problems
    (refusals, more than 64 variables, grouped and pairwise steps, MAP, batches included)."""
    rng = np.random.default_rng(seed)
    for _ in range(40):
        problem, cards = random_problem(rng)
        (plan, spec), (plan_ref, spec_ref) = fast(problem, cards), reference(problem, cards)
        header = problem[:11].tolist()
        assert np.array_equal(plan, plan_ref), (
            "plans differ for [F, Q, E, heuristic, mode, single, limit, max_operands, "
            f"pairwise_min, matmul_min, merge_max] = {header}:\n"
            f" numba     {plan.tolist()}\n reference {plan_ref.tolist()}"
        )
        assert spec.tobytes() == spec_ref.tobytes(), (
            f"specs differ for {header}: {spec.tobytes()} vs {spec_ref.tobytes()}"
        )


@pytest.mark.parametrize("name", ["clinic", "hub45"])
def test_plans_of_networks_equal_under_both_backends(name):
    """Plans of 30 random queries per network (posterior, joint, MAP, batch with partially
    observed evidence) are the same steps (or the same refusal) whichever backend plans them
    (hub45: pairwise splits and planned matrix products in most of them)."""
    model = pgm.read_bif(NETWORKS / f"{name}.bif")
    rng = np.random.default_rng(7)
    nodes = model.nodes()
    queries = []
    for k in range(30):
        picked = [nodes[i] for i in rng.choice(len(nodes), 6, replace=False)]
        q, ev = picked[: 1 + k % 3], picked[3 : 3 + k % 3]
        queries.append((q, ev, picked[5:] if k % 5 == 0 else []))
    plans = {}
    for backend in (None, "reference"):
        kernels.set_backend_override(backend)
        try:
            ve = pgm.VariableElimination(model)
            plans[backend] = [
                outcome(ve.plan, q, ev, "min_fill", soft)
                + outcome(ve._plan, q, ev, [], "min_fill", "map")
                for q, ev, soft in queries
            ]
        finally:
            kernels.set_backend_override(None)
    for query, got, expected in zip(queries, plans[None], plans["reference"], strict=True):
        assert got == expected, f"plans of {query} differ:\n{got}\n{expected}"


def outcome(plan, *args) -> tuple:
    """``(steps, order)`` of the plan ``plan(*args)`` returns, or the message it raises."""
    try:
        made = plan(*args)
    except pgm.TableSizeError as err:
        return (str(err),)
    return made.steps, made.order


@given(seed=st.integers(0, 2**32 - 1))
def test_fused_plan_equals_kernel_plan(seed):
    """The one-step plan built without the kernel equals the kernel's plan with no
    elimination order (single case), wherever it is built."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n = int(rng.integers(1, 12))
        cards = rng.integers(1, 4, n).astype(np.int64)
        tables = [
            tuple(int(v) for v in rng.permutation(rng.choice(n, k, replace=False)))
            for k in rng.integers(0, min(n, 4) + 1, int(rng.integers(0, 40)))
        ]
        used = sorted({v for axes in tables for v in axes})
        query = [int(v) for v in rng.permutation(used)[: int(rng.integers(0, 3))]]
        limit = int(rng.choice([10**7, int(rng.integers(1, 100))]))
        fused = fused_steps(tables, cards.tolist(), query, limit)
        if fused is None:
            continue
        names = [f"X{i}" for i in range(n)]
        expected = build_steps(tables, None, cards, names, query, [], "posterior", True, limit)
        assert fused == expected, f"{tables} -> {query}:\n{fused}\n{expected}"


def test_settings_out_of_range_are_refused_by_both_backends():
    cards = np.array([2, 2], np.int64)
    for settings in ({"max_operands": 1}, {"max_operands": 65}, {"merge_max": -1}):
        problem = pack_problem([(0, 1)], None, [0], (), 1, 0, True, 100, **settings)
        for plan in (fast, reference):
            with pytest.raises(ValueError, match="max_operands"):
                plan(problem, cards)
