"""Hooks on what the kernels do that a program may want to tell its user about."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["on_compile"]


def on_compile(callback: Callable[[str], None]) -> Callable[[], None]:
    """Call ``callback(kernel_name)`` whenever a CPU kernel is compiled rather than loaded.

    Numba kernels are compiled on their first call with a new signature and then cached on disk,
    so on a fresh install the first run compiles (seconds per kernel) and later runs only load.
    Returns a function that removes the callback.
    """
    from kernels.cpu._events import listen  # only kernels.cpu imports numba

    return listen(callback)
