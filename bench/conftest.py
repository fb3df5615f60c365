"""Shared benchmark fixtures: one thread count for every pool, and the optional PyTorch peer.

The thread count comes from ``BENCH_THREADS`` (else ``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS``,
else all cores) and is applied through ``corenn.set_num_threads`` (Numba and BLAS together) and
``torch.set_num_threads``, so ours and the peer run with the same number in the same run.
"""

import os
import warnings

import pytest

import corenn
from bundlerec.datasets import synthetic_shop
from bundlerec.recommender import Recommender


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


@pytest.fixture(scope="session")
def big_model(threads: int) -> Recommender:
    """The 50,000-item synthetic shop's Recommender (about 47k items in its catalogue), fitted
    once per session and not timed; shared by the serving benchmarks."""
    events, items, users = synthetic_shop(n_users=45_000, n_items=50_000, n_days=30, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recommender(
            sequence={"epochs": 1, "patience": None}, network={"n_top": 150}, verbose=False
        ).fit(events, items, users)
