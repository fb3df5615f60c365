"""A stand-in for cupy in the CUDA simulator's process: host memory, device discipline.

Under Numba's CUDA simulator the ``numba.cuda`` kernels run on numpy arrays, so corenn could
not tell "GPU" arrays from CPU ones. This module plays cupy for tests: its arrays are numpy
arrays of a class that says it lives in ``cupy`` (so ``kernels.get`` picks the GPU kernels and
``device_of`` answers ``"gpu"``), and, like cupy's, they refuse to meet a plain numpy array
(``ndim >= 1``) in a ufunc or array function: a host array left in a GPU code path fails here
as it would on a device. ``asarray``/``array``/``ascontiguousarray`` transfer (they accept
host data); ``.get()`` copies back. What it cannot catch: ``numpy.asarray`` of a device array
(cupy raises, numpy here converts), and anything about CUDA itself.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np


class ndarray(np.ndarray):  # noqa: N801 - cupy's name
    """A host array that passes for a cupy array."""

    __module__ = "cupy"  # what kernels.device_of reads

    def get(self) -> np.ndarray:
        return np.array(self.view(np.ndarray))

    def __getitem__(self, key):  # cupy gives 0-d arrays where numpy gives scalars
        return _device(super().__getitem__(key))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out", ())
        _refuse_host(inputs + tuple(out), ufunc.__name__)
        args = [_host(a) for a in inputs]
        if out:
            kwargs["out"] = tuple(_host(a) for a in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out:
            return out[0] if len(out) == 1 else out
        return _device(result)

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_host(_leaves((args, kwargs)), func.__name__)
        return _device(func(*_unwrap(args), **_unwrap(kwargs)))


def _leaves(tree: Any) -> list:
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return _leaves(list(tree.values()))
    return [tree]


def _refuse_host(values, what: str) -> None:
    for value in values:
        if type(value) is np.ndarray and value.ndim:
            raise TypeError(f"{what}: a host numpy array met a device array (fake cupy)")


def _host(value: Any) -> Any:
    return value.view(np.ndarray) if isinstance(value, ndarray) else value


def _unwrap(tree: Any) -> Any:
    if isinstance(tree, list):
        return [_unwrap(item) for item in tree]
    if isinstance(tree, tuple):
        return tuple(_unwrap(item) for item in tree)
    if isinstance(tree, dict):
        return {k: _unwrap(v) for k, v in tree.items()}
    return _host(tree)


def _device(value: Any) -> Any:
    if type(value) is np.ndarray:
        return value.view(ndarray)
    if isinstance(value, np.generic):  # reductions: cupy keeps a 0-d device array
        return np.asarray(value).view(ndarray)
    if isinstance(value, tuple):
        return tuple(_device(v) for v in value)
    if isinstance(value, list):
        return [_device(v) for v in value]
    return value


def _transfer(name: str):
    numpy_fn = getattr(np, name)

    def transfer(obj, *args, **kwargs):
        if isinstance(obj, ndarray):  # on the device already: no copy unless numpy makes one
            return _device(numpy_fn(obj.view(np.ndarray), *args, **kwargs))
        return _device(np.array(numpy_fn(obj, *args, **kwargs)))  # a host -> device copy

    return transfer


def _function(name: str):
    numpy_fn = getattr(np, name)

    def run(*args, **kwargs):
        _refuse_host(_leaves((args, kwargs)), name)
        if name == "argsort":  # cupy sorts stably, and takes no ``kind`` in some versions
            kwargs["kind"] = "stable"
        return _device(numpy_fn(*_unwrap(args), **_unwrap(kwargs)))

    return run


class _Module(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        value = getattr(np, name)
        if name in ("asarray", "array", "ascontiguousarray"):
            return _transfer(name)
        if callable(value) and not isinstance(value, type):
            return _function(name)
        return value


def _sync() -> None:
    return None


def module() -> types.ModuleType:
    """A fresh fake ``cupy`` module (one device, nothing to synchronise)."""
    fake = _Module("cupy")
    fake.ndarray = ndarray
    fake.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
        get_current_stream=lambda: types.SimpleNamespace(synchronize=_sync),
        Device=lambda: types.SimpleNamespace(synchronize=_sync),
    )
    return fake


def install(monkeypatch) -> None:
    """Make ``import cupy`` give the fake for the rest of a test (``monkeypatch`` undoes it)."""
    from kernels.gpu import _device

    monkeypatch.setitem(sys.modules, "cupy", module())
    monkeypatch.setattr(_device, "_cupy", None)
