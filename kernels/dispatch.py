"""Pick a kernel implementation from the type of the arrays it is called on.

``numpy`` arrays go to :mod:`kernels.cpu` (Numba), ``cupy`` arrays (or ``device="gpu"``) to
:mod:`kernels.gpu` (imported lazily, so neither cupy nor numba's CUDA target is loaded until a
GPU array shows up). When the CPU backend has no kernel of that name, the plain-numpy twin in
:mod:`kernels.reference` is the fallback; the GPU has no fallback (a host twin would copy the
arrays back and forth silently).
``set_backend_override("reference")`` forces the reference twins (used by tests and debugging).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

_override: str | None = None


class GPUUnavailableError(RuntimeError):
    """A GPU was asked for, but cupy or a CUDA device is missing (the message says which)."""


def device_of(array: Any) -> str:
    """``"gpu"`` for a cupy array, else ``"cpu"``."""
    return "gpu" if type(array).__module__.startswith("cupy") else "cpu"


def array_module(*arrays: Any) -> ModuleType:
    """Return ``cupy`` if any argument is a cupy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            return importlib.import_module("cupy")
    return np


def device_module(device: str) -> ModuleType:
    """The array module of ``device``: numpy for ``"cpu"``; for ``"gpu"`` cupy, or numpy when
    Numba's CUDA simulator runs the GPU kernels on host arrays (``NUMBA_ENABLE_CUDASIM=1``).

    Raises
    ------
    ValueError
        On a device name other than ``"cpu"`` and ``"gpu"``.
    GPUUnavailableError
        For ``"gpu"`` without cupy or a CUDA device (outside the simulator).
    """
    if device == "cpu":
        return np
    if device != "gpu":
        raise ValueError(f"unknown device {device!r}; expected 'cpu' or 'gpu'")
    return importlib.import_module("kernels.gpu").device_module()


def to_host(array: Any) -> np.ndarray:
    """``array`` as a numpy array (copied from the GPU when it is a cupy array)."""
    return array.get() if device_of(array) == "gpu" else np.asarray(array)


def set_backend_override(name: str | None) -> None:
    """Force ``"reference"`` (or ``"cpu"``) kernels for numpy arrays; ``None`` restores default."""
    global _override
    if name not in (None, "reference", "cpu"):
        raise ValueError(f"unknown kernel backend {name!r}; expected 'reference', 'cpu' or None")
    _override = name


def get(name: str, *arrays: Any, device: str | None = None) -> Callable[..., Any]:
    """Return the implementation of kernel ``name`` for the device of ``arrays``.

    ``device="gpu"`` asks for the GPU kernel whatever the arrays (an engine that moves its
    own tables, such as pgm's batch queries, looks its kernels up before it has any).

    Raises
    ------
    KeyError
        If no backend, reference included, defines ``name``.
    """
    if device == "gpu" or array_module(*arrays) is not np:
        mod = importlib.import_module("kernels.gpu")
        fn = getattr(mod, name, None)
        if fn is None:
            raise KeyError(f"no GPU kernel named {name!r}")
        return fn
    if _override != "reference":
        fn = getattr(importlib.import_module("kernels.cpu"), name, None)
        if fn is not None:
            return fn
    fn = getattr(importlib.import_module("kernels.reference"), name, None)
    if fn is None:
        raise KeyError(f"no kernel named {name!r}")
    return fn
