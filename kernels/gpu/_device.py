"""The GPU device: CuPy imported lazily, host/device transfers, and the error when there is none.

Nothing here imports cupy at module load: :func:`cupy_module` does on first use and raises
:class:`GPUUnavailableError` naming what is missing (the package, or a usable CUDA device).

Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set before numba is imported) runs the
``numba.cuda`` kernels of this package on the CPU with numpy arrays; :func:`device_module`
then answers numpy, so that an engine asked for ``device="gpu"`` (e.g. pgm's batch queries)
runs those kernels' logic without a GPU. It checks logic only, never speed.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np

from kernels.dispatch import GPUUnavailableError, device_of, to_host

__all__ = [
    "GPUUnavailableError",
    "array_module",
    "available",
    "cupy_module",
    "device_module",
    "is_device_array",
    "simulated",
    "synchronize",
    "to_device",
    "to_host",
]

_cupy: ModuleType | None = None


def simulated() -> bool:
    """Whether Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cupy_module() -> ModuleType:
    """The ``cupy`` module, once a CUDA device has answered.

    Raises
    ------
    GPUUnavailableError
        If cupy is not installed (``pip install "bundlerec[gpu]"``) or finds no CUDA device.
    """
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as err:
        raise GPUUnavailableError(
            'a GPU was asked for, but cupy is not installed: pip install "bundlerec[gpu]" '
            f"(cupy-cuda12x) on a machine with an NVIDIA GPU ({err})"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError without a driver or device
        raise GPUUnavailableError(f"a GPU was asked for, but CUDA reports none ({err})") from None
    if count < 1:
        raise GPUUnavailableError("a GPU was asked for, but CUDA reports 0 devices")
    _cupy = cupy
    return cupy


def available() -> bool:
    """Whether a GPU can be used (cupy installed and a CUDA device present)."""
    try:
        cupy_module()
    except GPUUnavailableError:
        return False
    return True


def device_module() -> ModuleType:
    """The array module of device arrays: cupy on a GPU, numpy under the CUDA simulator.

    Raises
    ------
    GPUUnavailableError
        Without a GPU, unless the simulator is on.
    """
    if simulated() and not available():
        return np
    return cupy_module()


def is_device_array(array: Any) -> bool:
    """Whether ``array`` is a cupy array."""
    return device_of(array) == "gpu"


def array_module(*arrays: Any) -> ModuleType:
    """cupy when an argument is a cupy array, else numpy (the kernels' host-side helpers)."""
    return cupy_module() if any(is_device_array(a) for a in arrays) else np


def to_device(array: Any) -> Any:
    """``array`` as a cupy array on the current GPU (cupy arrays pass through).

    Raises
    ------
    GPUUnavailableError
        Without a GPU (the simulator does not count: host arrays would stay on the CPU path).
    """
    return cupy_module().asarray(array)


def synchronize() -> None:
    """Wait for the GPU's queued work (a no-op without one); benchmarks time after this."""
    if _cupy is not None:
        _cupy.cuda.get_current_stream().synchronize()
        _cupy.cuda.Device().synchronize()
