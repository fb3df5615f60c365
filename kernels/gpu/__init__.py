"""CuPy GPU kernels (the seam: kernels are added here by name, built lazily on first use).

Importing this package imports cupy; :mod:`kernels.dispatch` only does so when it sees a cupy
array. Until a kernel is defined here, GPU arrays raise ``KeyError`` from ``kernels.get``.
"""

import cupy  # noqa: F401  (fails clearly when the ``gpu`` extra is not installed)
