"""Gather the public kernels of a package's modules (each module lists them in ``__all__``)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def collect(package_name: str, package_path: list[str]) -> dict[str, Any]:
    """Import every module of a package and return ``{name: object}`` for names in ``__all__``.

    Raises
    ------
    RuntimeError
        If two modules export the same name (one implementation per kernel).
    """
    found: dict[str, Any] = {}
    for info in pkgutil.iter_modules(package_path):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        for name in getattr(module, "__all__", ()):
            if name in found:
                raise RuntimeError(f"kernel {name!r} is defined twice in {package_name}")
            found[name] = getattr(module, name)
    return found
