"""Numba twins of :mod:`kernels.reference.lstm`: one fused pass per LSTM step.

Same names, signatures and semantics as the reference (see its docstring for the equations).
Rows of the batch are independent; each row's inner loops over the hidden units are plain
arithmetic that LLVM vectorises. Each kernel is a serial loop over a range of rows; with several
Numba threads and a step of at least :data:`PARALLEL_MIN_ELEMENTS` state elements, a parallel
driver runs it on one block of rows per thread (below that, or on one thread, the thread launch
costs more than it saves).

float32 evaluates ``sigmoid(a) = 1 / (1 + exp(-a))`` and ``tanh(a) = 2 sigmoid(2 a) - 1`` with
:func:`_expf`, an exponential that vectorises (libm ``expf``/``tanhf`` calls do not, and Numba
has no SVML here); float64 uses ``math.tanh`` for both (``sigmoid(a) = tanh(a / 2) / 2 + 1 / 2``).
``fastmath`` is limited to ``contract`` (fused multiply-add; see ``_OPTIONS``), so results stay
within rounding of the reference. ``error_model="numpy"``: the divisions (by ``1 + exp(.) >= 1``)
cannot be by zero, and Python's zero-division check would otherwise block vectorisation.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

__all__ = ["lstm_cell_fwd", "lstm_cell_bwd"]

PARALLEL_MIN_ELEMENTS = 1 << 18
"""Below this many (B H) state elements per step a kernel runs serially. The layer alternates
a BLAS call and a kernel every step, so each parallel step pays a thread wake-up, and on a
loaded machine a wait for a descheduled worker. Measured at 2 threads (2 cores shared with other
jobs): a (2048, 128) step took forward+backward 103 ms parallel vs 110 ms serial over 10 steps;
at (256, 128) the parallel layer ran 13x slower than the serial one (GOMP workers spinning
against the main thread), and with ``OMP_WAIT_POLICY=PASSIVE`` no faster than it."""


def _expf(x):  # pragma: no cover - only its Numba overload below is ever called
    return math.exp(x)


def _sigmoid(x):  # pragma: no cover - only its Numba overload below is ever called
    return 0.5 * math.tanh(0.5 * x) + 0.5


def _tanh(x):  # pragma: no cover - only its Numba overload below is ever called
    return math.tanh(x)


def _is_float32(x) -> bool:
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(_expf, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _expf_overload(x):
    """float32 ``exp(x)`` for ``x`` clamped to [-87, 88] (the normal range), without libm.

    ``exp(x) = 2^k exp(r)`` with ``k = round(x / ln 2)`` and ``|r| <= ln(2) / 2``. Adding
    ``1.5 2^23`` rounds ``x / ln 2`` to an integer whose bits sit in the low mantissa of the
    sum, so ``2^k`` is that sum's bits plus the exponent bias, shifted into the exponent field.
    ``ln 2`` is split in two (Cody-Waite) so ``r`` is exact, and
    ``exp(r) = 1 + r + r^2 q(r)`` with ``q`` of degree 4 fitted (Lawson-weighted least squares
    on Chebyshev nodes) to relative error 3.1e-9. Measured against float64 ``exp`` on 3e6
    points of [-87, 88]: relative error <= 1.2e-7.
    """
    if not _is_float32(x):
        return None

    def impl(x):
        x = min(max(x, np.float32(-87.0)), np.float32(88.0))
        shifted = x * np.float32(1.4426950408889634) + np.float32(12582912.0)
        k = shifted - np.float32(12582912.0)
        r = x - k * np.float32(0.693145751953125)
        r = r - k * np.float32(1.428606765330187e-06)
        q = np.float32(0.001381509704515338)
        q = q * r + np.float32(0.008368716575205326)
        q = q * r + np.float32(0.041668377816677094)
        q = q * r + np.float32(0.1666652113199234)
        q = q * r + np.float32(0.4999999403953552)
        # (Numba widens int32 arithmetic to int64; the cast keeps the low 32 bits.)
        scale = np.int32((np.float32(shifted).view(np.int32) + 127) << 23).view(np.float32)
        return (np.float32(1.0) + r + r * r * q) * scale

    return impl


@overload(_sigmoid, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _sigmoid_overload(x):
    """float32: ``1 / (1 + exp(-x))`` (absolute error <= 9e-8); float64: via ``math.tanh``."""
    if _is_float32(x):
        return lambda x: np.float32(1.0) / (np.float32(1.0) + _expf(-x))
    return lambda x: 0.5 * math.tanh(0.5 * x) + 0.5


@overload(_tanh, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _tanh_overload(x):
    """float32: ``2 / (1 + exp(-2 x)) - 1``; measured against float64 ``tanh`` on 2e6 points of
    [-12, 12], absolute error <= 1.8e-7 (float32 rounding of ``tanh`` alone: 6e-8). float64:
    ``math.tanh``."""
    if _is_float32(x):
        return lambda x: (
            np.float32(2.0) / (np.float32(1.0) + _expf(np.float32(-2.0) * x)) - (np.float32(1.0))
        )
    return lambda x: math.tanh(x)


# fastmath "contract" only: lets LLVM fuse a * b + c into one FMA (one rounding instead of two,
# so never less accurate); no reassociation, no approximate division, no NaN/inf assumptions.
_OPTIONS = dict(cache=True, error_model="numpy", fastmath={"contract"})


@njit(**_OPTIONS)
def _cell_fwd(xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y, lo, hi):
    """Forward step for rows ``lo <= b < hi``."""
    hidden = c_prev.shape[1]
    zero = c_prev.dtype.type(0)
    g0, o0 = 2 * hidden, 3 * hidden
    for b in range(lo, hi):
        if t >= lengths[b]:
            for j in range(hidden):
                c[b, j] = c_prev[b, j]
                h[b, j] = h_prev[b, j]
                tanh_c[b, j] = zero
                y[b, t, j] = zero
            for j in range(4 * hidden):
                hg[b, j] = zero
            continue
        # Short loops that each write one array: few enough possible aliases for LLVM to
        # check at run time, so every loop vectorises.
        # Loops start at 0 (a range(start, stop) loop does not vectorise in Numba 0.6x).
        for j in range(2 * hidden):
            hg[b, j] = _sigmoid(xg[b, j] + hg[b, j] + bias[j])
        for j in range(hidden):
            hg[b, g0 + j] = _tanh(xg[b, g0 + j] + hg[b, g0 + j] + bias[g0 + j])
        for j in range(hidden):
            hg[b, o0 + j] = _sigmoid(xg[b, o0 + j] + hg[b, o0 + j] + bias[o0 + j])
        for j in range(hidden):
            c[b, j] = hg[b, hidden + j] * c_prev[b, j] + hg[b, j] * hg[b, g0 + j]
        for j in range(hidden):
            tanh_c[b, j] = _tanh(c[b, j])
        for j in range(hidden):
            h[b, j] = hg[b, o0 + j] * tanh_c[b, j]
        for j in range(hidden):
            y[b, t, j] = h[b, j]


@njit(**_OPTIONS)
def _cell_bwd(act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates, lo, hi):
    """Backward step for rows ``lo <= b < hi``."""
    hidden = c_prev.shape[1]
    zero = c_prev.dtype.type(0)
    one = c_prev.dtype.type(1)
    for b in range(lo, hi):
        if t >= lengths[b]:
            for j in range(4 * hidden):
                dgates[b, j] = zero
            continue
        # As in the forward: each loop writes one array so that it vectorises. The o block of
        # dgates holds dh until its last use.
        do = dgates[b, 3 * hidden :]
        for j in range(hidden):
            do[j] = dy[b, t, j] + dh_rec[b, j]
        if t == lengths[b] - 1:
            for j in range(hidden):
                do[j] += dh_n[b, j]
        for j in range(hidden):
            o = act[b, 3 * hidden + j]
            dc[b, j] += do[j] * o * (one - tanh_c[b, j] * tanh_c[b, j])
        for j in range(hidden):
            o = act[b, 3 * hidden + j]
            do[j] = do[j] * tanh_c[b, j] * o * (one - o)
        for j in range(hidden):
            i = act[b, j]
            dgates[b, j] = dc[b, j] * act[b, 2 * hidden + j] * i * (one - i)
        for j in range(hidden):
            f = act[b, hidden + j]
            dgates[b, hidden + j] = dc[b, j] * c_prev[b, j] * f * (one - f)
        for j in range(hidden):
            g = act[b, 2 * hidden + j]
            dgates[b, 2 * hidden + j] = dc[b, j] * act[b, j] * (one - g * g)
        for j in range(hidden):
            dc[b, j] *= act[b, hidden + j]


# The parallel drivers split the rows into one block per thread and run the serial kernel on
# each (``prange`` over the blocks, whose rows are independent). A ``prange`` over the rows
# inside the kernel itself measured 3x slower: its loops did not vectorise in the parfor body.


@njit(cache=True, parallel=True)
def _cell_fwd_blocks(xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y, blocks):
    n = c_prev.shape[0]
    for k in prange(blocks):
        lo, hi = k * n // blocks, (k + 1) * n // blocks
        _cell_fwd(xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y, lo, hi)


@njit(cache=True, parallel=True)
def _cell_bwd_blocks(act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates, blocks):
    n = c_prev.shape[0]
    for k in prange(blocks):
        lo, hi = k * n // blocks, (k + 1) * n // blocks
        _cell_bwd(act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates, lo, hi)


def _blocks(state: np.ndarray) -> int:
    """Row blocks for the parallel driver: one per thread, or 0 to run serially."""
    threads = numba.get_num_threads()
    return (
        min(state.shape[0], threads) if threads > 1 and state.size >= PARALLEL_MIN_ELEMENTS else 0
    )


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
    """One LSTM step forward (see :func:`kernels.reference.lstm.lstm_cell_fwd`)."""
    args = (xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y)
    blocks = _blocks(c_prev)
    if blocks:
        _cell_fwd_blocks(*args, blocks)
    else:
        _cell_fwd(*args, 0, c_prev.shape[0])


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
    """One LSTM step backward (see :func:`kernels.reference.lstm.lstm_cell_bwd`)."""
    args = (act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates)
    blocks = _blocks(c_prev)
    if blocks:
        _cell_bwd_blocks(*args, blocks)
    else:
        _cell_bwd(*args, 0, c_prev.shape[0])
