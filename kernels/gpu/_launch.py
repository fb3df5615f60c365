"""Launch shapes of the ``numba.cuda`` kernels (``numba.cuda`` is imported by this package only).

Every kernel of this package runs one thread per output element (or per row, where a row is
reduced) in a one-dimensional grid.
"""

from __future__ import annotations

from numba import cuda

__all__ = ["THREADS", "cuda", "grid"]

THREADS = 128
"""Most threads per block: a multiple of the warp (32)."""


def grid(n: int) -> tuple[int, int]:
    """``(blocks, threads per block)`` covering ``n`` threads: blocks of :data:`THREADS`, or
    one block of the fewest whole warps for small ``n`` (the simulator runs a Python thread per
    CUDA thread, so small test shapes stay cheap)."""
    threads = min(THREADS, 32 * max(1, -(-n // 32)))
    return max(1, -(-n // threads)), threads
