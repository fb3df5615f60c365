"""Numba twin of :mod:`kernels.reference.norms`: sum of squares without a float64 copy.

The reference converts a float32 array to float64 before the dot product; this kernel widens
each element on the fly, in a ``prange`` reduction (elements are independent; the partial sums
are combined by Numba, so the result may differ from the reference in the last bits).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["sum_squares"]


@njit(cache=True, parallel=True)
def _sum_squares(flat):
    total = 0.0
    for i in prange(flat.shape[0]):
        x = np.float64(flat[i])
        total += x * x
    return total


def sum_squares(x: np.ndarray) -> float:
    """``sum(x ** 2)`` accumulated in float64; see :func:`kernels.reference.norms.sum_squares`.

    Parameters
    ----------
    x : ndarray, any shape, float32 or float64

    Returns
    -------
    float
    """
    return float(_sum_squares(np.ascontiguousarray(x).reshape(-1)))
