"""GPU kernels: ``numba.cuda`` kernels around the array module's GEMMs, one module per family.

Names and signatures match :mod:`kernels.reference`; each module lists its kernels in
``__all__`` and they are re-exported here. :mod:`kernels.dispatch` imports this package only
when a cupy array (or ``device="gpu"``) shows up, so neither numba's CUDA target nor cupy is
loaded on the CPU path; cupy itself is imported on first use (:mod:`kernels.gpu._device`).

The kernels take cupy arrays (through the CUDA array interface) and, under Numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``), numpy arrays: that is how CI checks their logic
against the reference twins without a GPU.
"""

from kernels._collect import collect as _collect
from kernels.gpu._device import (
    GPUUnavailableError,
    available,
    cupy_module,
    device_module,
    synchronize,
    to_device,
    to_host,
)

globals().update(_collect(__name__, __path__))

__all__ = [
    "GPUUnavailableError",
    "available",
    "cupy_module",
    "device_module",
    "synchronize",
    "to_device",
    "to_host",
]
