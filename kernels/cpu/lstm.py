"""Numba twins of :mod:`kernels.reference.lstm`: one fused pass per LSTM step.

Same names, signatures and semantics as the reference (see its docstring for the equations).
Rows of the batch are independent, so ``prange`` runs over them; each row's inner loop over the
hidden units is plain arithmetic that LLVM vectorises.

float32 uses :func:`_tanh`, a rational approximation that vectorises (libm ``tanhf``/``expf``
calls do not, and Numba has no SVML here); float64 uses ``math.tanh``. The sigmoid is
``0.5 tanh(x / 2) + 0.5`` in both. No ``fastmath``: the kernels must match the reference.
``error_model="numpy"``: the one division (in ``_tanh``, by ``2 + m >= 1``) cannot be by zero,
and Python's zero-division check would otherwise block vectorisation.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

__all__ = ["lstm_cell_fwd", "lstm_cell_bwd"]


def _tanh(x):  # pragma: no cover - only its Numba overload below is ever called
    return math.tanh(x)


@overload(_tanh, jit_options={"error_model": "numpy"})
def _tanh_overload(x):
    """float64: ``math.tanh``. float32: an exp-based formula that LLVM vectorises.

    With ``a = min(|x|, 9)`` (``tanh(9)`` rounds to 1 in float32) and ``m = expm1(-2 a)``,
    ``tanh(x) = sign(x) (-m) / (2 + m)``. ``expm1`` is reduced to ``2^-k (expm1(r) + 1) - 1``
    with ``k = round(2 a / ln 2)`` and ``|r| <= ln(2) / 2``; ``ln 2`` is split in two
    (Cody-Waite) so ``r`` is exact, ``expm1(r)`` is its degree-8 Taylor polynomial (truncation
    below 1e-8) and ``2^-k`` is built from its exponent bits. Measured against float64 tanh on
    4e6 points of [-12, 12]: absolute error <= 1.5e-7, relative <= 2e-7 (float32 tanh: 6e-8).
    """
    if isinstance(x, types.Float) and x.bitwidth == 32:

        def impl(x):
            a = abs(x)
            a = a if a < np.float32(9.0) else np.float32(9.0)
            k = np.int32(a * np.float32(2.8853900817779268) + np.float32(0.5))
            kf = np.float32(k)
            r = kf * np.float32(0.693145751953125) - np.float32(2.0) * a
            r = r + kf * np.float32(1.428606765330187e-06)
            p = np.float32(1.0 / 40320.0)
            p = p * r + np.float32(1.0 / 5040.0)
            p = p * r + np.float32(1.0 / 720.0)
            p = p * r + np.float32(1.0 / 120.0)
            p = p * r + np.float32(1.0 / 24.0)
            p = p * r + np.float32(1.0 / 6.0)
            p = p * r + np.float32(0.5)
            p = p * r + np.float32(1.0)
            p = p * r
            scale = np.int32((np.int32(127) - k) * np.int32(8388608)).view(np.float32)
            m = scale * p + (scale - np.float32(1.0))
            t = -m / (np.float32(2.0) + m)
            return t if x >= np.float32(0.0) else -t

        return impl
    return lambda x: math.tanh(x)


@njit(cache=True, parallel=True, error_model="numpy")
def lstm_cell_fwd(xg, hg, bias, c_prev, h_prev, lengths, t, c, h, tanh_c, y):
    """One LSTM step forward (see :func:`kernels.reference.lstm.lstm_cell_fwd`)."""
    n, hidden = c_prev.shape
    zero = c_prev.dtype.type(0)
    half = c_prev.dtype.type(0.5)
    for b in prange(n):
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
            hg[b, j] = half * _tanh(half * (xg[b, j] + hg[b, j] + bias[j])) + half
        g0, o0 = 2 * hidden, 3 * hidden
        for j in range(hidden):
            hg[b, g0 + j] = _tanh(xg[b, g0 + j] + hg[b, g0 + j] + bias[g0 + j])
        for j in range(hidden):
            a = xg[b, o0 + j] + hg[b, o0 + j] + bias[o0 + j]
            hg[b, o0 + j] = half * _tanh(half * a) + half
        for j in range(hidden):
            c[b, j] = hg[b, hidden + j] * c_prev[b, j] + hg[b, j] * hg[b, 2 * hidden + j]
        for j in range(hidden):
            tanh_c[b, j] = _tanh(c[b, j])
        for j in range(hidden):
            h[b, j] = hg[b, 3 * hidden + j] * tanh_c[b, j]
        for j in range(hidden):
            y[b, t, j] = h[b, j]


@njit(cache=True, parallel=True, error_model="numpy")
def lstm_cell_bwd(act, tanh_c, c_prev, dy, dh_rec, dh_n, dc, lengths, t, dgates):
    """One LSTM step backward (see :func:`kernels.reference.lstm.lstm_cell_bwd`)."""
    n, hidden = c_prev.shape
    zero = c_prev.dtype.type(0)
    one = c_prev.dtype.type(1)
    for b in prange(n):
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
