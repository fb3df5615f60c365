"""Joining tensors: concatenate along an existing axis, or stack along a new one.

Backward splits the upstream gradient back into one piece per input, cast to that input's dtype
(numpy promotes mixed dtypes in the forward).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from corenn.autograd import Function
from corenn.backend import get_array_module
from corenn.tensor import Tensor


class Concat(Function):
    """``z = concatenate([x_1, ..., x_k], axis)``; ``dx_i`` is the slice of ``g`` at ``x_i``."""

    def forward(self, *xs, axis):
        xp = get_array_module(*xs)
        sizes = [x.shape[axis] for x in xs]
        self.save_for_backward(axis, sizes, [x.dtype for x in xs])
        return xp.concatenate(xs, axis=axis)

    def backward(self, g):
        axis, sizes, dtypes = self.saved
        xp = get_array_module(g)
        cuts = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
        return tuple(
            p.astype(d, copy=False) for p, d in zip(xp.split(g, cuts, axis), dtypes, strict=True)
        )


class Stack(Function):
    """``z = stack([x_1, ..., x_k], axis)``; ``dx_i = g`` taken at position ``i`` of ``axis``."""

    def forward(self, *xs, axis):
        xp = get_array_module(*xs)
        self.save_for_backward(axis, [x.dtype for x in xs])
        return xp.stack(xs, axis=axis)

    def backward(self, g):
        axis, dtypes = self.saved
        xp = get_array_module(g)
        return tuple(xp.take(g, i, axis=axis).astype(d, copy=False) for i, d in enumerate(dtypes))


def _check(name: str, tensors: Sequence[Any], axis: int, extra: int) -> tuple[list[Any], int]:
    """The inputs as a list and ``axis`` made non-negative; ``extra`` is 1 when a new axis is
    inserted (stack)."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise ValueError(f"{name} needs a non-empty list or tuple of tensors")
    items = list(tensors)
    ndim = np.ndim(getattr(items[0], "data", items[0]))
    if ndim + extra == 0 or not -(ndim + extra) <= axis < ndim + extra:
        raise ValueError(f"{name}: axis {axis} is out of range for inputs of {ndim} dimensions")
    return items, axis % (ndim + extra)


def concat(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Concatenate tensors along an existing ``axis``.

    Parameters
    ----------
    tensors : sequence of Tensor or array
        Same number of dimensions, same sizes except along ``axis``.
    axis : int

    Returns
    -------
    Tensor
        Its size along ``axis`` is the sum of the inputs'; dtype as numpy promotes them.

    Raises
    ------
    ValueError
        If ``tensors`` is empty, ``axis`` is out of range or the shapes do not fit.
    """
    items, axis = _check("concat", tensors, axis, 0)
    return Concat.apply(*items, axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Stack tensors of one shape along a new ``axis``.

    Parameters
    ----------
    tensors : sequence of Tensor or array, all of shape S
    axis : int
        Position of the new axis in the result (``-1``: last).

    Returns
    -------
    Tensor of shape S with ``len(tensors)`` inserted at ``axis``

    Raises
    ------
    ValueError
        If ``tensors`` is empty, ``axis`` is out of range or the shapes differ.
    """
    items, axis = _check("stack", tensors, axis, 1)
    return Stack.apply(*items, axis=axis)
