"""One setting for every thread pool we use: Numba's and the BLAS behind numpy.

On a small machine, BLAS worker threads keep spinning for a while after each call and starve the
Numba ``prange`` threads that run next (and the other way round), so a parallel kernel can run
10-30x slower. Measured on the 2-core development machine (``bundlerec demo``, 2026-11-29): 135 s
with 2 Numba + 2 BLAS threads, 8.4 s with 2 Numba + 1 BLAS thread, 9.1 s with 1 + 1. Our GEMMs
(one LSTM step, one embedding batch) are too small for threaded BLAS to pay, so the BLAS pool
defaults to one thread and the Numba pool to the machine's cores (``NUMBA_NUM_THREADS`` /
``OMP_NUM_THREADS`` when set). Importing :mod:`kernels` applies the defaults once;
:func:`set_num_threads` changes both pools together. numpy and scipy each ship an OpenBLAS;
Numba's ``np.dot`` (inside the LSTM layer kernels) calls scipy's, so both are loaded before the
limit is set (threadpoolctl only limits libraries already loaded).
"""

from __future__ import annotations

import os

_limiter = None
_current: tuple[int, int] | None = None

_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def _env_int(names: tuple[str, ...]) -> int | None:
    for var in names:
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def set_num_threads(n: int | None = None, blas: int | None = None) -> int:
    """Set the Numba pool to ``n`` threads and the BLAS pool to ``blas`` threads.

    Parameters
    ----------
    n : int, optional
        Numba threads; default ``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS``, else all cores
        (capped by Numba's own maximum).
    blas : int, optional
        BLAS threads; default ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` /
        ``OMP_NUM_THREADS``, else 1 (see the module docstring for why).

    Returns
    -------
    int
        The Numba thread count in effect.
    """
    global _limiter, _current
    import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS that Numba's np.dot calls)
    from threadpoolctl import threadpool_limits

    from kernels.cpu import _threads

    if n is None:
        n = _env_int(("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")) or os.cpu_count() or 1
    blas = (_env_int(_BLAS_ENV) or 1) if blas is None else blas
    for name, value in (("number of threads", n), ("number of BLAS threads", blas)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    n = min(int(n), _threads.max_threads())
    _threads.set_threads(n)
    if _limiter is not None:
        _limiter.restore_original_limits()
    _limiter = threadpool_limits(limits=int(blas), user_api="blas")
    _current = (n, int(blas))
    return n


def get_num_threads() -> int:
    """Numba thread count in effect (after :func:`set_num_threads` or the import default)."""
    if _current is None:
        set_num_threads()
    return _current[0]


def get_blas_threads() -> int:
    """BLAS thread count in effect."""
    if _current is None:
        set_num_threads()
    return _current[1]
