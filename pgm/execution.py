"""Execution of a :class:`~pgm.plans.Plan` on the numbers of the evidence.

A single case slices each prepared factor at its evidence (a view, no case axis). A batch
gathers every factor's evidence slice for all cases at once, from an evidence matrix
``(n_variables, N)`` of state indices by variable id, into a trailing case axis ``N``, and runs
the same kind of steps. Sum-product and max-product run the same steps and differ only in the
kernel of a step (max steps keep an argmax table for the traceback).

A batch may run on the GPU (:class:`Placement`): the model's tables are copied there once, the
evidence once per chunk of cases, and only each chunk's result comes back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

import kernels
from pgm.compiled import CompiledModel, FactorKernels, PreparedFactor
from pgm.plans import Plan
from pgm.steps import MAX, Step

_BATCH_ENTRIES = 1 << 23  # the cases of a batch run in chunks whose tables stay this small
_COPIES_MAX = 4096  # device copies of host tables kept per placement


class Placement:
    """The device of an engine's batches: its factor kernels and its copies of the tables.

    Parameters
    ----------
    device : {"gpu"}
        The CPU needs no placement (``None`` everywhere below).

    Raises
    ------
    ValueError
        On a device name other than ``"cpu"`` and ``"gpu"``.
    GPUUnavailableError
        For ``"gpu"`` without cupy or a CUDA device (under Numba's CUDA simulator the GPU
        kernels run on host arrays instead).
    """

    def __init__(self, device: str) -> None:
        self.xp = kernels.device_module(device)
        self.kernels = FactorKernels.lookup(device)
        self._copies: dict[int, tuple[np.ndarray, Any]] = {}

    def put(self, array: np.ndarray) -> Any:
        """The device copy of a host table, made once per table object (the compiled model
        keeps its prepared tables, so their identity is stable)."""
        hit = self._copies.get(id(array))
        if hit is None or hit[0] is not array:
            if len(self._copies) >= _COPIES_MAX:
                self._copies.clear()
            hit = self._copies[id(array)] = (array, self.xp.asarray(array))
        return hit[1]


def execute_steps(
    run: FactorKernels, plan: Plan, tables: list[Any]
) -> tuple[Any, list[tuple[Step, np.ndarray]]]:
    """Run the steps of ``plan`` with the kernels ``run`` on its input tables ``tables``
    (extended in place: step ``k`` appends its result; an operand's entry is cleared once used).

    Returns the last step's table (``None`` without steps) and, for max steps,
    ``[(step, argmax table)]`` in step order.
    """
    argmaxes = []
    for step in plan.steps:
        operands = [tables[s] for s in step.operands]
        for s in step.operands:
            tables[s] = None
        if step.op == MAX:
            best, argmax = run.max_product(step.spec, *operands)
            tables.append(best)
            argmaxes.append((step, argmax))
        elif step.gemm is not None:
            tables.append(run.contract(*operands, step.gemm))
        else:
            tables.append(run.sum_product(step.spec, *operands, blas=step.blas))
    return (tables[-1] if plan.steps else None), argmaxes


def run_single(
    model: CompiledModel, plan: Plan, states: list[int]
) -> tuple[Any, float, dict[int, int]]:
    """Execute a single-case ``plan``; ``states``: the state index of each observed variable
    at its id (other entries are not read).

    Returns the unnormalised result (shape: the query cardinalities; ``1.0`` without steps)
    without the constant factors, their product, and for MAP plans the argmax assignment
    ``{variable id: state index}``.
    """
    tables: list[Any] = []
    for prepared in plan.inputs:  # (loops written out: this is the warm path of a query)
        if prepared.pairs:
            index = 0
            for variable, stride in prepared.pairs:
                index += states[variable] * stride
            tables.append(prepared.table[..., index])
        else:
            tables.append(prepared.table)
    constant = 1.0
    for prepared in plan.constants:
        index = 0
        for variable, stride in prepared.pairs:
            index += states[variable] * stride
        constant *= prepared.table.item(index)
    result, argmaxes = execute_steps(model.kernels, plan, tables)
    assignment: dict[int, int] = {}
    for step, argmax in reversed(argmaxes):
        where = tuple([assignment[v] for v in step.out_scope])
        assignment[step.var] = int(argmax[where])
    return (1.0 if result is None else result), constant, assignment


def run_batch(
    model: CompiledModel, plan: Plan, evidence: np.ndarray, placement: Placement | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Execute a batch ``plan`` on ``evidence``, int64 ``(n_variables, N)`` state indices by
    variable id (``-1``: unobserved, in the partially observed rows only), on the CPU or on
    ``placement``'s device.

    Returns the unnormalised result ``(N, *query cards)`` without the constant factors, and
    their product ``(N,)`` (numpy arrays).
    """
    n_cases = evidence.shape[1]
    if placement is None:
        run = model.kernels
        tables = [
            run.gather(p.table, p.strides @ evidence[p.evidence_pos]) if p.pairs else p.table
            for p in plan.inputs
        ]
    else:
        run, put = placement.kernels, placement.put
        cases = placement.xp.asarray(evidence)
        tables = [  # the flat evidence rows by an element-wise sum (no integer GEMM on a GPU)
            run.gather(put(p.table), (cases[put(p.evidence_pos)] * put(p.strides)[:, None]).sum(0))
            if p.pairs
            else put(p.table)
            for p in plan.inputs
        ]
    result, _ = execute_steps(run, plan, tables)
    if placement is not None and result is not None:
        result = kernels.to_host(result)
    if result is None:
        result = np.ones([model.cards[v] for v in plan.query_ids])
    if plan.steps and plan.steps[-1].has_case:
        result = result.transpose(result.ndim - 1, *range(result.ndim - 1))  # cases first
    else:
        result = np.broadcast_to(result, (n_cases, *result.shape))
    return result, constant_product(plan.constants, evidence)


def constant_product(constants: Sequence[PreparedFactor], evidence: np.ndarray) -> np.ndarray:
    """``(N,)`` product of the constant factors of each case, in one ``take``: entry ``k`` of a
    case is ``flat[offsets[k] + strides[k] @ evidence[pos[k], case]]`` (``pos`` and
    ``strides`` padded with zero strides to one width)."""
    if not constants:
        return np.ones(evidence.shape[1])
    width = max(c.evidence_pos.size for c in constants)
    pos = np.zeros((len(constants), width), np.int64)
    strides = np.zeros((len(constants), width), np.int64)
    for k, constant in enumerate(constants):
        pos[k, : constant.evidence_pos.size] = constant.evidence_pos
        strides[k, : constant.strides.size] = constant.strides
    sizes = [c.table.size for c in constants]
    offsets = np.cumsum([0, *sizes[:-1]])
    flat = np.concatenate([c.table.reshape(-1) for c in constants])
    rows = offsets[:, None] + (evidence[pos] * strides[:, :, None]).sum(axis=1)
    return np.take(flat, rows).prod(axis=0)


def run_batches(
    model: CompiledModel,
    plan: Plan,
    columns: dict[Any, np.ndarray],
    n_cases: int,
    placement: Placement | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(start, result, constants)`` of :func:`run_batch` over chunks of the cases
    whose tables stay under ``_BATCH_ENTRIES`` entries; ``columns``: the state indices of each
    evidence variable of the plan by name, ``(N,)`` each; ``placement``: the device (None: the
    CPU)."""
    evidence = np.zeros((len(model.names), n_cases), np.int64)
    for v, name in zip(plan.evidence_ids, plan.evidence, strict=True):
        evidence[v] = columns[name]
    chunk = max(1, _BATCH_ENTRIES // max(plan.max_table_size, 1))
    for start in range(0, n_cases, chunk):
        result, constants = run_batch(model, plan, evidence[:, start : start + chunk], placement)
        yield start, result, constants
