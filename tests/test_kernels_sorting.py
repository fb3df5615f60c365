"""The radix row sort against its reference (``np.sort`` of each row).

Rows mix moderate values with the floats that break a bit-level sort: ``-0.0`` beside
``0.0``, both infinities, subnormals, the largest finite values, long runs of ties, and NaN
(a row holding one goes to ``np.sort``).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corenn
from kernels import cpu, reference

EDGE = [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 5e-324, -5e-324, 3.4e38, -3.4e38, 1.0, -1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_sort_rows_equals_the_reference(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40))
    values = st.one_of(
        st.floats(-1e6, 1e6, width=32), st.sampled_from(EDGE), st.integers(-3, 3).map(float)
    )
    if data.draw(st.booleans()):
        values = st.one_of(values, st.just(np.nan))
    with np.errstate(over="ignore", under="ignore"):
        keys = data.draw(hnp.arrays(dtype, shape, elements=values.map(dtype)))
    got = cpu.sort_rows(keys)
    want = reference.sort_rows(keys)
    assert got.dtype == keys.dtype and got.shape == keys.shape
    np.testing.assert_array_equal(got, want)  # -0.0 equals 0.0; NaN positions must match


def test_sort_rows_sorts_a_large_row_of_distinct_and_tied_values():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        keys = rng.normal(size=(3, 50_000)).astype(dtype)
        keys[1, 500:] = 7.0  # one value for most of the row: most digit passes are skipped
        keys[2] = -np.abs(keys[2])
        np.testing.assert_array_equal(cpu.sort_rows(keys), np.sort(keys, axis=1))
        np.testing.assert_array_equal(corenn.sort_rows(keys), np.sort(keys, axis=1))
        assert not np.shares_memory(cpu.sort_rows(keys), keys)


@pytest.mark.parametrize("sort_rows", [cpu.sort_rows, reference.sort_rows, corenn.sort_rows])
def test_sort_rows_refuses_what_it_cannot_sort(sort_rows):
    with pytest.raises(ValueError, match="2-D float32/float64"):
        sort_rows(np.zeros(5))
    with pytest.raises(ValueError, match="2-D float32/float64"):
        sort_rows(np.zeros((2, 5), dtype=np.int64))


def test_the_gpu_twin_sorts_as_the_reference_on_host_arrays():
    """On a host array (as under Numba's CUDA simulator) the GPU twin is the array module's
    sort: the same rows as the reference."""
    import kernels.gpu

    keys = np.random.default_rng(1).normal(size=(4, 100)).astype(np.float32)
    keys[0, :3] = [np.nan, -0.0, np.inf]
    np.testing.assert_array_equal(kernels.gpu.sort_rows(keys), reference.sort_rows(keys))
    with pytest.raises(ValueError, match="2-D float32/float64"):
        kernels.gpu.sort_rows(keys[0])
