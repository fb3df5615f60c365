"""Shared benchmark fixtures: one thread count for every pool, and the optional PyTorch peer.

The thread count comes from ``BENCH_THREADS`` (else ``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS``,
else all cores) and is applied through ``corenn.set_num_threads`` (Numba and BLAS together) and
``torch.set_num_threads``, so ours and the peer run with the same number in the same run.
"""

import os

import pytest

import corenn


@pytest.fixture(scope="session")
def threads() -> int:
    """The thread count in effect for Numba, BLAS and torch during this run."""
    requested = os.environ.get("BENCH_THREADS")
    n = corenn.set_num_threads(int(requested) if requested else None)
    print(f"\nbenchmark threads: {n}")
    return n


@pytest.fixture(scope="session")
def torch(threads: int):
    """The ``torch`` module set to ``threads`` threads; skips when torch is not installed."""
    torch = pytest.importorskip("torch", reason="torch is not installed: PyTorch peer skipped")
    torch.set_num_threads(threads)
    return torch
