"""Reference (plain numpy) LSTM, one step and one layer, forward and backward: the specification.

Letters: B batch, H hidden size; gate blocks are ordered (i, f, g, o) as in PyTorch, so a gate
array has shape (B, 4H) with block ``k`` in columns ``[k H, (k + 1) H)``.

One forward step for a row ``b`` that is active (``t < lengths[b]``)::

    a = xg + hg + bias                      # preactivations, (B, 4H)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
    c = f * c_prev + i * g;  h = o * tanh(c);  y = h

An inactive row (a right-padded step, ``t >= lengths[b]``) carries its state, ``c = c_prev``,
``h = h_prev``, and outputs ``y = 0``; its activations and ``tanh(c)`` are set to 0.

The kernels write into caller-provided buffers (no allocation per step); ``hg`` is overwritten by
the activations ``[i, f, g, o]`` that the backward step needs. All arrays share one float dtype
(float32 or float64); ``lengths`` is int64 of shape (B,).

The layer kernels (:func:`lstm_seq_fwd`, :func:`lstm_seq_bwd`) run all T steps of one layer:
per step one GEMM (``[x_t, h_{t-1}] W^T`` when *fused*, else ``h_{t-1} W_hh^T`` plus the input
projection of a *chunk* of steps in one GEMM) and one cell step. ``W^T = [W_ih, W_hh]^T`` is
passed as one (I + H, 4H) array ``w_t``: its rows ``[:I]`` are ``W_ih^T``, ``[I:]`` are
``W_hh^T``. Letters: T steps, I input size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["lstm_cell_fwd", "lstm_cell_bwd", "lstm_seq_fwd", "lstm_seq_bwd"]


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * a) + 0.5


def lstm_cell_fwd(
    xg: np.ndarray,
    hg: np.ndarray,
    bias: np.ndarray,
    c_prev: np.ndarray,
    h_prev: np.ndarray,
    lengths: np.ndarray,
    t: int,
    c: np.ndarray,
    h: np.ndarray,
    tanh_c: np.ndarray,
    y: np.ndarray,
) -> None:
    """One LSTM step forward, written into ``hg`` (activations), ``c``, ``h``, ``tanh_c``, ``y``.

    Parameters
    ----------
    xg : ndarray, shape (B, 4H)
        Input projection ``x_t W_ih^T`` of this step (may be a strided view).
    hg : ndarray, shape (B, 4H)
        Recurrent projection ``h_prev W_hh^T``; overwritten with the activations (i, f, g, o).
    bias : ndarray, shape (4H,)
        ``b_ih + b_hh``.
    c_prev, h_prev : ndarray, shape (B, H)
        State before the step.
    lengths : ndarray of int64, shape (B,)
        Sequence lengths; row ``b`` is active when ``t < lengths[b]``.
    t : int
        Step index.
    c, h, tanh_c : ndarray, shape (B, H)
        Outputs: new cell and hidden state, ``tanh(c)`` (0 on inactive rows).
    y : ndarray, shape (B, T, H), C-contiguous
        Output of all steps; this step writes ``y[:, t]`` (``h`` on active rows, else 0).
    """
    hidden = c_prev.shape[1]
    active = (t < lengths)[:, None]
    a = xg + hg + bias
    act = np.empty_like(a)
    act[:, : 2 * hidden] = _sigmoid(a[:, : 2 * hidden])
    act[:, 2 * hidden : 3 * hidden] = np.tanh(a[:, 2 * hidden : 3 * hidden])
    act[:, 3 * hidden :] = _sigmoid(a[:, 3 * hidden :])
    i, f, g, o = (act[:, k * hidden : (k + 1) * hidden] for k in range(4))
    c_new = f * c_prev + i * g
    tc = np.tanh(c_new)
    h_new = o * tc
    hg[...] = np.where(active, act, 0)
    c[...] = np.where(active, c_new, c_prev)
    h[...] = np.where(active, h_new, h_prev)
    tanh_c[...] = np.where(active, tc, 0)
    y[:, t] = np.where(active, h_new, 0)


def lstm_cell_bwd(
    act: np.ndarray,
    tanh_c: np.ndarray,
    c_prev: np.ndarray,
    dy: np.ndarray,
    dh_rec: np.ndarray,
    dh_n: np.ndarray,
    dc: np.ndarray,
    lengths: np.ndarray,
    t: int,
    dgates: np.ndarray,
) -> None:
    """One LSTM step backward, written into ``dgates`` and ``dc`` (in place).

    For an active row the gradient reaching ``h_t`` is
    ``dh = dy[:, t] + dh_rec + [t == lengths - 1] dh_n`` (the final state ``h_n`` is ``h`` at the
    row's last step), and with ``dc`` the gradient reaching ``c_t``::

        dc += dh * o * (1 - tanh_c^2)
        d_i = dc * g * i (1 - i);  d_f = dc * c_prev * f (1 - f)
        d_g = dc * i * (1 - g^2);  d_o = dh * tanh_c * o (1 - o)
        dc  = dc * f                               # now the gradient reaching c_{t-1}

    Inactive rows get ``dgates = 0`` and keep ``dc`` (which the caller initialises to ``dc_n``).

    Parameters
    ----------
    act : ndarray, shape (B, 4H)
        Activations (i, f, g, o) saved by :func:`lstm_cell_fwd`.
    tanh_c, c_prev : ndarray, shape (B, H)
        ``tanh(c_t)`` and ``c_{t-1}`` from the forward pass.
    dy : ndarray, shape (B, T, H), C-contiguous
        Gradient of the outputs of all steps; this step reads ``dy[:, t]``.
    dh_rec : ndarray, shape (B, H)
        ``dgates_{t+1} W_hh`` (zeros at the last step).
    dh_n : ndarray, shape (B, H)
        Gradient of the final hidden state.
    dc : ndarray, shape (B, H)
        In: gradient reaching ``c_t`` from later steps; out: gradient reaching ``c_{t-1}``.
    lengths : ndarray of int64, shape (B,)
    t : int
    dgates : ndarray, shape (B, 4H)
        Output: gradient of the preactivations (0 on inactive rows).
    """
    hidden = c_prev.shape[1]
    active = (t < lengths)[:, None]
    last = (t == lengths - 1)[:, None]
    i, f, g, o = (act[:, k * hidden : (k + 1) * hidden] for k in range(4))
    dh = dy[:, t] + dh_rec + np.where(last, dh_n, 0)
    dct = dc + dh * o * (1 - tanh_c * tanh_c)
    grads = np.concatenate(
        [
            dct * g * i * (1 - i),
            dct * c_prev * f * (1 - f),
            dct * i * (1 - g * g),
            dh * tanh_c * o * (1 - o),
        ],
        axis=1,
    )
    dgates[...] = np.where(active, grads, 0)
    dc[...] = np.where(active, dct * f, dc)


def lstm_seq_fwd(
    x: np.ndarray,
    w_t: np.ndarray,
    bias: np.ndarray,
    lengths: np.ndarray,
    fused: bool,
    chunk: int,
    hs: np.ndarray,
    cs: np.ndarray,
    acts: np.ndarray,
    tanh_c: np.ndarray,
    xh: np.ndarray,
    y: np.ndarray,
    *,
    cell: Callable[..., None] | None = None,
) -> None:
    """All steps of one LSTM layer forward, into caller-provided buffers.

    ``S`` is the number of saved steps: ``S = T`` keeps every step for the backward; ``S = 1``
    (inference) keeps only the running state, alternating between slots 0 and 1 of ``hs`` and
    ``cs`` (the final state lands in slot ``T % 2``; with ``S = T`` in slot T).

    Parameters
    ----------
    x : ndarray, shape (B, T, I), C-contiguous
    w_t : ndarray, shape (I + H, 4H), C-contiguous
        ``[W_ih, W_hh]^T``.
    bias : ndarray, shape (4H,)
        ``b_ih + b_hh``.
    lengths : ndarray of int64, shape (B,)
        Each in [1, T].
    fused : bool
        One GEMM per step over ``[x_t, h_{t-1}]`` (K = I + H) instead of a recurrent GEMM plus
        a per-chunk input projection.
    chunk : int
        Steps whose input projections one GEMM computes (unfused only), >= 1.
    hs, cs : ndarray, shape (S + 1, B, H)
        In: ``hs[0]``, ``cs[0]`` hold ``h0``, ``c0``. Out: the states (see above).
    acts : ndarray, shape (S, B, 4H)
        Out: the activations (i, f, g, o) of each saved step.
    tanh_c : ndarray, shape (S, B, H)
        Out: ``tanh(c_t)`` of each saved step.
    xh : ndarray, shape (S, B, I + H)
        Out (when ``S = T`` or fused): ``[x_t, h_{t-1}]`` of each saved step, which the weight
        gradient needs.
    y : ndarray, shape (B, T, H)
        Out: the hidden state at each step, 0 at padded steps.
    cell : callable, optional
        The step kernel (default :func:`lstm_cell_fwd`); the Numba twin runs this loop, with
        numpy's BLAS for the GEMMs, with its compiled cell when it works on one block of rows.
    """
    cell = lstm_cell_fwd if cell is None else cell
    n, steps, inputs = x.shape
    hidden = hs.shape[2]
    keep = acts.shape[0] == steps
    if fused:
        xg = np.zeros((1, n, 4 * hidden), dtype=x.dtype)  # the projection is in the GEMM
    else:
        xt = np.ascontiguousarray(x.transpose(1, 0, 2))
        xg = np.empty((chunk, n, 4 * hidden), dtype=x.dtype)
    for t in range(steps):
        a, s = (t, t) if keep else (0, t % 2)
        s1 = s + 1 if keep else 1 - s
        if keep or fused:
            xh[a, :, :inputs], xh[a, :, inputs:] = x[:, t], hs[s]
        if fused:
            np.matmul(xh[a], w_t, out=acts[a])
            p = 0
        else:
            if t % chunk == 0:  # input projection of the next chunk of steps: one GEMM
                m = min(chunk, steps - t)
                rows = (m * n, inputs), (m * n, 4 * hidden)  # explicit: B may be 0
                proj = xg[:m].reshape(rows[1])
                np.matmul(xt[t : t + m].reshape(rows[0]), w_t[:inputs], out=proj)
            np.matmul(hs[s], w_t[inputs:], out=acts[a])
            p = t % chunk
        cell(xg[p], acts[a], bias, cs[s], hs[s], lengths, t, cs[s1], hs[s1], tanh_c[a], y)


def lstm_seq_bwd(
    w_t: np.ndarray,
    acts: np.ndarray,
    tanh_c: np.ndarray,
    cs: np.ndarray,
    xh: np.ndarray,
    lengths: np.ndarray,
    gy: np.ndarray,
    gh_n: np.ndarray,
    dc: np.ndarray,
    dh: np.ndarray,
    fused: bool,
    chunk: int,
    dx: np.ndarray | None,
    dw: np.ndarray | None,
    db: np.ndarray | None,
    *,
    cell: Callable[..., None] | None = None,
) -> None:
    """All steps of one LSTM layer backward (BPTT) from what :func:`lstm_seq_fwd` saved (S = T).

    Steps run backwards in chunks of ``chunk``; after each chunk its gate gradients ``dG`` (m B
    rows) feed the input and weight gradients in one GEMM each, while they are still in cache.

    Parameters
    ----------
    w_t : ndarray, shape (I + H, 4H)
        ``[W_ih, W_hh]^T``, as in the forward.
    acts, tanh_c, cs, xh : ndarray
        Saved by the forward: (T, B, 4H), (T, B, H), (T + 1, B, H), (T, B, I + H).
    lengths : ndarray of int64, shape (B,)
    gy : ndarray, shape (B, T, H), C-contiguous
        Gradient of the outputs.
    gh_n : ndarray, shape (B, H)
        Gradient of the final hidden state.
    dc : ndarray, shape (B, H)
        In: gradient of the final cell state. Out: gradient of ``c0``.
    dh : ndarray, shape (B, H)
        In: zeros. Out: gradient of ``h0``.
    fused : bool
        One GEMM per step, ``dG_t [W_ih, W_hh]``, gives ``dx_t`` and ``dh_{t-1}`` together
        (only with ``dx``).
    chunk : int
        Steps per chunk, >= 1.
    dx : ndarray, shape (B, T, I), or None
        Out: gradient of the input (None: not computed).
    dw : ndarray, shape (4H, I + H), or None
        Accumulated (+=): ``[dW_ih, dW_hh]``. None: not computed.
    db : ndarray, shape (4H,), or None
        Accumulated (+=): gradient of either bias (they are summed). None with ``dw``.
    cell : callable, optional
        The step kernel (default :func:`lstm_cell_bwd`), as in :func:`lstm_seq_fwd`.
    """
    cell = lstm_cell_bwd if cell is None else cell
    steps, n, four_h = acts.shape
    hidden = four_h // 4
    inputs = xh.shape[2] - hidden
    # Contiguous weights: OpenBLAS runs dG @ W faster on them than on transposed views of w_t
    # (measured per step at (B, H, I) = (64, 256, 128): 383 vs 491 us).
    w = np.ascontiguousarray(w_t.T)  # (4H, I + H) = [W_ih, W_hh]
    w_hh = None if fused else np.ascontiguousarray(w[:, inputs:])
    w_ih = None if fused else np.ascontiguousarray(w[:, :inputs])
    dxh = np.empty((n, inputs + hidden), dtype=acts.dtype) if fused else None
    dgates = np.empty((chunk, n, four_h), dtype=acts.dtype)
    ones = np.ones(chunk * n, dtype=acts.dtype)  # db as a GEMV: faster than sum(axis=0)
    for start in range((steps - 1) // chunk * chunk, -1, -chunk):
        m = min(chunk, steps - start)
        for t in range(start + m - 1, start - 1, -1):
            dg = dgates[t - start]
            cell(acts[t], tanh_c[t], cs[t], gy, dh, gh_n, dc, lengths, t, dg)
            if fused:
                np.matmul(dg, w, out=dxh)
                dx[:, t], dh[...] = dxh[:, :inputs], dxh[:, inputs:]
            else:
                np.matmul(dg, w_hh, out=dh)
        flat = dgates[:m].reshape(m * n, four_h)
        if dx is not None and not fused:
            dx_chunk = (flat @ w_ih).reshape(m, n, inputs)
            dx[:, start : start + m] = dx_chunk.transpose(1, 0, 2)
        if dw is not None:
            dw += flat.T @ xh[start : start + m].reshape(m * n, inputs + hidden)
            db += ones[: m * n] @ flat
