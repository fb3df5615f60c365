"""GPU row sort: the array module's own sort (cupy's radix sort on the device).

Same name and result as :func:`kernels.reference.sorting.sort_rows` (NaN last); under Numba's
CUDA simulator the array module is numpy, so this is ``np.sort``.
"""

from __future__ import annotations

from kernels.gpu._device import array_module
from kernels.reference.sorting import check_keys

__all__ = ["sort_rows"]


def sort_rows(keys):
    """Each row of the (n, I) float32/float64 ``keys`` ascending, as a new array."""
    check_keys(keys)
    return array_module(keys).sort(keys, axis=1)
