"""Run a serial kernel on several blocks of rows at once, one block per thread.

The layer kernels (LSTM, embedding gather) take a block of independent batch rows through all
their work; with several Numba threads set, each thread takes one block. The kernels are plain
``@njit(nogil=True)`` functions and the blocks run on a small pool of Python threads (the first
block on the calling thread), rather than in a ``parallel=True`` driver with ``prange`` over the
blocks: a ``prange`` driver is a second compilation of the whole kernel, which on a cold cache
doubled the compile time of the LSTM layer kernels (backward 9.0 s serial, 17.7 s with its
``prange`` driver; the tile forward 3.9 s and 11.3 s) for the same run time. A launch costs
about 20-50 us, once per layer call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Lock
from typing import Any

import numba

_pool: ThreadPoolExecutor | None = None
_lock = Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            workers = max(1, int(numba.config.NUMBA_NUM_THREADS) - 1)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="kernels-block")
        return _pool


def block_bounds(n: int, blocks: int, step: int = 1) -> list[tuple[int, int]]:
    """``blocks`` consecutive ranges ``[lo, hi)`` covering ``0 .. n``, of whole multiples of
    ``step`` rows (the last one may be shorter), as even as that allows."""
    units = -(-n // step)
    return [
        (min(n, k * units // blocks * step), min(n, (k + 1) * units // blocks * step))
        for k in range(blocks)
    ]


def run_blocks(kernel: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> None:
    """``kernel(*args)`` for every ``args`` in ``calls``, at the same time.

    Parameters
    ----------
    kernel : Numba dispatcher compiled with ``nogil=True``
        It must write only what its own ``args`` own (independent blocks of rows).
    calls : sequence of tuple
        The arguments of each call; the first runs on the calling thread, the others on the
        pool (at most ``NUMBA_NUM_THREADS - 1`` threads).
    """
    if len(calls) == 1:
        kernel(*calls[0])
        return
    futures = [_executor().submit(kernel, *args) for args in calls[1:]]
    try:
        kernel(*calls[0])
    finally:
        for f in futures:
            f.result()
