"""GPU row sort: the array module's own sort (cupy's radix sort on the device).

Same name and result as :func:`kernels.reference.sorting.sort_rows` (NaN last); under Numba's
CUDA simulator the array module is numpy, so this is ``np.sort``.
"""

from __future__ import annotations

import numpy as np

from kernels.gpu._device import array_module

__all__ = ["sort_rows"]


def sort_rows(keys):
    """Each row of the (n, I) float32/float64 ``keys`` ascending, as a new array."""
    if keys.ndim != 2 or keys.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"sort_rows takes a 2-D float32/float64 array, got {keys.dtype} {keys.shape}"
        )
    return array_module(keys).sort(keys, axis=1)
