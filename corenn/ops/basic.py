"""Arithmetic, reductions, shape changes and indexing: the ops behind Tensor's operators.

Each op is a :class:`~corenn.autograd.Function` (forward next to backward) plus a lower-case
function. Element-wise binary ops broadcast like numpy; :func:`~corenn.autograd.unbroadcast`
undoes the broadcast in backward.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from corenn.autograd import Function, unbroadcast
from corenn.backend import get_array_module
from corenn.ops.embedding import scatter_add_rows


class Add(Function):
    """z = x + y (broadcasting)."""

    def forward(self, x, y):
        self.save_for_backward(x.shape, y.shape)
        return x + y

    def backward(self, g):
        xs, ys = self.saved
        return unbroadcast(g, xs), unbroadcast(g, ys)


class Sub(Function):
    """z = x - y (broadcasting)."""

    def forward(self, x, y):
        self.save_for_backward(x.shape, y.shape)
        return x - y

    def backward(self, g):
        xs, ys = self.saved
        return unbroadcast(g, xs), unbroadcast(-g, ys)


class Mul(Function):
    """z = x * y (broadcasting)."""

    def forward(self, x, y):
        self.save_for_backward(x, y)
        return x * y

    def backward(self, g):
        x, y = self.saved
        gx = unbroadcast(g * y, x.shape) if self.needs_input_grad[0] else None
        gy = unbroadcast(g * x, y.shape) if self.needs_input_grad[1] else None
        return gx, gy


class Div(Function):
    """z = x / y (broadcasting)."""

    def forward(self, x, y):
        self.save_for_backward(x, y)
        return x / y

    def backward(self, g):
        x, y = self.saved
        gx = unbroadcast(g / y, x.shape) if self.needs_input_grad[0] else None
        gy = unbroadcast(-g * x / (y * y), y.shape) if self.needs_input_grad[1] else None
        return gx, gy


class Neg(Function):
    """z = -x."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Pow(Function):
    """z = x ** p for a constant exponent p; dz/dx = p x^(p-1)."""

    def forward(self, x, *, exponent):
        self.save_for_backward(x, exponent)
        return x**exponent

    def backward(self, g):
        x, p = self.saved
        return g * p * x ** (p - 1)


class Exp(Function):
    """z = exp(x)."""

    def forward(self, x):
        z = get_array_module(x).exp(x)
        self.save_for_backward(z)
        return z

    def backward(self, g):
        (z,) = self.saved
        return g * z


class Log(Function):
    """z = log(x); x <= 0 gives -inf/NaN as in numpy."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log(x)

    def backward(self, g):
        (x,) = self.saved
        return g / x


class Cast(Function):
    """z = x converted to ``dtype``; the gradient is converted back."""

    def forward(self, x, *, dtype):
        self.save_for_backward(x.dtype)
        return x.astype(dtype)

    def backward(self, g):
        (dtype,) = self.saved
        return g.astype(dtype)


class MatMul(Function):
    """z = x @ y with numpy's rules (1-D operands promoted, batch dims broadcast); GEMM by BLAS.

    Backward: dx = g @ y^T, dy = x^T @ g, summed over broadcast batch dims.
    """

    def forward(self, x, y):
        self.save_for_backward(x, y)
        return x @ y

    def backward(self, g):
        x, y = self.saved
        x2 = x.reshape(1, -1) if x.ndim == 1 else x
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        # g in the shape of the promoted product (also right when both operands are 1-D)
        batch = np.broadcast_shapes(x2.shape[:-2], y2.shape[:-2])
        g = g.reshape(batch + (x2.shape[-2], y2.shape[-1]))
        gx = gy = None
        if self.needs_input_grad[0]:
            gx = unbroadcast(g @ y2.swapaxes(-1, -2), x2.shape).reshape(x.shape)
        if self.needs_input_grad[1]:
            gy = unbroadcast(x2.swapaxes(-1, -2) @ g, y2.shape).reshape(y.shape)
        return gx, gy


def _norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim if ndim else a for a in axes)


class Sum(Function):
    """z = sum of x over ``axis`` (all axes when None)."""

    def forward(self, x, *, axis=None, keepdims=False):
        self.save_for_backward(x.shape, _norm_axes(axis, x.ndim), keepdims)
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape, axes, keepdims = self.saved
        if not keepdims:
            g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
        return get_array_module(g).broadcast_to(g, shape)


class Mean(Function):
    """z = mean of x over ``axis`` (all axes when None)."""

    def forward(self, x, *, axis=None, keepdims=False):
        axes = _norm_axes(axis, x.ndim)
        count = 1
        for a in axes:
            count *= x.shape[a]
        self.save_for_backward(x.shape, axes, keepdims, count)
        return x.mean(axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape, axes, keepdims, count = self.saved
        if not keepdims:
            g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
        return get_array_module(g).broadcast_to(g / count, shape)


class Max(Function):
    """z = max of x over ``axis``; the gradient is split equally among tied maxima."""

    def forward(self, x, *, axis=None, keepdims=False):
        axes = _norm_axes(axis, x.ndim)
        z = x.max(axis=axes, keepdims=True)
        self.save_for_backward(x, z, axes, keepdims)
        return z if keepdims else z.squeeze(axis=axes)

    def backward(self, g):
        x, z, axes, keepdims = self.saved
        if not keepdims:
            g = g.reshape(z.shape)
        hit = (x == z).astype(x.dtype)
        return g * hit / hit.sum(axis=axes, keepdims=True)


class Reshape(Function):
    """z = x reshaped to ``shape`` (one entry may be -1)."""

    def forward(self, x, *, shape):
        self.save_for_backward(x.shape)
        return x.reshape(shape)

    def backward(self, g):
        (shape,) = self.saved
        return g.reshape(shape)


class Transpose(Function):
    """z = x with axes permuted (reversed when ``axes`` is None)."""

    def forward(self, x, *, axes=None):
        self.save_for_backward(axes)
        return x.transpose(axes)

    def backward(self, g):
        (axes,) = self.saved
        if axes is None:
            return g.transpose()
        inverse = [0] * len(axes)
        for i, a in enumerate(axes):
            inverse[a % len(axes)] = i
        return g.transpose(inverse)


class GetItem(Function):
    """z = x[index] (basic and advanced indexing); repeated indices accumulate in backward.

    Backward: ``dx`` is zero except at the selected elements, where it sums the gradients of
    every output that selected them (:func:`_index_backward`, deterministic).
    """

    def forward(self, x, *, index):
        self.save_for_backward(x.shape, index)
        return x[index]

    def backward(self, g):
        shape, index = self.saved
        return _index_backward(shape, index, g)


class Gather(Function):
    """z[..., j, ...] = x[..., index[..., j, ...], ...] along ``dim`` (as ``torch.gather``).

    ``index`` has x's number of dimensions and sizes <= x's on the other axes. Backward as
    :class:`GetItem`'s, with the full advanced index.
    """

    def forward(self, x, *, dim, index):
        xp = get_array_module(x)
        if index.ndim != x.ndim:
            raise ValueError(f"gather: index has {index.ndim} dims, input has {x.ndim}")
        n = x.shape[dim]
        if index.size and (index.min() < -n or index.max() >= n):
            bad = int(index.max() if index.max() >= n else index.min())
            raise IndexError(f"gather: index {bad} out of range for size {n} on dim {dim}")
        full = _gather_index(xp, index, dim)
        self.save_for_backward(x.shape, full)
        return x[full]

    def backward(self, g):
        shape, full = self.saved
        return _index_backward(shape, full, g)


_BASIC = (int, np.integer, slice, type(None), type(Ellipsis))


def _is_basic(index: Any) -> bool:
    """Whether ``index`` is basic indexing only (ints, slices, None, Ellipsis): then it selects
    each element at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, _BASIC) and not isinstance(p, (bool, np.bool_)) for p in parts)


def _index_backward(shape: tuple[int, ...], index: Any, g: Any) -> Any:
    """The gradient of ``x[index]`` for an ``x`` of ``shape``: ``g`` added at the selected
    elements, an element selected several times getting the sum of its gradients.

    Advanced indices go through the flat positions they select, ``arange(x.size)[index]``
    (negative and boolean indices resolved by numpy itself), summed by the deterministic
    ``scatter_rows_sum`` kernel in the order of ``g``'s elements.
    """
    xp = get_array_module(g)
    if _is_basic(index):
        gx = xp.zeros(shape, dtype=g.dtype)
        gx[index] = g
        return gx
    size = math.prod(shape)
    positions = xp.arange(size, dtype=xp.int64).reshape(shape)[index]
    return scatter_add_rows(positions.reshape(-1), g.reshape(-1, 1), size).reshape(shape)


def _gather_index(xp, index, dim):
    grids = list(xp.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def _data(v: Any) -> Any:
    return getattr(v, "data", v)


def add(x, y):
    return Add.apply(x, y)


def sub(x, y):
    return Sub.apply(x, y)


def mul(x, y):
    return Mul.apply(x, y)


def div(x, y):
    return Div.apply(x, y)


def neg(x):
    return Neg.apply(x)


def pow(x, exponent: float):
    """x ** exponent for a constant (non-tensor) exponent."""
    return Pow.apply(x, exponent=exponent)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def matmul(x, y):
    return MatMul.apply(x, y)


def sum(x, axis=None, keepdims: bool = False):
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False):
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False):
    return Max.apply(x, axis=axis, keepdims=keepdims)


def reshape(x, shape):
    return Reshape.apply(x, shape=tuple(shape))


def transpose(x, axes=None):
    return Transpose.apply(x, axes=None if axes is None else tuple(axes))


def getitem(x, index):
    if isinstance(index, tuple):
        index = tuple(_data(i) for i in index)
    else:
        index = _data(index)
    return GetItem.apply(x, index=index)


def gather(x, dim: int, index):
    index = _data(index)
    xp = get_array_module(index)
    return Gather.apply(x, dim=dim, index=xp.asarray(index, dtype=xp.int64))
