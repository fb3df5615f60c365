"""GPU loss kernels, unreduced: element-wise (BCE with logits, squared error, pinball) and per
row (softmax cross-entropy), the loss a parameter of one kernel per shape of work.

Same names, signatures and results as :mod:`kernels.reference.losses` (letters and equations
there); logs and exponentials stay finite for logits of any finite size. ``weight`` and
``pos_weight`` are broadcast to the logits' shape on the device before the element-wise kernel.
"""

from __future__ import annotations

import math

import numpy as np

from kernels.gpu._device import array_module
from kernels.gpu._launch import cuda, grid

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

BCE_FWD, BCE_BWD, MSE_FWD, MSE_BWD, PINBALL_FWD, PINBALL_BWD = range(6)


@cuda.jit
def _pointwise(op, x, t, w, pw, g, has_w, has_pw, out, out2, zero, one, two):
    k = cuda.grid(1)
    if k >= out.shape[0]:
        return
    xk = x[k]
    tk = t[k]
    if op == MSE_FWD:
        out[k] = (xk - tk) * (xk - tk)
        return
    if op == MSE_BWD:
        dx = two * g[k] * (xk - tk)
        out[k] = dx
        out2[k] = -dx
        return
    if op == PINBALL_FWD:  # w holds the quantile levels q
        d = tk - xk
        out[k] = max(w[k] * d, (w[k] - one) * d)
        return
    if op == PINBALL_BWD:  # the kink x == t takes the branch t >= x
        dx = g[k] * ((one if xk > tk else zero) - w[k])
        out[k] = dx
        out2[k] = -dx
        return
    e = math.exp(-abs(xk))
    soft = math.log1p(e)  # log1p(exp(-|x|))
    if op == BCE_FWD:
        loss = max(xk, zero) - xk * tk + soft
        if has_pw:
            loss = loss + (pw[k] - one) * tk * (soft + max(-xk, zero))
        out[k] = loss * w[k] if has_w else loss
        return
    s = one / (one + e) if xk >= zero else e / (one + e)
    dx = s - tk
    dt = -xk
    if has_pw:
        dx = dx - (pw[k] - one) * tk * (one - s)
        dt = dt + (pw[k] - one) * (soft + max(-xk, zero))
    scale = g[k] * w[k] if has_w else g[k]
    out[k] = dx * scale
    out2[k] = dt * scale


@cuda.jit
def _ce_rows(
    backward, x, t, ignore, w, has_w, keep, smooth, w_sum, g, q, loss, row_w, dx, zero, one
):
    r = cuda.grid(1)
    n_rows, width = q.shape
    if r >= n_rows:
        return
    valid = t[r] != ignore
    safe = t[r] if valid else 0
    weight_r = (w[safe] if has_w else one) if valid else zero
    if not backward:
        top = x[r, 0]
        for c in range(1, width):
            top = max(top, x[r, c])
        total = zero
        for c in range(width):
            total += math.exp(x[r, c] - top)
        log_total = math.log(total)
        smooth_sum = zero
        for c in range(width):
            qc = (x[r, c] - top) - log_total
            q[r, c] = qc
            smooth_sum += qc * w[c] if has_w else qc
        value = -keep * weight_r * q[r, safe]
        if valid:
            value -= smooth * smooth_sum
        loss[r] = value
        row_w[r] = weight_r
        return
    coef = keep * weight_r
    scale = g[r] if valid else zero
    for c in range(width):
        p = math.exp(q[r, c])
        d = coef * p
        if c == safe:
            d -= coef
        d += smooth * (w_sum * p - (w[c] if has_w else one))
        dx[r, c] = d * scale


def pinball_fwd(x, t, q):
    """Pinball (quantile) loss ``max(q (t - x), (q - 1) (t - x))``; ``q`` broadcasts."""
    return _elementwise(PINBALL_FWD, x, t, q)[0]


def pinball_bwd(g, x, t, q):
    """``dx = g (1[x > t] - q)`` and ``dt = -dx``."""
    return _elementwise(PINBALL_BWD, x, t, q, g=g)


def _flat(xp, a, dtype, shape):
    """``a`` broadcast to ``shape``, C-contiguous and flat (a copy when broadcast)."""
    a = xp.asarray(a, dtype=dtype)
    if a.shape != shape:
        a = xp.broadcast_to(a, shape).copy()
    return xp.ascontiguousarray(a).reshape(-1)


def _elementwise(op, x, t, weight=None, pos_weight=None, g=None):
    xp = array_module(x)
    parts = [a for a in (x, t, weight, pos_weight, g) if a is not None]
    dtype = np.result_type(*[a.dtype for a in parts])
    shape = x.shape
    fx, ft = _flat(xp, x, dtype, shape), _flat(xp, t, dtype, shape)
    fw = fx if weight is None else _flat(xp, weight, dtype, shape)
    fpw = fx if pos_weight is None else _flat(xp, pos_weight, dtype, shape)
    fg = fx if g is None else _flat(xp, g, dtype, shape)
    out, out2 = xp.empty_like(fx), xp.empty_like(fx)
    if out.size:
        blocks, threads = grid(out.size)
        kind = dtype.type
        _pointwise[blocks, threads](
            op,
            fx,
            ft,
            fw,
            fpw,
            fg,
            weight is not None,
            pos_weight is not None,
            out,
            out2,
            kind(0),
            kind(1),
            kind(2),
        )
    return out.reshape(shape), out2.reshape(shape)


def bce_with_logits_fwd(x, t, weight, pos_weight):
    """Binary cross-entropy of logits, element-wise (see the reference)."""
    return _elementwise(BCE_FWD, x, t, weight, pos_weight)[0]


def bce_with_logits_bwd(g, x, t, weight, pos_weight):
    """Gradients of :func:`bce_with_logits_fwd` times ``g``: ``(dx, dt)``."""
    return _elementwise(BCE_BWD, x, t, weight, pos_weight, g)


def mse_fwd(x, t):
    """Squared error ``(x - t)^2`` element-wise."""
    return _elementwise(MSE_FWD, x, t)[0]


def mse_bwd(g, x, t):
    """``dx = 2 g (x - t)`` and ``dt = -dx``."""
    return _elementwise(MSE_BWD, x, t, g=g)


def _ce(backward, x, t, weight, ignore_index, label_smoothing, g=None, q=None):
    xp = array_module(x if q is None else q)
    table = q if backward else xp.ascontiguousarray(x)
    n_rows, width = table.shape
    kind = table.dtype.type
    t = xp.asarray(t, dtype=np.int64)
    w = table[0] if weight is None else xp.asarray(weight, dtype=table.dtype)
    w_sum = kind(width) if weight is None else kind(float(w.sum()))  # float(): a cupy 0-d
    unused = xp.zeros((1, 1), dtype=table.dtype)  # the other direction's arrays (no aliases)
    q_out = table if backward else xp.empty_like(table)
    loss = unused[0] if backward else xp.empty(n_rows, table.dtype)
    row_w = unused[0] if backward else xp.empty(n_rows, table.dtype)
    dx = xp.empty_like(table) if backward else unused
    gg = unused[0] if g is None else xp.asarray(g, dtype=table.dtype)
    if n_rows and width:
        blocks, threads = grid(n_rows)
        _ce_rows[blocks, threads](
            backward,
            table,
            t,
            ignore_index,
            w,
            weight is not None,
            kind(1 - label_smoothing),
            kind(label_smoothing / width),
            w_sum,
            gg,
            q_out,
            loss,
            row_w,
            dx,
            kind(0),
            kind(1),
        )
    return dx if backward else (loss, row_w, q_out)


def cross_entropy_fwd(x, t, weight, ignore_index, label_smoothing):
    """Softmax cross-entropy per row: ``(loss, row_weight, log_probs)`` (see the reference)."""
    return _ce(False, x, t, weight, ignore_index, label_smoothing)


def cross_entropy_bwd(g, q, t, weight, ignore_index, label_smoothing):
    """Gradient of :func:`cross_entropy_fwd`'s rows with respect to the logits."""
    return _ce(True, None, t, weight, ignore_index, label_smoothing, g=g, q=q)
