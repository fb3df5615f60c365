"""Numba's thread pool (the only place outside the kernels that touches numba)."""

import numba


def max_threads() -> int:
    """The most threads Numba may use (``NUMBA_NUM_THREADS`` at import)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def set_threads(n: int) -> None:
    """Run Numba's parallel kernels on ``n`` threads."""
    numba.set_num_threads(n)
