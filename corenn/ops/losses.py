"""Losses: binary cross-entropy with logits, softmax cross-entropy, mean squared error and the
pinball (quantile) loss.

Each Function calls the unreduced ``<loss>_fwd`` / ``<loss>_bwd`` kernels (reference math in
:mod:`kernels.reference.losses`) and applies the reduction itself:

- ``"none"``: the per-element (per-sample for cross-entropy) losses;
- ``"sum"``: their sum;
- ``"mean"``: their sum divided by the element count (cross-entropy: by the summed class weights
  of the counted targets, as PyTorch). A mean over nothing (an empty batch, or every target
  ignored) is 0 with a zero gradient, where PyTorch gives NaN.

Inputs that contain NaN raise :class:`LossInputError` naming the loss, the input and the count,
instead of returning a silent NaN. Class weights, ``weight`` and ``pos_weight`` are constants
(they receive no gradient).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import kernels
from corenn.autograd import Function
from corenn.backend import get_array_module
from corenn.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


class LossInputError(FloatingPointError, ValueError):
    """A loss input holds NaN; the message names the loss, the input and the number of NaNs."""


def _reduce(loss: Any, reduction: str, denom: Any) -> Any:
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    return total / denom if denom > 0 else total * 0


def _expand(g: Any, shape: tuple[int, ...], reduction: str, denom: Any) -> Any:
    """The upstream gradient of the reduced loss, per element of the unreduced one."""
    if reduction == "none":
        return g
    if reduction == "mean":
        g = g / denom if denom > 0 else g * 0
    return get_array_module(g).broadcast_to(g, shape)


class BCEWithLogits(Function):
    """Binary cross-entropy of logits (see :func:`binary_cross_entropy_with_logits`)."""

    def forward(self, x, t, *, weight, pos_weight, reduction):
        loss = kernels.get("bce_with_logits_fwd", x)(x, t, weight, pos_weight)
        self.save_for_backward(x, t, weight, pos_weight, reduction)
        return _reduce(loss, reduction, loss.size)

    def backward(self, g):
        x, t, weight, pos_weight, reduction = self.saved
        g = _expand(g, x.shape, reduction, x.size)
        dx, dt = kernels.get("bce_with_logits_bwd", g)(g, x, t, weight, pos_weight)
        return dx, (dt if self.needs_input_grad[1] else None)


class CrossEntropy(Function):
    """Softmax cross-entropy over axis 1 of (N, C, d...) logits (see :func:`cross_entropy`)."""

    def forward(self, x, *, target, weight, ignore_index, label_smoothing, reduction):
        xp = get_array_module(x)
        class_axis = 1 if x.ndim > 1 else 0
        moved = xp.moveaxis(x, class_axis, -1)
        t = target.reshape(-1)
        loss, row_w, q = kernels.get("cross_entropy_fwd", x)(
            moved.reshape(-1, x.shape[class_axis]), t, weight, ignore_index, label_smoothing
        )
        denom = row_w.sum()
        config = (weight, ignore_index, label_smoothing, reduction, denom, class_axis, moved.shape)
        self.save_for_backward(q, t, *config)
        return _reduce(loss.reshape(target.shape), reduction, denom)

    def backward(self, g):
        q, t, weight, ignore_index, label_smoothing, reduction, denom, class_axis, moved_shape = (
            self.saved
        )
        g = _expand(g, t.shape, reduction, denom).reshape(-1)
        dx = kernels.get("cross_entropy_bwd", g)(g, q, t, weight, ignore_index, label_smoothing)
        return get_array_module(dx).moveaxis(dx.reshape(moved_shape), -1, class_axis)


class MSELoss(Function):
    """Squared error (see :func:`mse_loss`)."""

    def forward(self, x, t, *, reduction):
        loss = kernels.get("mse_fwd", x)(x, t)
        self.save_for_backward(x, t, reduction)
        return _reduce(loss, reduction, loss.size)

    def backward(self, g):
        x, t, reduction = self.saved
        g = _expand(g, x.shape, reduction, x.size)
        dx, dt = kernels.get("mse_bwd", g)(g, x, t)
        return (dx if self.needs_input_grad[0] else None), (
            dt if self.needs_input_grad[1] else None
        )


class PinballLoss(Function):
    """Pinball (quantile) loss (see :func:`pinball_loss`)."""

    def forward(self, x, t, *, quantiles, reduction):
        loss = kernels.get("pinball_fwd", x)(x, t, quantiles)
        self.save_for_backward(x, t, quantiles, reduction)
        return _reduce(loss, reduction, loss.size)

    def backward(self, g):
        x, t, quantiles, reduction = self.saved
        g = _expand(g, x.shape, reduction, x.size)
        dx, dt = kernels.get("pinball_bwd", g)(g, x, t, quantiles)
        return (dx if self.needs_input_grad[0] else None), (
            dt if self.needs_input_grad[1] else None
        )


# -- argument checks --------------------------------------------------------------------------
def _tensor(v: Any) -> Tensor:
    return v if isinstance(v, Tensor) else Tensor(v)


def _check_reduction(loss: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{loss}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_nan(loss: str, **arrays: Any) -> None:
    for name, a in arrays.items():
        if a is None or a.dtype.kind != "f":
            continue
        count = int(get_array_module(a).isnan(a).sum())
        if count:
            raise LossInputError(f"{loss}: {name} contains {count} NaN of {a.size} values")


def _same_shape(loss: str, x: Tensor, t: Tensor) -> None:
    if x.shape != t.shape:
        raise ValueError(
            f"{loss}: input shape {x.shape} and target shape {t.shape} differ (they must match)"
        )


def _as_float(t: Tensor, dtype: np.dtype) -> Tensor:
    return t if t.dtype == dtype else t.astype(dtype)


def _weight(loss: str, name: str, value: Any, x: Tensor, shape: tuple, exact: bool) -> Any:
    """A constant weight as a raw array of ``x``'s dtype and device, of exactly ``shape``
    (``exact``) or broadcastable to it; None stays None."""
    if value is None:
        return None
    arr = get_array_module(x.data).asarray(getattr(value, "data", value), dtype=x.dtype)
    if exact:
        ok = arr.shape == shape
    else:
        try:
            ok = np.broadcast_shapes(arr.shape, shape) == shape
        except ValueError:
            ok = False
    if not ok:
        rule = "must be" if exact else "does not broadcast to"
        raise ValueError(f"{loss}: {name} of shape {arr.shape} {rule} {shape}")
    _check_nan(loss, **{name: arr})
    return arr


# -- public functions -------------------------------------------------------------------------
def binary_cross_entropy_with_logits(
    logits: Any,
    targets: Any,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy between ``sigmoid(logits)`` and ``targets``, computed from logits.

    ``l = -w [p t log s(x) + (1 - t) log(1 - s(x))]`` evaluated as
    ``w [max(x, 0) - x t + log1p(exp(-|x|)) + (p - 1) t softplus(-x)]``: finite for any finite
    ``x`` (at ``|x| = 1e4`` the loss is ``|x|`` or 0, as the limits say).

    Parameters
    ----------
    logits : Tensor or array, any shape, float
    targets : Tensor or array, shape of ``logits``
        Values in [0, 1] (soft labels allowed); cast to the logits' dtype. Differentiable.
    weight : array or Tensor, optional
        ``w``, broadcastable to the logits' shape (a constant).
    pos_weight : array or Tensor, optional
        ``p``, weight of the positive term, broadcastable to the logits' shape, e.g. one per
        class of the last axis (a constant).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        Scalar, or the logits' shape with ``reduction="none"``; dtype of ``logits``.

    Raises
    ------
    LossInputError
        If ``logits``, ``targets`` or a weight contain NaN.
    ValueError
        If shapes do not fit or ``reduction`` is unknown.
    """
    name = "binary_cross_entropy_with_logits"
    _check_reduction(name, reduction)
    x = _tensor(logits)
    t = _as_float(_tensor(targets), x.dtype)
    _same_shape(name, x, t)
    _check_nan(name, logits=x.data, targets=t.data)
    w = _weight(name, "weight", weight, x, x.shape, exact=False)
    pw = _weight(name, "pos_weight", pos_weight, x, x.shape, exact=False)
    return BCEWithLogits.apply(x, t, weight=w, pos_weight=pw, reduction=reduction)


def cross_entropy(
    logits: Any,
    targets: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of class logits against class indices, as PyTorch defines it.

    With ``q = log_softmax(logits)`` over the class axis (axis 1; axis 0 for unbatched (C,)
    logits), class weights ``w`` and smoothing ``e``, sample ``m`` contributes
    ``-(1 - e) w[t_m] q[m, t_m] - (e / C) sum_c w[c] q[m, c]``, or 0 when
    ``t_m == ignore_index``. The "mean" divides the sum by ``sum_m w[t_m]`` over counted samples.

    Parameters
    ----------
    logits : Tensor or array, shape (N, C), (N, C, d1, ...) or (C,), float
    targets : array or Tensor, integer, shape (N,), (N, d1, ...) or ()
        Class indices in ``[0, C)`` or ``ignore_index``. No gradient.
    weight : array or Tensor, shape (C,), optional
        Class weights (a constant).
    ignore_index : int
        Target value whose samples are skipped (loss and gradient 0, not counted in the mean).
    reduction : {"mean", "sum", "none"}
        "none" returns the targets' shape.
    label_smoothing : float
        ``e`` in [0, 1]: mixes the one-hot target with the uniform distribution.

    Returns
    -------
    Tensor, scalar or the targets' shape, dtype of ``logits``

    Raises
    ------
    LossInputError
        If ``logits`` or ``weight`` contain NaN.
    TypeError
        If ``targets`` are not integers.
    IndexError
        If a target is neither in ``[0, C)`` nor ``ignore_index`` (the message names it and C).
    ValueError
        If shapes do not fit, or ``reduction`` / ``label_smoothing`` is invalid.
    """
    name = "cross_entropy"
    _check_reduction(name, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing}")
    x = _tensor(logits)
    if x.ndim == 0:
        raise ValueError(f"{name}: logits need a class axis; got a scalar")
    class_axis = 1 if x.ndim > 1 else 0
    n_classes = x.shape[class_axis]
    t = get_array_module(x.data).asarray(getattr(targets, "data", targets))
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: targets must be integer class indices, got dtype {t.dtype}")
    expected = x.shape[:class_axis] + x.shape[class_axis + 1 :]
    if t.shape != expected:
        raise ValueError(
            f"{name}: targets of shape {t.shape} do not fit logits of shape {x.shape}; "
            f"expected {expected}"
        )
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise IndexError(
            f"{name}: target class {int(t[bad][0])} is out of range for C={n_classes} classes "
            f"(valid: 0..{n_classes - 1} or ignore_index={ignore_index})"
        )
    _check_nan(name, logits=x.data)
    w = _weight(name, "weight", weight, x, (n_classes,), exact=True)
    return CrossEntropy.apply(
        x,
        target=t,
        weight=w,
        ignore_index=ignore_index,
        label_smoothing=float(label_smoothing),
        reduction=reduction,
    )


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2``, reduced.

    Parameters
    ----------
    input : Tensor or array, any shape, float
    target : Tensor or array, shape of ``input``
        Cast to the input's dtype. Differentiable.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor, scalar or the input's shape, dtype of ``input``

    Raises
    ------
    LossInputError
        If ``input`` or ``target`` contain NaN.
    ValueError
        If the shapes differ or ``reduction`` is unknown.
    """
    name = "mse_loss"
    _check_reduction(name, reduction)
    x = _tensor(input)
    t = _as_float(_tensor(target), x.dtype)
    _same_shape(name, x, t)
    _check_nan(name, input=x.data, target=t.data)
    return MSELoss.apply(x, t, reduction=reduction)


def pinball_loss(input: Any, target: Any, quantiles: Any, reduction: str = "mean") -> Tensor:
    """Pinball (quantile) loss: ``input`` predicts the ``quantiles``-levels of ``target``.

    Per element, with ``d = target - input`` and level ``q``:
    ``l = max(q d, (q - 1) d)``, i.e. ``q d`` when the target is above the prediction and
    ``(1 - q) (-d)`` when below. Its minimiser over a constant prediction is the ``q``-quantile
    of the targets (Koenker & Bassett, 1978), so a model trained on it predicts quantiles.
    Gradient ``dl/dinput = 1[input > target] - q``; at the kink ``input == target`` it is
    ``-q`` (the branch ``target >= input``).

    Parameters
    ----------
    input : Tensor or array, any shape S, float
        Predicted quantiles, e.g. (B, H, Q) for B series, H steps and Q levels.
    target : Tensor or array, shape S
        Cast to the input's dtype. Differentiable.
    quantiles : float, array or Tensor, broadcastable to S
        Levels in [0, 1], e.g. shape (Q,) for one level per entry of the last axis (a constant).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor, scalar or shape S, dtype of ``input``

    Raises
    ------
    LossInputError
        If ``input``, ``target`` or ``quantiles`` contain NaN.
    ValueError
        If the shapes do not fit, a level is outside [0, 1] or ``reduction`` is unknown.
    """
    name = "pinball_loss"
    _check_reduction(name, reduction)
    x = _tensor(input)
    t = _as_float(_tensor(target), x.dtype)
    _same_shape(name, x, t)
    _check_nan(name, input=x.data, target=t.data)
    q = _weight(name, "quantiles", quantiles, x, x.shape, exact=False)
    outside = (q < 0) | (q > 1)
    if outside.any():
        raise ValueError(f"{name}: quantile levels must be in [0, 1], got {q[outside].ravel()[0]}")
    return PinballLoss.apply(x, t, quantiles=q, reduction=reduction)
