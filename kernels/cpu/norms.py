"""Numba twin of :mod:`kernels.reference.norms`: sum of squares without a float64 copy.

The reference converts a float32 array to float64 before the dot product; this kernel widens
each element on the fly in one serial pass. A large array is cut into one block per Numba thread
(:func:`kernels.cpu._blocks.run_blocks`), whose partial sums are added at the end, so the result
may differ from the reference in the last bits. (The ``parallel=True`` reduction this replaces
compiled in 0.3-0.6 s on a cold cache, and its OpenMP region, entered once per parameter by
gradient clipping, took milliseconds per call on the loaded 2-core machine.)
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from kernels.cpu._blocks import block_bounds, run_blocks

__all__ = ["sum_squares"]

MIN_BLOCK_ELEMENTS = 1 << 18
"""Fewest elements a thread takes (a block launch costs 20-50 us, the sum about 1 ns per
element)."""


@njit(cache=True, nogil=True)
def _sum_squares(flat, out, k):
    """``out[k] = sum(flat ** 2)``, accumulated in float64."""
    total = 0.0
    for i in range(flat.shape[0]):
        x = np.float64(flat[i])
        total += x * x
    out[k] = total


def sum_squares(x: np.ndarray) -> float:
    """``sum(x ** 2)`` accumulated in float64; see :func:`kernels.reference.norms.sum_squares`.

    Parameters
    ----------
    x : ndarray, any shape, float32 or float64

    Returns
    -------
    float
    """
    flat = np.ascontiguousarray(x).reshape(-1)
    n = flat.shape[0]
    blocks = max(1, min(numba.get_num_threads(), n // MIN_BLOCK_ELEMENTS))
    sums = np.empty(blocks)
    bounds = block_bounds(n, blocks)
    run_blocks(_sum_squares, [(flat[lo:hi], sums, k) for k, (lo, hi) in enumerate(bounds)])
    return float(sums.sum())
