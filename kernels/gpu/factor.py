"""GPU factor kernels of variable elimination: product with sum-out or max-out, evidence gather.

Same names, signatures and results as :mod:`kernels.reference.factor` (float64 tables, einsum
subscripts, a trailing case axis ``N`` in batches). :func:`factor_sum_product` and
:func:`factor_max_product` are one generic ``numba.cuda`` kernel: one thread per entry of the
result, which walks the entries of the summed variables and multiplies the operands' entries
(each operand's offset from its strides; a variable an operand lacks has stride 0). In max mode
the thread also walks the first output axis and keeps the first maximum and its index.
:func:`factor_gather` is one thread per (table row, case). :func:`factor_contract` is the
reference itself: its matrix product is ``numpy.matmul``, which NumPy hands to ``cupy.matmul``
(cuBLAS) for cupy arrays.

Operands are copied into one flat buffer per call (the kernel has a fixed argument list);
the subscripts' strides are computed once per (spec, shapes) and kept on the device.
"""

from __future__ import annotations

import math

import numpy as np

from kernels.gpu._device import array_module
from kernels.gpu._launch import cuda, grid
from kernels.reference.factor import factor_contract

__all__ = ["factor_contract", "factor_gather", "factor_max_product", "factor_sum_product"]

MAX_OPERANDS = 32
"""Most tables one product may take (the kernel keeps one offset per operand in registers)."""

_PLANS: dict[tuple, tuple] = {}
_PLANS_MAX = 4096


@cuda.jit
def _product(flat, offsets, out_shape, out_strides, sum_shape, sum_strides, maximise, out, arg):
    k = cuda.grid(1)
    if k >= out.shape[0]:
        return
    n_ops = offsets.shape[0]
    base = cuda.local.array(32, np.int64)  # MAX_OPERANDS
    for o in range(n_ops):
        base[o] = offsets[o]
    first = 1 if maximise else 0
    rem = k
    for ax in range(out_shape.shape[0] - 1, first - 1, -1):
        i = rem % out_shape[ax]
        rem //= out_shape[ax]
        for o in range(n_ops):
            base[o] += i * out_strides[o, ax]
    n_sum = 1
    for ax in range(sum_shape.shape[0]):
        n_sum *= sum_shape[ax]
    n_max = out_shape[0] if maximise else 1
    best = 0.0
    best_at = 0
    for m in range(n_max):
        total = 0.0
        for s in range(n_sum):
            term = 1.0
            for o in range(n_ops):
                at = base[o]
                if maximise:
                    at += m * out_strides[o, 0]
                rem = s
                for ax in range(sum_shape.shape[0] - 1, -1, -1):
                    at += (rem % sum_shape[ax]) * sum_strides[o, ax]
                    rem //= sum_shape[ax]
                term *= flat[at]
            total += term
        if m == 0 or total > best:
            best = total
            best_at = m
    out[k] = best
    if maximise:
        arg[k] = best_at


@cuda.jit
def _gather(table, rows, out):
    k = cuda.grid(1)
    n_rows, n_cases = out.shape
    if k < n_rows * n_cases:
        p = k // n_cases
        n = k - p * n_cases
        r = rows[n]
        if r < 0:
            r += table.shape[1]
        out[p, n] = table[p, r]


def _plan(xp, spec: str, shapes: tuple[tuple[int, ...], ...]) -> tuple:
    """Output shape and the kernel's index arrays (on the device) for ``spec`` on ``shapes``."""
    key = (xp.__name__, spec, shapes)
    hit = _PLANS.get(key)
    if hit is not None:
        return hit
    if "..." in spec or "->" not in spec:
        raise ValueError(f"factor spec {spec!r} must name every axis and its output ('->')")
    inputs, output = spec.split("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"factor spec {spec!r} names {len(terms)} tables, got {len(shapes)}")
    if len(terms) > MAX_OPERANDS:
        raise ValueError(f"a factor product takes at most {MAX_OPERANDS} tables, got {len(terms)}")
    size: dict[str, int] = {}
    for term, shape in zip(terms, shapes, strict=True):
        if len(term) != len(shape):
            raise ValueError(f"factor spec term {term!r} does not fit a table of shape {shape}")
        for letter, n in zip(term, shape, strict=True):
            if size.setdefault(letter, n) != n:
                raise ValueError(
                    f"factor spec {spec!r}: axis {letter!r} has sizes {size[letter]}, {n}"
                )
    summed = [letter for letter in size if letter not in output]
    out_letters = list(output) or ["."]  # a scalar result: one dummy axis of size 1
    sum_letters = summed or ["."]  # no summed axis: one dummy axis of size 1
    size["."] = 1
    strides = []
    for term, shape in zip(terms, shapes, strict=True):
        step = {letter: 0 for letter in size}
        for i, letter in enumerate(term):
            step[letter] += math.prod(shape[i + 1 :])
        strides.append(step)
    offsets = np.cumsum([0] + [math.prod(s) for s in shapes[:-1]])
    index = [
        np.asarray(offsets, np.int64),
        np.array([size[x] for x in out_letters], np.int64),
        np.array([[s[x] for x in out_letters] for s in strides], np.int64),
        np.array([size[x] for x in sum_letters], np.int64),
        np.array([[s[x] for x in sum_letters] for s in strides], np.int64),
    ]
    hit = (tuple(size[x] for x in output), [xp.asarray(a) for a in index])
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
    _PLANS[key] = hit
    return hit


def _run(spec: str, tables: tuple, maximise: bool):
    xp = array_module(*tables)
    out_shape, index = _plan(xp, spec, tuple(tuple(t.shape) for t in tables))
    kept = out_shape[1:] if maximise else out_shape
    out = xp.empty(math.prod(kept), dtype=np.float64)
    arg = xp.empty(out.shape[0] if maximise else 1, dtype=np.int64)
    if out.size and all(t.size for t in tables):
        flat = xp.concatenate([xp.asarray(t, dtype=np.float64).reshape(-1) for t in tables])
        blocks, threads = grid(out.size)
        _product[blocks, threads](flat, *index, maximise, out, arg)
    elif out.size:  # an operand without entries: the sums are empty
        out[...] = 0.0
        arg[...] = 0
    return out.reshape(kept), (arg.reshape(kept) if maximise else None)


def factor_sum_product(spec: str, *tables, blas: bool = False):
    """Multiply ``tables`` and sum out the axes absent from the output of ``spec`` (see
    :func:`kernels.reference.factor.factor_sum_product`; ``blas`` is ignored)."""
    return _run(spec, tables, False)[0]


def factor_max_product(spec: str, *tables):
    """Multiply ``tables`` into the output of ``spec`` and max out its first axis (see
    :func:`kernels.reference.factor.factor_max_product`)."""
    if not spec.split("->")[-1]:
        raise ValueError(f"factor spec {spec!r} has no output axis to maximise")
    return _run(spec, tables, True)


def factor_gather(table, rows):
    """Pick ``table[..., rows[i]]`` for each case ``i`` (see
    :func:`kernels.reference.factor.factor_gather`); ``rows`` on the table's device."""
    xp = array_module(table)
    flat = xp.ascontiguousarray(table).reshape(-1, table.shape[-1])
    out = xp.empty((flat.shape[0], rows.shape[0]), dtype=table.dtype)
    if out.size:
        blocks, threads = grid(out.size)
        _gather[blocks, threads](flat, rows, out)
    return out.reshape(table.shape[:-1] + (rows.shape[0],))
