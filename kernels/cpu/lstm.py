"""Numba twins of :mod:`kernels.reference.lstm`: one fused pass per LSTM step, and whole layers.

Same names, signatures and semantics as the reference (see its docstring for the equations).
Rows of the batch are independent; each row's inner loops over the hidden units are plain
arithmetic that LLVM vectorises. The step kernels are serial loops over a range of rows; the
layer kernels run all T steps inside Numba (no Python per step), on one block of batch rows per
thread (see :func:`_blocks`; :mod:`kernels.cpu._blocks` runs them), each block calling BLAS for
its own GEMMs.

float32 evaluates ``sigmoid(a) = 1 / (1 + exp(-a))`` and ``tanh(a) = 2 sigmoid(2 a) - 1`` with
an exponential that vectorises (:mod:`kernels.cpu._scalar`); float64 uses ``math.tanh`` for
both (``sigmoid(a) = tanh(a / 2) / 2 + 1 / 2``).
``fastmath`` is limited to ``contract`` (fused multiply-add; see ``_OPTIONS``), so results stay
within rounding of the reference. ``error_model="numpy"``: the divisions (by ``1 + exp(.) >= 1``)
cannot be by zero, and Python's zero-division check would otherwise block vectorisation.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

import kernels.reference.lstm as reference
from kernels.cpu import _lstm_tiles
from kernels.cpu._blocks import block_bounds, run_blocks
from kernels.cpu._scalar import _sigmoid, _tanh
from kernels.cpu._simd import TILE_ROWS, has_avx512
from kernels.threads import get_blas_threads

__all__ = ["lstm_cell_fwd", "lstm_cell_bwd", "lstm_seq_fwd", "lstm_seq_bwd"]

MIN_BLOCK_ROWS = 32
"""Fewest batch rows a thread of the layer drivers takes: below that, a block's GEMMs are too
small for BLAS to run near its peak. Measured on the 2-core machine at 2 threads (backward,
T = 30, load average 2 from other jobs): two blocks of 16 to 32 rows ran 5-27% slower than one
block (B = 32, 48, 64 at H = 64; B = 32 at H = 128). A batch under 64 rows (the demo's sequence
model trains on 32) thus never compiles the layer kernels below (2.8 s on a cold cache)."""

TILED_FORWARD = has_avx512()
"""Whether the float32 forward runs the fused tile kernel (:mod:`kernels.cpu._lstm_tiles`):
on AVX-512 CPUs, where its 16-lane vectors are single registers. Elsewhere, and in float64,
the forward is BLAS plus the compiled cell."""


# fastmath "contract" only: lets LLVM fuse a * b + c into one FMA (one rounding instead of two,
# so never less accurate); no reassociation, no approximate division, no NaN/inf assumptions.
_OPTIONS = dict(cache=True, error_model="numpy", fastmath={"contract"})


@njit(**_OPTIONS)
def lstm_cell_fwd(xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y):
    """One LSTM step forward (see :func:`kernels.reference.lstm.lstm_cell_fwd`)."""
    hidden = c_prev.shape[1]
    zero = c_prev.dtype.type(0)
    g0, o0 = 2 * hidden, 3 * hidden
    for b in range(c_prev.shape[0]):
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
def lstm_cell_bwd(act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates):
    """One LSTM step backward (see :func:`kernels.reference.lstm.lstm_cell_bwd`)."""
    hidden = c_prev.shape[1]
    zero = c_prev.dtype.type(0)
    one = c_prev.dtype.type(1)
    for b in range(c_prev.shape[0]):
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


# The layer kernels run all T steps of one layer on a block of batch rows: the step's GEMM (BLAS,
# called from Numba) and the serial cell kernel. With several threads one block runs per thread
# (``run_blocks``; the rows of the blocks are independent), each calling a single-threaded BLAS:
# threads meet once per layer call, not once per step. (A per-step parallel cell with BLAS in
# between measured 13x slower at 2 threads on a loaded machine.)


@njit(cache=True, nogil=True)
def _seq_fwd_rows(x, w_t, bias, lengths, fused, chunk, hs, cs, acts, tanh_c, xh, y, lo, hi):
    """Forward of one layer for batch rows ``lo <= b < hi``."""
    n, steps, inputs = x.shape
    hidden = hs.shape[2]
    keep = acts.shape[0] == steps
    w_ih_t, w_hh_t = w_t[:inputs], w_t[inputs:]
    m = hi - lo
    xg = np.zeros((1 if fused else chunk, m, 4 * hidden), x.dtype)
    xs = np.empty((0 if fused else chunk, m, inputs), x.dtype)  # a chunk of x, time-major
    for t in range(steps):
        a, s, s1 = (t, t, t + 1) if keep else (0, t % 2, 1 - t % 2)
        if keep or fused:
            for b in range(m):  # element loops: a slice assignment compiles a shape check
                for k in range(inputs):
                    xh[a, lo + b, k] = x[lo + b, t, k]
                for k in range(hidden):
                    xh[a, lo + b, inputs + k] = hs[s, lo + b, k]
        p = 0
        if fused:
            np.dot(xh[a, lo:hi], w_t, acts[a, lo:hi])
        else:
            p = t % chunk
            if p == 0:  # input projection of the next chunk of steps: one GEMM
                mm = min(chunk, steps - t)
                for q in range(mm):
                    for b in range(m):
                        for k in range(inputs):
                            xs[q, b, k] = x[lo + b, t + q, k]
                np.dot(
                    xs[:mm].reshape(mm * m, inputs), w_ih_t, xg[:mm].reshape(mm * m, 4 * hidden)
                )
            np.dot(hs[s, lo:hi], w_hh_t, acts[a, lo:hi])
        lstm_cell_fwd(
            xg[p], acts[a, lo:hi], bias, cs[s, lo:hi], hs[s, lo:hi], lengths[lo:hi], t,
            cs[s1, lo:hi], hs[s1, lo:hi], tanh_c[a, lo:hi], y[lo:hi],
        )  # fmt: skip


@njit(cache=True, nogil=True)
def _seq_bwd_rows(
    w, w_ih, w_hh, acts, tanh_c, cs, xh, lengths, gy, gh_n, dc, dh, fused, chunk, need_dx,
    need_dw, dx, dw, db, lo, hi,
):  # fmt: skip
    """Backward of one layer for batch rows ``lo <= b < hi``; ``dw``, ``db`` accumulate (+=).
    ``w`` is ``[W_ih, W_hh]`` (4H, I + H), ``w_ih`` and ``w_hh`` its two parts, all contiguous
    (BLAS is faster on them than on views of ``w_t``)."""
    steps, n, four_h = acts.shape
    hidden = four_h // 4
    inputs = xh.shape[2] - hidden
    m = hi - lo
    dgates = np.empty((chunk, m, four_h), acts.dtype)
    dxh = np.empty((m if fused else 0, inputs + hidden), acts.dtype)
    dxc = np.empty((0 if fused or not need_dx else chunk * m, inputs), acts.dtype)
    xc = np.empty((chunk if need_dw else 0, m, inputs + hidden), acts.dtype)
    dw_c = np.empty((four_h if need_dw else 0, inputs + hidden), acts.dtype)
    for start in range((steps - 1) // chunk * chunk, -1, -chunk):
        mm = min(chunk, steps - start)
        for t in range(start + mm - 1, start - 1, -1):
            dg = dgates[t - start]
            lstm_cell_bwd(
                acts[t, lo:hi], tanh_c[t, lo:hi], cs[t, lo:hi], gy[lo:hi], dh[lo:hi],
                gh_n[lo:hi], dc[lo:hi], lengths[lo:hi], t, dg,
            )  # fmt: skip
            if fused:
                np.dot(dg, w, dxh)
                for b in range(m):  # element loops, as in the forward
                    for k in range(inputs):
                        dx[lo + b, t, k] = dxh[b, k]
                    for k in range(hidden):
                        dh[lo + b, k] = dxh[b, inputs + k]
            else:
                np.dot(dg, w_hh, dh[lo:hi])
        flat = dgates[:mm].reshape(mm * m, four_h)
        if need_dx and not fused:
            np.dot(flat, w_ih, dxc[: mm * m])
            for q in range(mm):
                for b in range(m):
                    for k in range(inputs):
                        dx[lo + b, start + q, k] = dxc[q * m + b, k]
        if need_dw:  # [dW_ih, dW_hh] += dG^T [X, H_prev]: one GEMM per chunk
            for q in range(mm):
                for b in range(m):
                    for k in range(inputs + hidden):
                        xc[q, b, k] = xh[start + q, lo + b, k]
            np.dot(flat.T, xc[:mm].reshape(mm * m, inputs + hidden), dw_c)
            for j in range(four_h):
                for k in range(inputs + hidden):
                    dw[j, k] += dw_c[j, k]
            for r in range(mm * m):
                for j in range(four_h):
                    db[j] += flat[r, j]


def _blocks(n: int) -> int:
    """Row blocks of the layer drivers: one per Numba thread, each at least
    :data:`MIN_BLOCK_ROWS` rows; 1 while BLAS itself runs on several threads (its workers and
    ours would compete for the same cores)."""
    if get_blas_threads() > 1:
        return 1
    return max(1, min(numba.get_num_threads(), n // MIN_BLOCK_ROWS))


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
) -> None:
    """One LSTM layer forward (see :func:`kernels.reference.lstm.lstm_seq_fwd`).

    float32 on an AVX-512 CPU (:data:`TILED_FORWARD`): the fused tile kernel
    (:mod:`kernels.cpu._lstm_tiles`), one block of whole tiles per Numba thread (at least two
    tiles each); ``fused`` and ``chunk`` do not apply, and ``xh`` is written only when all
    steps are kept. Otherwise, on several row blocks, all steps run inside Numba, one block per
    thread. On one block, the reference's step loop runs with the compiled cell: its GEMMs then
    go to numpy's OpenBLAS, which on (64, 256) @ (256, 1024) measured 140 GFLOP/s against 121
    for SciPy's (the one Numba's ``np.dot`` calls), and equal on the other benchmark shapes.
    """
    if x.shape[0] == 0:
        return
    if TILED_FORWARD and x.dtype == np.float32:
        tiles = -(-x.shape[0] // TILE_ROWS)
        blocks = max(1, min(numba.get_num_threads(), tiles // 2))
        _lstm_tiles.seq_fwd(x, w_t, bias, lengths, hs, cs, acts, tanh_c, xh, y, blocks)
        return
    args = (x, w_t, bias, lengths, bool(fused), int(chunk), hs, cs, acts, tanh_c, xh, y)
    blocks = _blocks(x.shape[0])
    if blocks == 1:
        reference.lstm_seq_fwd(*args, cell=lstm_cell_fwd)
    else:
        run_blocks(_seq_fwd_rows, [(*args, lo, hi) for lo, hi in block_bounds(len(x), blocks)])


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
) -> None:
    """One LSTM layer backward (see :func:`kernels.reference.lstm.lstm_seq_bwd`); one block of
    rows as in :func:`lstm_seq_fwd`, several in parallel, each accumulating its own weight
    gradient (summed at the end). (One block through the compiled layer kernel measured 5-16%
    slower than the reference's step loop at 1 thread on the benchmark's larger shapes.)"""
    steps, n, four_h = acts.shape
    if n == 0:
        return
    blocks = _blocks(n)
    if blocks == 1:
        reference.lstm_seq_bwd(
            w_t, acts, tanh_c, cs, xh, lengths, gy, gh_n, dc, dh, bool(fused), int(chunk),
            dx, dw, db, cell=lstm_cell_bwd,
        )  # fmt: skip
        return
    dtype, width = acts.dtype, xh.shape[2]
    need_dx, need_dw = dx is not None, dw is not None
    rows = four_h if need_dw else 0
    dw_parts, db_parts = np.zeros((blocks, rows, width), dtype), np.zeros((blocks, rows), dtype)
    dx = dx if need_dx else np.empty((n, steps, 0), dtype)
    # Contiguous weights, as in the reference: BLAS is faster on them than on views of w_t.
    w = np.ascontiguousarray(w_t.T)  # (4H, I + H) = [W_ih, W_hh]
    inputs = width - four_h // 4
    weights = (w, np.ascontiguousarray(w[:, :inputs]), np.ascontiguousarray(w[:, inputs:]))
    args = (acts, tanh_c, cs, xh, lengths, gy, gh_n, dc, dh, bool(fused), int(chunk))
    run_blocks(
        _seq_bwd_rows,
        [
            (*weights, *args, need_dx, need_dw, dx, dw_parts[k], db_parts[k], lo, hi)
            for k, (lo, hi) in enumerate(block_bounds(n, blocks))
        ],
    )
    if need_dw:
        dw += dw_parts.sum(axis=0)
        db += db_parts.sum(axis=0)
