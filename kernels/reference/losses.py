"""Reference loss kernels: per-element (or per-row) losses and their gradients, unreduced.

Reductions ("mean", "sum") are left to the caller, which scales the upstream gradient ``g``
accordingly. Letters: M rows, C classes. Every log-probability is computed stably (log-sum-exp
with the maximum subtracted; ``log1p(exp(-|x|))`` for the softplus), so logits of size 1e4 give
finite losses and gradients with the right limits.
"""

from __future__ import annotations

import numpy as np

from kernels.reference.activations import log_softmax_fwd, sigmoid_fwd

__all__ = [
    "bce_with_logits_fwd",
    "bce_with_logits_bwd",
    "cross_entropy_fwd",
    "cross_entropy_bwd",
    "mse_fwd",
    "mse_bwd",
    "pinball_fwd",
    "pinball_bwd",
]


def bce_with_logits_fwd(
    x: np.ndarray, t: np.ndarray, weight: np.ndarray | None, pos_weight: np.ndarray | None
) -> np.ndarray:
    """Binary cross-entropy of logits ``x`` against targets ``t`` in [0, 1], element-wise.

    ``l = w * [max(x, 0) - x t + log1p(exp(-|x|)) + (p - 1) t softplus(-x)]`` with
    ``softplus(-x) = log(1 + exp(-x)) = log1p(exp(-|x|)) + max(-x, 0)``, which is
    ``-w [p t log s(x) + (1 - t) log(1 - s(x))]`` for the sigmoid ``s`` without overflow.

    Parameters
    ----------
    x, t : ndarray, same shape, float
    weight : ndarray or None
        ``w``, broadcastable to ``x``'s shape (None: 1).
    pos_weight : ndarray or None
        ``p``, the weight of positive targets, broadcastable to ``x``'s shape (None: 1).

    Returns
    -------
    ndarray, shape of ``x``
    """
    log1p_term = np.log1p(np.exp(-np.abs(x)))
    loss = np.maximum(x, 0) - x * t + log1p_term
    if pos_weight is not None:
        loss = loss + (pos_weight - 1) * t * (log1p_term + np.maximum(-x, 0))
    return loss if weight is None else loss * weight


def bce_with_logits_bwd(
    g: np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    weight: np.ndarray | None,
    pos_weight: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`bce_with_logits_fwd` times the upstream ``g`` (shape of ``x``).

    ``dl/dx = w [s(x) - t - (p - 1) t (1 - s(x))]`` and ``dl/dt = w [-x + (p - 1) softplus(-x)]``.

    Returns
    -------
    dx, dt : ndarray, shape of ``x``
    """
    s = sigmoid_fwd(x)
    dx = s - t
    dt = -x
    if pos_weight is not None:
        dx = dx - (pos_weight - 1) * t * (1 - s)
        dt = dt + (pos_weight - 1) * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))
    scale = g if weight is None else g * weight
    return dx * scale, dt * scale


def _row_weights(
    t: np.ndarray, weight: np.ndarray | None, ignore_index: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask of counted rows, targets with ignored rows set to class 0, and the weight per row."""
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    row_w = valid.astype(dtype) if weight is None else np.where(valid, weight[safe], 0)
    return valid, safe, row_w.astype(dtype, copy=False)


def cross_entropy_fwd(
    x: np.ndarray,
    t: np.ndarray,
    weight: np.ndarray | None,
    ignore_index: int,
    label_smoothing: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax cross-entropy per row, as ``torch.nn.functional.cross_entropy`` defines it.

    With ``q = log_softmax(x)`` along the classes, the class weights ``w`` and the smoothing
    ``e``: ``l_m = -(1 - e) w[t_m] q[m, t_m] - (e / C) sum_c w[c] q[m, c]``; rows whose target is
    ``ignore_index`` give 0.

    Parameters
    ----------
    x : ndarray, shape (M, C), float
    t : ndarray, shape (M,), integer
        Class indices in ``[0, C)`` or ``ignore_index``.
    weight : ndarray, shape (C,), or None
    ignore_index : int
    label_smoothing : float
        ``e`` in [0, 1].

    Returns
    -------
    loss : ndarray, shape (M,)
    row_weight : ndarray, shape (M,)
        ``w[t_m]`` (0 for ignored rows): the "mean" reduction divides by their sum.
    log_probs : ndarray, shape (M, C)
        ``q``, what :func:`cross_entropy_bwd` needs.
    """
    q = log_softmax_fwd(x, 1)
    valid, safe, row_w = _row_weights(t, weight, ignore_index, x.dtype)
    picked = np.take_along_axis(q, safe[:, None], axis=1)[:, 0]
    loss = -(1 - label_smoothing) * row_w * picked
    if label_smoothing:
        smooth = q.sum(axis=1) if weight is None else q @ weight
        loss = loss - (label_smoothing / x.shape[1]) * np.where(valid, smooth, 0)
    return loss, row_w, q


def cross_entropy_bwd(
    g: np.ndarray,
    q: np.ndarray,
    t: np.ndarray,
    weight: np.ndarray | None,
    ignore_index: int,
    label_smoothing: float,
) -> np.ndarray:
    """Gradient of :func:`cross_entropy_fwd`'s rows with respect to the logits.

    ``dl_m/dx = (1 - e) w[t_m] (p_m - onehot(t_m)) + (e / C) (sum(w) p_m - w)`` with
    ``p = exp(q)``, times ``g[m]``; 0 for ignored rows.

    Parameters
    ----------
    g : ndarray, shape (M,)
    q : ndarray, shape (M, C)
        The log-probabilities returned by the forward.
    t, weight, ignore_index, label_smoothing
        As in :func:`cross_entropy_fwd`.

    Returns
    -------
    ndarray, shape (M, C)
    """
    valid, safe, row_w = _row_weights(t, weight, ignore_index, q.dtype)
    p = np.exp(q)
    coef = (1 - label_smoothing) * row_w
    dx = coef[:, None] * p
    dx[np.arange(q.shape[0]), safe] -= coef
    if label_smoothing:
        w = np.ones(q.shape[1], dtype=q.dtype) if weight is None else weight
        dx += (label_smoothing / q.shape[1]) * (w.sum() * p - w)
    return dx * np.where(valid, g, 0)[:, None]


def mse_fwd(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Squared error ``(x - t)^2`` element-wise; ``x`` and ``t`` have the same shape."""
    d = x - t
    return d * d


def mse_bwd(g: np.ndarray, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`mse_fwd` times ``g``: ``dx = 2 g (x - t)`` and ``dt = -dx``."""
    dx = 2 * g * (x - t)
    return dx, -dx


def pinball_fwd(x: np.ndarray, t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Pinball (quantile) loss of predictions ``x`` of the ``q``-quantile of targets ``t``.

    ``l = max(q (t - x), (q - 1) (t - x))``: ``q (t - x)`` when the target lies above the
    prediction, ``(1 - q) (x - t)`` when below. ``x`` and ``t`` have one shape; ``q`` (levels
    in [0, 1]) broadcasts to it.
    """
    d = t - x
    return np.maximum(q * d, (q - 1) * d)


def pinball_bwd(
    g: np.ndarray, x: np.ndarray, t: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`pinball_fwd` times ``g``: ``dx = g (1[x > t] - q)``, ``dt = -dx``.

    At the kink ``x == t`` the gradient is that of the branch ``t >= x`` (``dx = -q g``).
    """
    dx = g * ((x > t).astype(x.dtype) - q)
    return dx, -dx
