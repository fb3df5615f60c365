"""Activations: ReLU, sigmoid, tanh, softmax and log-softmax as autograd Functions.

Each Function calls the ``<op>_fwd`` / ``<op>_bwd`` kernels of :mod:`kernels` (the reference
math lives in :mod:`kernels.reference.activations`) and saves exactly what the backward needs:
the input for ReLU, the output for the others. Shapes are arbitrary and kept; dtypes are kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import kernels
from corenn.autograd import Function
from corenn.tensor import Tensor


class ReLU(Function):
    """``y = max(x, 0)``; ``dy/dx = 1`` for ``x > 0`` and 0 otherwise (0 at the kink x = 0)."""

    def forward(self, x):
        self.save_for_backward(x)
        return kernels.get("relu_fwd", x)(x)

    def backward(self, g):
        (x,) = self.saved
        return kernels.get("relu_bwd", g)(g, x)


class _SavesOutput(Function):
    """An element-wise op whose backward needs only its output: ``<name>_fwd(x)``,
    ``<name>_bwd(g, y)``."""

    kernel: str

    def forward(self, x):
        y = kernels.get(f"{self.kernel}_fwd", x)(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return kernels.get(f"{self.kernel}_bwd", g)(g, y)


class Sigmoid(_SavesOutput):
    """``y = 1 / (1 + exp(-x))`` (never overflows); ``dy/dx = y (1 - y)``."""

    kernel = "sigmoid"


class Tanh(_SavesOutput):
    """``y = tanh(x)``; ``dy/dx = 1 - y^2``."""

    kernel = "tanh"


class _AlongAxis(Function):
    """A normalisation along one axis whose backward needs its output: ``<name>_fwd(x, axis)``,
    ``<name>_bwd(g, y, axis)``."""

    kernel: str

    def forward(self, x, *, axis):
        y = kernels.get(f"{self.kernel}_fwd", x)(x, axis)
        self.save_for_backward(y, axis)
        return y

    def backward(self, g):
        y, axis = self.saved
        return kernels.get(f"{self.kernel}_bwd", g)(g, y, axis)


class Softmax(_AlongAxis):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` along ``axis`` (max subtracted first)."""

    kernel = "softmax"


class LogSoftmax(_AlongAxis):
    """``y_i = x_i - log sum_j exp(x_j)`` along ``axis`` (log-sum-exp)."""

    kernel = "log_softmax"


def _axis(x: Any, axis: int) -> int:
    ndim = np.ndim(getattr(x, "data", x))
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an input of {ndim} dimensions")
    return axis % ndim


def relu(x: Any) -> Tensor:
    """Rectified linear unit, element-wise.

    Parameters
    ----------
    x : Tensor or array, any shape, float

    Returns
    -------
    Tensor, shape and dtype of ``x``
        ``max(x, 0)``. Kink convention: the gradient at ``x == 0`` is 0.
    """
    return ReLU.apply(x)


def sigmoid(x: Any) -> Tensor:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, element-wise; exact 0/1 limits at large ``|x|``.

    Parameters
    ----------
    x : Tensor or array, any shape, float

    Returns
    -------
    Tensor, shape and dtype of ``x``, values in [0, 1]
    """
    return Sigmoid.apply(x)


def tanh(x: Any) -> Tensor:
    """Hyperbolic tangent, element-wise.

    Parameters
    ----------
    x : Tensor or array, any shape, float

    Returns
    -------
    Tensor, shape and dtype of ``x``, values in [-1, 1]
    """
    return Tanh.apply(x)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """Softmax along ``axis``: ``exp(x_i - m) / sum_j exp(x_j - m)`` with ``m = max_j x_j``.

    Parameters
    ----------
    x : Tensor or array, any shape, float
    axis : int
        The axis that sums to 1.

    Returns
    -------
    Tensor, shape and dtype of ``x``
    """
    return Softmax.apply(x, axis=_axis(x, axis))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """Log-softmax along ``axis``: ``x_i - m - log sum_j exp(x_j - m)`` with ``m = max_j x_j``.

    Finite for finite ``x`` of any magnitude (no ``log(0)``).

    Parameters
    ----------
    x : Tensor or array, any shape, float
    axis : int

    Returns
    -------
    Tensor, shape and dtype of ``x``
    """
    return LogSoftmax.apply(x, axis=_axis(x, axis))
