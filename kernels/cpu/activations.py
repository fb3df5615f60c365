"""Numba twins of :mod:`kernels.reference.activations`: one fused pass per kernel.

Same names, signatures and return values as the reference (see its docstring for the math).
Where the reference chains numpy passes and temporaries (the sigmoid makes seven), a twin makes
one loop. Element-wise kernels see their operands as rows along the last axis, broadcast as
numpy does (:func:`_as_rows`); the softmax family moves ``axis`` last (a copy only when it is not
already last and contiguous) and makes one fused pass per row: maximum, exponentials and their
sum, and the normalised write. Inputs the twins do not compute (a dtype other than float32 or
float64, operands of different dtypes, a 0-d or empty softmax axis) go to the reference, which
defines the result or the error.

Accuracy. The arithmetic-only kernels (``relu_bwd``, ``sigmoid_bwd``, ``tanh_bwd``) make the
reference's operations in its order without ``fastmath``, so they equal it bit for bit. float32
exponentials use the vectorisable :func:`kernels.cpu.lstm._expf` (relative error <= 1.2e-7),
extended to the subnormal range as numpy's ``exp`` (:func:`_exp_nonpos`); float64 uses libm
``exp``. Row sums accumulate in float64 over 16 interleaved partial sums (a fixed order:
results do not vary between runs). Worst differences from the reference measured on
10^6 values (1000 rows of 1000, scales 0.1 to 30), in eps of the dtype, float32 / float64:
``sigmoid_fwd`` 2.2 / 1.5 of the value; ``softmax_fwd`` 4.0 / 5.4 of the value;
``softmax_bwd`` 2.2 / 3.8 of ``y (|g| + sum_j |g_j y_j|)``; ``log_softmax_fwd`` 2.3 / 4.0 of
``max(1, |x - max x|, log sum exp)``; ``log_softmax_bwd`` 1.0 / 1.0 of
``|g| + exp(y) sum_j |g_j|`` (plus, for subnormal exponentials, a few times their spacing
1.4e-45 times what multiplies them). NaN propagates as in the reference (a NaN in a softmax row
makes the row NaN).

Kernels run serially. At the benchmark sizes one pass runs at about the speed of a copy of its
operands (memory-bound), so a row-parallel driver was not added; it would have to show a gain at
2 threads first.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.extending import overload
from numpy.lib.array_utils import normalize_axis_index

import kernels.reference.activations as _ref
from kernels.cpu._scalar import _expf, _is_float32

__all__ = [
    "relu_bwd",
    "sigmoid_fwd",
    "sigmoid_bwd",
    "tanh_bwd",
    "softmax_fwd",
    "softmax_bwd",
    "log_softmax_fwd",
    "log_softmax_bwd",
]

# No fastmath: these loops are bound by memory, and without it every operation rounds as numpy's
# does. error_model="numpy": divisions are not checked for zero (that check blocks vectorising).
_OPTIONS = dict(cache=True, error_model="numpy")
# Helpers called only from compiled code: no Python or C wrapper (never called from Python) and
# no cache entry of their own (their callers' entries hold their code): less to compile cold.
_HELPER = dict(error_model="numpy", no_cpython_wrapper=True, no_cfunc_wrapper=True)


# -- scalar helpers (inlined into the loops) --------------------------------------------------
def _exp_nonpos(z):  # pragma: no cover - only its Numba overload below is ever called
    return math.exp(z)


@overload(_exp_nonpos, jit_options={"error_model": "numpy"})
def _exp_nonpos_overload(z):
    """``exp(z)`` for ``z <= 0``; NaN propagates. float64: libm ``exp``. float32: :func:`_expf`,
    which clamps its argument at -87; below that (results under 1.6e-38, subnormal from -87.3)
    ``exp(z) = exp(z + 22) exp(-22)``: ``z + 22`` is exact there, so the result has the
    rounding of a normal one, and it underflows to 0 as numpy's does."""
    if _is_float32(z):

        def impl(z):
            small = z < np.float32(-87.0)
            e = _expf(z + np.float32(22.0) if small else z)
            return e * np.float32(2.7894680928689246e-10) if small else e

        return impl
    return lambda z: math.exp(z)


@njit(**_HELPER)
def _sigmoid(v, e, one):
    """The reference's sigmoid ``1 / (1 + e)`` or ``e / (1 + e)`` from ``e = exp(-|v|)``;
    ``one`` is 1 in ``v``'s type."""
    return one / (one + e) if v >= 0 else e / (one + e)


@njit(**_HELPER)
def _row(a, r):
    """Row ``r`` of a (rows, K) operand, or its only row when it is broadcast along the rows."""
    return a[r if a.shape[0] > 1 else 0]


@njit(**_HELPER)
def _row_max(v):
    """Largest non-NaN entry of ``v`` (-inf if none), over 16 interleaved partial maxima."""
    # Plain loops throughout: np.full and ndarray.max here compiled 0.4 s more on a cold cache.
    acc = np.empty(16, dtype=v.dtype)
    for j in range(16):
        acc[j] = -np.inf
    n = v.shape[0] - v.shape[0] % 16
    for i in range(0, n, 16):
        for j in range(16):
            acc[j] = v[i + j] if v[i + j] > acc[j] else acc[j]
    m = acc[0]
    for j in range(1, 16):
        m = acc[j] if acc[j] > m else m
    for i in range(n, v.shape[0]):
        m = v[i] if v[i] > m else m
    return m


@njit(**_HELPER)
def _row_sum(v):
    """``sum(v)`` in float64: 16 partial sums over interleaved entries, then the tail."""
    n = v.shape[0] // 16
    total = 0.0
    if n:
        # A whole-block update (an array expression) vectorises; an explicit loop over the 16
        # lanes measured 15-50% slower (and compiles 0.15 s faster on a cold cache).
        blocks = v[: 16 * n].reshape((n, 16))
        acc = blocks[0].astype(np.float64)
        for i in range(1, n):
            acc += blocks[i]
        for j in range(16):
            total += acc[j]
    for i in range(16 * n, v.shape[0]):
        total += v[i]
    return total


# -- Python-side operand handling -------------------------------------------------------------
def _float_dtype(*arrays: object) -> np.dtype | None:
    """The common dtype of ``arrays`` if it is float32 or float64 for all of them, else None."""
    dtypes = {getattr(a, "dtype", None) for a in arrays}
    if len(dtypes) == 1 and (dt := dtypes.pop()) in (np.float32, np.float64):
        return dt
    return None


def _as_rows(*arrays: np.ndarray) -> tuple[tuple[int, ...], int, int, list[np.ndarray]]:
    """Broadcast ``arrays`` together and view each as C-contiguous rows along the last axis.

    Returns the broadcast shape, R, K and, per array, a (R, K) array, or (1, K) when it is
    constant along all but the last axis (a per-column weight, a broadcast scalar): K is the
    last dimension of the broadcast shape without its trailing 1s and R the product of the
    others. Copies only what is not already laid out so (or the one row that is repeated).
    """
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    core = shape
    while core and core[-1] == 1:
        core = core[:-1]
    k = core[-1] if core else 1
    rows = math.prod(core[:-1])
    out = []
    for a in arrays:
        b = np.broadcast_to(a, shape).reshape(core)
        if rows and all(s == 0 or n == 1 for s, n in zip(b.strides[:-1], b.shape[:-1])):
            out.append(np.ascontiguousarray(b[(0,) * (b.ndim - 1)]).reshape(1, k))
        else:
            out.append(np.ascontiguousarray(b).reshape(rows, k))
    return shape, rows, k, out


def _map(kernel, *arrays: np.ndarray, extra: tuple = (), outputs: int = 1):
    """Run an element-wise row kernel ``kernel(*rows, *extra, *outs)`` on ``arrays`` broadcast
    together; return its output (a tuple of ``outputs`` outputs if more than one) in the
    broadcast shape and the arrays' dtype."""
    shape, rows, k, operands = _as_rows(*arrays)
    outs = tuple(np.empty((rows, k), dtype=arrays[0].dtype) for _ in range(outputs))
    kernel(*operands, *extra, *outs)
    outs = tuple(o.reshape(shape) for o in outs)
    return outs if outputs > 1 else outs[0]


def _last_axis_rows(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` with ``axis`` moved last (a view) and that view as C-contiguous (R, C) rows."""
    moved = np.moveaxis(x, axis, -1)
    return moved, np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])


def _along_axis(kernel, reference, x: np.ndarray, others: tuple, axis: int) -> np.ndarray:
    """Run a row ``kernel(*rows, out)`` of the softmax family along ``axis``.

    The result has ``x``'s shape; it is a view with ``axis`` moved back into place (so feeding
    it to the matching backward needs no copy).
    """
    if _float_dtype(x, *others) is None or x.ndim == 0:
        return reference(x, *others, axis)
    axis = normalize_axis_index(axis, x.ndim)
    if x.shape[axis] == 0 or any(o.shape != x.shape for o in others):
        return reference(x, *others, axis)  # raises on an empty axis; broadcasts other shapes
    moved, rows = _last_axis_rows(x, axis)
    out = np.empty_like(rows)
    kernel(rows, *(_last_axis_rows(o, axis)[1] for o in others), out)
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


# -- element-wise kernels ---------------------------------------------------------------------
@njit(**_OPTIONS)
def _relu_bwd_rows(g, x, out):
    zero = out.dtype.type(0)
    for r in range(out.shape[0]):
        gr, xr, o = _row(g, r), _row(x, r), out[r]
        for k in range(o.shape[0]):
            o[k] = gr[k] if xr[k] > zero else gr[k] * zero


def relu_bwd(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = g * [x > 0]`` (0 at the kink), shape and dtype of ``g``.

    Parameters
    ----------
    g, x : ndarray, float32 or float64, broadcastable shapes
    """
    if _float_dtype(g, x) is None:
        return _ref.relu_bwd(g, x)
    return _map(_relu_bwd_rows, g, x)


@njit(**_OPTIONS)
def _sigmoid_fwd_rows(x, out):
    one = out.dtype.type(1)
    for r in range(out.shape[0]):
        xr, o = _row(x, r), out[r]
        for k in range(o.shape[0]):
            o[k] = _sigmoid(xr[k], _exp_nonpos(-abs(xr[k])), one)


def sigmoid_fwd(x: np.ndarray) -> np.ndarray:
    """``y = 1 / (1 + exp(-x))``, shape and dtype of ``x`` (float32 or float64, any shape).

    1 and 0 at ``x = +-1e4`` as the reference, and subnormal values down to ``x = -103.9``.
    """
    if _float_dtype(x) is None:
        return _ref.sigmoid_fwd(x)
    return _map(_sigmoid_fwd_rows, x)


@njit(**_OPTIONS)
def _sigmoid_bwd_rows(g, y, out):
    one = out.dtype.type(1)
    for r in range(out.shape[0]):
        gr, yr, o = _row(g, r), _row(y, r), out[r]
        for k in range(o.shape[0]):
            o[k] = gr[k] * yr[k] * (one - yr[k])


def sigmoid_bwd(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dx = g * y * (1 - y)`` from the forward output ``y``; bit-equal to the reference.

    Parameters
    ----------
    g, y : ndarray, float32 or float64, broadcastable shapes
    """
    if _float_dtype(g, y) is None:
        return _ref.sigmoid_bwd(g, y)
    return _map(_sigmoid_bwd_rows, g, y)


@njit(**_OPTIONS)
def _tanh_bwd_rows(g, y, out):
    one = out.dtype.type(1)
    for r in range(out.shape[0]):
        gr, yr, o = _row(g, r), _row(y, r), out[r]
        for k in range(o.shape[0]):
            o[k] = gr[k] * (one - yr[k] * yr[k])


def tanh_bwd(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dx = g * (1 - y^2)`` from the forward output ``y``; bit-equal to the reference.

    Parameters
    ----------
    g, y : ndarray, float32 or float64, broadcastable shapes
    """
    if _float_dtype(g, y) is None:
        return _ref.tanh_bwd(g, y)
    return _map(_tanh_bwd_rows, g, y)


# -- softmax family (rows along the last axis) -------------------------------------------------
@njit(**_OPTIONS)
def _softmax_fwd_rows(x, out):
    for r in range(x.shape[0]):
        xr, o = x[r], out[r]
        m = _row_max(xr)
        for k in range(o.shape[0]):
            o[k] = _exp_nonpos(xr[k] - m)
        s = o.dtype.type(_row_sum(o))
        for k in range(o.shape[0]):
            o[k] = o[k] / s


def softmax_fwd(x: np.ndarray, axis: int) -> np.ndarray:
    """``y_i = exp(x_i - m) / sum_j exp(x_j - m)`` along ``axis`` with ``m = max_j x_j``.

    Parameters
    ----------
    x : ndarray, float32 or float64, any shape
    axis : int

    Returns
    -------
    ndarray, shape and dtype of ``x``
    """
    return _along_axis(_softmax_fwd_rows, _ref.softmax_fwd, x, (), axis)


@njit(**_OPTIONS)
def _softmax_bwd_rows(g, y, out):
    for r in range(g.shape[0]):
        gr, yr, o = g[r], y[r], out[r]
        for k in range(o.shape[0]):
            o[k] = gr[k] * yr[k]
        dot = o.dtype.type(_row_sum(o))
        for k in range(o.shape[0]):
            o[k] = yr[k] * (gr[k] - dot)


def softmax_bwd(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """``dx = y * (g - sum_j g_j y_j)`` along ``axis``; ``g`` and ``y`` of one shape."""
    return _along_axis(_softmax_bwd_rows, _ref.softmax_bwd, g, (y,), axis)


@njit(**_HELPER)
def _log_softmax_row(xr, o):
    """``o = xr - max(xr) - log sum exp(xr - max(xr))`` for one row (``o`` is also scratch)."""
    m = _row_max(xr)
    for k in range(o.shape[0]):
        o[k] = _exp_nonpos(xr[k] - m)
    lse = o.dtype.type(math.log(_row_sum(o)))
    for k in range(o.shape[0]):
        o[k] = (xr[k] - m) - lse


@njit(**_OPTIONS)
def _log_softmax_fwd_rows(x, out):
    for r in range(x.shape[0]):
        _log_softmax_row(x[r], out[r])


def log_softmax_fwd(x: np.ndarray, axis: int) -> np.ndarray:
    """``y_i = x_i - m - log sum_j exp(x_j - m)`` along ``axis`` with ``m = max_j x_j``.

    Parameters
    ----------
    x : ndarray, float32 or float64, any shape
    axis : int

    Returns
    -------
    ndarray, shape and dtype of ``x``
    """
    return _along_axis(_log_softmax_fwd_rows, _ref.log_softmax_fwd, x, (), axis)


@njit(**_OPTIONS)
def _log_softmax_bwd_rows(g, y, out):
    for r in range(g.shape[0]):
        gr, yr, o = g[r], y[r], out[r]
        total = o.dtype.type(_row_sum(gr))
        for k in range(o.shape[0]):
            o[k] = gr[k] - _exp_nonpos(yr[k]) * total


def log_softmax_bwd(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """``dx = g - exp(y) sum_j g_j`` along ``axis``; ``y`` the forward's log-probabilities."""
    return _along_axis(_log_softmax_bwd_rows, _ref.log_softmax_bwd, g, (y,), axis)
