"""GPU activation kernels: one element-wise kernel and one row kernel, the op a parameter.

Same names, signatures and results as :mod:`kernels.reference.activations`. ``relu_fwd`` and
``tanh_fwd`` are the reference itself (one ufunc each, which NumPy hands to cupy's own
element-wise kernels: nothing to fuse). The softmax family runs one thread per row of the
moved-last ``axis`` (three passes over the row: max, sum, write).
"""

from __future__ import annotations

import math

from kernels.gpu._device import array_module
from kernels.gpu._launch import cuda, grid
from kernels.reference.activations import relu_fwd, tanh_fwd

__all__ = [
    "relu_fwd",
    "relu_bwd",
    "sigmoid_fwd",
    "sigmoid_bwd",
    "tanh_fwd",
    "tanh_bwd",
    "softmax_fwd",
    "softmax_bwd",
    "log_softmax_fwd",
    "log_softmax_bwd",
]

RELU_BWD, SIGMOID_FWD, SIGMOID_BWD, TANH_BWD = range(4)
SOFTMAX_FWD, SOFTMAX_BWD, LOG_SOFTMAX_FWD, LOG_SOFTMAX_BWD = range(4)


@cuda.jit
def _pointwise(op, a, b, out, zero, one):
    k = cuda.grid(1)
    if k >= out.shape[0]:
        return
    x = a[k]
    if op == RELU_BWD:  # a = g, b = x; the kink x = 0 takes derivative 0
        out[k] = x if b[k] > zero else zero
    elif op == SIGMOID_FWD:  # exp of a non-positive number only
        e = math.exp(-abs(x))
        out[k] = one / (one + e) if x >= zero else e / (one + e)
    elif op == SIGMOID_BWD:  # a = g, b = y
        out[k] = x * b[k] * (one - b[k])
    else:  # TANH_BWD: a = g, b = y
        out[k] = x * (one - b[k] * b[k])


@cuda.jit
def _rows(op, a, b, out, zero):
    r = cuda.grid(1)
    n_rows, width = out.shape
    if r >= n_rows:
        return
    if op == SOFTMAX_FWD or op == LOG_SOFTMAX_FWD:
        top = a[r, 0]
        for c in range(1, width):
            top = max(top, a[r, c])
        total = zero
        for c in range(width):
            total += math.exp(a[r, c] - top)
        if op == SOFTMAX_FWD:
            for c in range(width):
                out[r, c] = math.exp(a[r, c] - top) / total
        else:
            log_total = math.log(total)
            for c in range(width):
                out[r, c] = (a[r, c] - top) - log_total
    else:  # a = g, b = y
        total = zero
        for c in range(width):
            total += a[r, c] * b[r, c] if op == SOFTMAX_BWD else a[r, c]
        for c in range(width):
            if op == SOFTMAX_BWD:
                out[r, c] = b[r, c] * (a[r, c] - total)
            else:
                out[r, c] = a[r, c] - math.exp(b[r, c]) * total


def _map(op: int, a, b=None):
    xp = array_module(a)
    flat_a = xp.ascontiguousarray(a).reshape(-1)
    flat_b = flat_a if b is None else xp.ascontiguousarray(b, dtype=a.dtype).reshape(-1)
    out = xp.empty_like(flat_a)
    if out.size:
        dtype = a.dtype.type
        blocks, threads = grid(out.size)
        _pointwise[blocks, threads](op, flat_a, flat_b, out, dtype(0), dtype(1))
    return out.reshape(a.shape)


def _along(op: int, a, b, axis: int):
    xp = array_module(a)
    moved = xp.ascontiguousarray(xp.moveaxis(a, axis, -1))
    rows_a = moved.reshape(-1, moved.shape[-1]) if moved.ndim else moved.reshape(1, 1)
    rows_b = rows_a if b is None else xp.ascontiguousarray(xp.moveaxis(b, axis, -1))
    out = xp.empty_like(rows_a)
    if out.size:
        blocks, threads = grid(out.shape[0])
        _rows[blocks, threads](op, rows_a, rows_b.reshape(rows_a.shape), out, a.dtype.type(0))
    return xp.moveaxis(out.reshape(moved.shape), -1, axis)


def relu_bwd(g, x):
    """``dx = g * [x > 0]`` (see :func:`kernels.reference.activations.relu_bwd`)."""
    return _map(RELU_BWD, g, x)


def sigmoid_fwd(x):
    """``y = 1 / (1 + exp(-x))`` without overflow (see the reference)."""
    return _map(SIGMOID_FWD, x)


def sigmoid_bwd(g, y):
    """``dx = g * y * (1 - y)``."""
    return _map(SIGMOID_BWD, g, y)


def tanh_bwd(g, y):
    """``dx = g * (1 - y^2)``."""
    return _map(TANH_BWD, g, y)


def softmax_fwd(x, axis: int):
    """Softmax along ``axis`` with the maximum subtracted."""
    return _along(SOFTMAX_FWD, x, None, axis)


def softmax_bwd(g, y, axis: int):
    """``dx = y * (g - sum_j g_j y_j)`` along ``axis``."""
    return _along(SOFTMAX_BWD, g, y, axis)


def log_softmax_fwd(x, axis: int):
    """``x - max - log sum exp(x - max)`` along ``axis``."""
    return _along(LOG_SOFTMAX_FWD, x, None, axis)


def log_softmax_bwd(g, y, axis: int):
    """``dx = g - exp(y) * sum_j g_j`` along ``axis``."""
    return _along(LOG_SOFTMAX_BWD, g, y, axis)
