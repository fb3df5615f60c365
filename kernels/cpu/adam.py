"""Numba twins of :mod:`kernels.reference.adam`: the fused Adam / AdamW update, in place.

One pass over the elements reads ``p, g, m, v`` (and ``vmax``) once and writes each state array
once. Elements are independent, so the dense loop is a ``prange`` over elements and the sparse
loop a ``prange`` over the (unique) touched rows. No ``fastmath``: the result must round exactly
as the reference does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.reference.adam import adam_coefficients, check_rows

__all__ = ["adam_step", "adam_step_rows"]


@njit(cache=True, inline="always")
def _update(p, g, m, v, vmax, k, amsgrad):
    """One element: the new ``(p, m, v, vmax)``; ``k`` holds the 8 coefficients.

    Inlined at Numba IR level so that LLVM vectorizes the loops that call it.
    """
    step_size, bc2_sqrt, one_m_b1, b2, one_m_b2, eps, l2, decay = k
    p = p * decay
    g = g + l2 * p
    m = m + one_m_b1 * (g - m)
    v = b2 * v + one_m_b2 * (g * g)
    if amsgrad:
        vmax = np.maximum(vmax, v)
    else:
        vmax = v
    return p - step_size * m / (np.sqrt(vmax) / bc2_sqrt + eps), m, v, vmax


@njit(cache=True, parallel=True)
def _dense(p, g, m, v, vmax, c, amsgrad):
    # The coefficients travel as a tuple of scalars: no aliasing with the arrays written below.
    k = (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
    if amsgrad:
        for i in prange(p.shape[0]):
            p[i], m[i], v[i], vmax[i] = _update(p[i], g[i], m[i], v[i], vmax[i], k, True)
    else:
        for i in prange(p.shape[0]):
            p[i], m[i], v[i], _ = _update(p[i], g[i], m[i], v[i], v[i], k, False)


@njit(cache=True, parallel=True)
def _rows(p, rows, g, m, v, vmax, c, amsgrad):
    k = (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
    for r in prange(rows.shape[0]):
        i = rows[r]
        pr, gr, mr, vr = p[i], g[r], m[i], v[i]  # contiguous row views: vectorized inner loop
        if amsgrad:
            vmr = vmax[i]
            for j in range(pr.shape[0]):
                pr[j], mr[j], vr[j], vmr[j] = _update(pr[j], gr[j], mr[j], vr[j], vmr[j], k, True)
        else:
            for j in range(pr.shape[0]):
                pr[j], mr[j], vr[j], _ = _update(pr[j], gr[j], mr[j], vr[j], vr[j], k, False)


def adam_step(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    vmax: np.ndarray,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    amsgrad: bool,
) -> None:
    """Fused dense Adam / AdamW step; same contract as :func:`kernels.reference.adam.adam_step`.

    All arrays are 1-D and C-contiguous, shape (P,) (``vmax`` may be empty without ``amsgrad``).
    """
    c = adam_coefficients(p.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled)
    _dense(p, g, m, v, vmax, c, bool(amsgrad))


def adam_step_rows(
    p: np.ndarray,
    rows: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    vmax: np.ndarray,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    amsgrad: bool,
) -> None:
    """Lazy Adam on touched rows; same contract as :func:`kernels.reference.adam.adam_step_rows`.

    ``p, m, v`` (and ``vmax`` with ``amsgrad``) have shape (V, D), ``g`` (R, D), ``rows`` (R,)
    int64, strictly increasing; all C-contiguous.
    """
    check_rows(rows, p.shape[0])
    c = adam_coefficients(p.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled)
    _rows(p, rows, g, m, v, vmax, c, bool(amsgrad))
