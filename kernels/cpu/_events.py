"""Compilation events of the Numba kernels (private: reached through :func:`kernels.on_compile`).

Numba announces a ``numba:compile`` event each time a dispatcher compiles a new specialisation;
loading one from the on-disk cache (``cache=True``) announces none, so a listener sees exactly the
compilations a first run pays for.
"""

from __future__ import annotations

from collections.abc import Callable

from numba.core import event

__all__ = ["listen"]


class _Forward(event.Listener):
    """Calls ``callback(name)`` at the start of each compilation (``name``: module.function)."""

    def __init__(self, callback: Callable[[str], None]) -> None:
        self.callback = callback

    def on_start(self, ev: event.Event) -> None:
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        name = "?" if func is None else f"{func.__module__}.{func.__qualname__}"
        self.callback(name)

    def on_end(self, ev: event.Event) -> None:
        pass


def listen(callback: Callable[[str], None]) -> Callable[[], None]:
    """Register ``callback``; return a function that unregisters it."""
    listener = _Forward(callback)
    event.register("numba:compile", listener)
    return lambda: event.unregister("numba:compile", listener)
