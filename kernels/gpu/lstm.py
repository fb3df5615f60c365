"""GPU LSTM: the gates of one step fused in one ``numba.cuda`` kernel around cuBLAS GEMMs.

Same names, signatures and results as :mod:`kernels.reference.lstm` (letters and gate order
there). The GEMMs are ``matmul`` of the arrays' module (``cupy.matmul``: cuBLAS); the kernels do
the element-wise work of a step, one thread per (batch row, hidden unit), so a warp reads
adjacent units of a row (coalesced).

The layer drivers differ from the CPU's in one choice: ``fused`` and ``chunk`` are cache
decisions of the CPU and are ignored. The input projection of all T steps is one GEMM before
the recurrence, and in the backward the input and weight gradients are one GEMM each after it.
"""

from __future__ import annotations

import math

import numpy as np

from kernels.gpu._device import array_module
from kernels.gpu._launch import cuda, grid

__all__ = ["lstm_cell_fwd", "lstm_cell_bwd", "lstm_seq_fwd", "lstm_seq_bwd"]


@cuda.jit(device=True)
def _sigmoid(a, half):
    return half * math.tanh(half * a) + half


@cuda.jit
def _cell_fwd(xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y, zero, half):
    k = cuda.grid(1)
    n, hidden = c_prev.shape
    if k >= n * hidden:
        return
    b = k // hidden
    j = k - b * hidden
    if t >= lengths[b]:
        c[b, j] = c_prev[b, j]
        h[b, j] = h_prev[b, j]
        tanh_c[b, j] = zero
        y[b, t, j] = zero
        for q in range(4):
            hg[b, q * hidden + j] = zero
        return
    i = _sigmoid(xg[b, j] + hg[b, j] + bias[j], half)
    f = _sigmoid(xg[b, hidden + j] + hg[b, hidden + j] + bias[hidden + j], half)
    g = math.tanh(xg[b, 2 * hidden + j] + hg[b, 2 * hidden + j] + bias[2 * hidden + j])
    o = _sigmoid(xg[b, 3 * hidden + j] + hg[b, 3 * hidden + j] + bias[3 * hidden + j], half)
    c_new = f * c_prev[b, j] + i * g
    tc = math.tanh(c_new)
    hg[b, j] = i
    hg[b, hidden + j] = f
    hg[b, 2 * hidden + j] = g
    hg[b, 3 * hidden + j] = o
    c[b, j] = c_new
    h[b, j] = o * tc
    tanh_c[b, j] = tc
    y[b, t, j] = o * tc


@cuda.jit
def _cell_bwd(act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates, zero, one):
    k = cuda.grid(1)
    n, hidden = c_prev.shape
    if k >= n * hidden:
        return
    b = k // hidden
    j = k - b * hidden
    if t >= lengths[b]:
        for q in range(4):
            dgates[b, q * hidden + j] = zero
        return
    i = act[b, j]
    f = act[b, hidden + j]
    g = act[b, 2 * hidden + j]
    o = act[b, 3 * hidden + j]
    tc = tanh_c[b, j]
    dh = dy[b, t, j] + dh_rec[b, j]
    if t == lengths[b] - 1:
        dh += dh_n[b, j]
    dct = dc[b, j] + dh * o * (one - tc * tc)
    dgates[b, j] = dct * g * i * (one - i)
    dgates[b, hidden + j] = dct * c_prev[b, j] * f * (one - f)
    dgates[b, 2 * hidden + j] = dct * i * (one - g * g)
    dgates[b, 3 * hidden + j] = dh * tc * o * (one - o)
    dc[b, j] = dct * f


def lstm_cell_fwd(xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y) -> None:
    """One LSTM step forward (see :func:`kernels.reference.lstm.lstm_cell_fwd`); ``lengths``
    must be on the device of the other arrays."""
    dtype = c_prev.dtype.type
    blocks, threads = grid(c_prev.size)
    _cell_fwd[blocks, threads](
        xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y, dtype(0), dtype(0.5)
    )


def lstm_cell_bwd(act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates) -> None:
    """One LSTM step backward (see :func:`kernels.reference.lstm.lstm_cell_bwd`)."""
    dtype = c_prev.dtype.type
    blocks, threads = grid(c_prev.size)
    _cell_bwd[blocks, threads](
        act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates, dtype(0), dtype(1)
    )


def lstm_seq_fwd(x, w_t, bias, lengths, fused, chunk, hs, cs, acts, tanh_c, xh, y) -> None:
    """All steps of one layer forward (see :func:`kernels.reference.lstm.lstm_seq_fwd`).

    ``fused`` and ``chunk`` are ignored (module docstring); ``xh`` is written when every step
    is saved (``S = T``), the only case in which a backward reads it. ``lengths`` may be a host
    array.
    """
    xp = array_module(x, w_t)
    n, steps, inputs = x.shape
    hidden = hs.shape[2]
    keep = acts.shape[0] == steps
    lengths = xp.asarray(lengths, dtype=np.int64)
    xt = xp.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, I)
    xg = xp.matmul(xt.reshape(steps * n, inputs), w_t[:inputs]).reshape(steps, n, 4 * hidden)
    w_hh_t = w_t[inputs:]
    for t in range(steps):
        a, s = (t, t) if keep else (0, t % 2)
        s1 = s + 1 if keep else 1 - s
        xp.matmul(hs[s], w_hh_t, out=acts[a])
        lstm_cell_fwd(xg[t], acts[a], bias, cs[s], hs[s], lengths, t, cs[s1], hs[s1], tanh_c[a], y)
    if keep:
        xh[:, :, :inputs] = xt
        xh[:, :, inputs:] = hs[:steps]


def lstm_seq_bwd(
    w_t, acts, tanh_c, cs, xh, lengths, gy, gh_n, dc, dh, fused, chunk, dx, dw, db
) -> None:
    """All steps of one layer backward (see :func:`kernels.reference.lstm.lstm_seq_bwd`).

    Per step one cell kernel and the GEMM ``dG_t W_hh``; then ``dX = dG W_ih``,
    ``[dW_ih, dW_hh] += dG^T [X, H_prev]`` and ``db += sum dG`` over all steps at once.
    ``fused`` and ``chunk`` are ignored.
    """
    xp = array_module(acts, w_t)
    steps, n, four_h = acts.shape
    hidden = four_h // 4
    inputs = xh.shape[2] - hidden
    lengths = xp.asarray(lengths, dtype=np.int64)
    w_hh = xp.ascontiguousarray(w_t[inputs:].T)  # (4H, H)
    dgates = xp.empty((steps, n, four_h), dtype=acts.dtype)
    for t in range(steps - 1, -1, -1):
        lstm_cell_bwd(acts[t], tanh_c[t], cs[t], gy, dh, gh_n, dc, lengths, t, dgates[t])
        xp.matmul(dgates[t], w_hh, out=dh)
    flat = dgates.reshape(steps * n, four_h)
    if dx is not None:
        dx[...] = xp.matmul(flat, w_t[:inputs].T).reshape(steps, n, inputs).transpose(1, 0, 2)
    if dw is not None:
        dw += xp.matmul(flat.T, xh.reshape(steps * n, inputs + hidden))
        db += flat.sum(axis=0)
