"""CuPy GPU kernels (the seam: kernels are added here by name, built lazily on first use).

Importing this package imports cupy; :mod:`kernels.dispatch` only does so when it sees a cupy
array. Until a kernel is defined here, GPU arrays raise ``KeyError`` from ``kernels.get``.
"""

import cupy  # fails clearly when the ``gpu`` extra is not installed


def to_device(array):
    """``array`` as a cupy array on the current GPU."""
    return cupy.asarray(array)
