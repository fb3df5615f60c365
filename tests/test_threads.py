"""The single thread setting: Numba and BLAS pools set together, bad counts refused."""

import numba
import pytest
from threadpoolctl import threadpool_info

import kernels


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_set_num_threads_sets_both_pools():
    before = (kernels.get_num_threads(), kernels.get_blas_threads())
    try:
        assert kernels.set_num_threads(1, blas=1) == 1
        assert numba.get_num_threads() == 1 and _blas_threads() <= {1}
        assert kernels.get_num_threads() == 1 and kernels.get_blas_threads() == 1
    finally:
        kernels.set_num_threads(*before)
    assert (kernels.get_num_threads(), kernels.get_blas_threads()) == before


@pytest.mark.parametrize("args", [(0,), (1, 0), (-2,)])
def test_bad_thread_counts_are_refused(args):
    with pytest.raises(ValueError, match="must be >= 1"):
        kernels.set_num_threads(*args)
