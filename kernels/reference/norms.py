"""Reference gradient norms: the sum of squares behind a 2-norm (gradient clipping).

Letters: P number of elements.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sum_squares"]


def sum_squares(x: np.ndarray) -> float:
    """``sum(x ** 2)`` accumulated in float64.

    Parameters
    ----------
    x : ndarray, any shape, float32 or float64

    Returns
    -------
    float
        The sum of the squared elements (0.0 for an empty array); float64 accumulation, so a
        float32 gradient does not lose digits to the sum.
    """
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    return float(np.dot(flat, flat))
