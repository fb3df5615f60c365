"""GPU sum of squares (gradient clipping): float64 partial sums per thread, then one sum.

Same name and result as :func:`kernels.reference.norms.sum_squares`, up to the order of the
float64 additions (a grid-stride loop per thread, then the sum of the partials).
"""

from __future__ import annotations

import numpy as np

from kernels.gpu._device import array_module
from kernels.gpu._launch import cuda, grid

__all__ = ["sum_squares"]

_MAX_THREADS = 1 << 16  # partial sums: enough threads to fill a GPU, few to add up


@cuda.jit
def _partial_squares(flat, partial):
    k = cuda.grid(1)
    if k >= partial.shape[0]:
        return
    acc = 0.0
    for q in range(k, flat.shape[0], partial.shape[0]):
        value = float(flat[q])
        acc += value * value
    partial[k] = acc


def sum_squares(x) -> float:
    """``sum(x ** 2)`` accumulated in float64 (0.0 for an empty array)."""
    xp = array_module(x)
    flat = xp.ascontiguousarray(x).reshape(-1)
    if flat.size == 0:
        return 0.0
    blocks, threads = grid(min(flat.size, _MAX_THREADS))
    partial = xp.empty(min(flat.size, _MAX_THREADS), dtype=np.float64)
    _partial_squares[blocks, threads](flat, partial)
    return float(partial.sum())
