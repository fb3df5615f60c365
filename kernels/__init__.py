"""Pure compute on raw arrays; imports nothing of ours.

Every hot loop has a plain-numpy reference in :mod:`kernels.reference` that defines what it
computes; :mod:`kernels.cpu` holds Numba twins and :mod:`kernels.gpu` ``numba.cuda`` twins for cupy
arrays. Callers ask
:func:`get` for an implementation by name; the choice follows the type of the arrays.
"""

from kernels.dispatch import (
    GPUUnavailableError,
    array_module,
    device_module,
    device_of,
    get,
    set_backend_override,
    to_host,
)
from kernels.notices import on_compile
from kernels.threads import get_blas_threads, get_num_threads, set_num_threads

__all__ = [
    "GPUUnavailableError",
    "array_module",
    "device_module",
    "device_of",
    "get",
    "set_backend_override",
    "to_host",
    "on_compile",
    "get_num_threads",
    "get_blas_threads",
    "set_num_threads",
]

set_num_threads()  # the documented defaults (kernels/threads.py): all cores for Numba, 1 for BLAS
