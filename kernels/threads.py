"""One setting for every thread pool we use: Numba's and the BLAS behind numpy.

On a 2-core machine, BLAS threads plus Numba ``prange`` threads oversubscribe the cores and a
parallel kernel can run 10-30x slower, so both pools are set together. The default honours
``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS`` when set.
"""

from __future__ import annotations

import os

_limiter = None
_current: int | None = None


def _default() -> int:
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var)
        if value and value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def set_num_threads(n: int | None = None) -> int:
    """Set Numba and BLAS thread counts to ``n`` (default: environment, else all cores).

    Returns the count in effect.
    """
    global _limiter, _current
    import numba
    from threadpoolctl import threadpool_limits

    n = _default() if n is None else int(n)
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    if _limiter is not None:
        _limiter.restore_original_limits()
    _limiter = threadpool_limits(limits=n, user_api="blas")
    _current = n
    return n


def get_num_threads() -> int:
    """Thread count last set by :func:`set_num_threads` (the default if never set)."""
    return _current if _current is not None else _default()
