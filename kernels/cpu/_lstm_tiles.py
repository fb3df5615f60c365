"""float32 LSTM layer forward with the gate GEMM and the cell fused per tile (AVX-512 CPUs).

Same outputs as :func:`kernels.reference.lstm.lstm_seq_fwd` (see there for the buffers). The
weights ``[W_ih, W_hh]^T`` and the bias are packed once per call (:func:`pack_panels`) so that
one 64-column panel holds the four gates (i, f, g, o) of 16 hidden units. Each step then
computes, for every panel and every tile of 6 batch rows, the tile's preactivations
``bias + x_t W_ih^T + h_{t-1} W_hh^T`` in registers (:func:`tile_fma`, reading ``x`` and the
previous state in place: no ``[x_t, h_{t-1}]`` copy, no (B, 4H) gate array), and applies the
cell to the tile while it is in L1. Rows of the batch are independent: with several threads,
each takes a block of rows through all T steps.

The products run in slices of ``K_SLICE`` weight rows, each applied to all tiles of the block
while it is in L1. One cell kernel serves every tile: masked vector loads and stores
(:func:`kernels.cpu._simd.vload_first`) cover a last panel of fewer than 16 units, and rows
past their sequence's end carry their state. (A separate scalar kernel for those tiles cost
0.6 s of cold compilation; the masked stores run at the speed of the plain ones.)

Why not BLAS here (STYLE rule 8 sends GEMMs to BLAS): on the development machine, an AVX-512
Xeon, OpenBLAS (numpy's) ran the per-step products of the benchmark shapes at 110-152
GFLOP/s, this tile at 147-186 (e.g. (1020, 48) @ (48, 128): 118 vs 175; (60, 256) @
(256, 1024): 120 vs 186), and the (B, 4H) gate array that BLAS writes no longer makes a round
trip through L2 before the cell reads it. With it the forward went from 1.3-1.6x torch's time
to 0.86-0.96x at 1 thread (docs/performance.md, LSTM).

The step's outputs are copied to ``y`` in one pass per step, as non-temporal stores when ``y``'s
rows are whole aligned 64-byte lines (the layer allocates it so): ``y`` is written once and
never read here, and a normal store would first read each line from memory.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.cpu._blocks import block_bounds, run_blocks
from kernels.cpu._simd import (
    LANES,
    TILE_COLS,
    TILE_ROWS,
    pack_panels,
    store_fence,
    tile_fma,
    vfma,
    vload,
    vload_first,
    vmul,
    vsigmoid,
    vstore_first,
    vstream,
    vtanh,
    vzero,
)

K_SLICE = 128
"""Weight rows of a panel (64 float32 columns: 32 KiB) that one pass applies to every tile."""

_OPTIONS = dict(cache=True, error_model="numpy", fastmath={"contract"})
# The helpers of _rows: no Python or C wrapper (never called from Python), no cache entry of
# their own (_rows's holds their code).
_HELPER = dict(
    error_model="numpy", fastmath={"contract"}, no_cpython_wrapper=True, no_cfunc_wrapper=True
)


@njit(**_HELPER)
def _cell(tile, rows, b0, j0, t, lengths, a, s, s1, keep, hs, cs, acts, tanh_c):
    """The cell on the first ``rows`` rows of a tile (batch rows ``b0 ..``) for the units
    ``j0 ..`` below H (at most 16), in vector registers: reads ``c_{t-1}`` from and writes
    ``c_t``, ``h_t`` (and the saved buffers) to their arrays directly. Rows past their
    sequence's end carry their state."""
    n, hidden = cs.shape[1], cs.shape[2]
    units = min(LANES, hidden - j0)
    for r in range(rows):
        b = b0 + r
        prev, state = (s * n + b) * hidden + j0, (s1 * n + b) * hidden + j0
        q = (a * n + b) * 4 * hidden + j0  # the step's i gate in acts
        if t >= lengths[b]:  # past the sequence's end: carry the state
            vstore_first(cs, state, vload_first(cs, prev, units), units)
            vstore_first(hs, state, vload_first(hs, prev, units), units)
            i = f = g = o = tc = vzero()
        else:
            q0 = r * TILE_COLS
            i, f = vsigmoid(vload(tile, q0)), vsigmoid(vload(tile, q0 + LANES))
            g, o = vtanh(vload(tile, q0 + 2 * LANES)), vsigmoid(vload(tile, q0 + 3 * LANES))
            c = vfma(f, vload_first(cs, prev, units), vmul(i, g))
            tc = vtanh(c)
            vstore_first(cs, state, c, units)
            vstore_first(hs, state, vmul(o, tc), units)
        if keep:
            vstore_first(tanh_c, (a * n + b) * hidden + j0, tc, units)
            vstore_first(acts, q, i, units)
            vstore_first(acts, q + hidden, f, units)
            vstore_first(acts, q + 2 * hidden, g, units)
            vstore_first(acts, q + 3 * hidden, o, units)


@njit(**_HELPER)
def _accumulate(x, hs, t, s, wp, p, lo, hi, tiles, bias):
    """``tiles[i] = bias + X_i W_x + H_i W_h`` for each tile ``i`` of rows ``lo + 6 i ..``
    (rows past ``hi`` repeat row ``hi - 1``): ``X_i`` holds the rows ``x[b, t]``, ``H_i`` the
    rows ``hs[s, b]``, ``W_x`` and ``W_h`` the rows of panel ``p`` of ``wp`` (its first I, then
    H), ``bias`` row ``p`` of the packed bias. The sum runs in slices of at most ``K_SLICE``
    rows of ``W`` (32 KiB), each applied to every tile while it is in L1."""
    n, steps, inputs = x.shape
    hidden = hs.shape[2]
    w_x = p * wp.shape[1] * TILE_COLS
    for part in range(2):  # x_t W_x, then h_{t-1} W_h (x and hs: one array type)
        a, stride = (x, steps * inputs) if part == 0 else (hs, hidden)
        offset, depth = (t * inputs, inputs) if part == 0 else (s * n * hidden, hidden)
        w_off = w_x if part == 0 else w_x + inputs * TILE_COLS
        for k0 in range(0, depth, K_SLICE):
            k1 = min(depth, k0 + K_SLICE)
            o = offset + k0
            for i in range(tiles.shape[0]):
                b0 = lo + TILE_ROWS * i
                r1, r2 = min(b0 + 1, hi - 1), min(b0 + 2, hi - 1)
                r3, r4, r5 = min(b0 + 3, hi - 1), min(b0 + 4, hi - 1), min(b0 + 5, hi - 1)
                tile = tiles[i]
                if part == 0 and k0 == 0:  # start from the bias
                    init, i_off, i_stride = bias, p * TILE_COLS, 0
                else:
                    init, i_off, i_stride = tile, 0, TILE_COLS
                tile_fma(
                    a, b0 * stride + o, r1 * stride + o, r2 * stride + o, r3 * stride + o,
                    r4 * stride + o, r5 * stride + o, k1 - k0, wp, w_off + k0 * TILE_COLS,
                    init, i_off, i_stride, tile,
                )  # fmt: skip


@njit(nogil=True, **_OPTIONS)
def _rows(x, wp, bp, lengths, hs, cs, acts, tanh_c, xh, y, lo, hi, stream):
    """All steps forward for batch rows ``lo <= b < hi``; ``stream``: write ``y`` with
    non-temporal stores (its rows are whole 64-byte lines)."""
    n, steps, inputs = x.shape
    hidden = hs.shape[2]
    panels = wp.shape[0]
    keep = acts.shape[0] == steps
    tiles = np.empty((-(-(hi - lo) // TILE_ROWS), TILE_ROWS, TILE_COLS), np.float32)
    for t in range(steps):
        a, s, s1 = (t, t, t + 1) if keep else (0, t % 2, 1 - t % 2)
        if keep:  # [x_t, h_{t-1}], which the weight gradient needs
            for b in range(lo, hi):
                for k in range(inputs):
                    xh[a, b, k] = x[b, t, k]
                for k in range(hidden):
                    xh[a, b, inputs + k] = hs[s, b, k]
        for p in range(panels):
            _accumulate(x, hs, t, s, wp, p, lo, hi, tiles, bp)
            for i in range(tiles.shape[0]):
                b0 = lo + TILE_ROWS * i
                rows = min(TILE_ROWS, hi - b0)
                _cell(
                    tiles[i], rows, b0, p * LANES, t, lengths, a, s, s1, keep, hs, cs, acts,
                    tanh_c,
                )  # fmt: skip
        for b in range(lo, hi):  # the step's outputs: a contiguous run of H per row
            if t >= lengths[b]:
                for j in range(hidden):
                    y[b, t, j] = 0
            elif stream:  # whole aligned lines, not read first: y is written once, not reread
                for j in range(0, hidden, LANES):
                    vstream(y, (b * steps + t) * hidden + j, vload(hs, (s1 * n + b) * hidden + j))
            else:
                for j in range(hidden):
                    y[b, t, j] = hs[s1, b, j]
    if stream:
        store_fence()


def seq_fwd(
    x: np.ndarray,
    w_t: np.ndarray,
    bias: np.ndarray,
    lengths: np.ndarray,
    hs: np.ndarray,
    cs: np.ndarray,
    acts: np.ndarray,
    tanh_c: np.ndarray,
    xh: np.ndarray,
    y: np.ndarray,
    blocks: int,
) -> None:
    """One float32 LSTM layer forward on ``blocks`` row blocks (threads).

    Arguments as :func:`kernels.reference.lstm.lstm_seq_fwd` without ``fused`` and ``chunk``
    (all float32, C-contiguous; ``x`` (B, T, I) with B, I >= 1). ``xh`` is written only when all
    steps are kept (``acts.shape[0] == T``); with one kept slot it is not read either.
    """
    # Rows of y that start on 64-byte lines and fill whole lines are streamed to memory.
    stream = y.ctypes.data % 64 == 0 and y.shape[2] % LANES == 0
    wp = pack_panels(w_t, 4)
    bp = np.ascontiguousarray(pack_panels(bias.reshape(1, -1), 4)[:, 0])
    args = (x, wp, bp, lengths, hs, cs, acts, tanh_c, xh, y)
    bounds = block_bounds(x.shape[0], blocks, TILE_ROWS)  # blocks of whole tiles
    run_blocks(_rows, [(*args, lo, hi, stream) for lo, hi in bounds])
