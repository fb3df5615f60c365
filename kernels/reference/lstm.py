"""Reference (plain numpy) LSTM cell step, forward and backward: the specification.

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
"""

from __future__ import annotations

import numpy as np

__all__ = ["lstm_cell_fwd", "lstm_cell_bwd"]


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
