"""GPU Adam / AdamW, dense and row-sparse, in one ``numba.cuda`` kernel (one thread per element).

Same names, signatures and equations as :mod:`kernels.reference.adam`: the scalar coefficients
come from :func:`kernels.reference.adam.adam_coefficients` (float64, rounded once to the
parameter dtype) and are passed as scalars of that dtype, so the element arithmetic runs in it,
in the reference's order. The dense step is the row-sparse one on a single row of all
elements.
"""

from __future__ import annotations

import math

import numpy as np

from kernels.gpu._device import array_module
from kernels.gpu._launch import cuda, grid
from kernels.reference.adam import adam_coefficients, check_rows

__all__ = ["adam_step", "adam_step_rows"]


@cuda.jit
def _adam(
    p,
    rows,
    dense,
    g,
    m,
    v,
    vmax,
    amsgrad,
    step_size,
    bc2_sqrt,
    one_m_b1,
    b2,
    one_m_b2,
    eps,
    l2,
    decay,
):
    k = cuda.grid(1)
    n, width = g.shape
    if k >= n * width:
        return
    r = k // width
    d = k - r * width
    row = r if dense else rows[r]
    pk = p[row, d] * decay
    gk = g[r, d] + l2 * pk
    mk = m[row, d] + one_m_b1 * (gk - m[row, d])
    vk = b2 * v[row, d] + one_m_b2 * (gk * gk)
    m[row, d] = mk
    v[row, d] = vk
    if amsgrad:
        vk = max(vmax[row, d], vk)
        vmax[row, d] = vk
    p[row, d] = pk - step_size * mk / (math.sqrt(vk) / bc2_sqrt + eps)


def _launch(
    p, rows, dense, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad
) -> None:
    if g.size == 0:
        return
    coef = adam_coefficients(p.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled)
    blocks, threads = grid(g.size)
    _adam[blocks, threads](p, rows, dense, g, m, v, vmax, amsgrad, *coef)


def adam_step(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad):
    """One dense Adam / AdamW step on flat arrays, in place (see
    :func:`kernels.reference.adam.adam_step`)."""
    xp = array_module(p)
    one_row = [a.reshape(1, -1) for a in (p, g, m, v)]
    vmax = vmax.reshape(1, -1) if amsgrad else xp.zeros((1, 1), dtype=p.dtype)  # not read
    rows = xp.zeros(1, dtype=np.int64)  # not read by a dense step
    _launch(
        one_row[0],
        rows,
        True,
        *one_row[1:],
        vmax,
        step,
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled,
        amsgrad,
    )


def adam_step_rows(
    p, rows, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad
):
    """:func:`adam_step` on the rows ``rows`` of a table only, in place (see
    :func:`kernels.reference.adam.adam_step_rows`).

    Raises
    ------
    ValueError
        If ``rows`` is not strictly increasing or lies outside ``[0, V)``.
    """
    check_rows(rows, p.shape[0])
    xp = array_module(p)
    vmax = vmax if amsgrad else xp.zeros((1, 1), dtype=p.dtype)  # not read (and no alias of v)
    _launch(
        p,
        rows,
        False,
        g.reshape(rows.shape[0], -1),
        m,
        v,
        vmax,
        step,
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled,
        amsgrad,
    )
