"""Reference activation kernels: element-wise nonlinearities and (log-)softmax, both directions.

Every ``<op>_bwd`` takes the upstream gradient ``g`` first, then what its forward saved, and
returns the gradient of the input (same shape and dtype as ``g``). Shapes are arbitrary; the
softmax family works along one ``axis``. All math stays finite for inputs of any finite size:
``sigmoid`` never evaluates ``exp`` of a positive number and the softmax family subtracts the
maximum along ``axis`` before exponentiating (log-sum-exp).
"""

from __future__ import annotations

import numpy as np

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


def relu_fwd(x: np.ndarray) -> np.ndarray:
    """``y = max(x, 0)``, same shape and dtype as ``x``."""
    return np.maximum(x, 0)


def relu_bwd(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = g * [x > 0]``: the derivative at the kink ``x = 0`` is taken as 0 (as PyTorch)."""
    return g * (x > 0)


def sigmoid_fwd(x: np.ndarray) -> np.ndarray:
    """``y = 1 / (1 + exp(-x))`` as ``1 / (1 + e)`` or ``e / (1 + e)`` with ``e = exp(-|x|)``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_bwd(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dx = g * y * (1 - y)`` from the forward output ``y``."""
    return g * y * (1 - y)


def tanh_fwd(x: np.ndarray) -> np.ndarray:
    """``y = tanh(x)``."""
    return np.tanh(x)


def tanh_bwd(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dx = g * (1 - y^2)`` from the forward output ``y``."""
    return g * (1 - y * y)


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    """``x - max(x, axis)``: at most 0 along ``axis``, so ``exp`` cannot overflow."""
    return x - np.max(x, axis=axis, keepdims=True)


def softmax_fwd(x: np.ndarray, axis: int) -> np.ndarray:
    """``y_i = exp(x_i) / sum_j exp(x_j)`` along ``axis``; sums to 1 along it."""
    e = np.exp(_shifted(x, axis))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_bwd(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """``dx = y * (g - sum_j g_j y_j)`` along ``axis``, from the forward output ``y``."""
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


def log_softmax_fwd(x: np.ndarray, axis: int) -> np.ndarray:
    """``y_i = x_i - log sum_j exp(x_j)`` along ``axis`` (log-sum-exp with the max subtracted)."""
    z = _shifted(x, axis)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def log_softmax_bwd(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    """``dx = g - exp(y) * sum_j g_j`` along ``axis``, from the forward output ``y``."""
    return g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)
