"""Values and gradients of the basic ops (corenn/ops/basic.py) and of the autograd machinery.

Oracles: numpy for values, central differences (corenn.gradcheck, float64, random upstream
gradient) for gradients, closed forms for accumulation and deep chains.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corenn
import kernels
from corenn import F

SMALL = {"min_dims": 0, "max_dims": 3, "min_side": 1, "max_side": 3}


def floats(low=-2.0, high=2.0):
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def f64(shape, elements=None):
    return hnp.arrays(np.float64, shape, elements=floats() if elements is None else elements)


def leaves(*arrays):
    return [corenn.tensor(a.copy(), requires_grad=True) for a in arrays]


def check(fn, *arrays, seed=0):
    corenn.gradcheck(fn, leaves(*arrays), rng=np.random.default_rng(seed))


def assert_close(actual, expected, what, rtol=1e-12, atol=1e-12):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.max(np.abs(actual - expected), initial=0.0)
    assert np.allclose(actual, expected, rtol=rtol, atol=atol), f"{what}: max |diff| {err:.3g}"


BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_broadcasting_binary_ops(name, data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, **SMALL)).input_shapes
    x = data.draw(f64(shapes[0]))
    y = data.draw(f64(shapes[1], floats(0.5, 2.0) if name == "div" else None))
    op, ref = BINARY[name]
    assert_close(op(corenn.tensor(x), corenn.tensor(y)).data, ref(x, y), f"{name} value")
    check(op, x, y)


@given(x=f64(hnp.array_shapes(**SMALL), floats(0.5, 2.0)), p=floats(-2.0, 3.0))
def test_pow_exp_log(x, p):
    check(lambda a: a**p, x)
    check(lambda a: F.exp(a) + F.log(a), x)
    assert_close(F.log(F.exp(corenn.tensor(x))).data, x, "log(exp(x))")


# (x shape, y shape): 1-D and 2-D operands, and batch dimensions that broadcast.
MATMUL_SHAPES = st.sampled_from(
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 1, 2, 3), (2, 3, 1)),
     ((2, 2, 3), (3, 2)), ((3,), (2, 3, 2)), ((2, 2, 3), (3,))]
)  # fmt: skip


@given(shapes=MATMUL_SHAPES, data=st.data())
def test_matmul(shapes, data):
    x, y = data.draw(f64(shapes[0])), data.draw(f64(shapes[1]))
    assert_close(F.matmul(corenn.tensor(x), corenn.tensor(y)).data, x @ y, "matmul value")
    check(F.matmul, x, y)


def axes_and_keepdims(ndim):
    if ndim == 0:
        return st.tuples(st.sampled_from([None, ()]), st.booleans())
    axes = st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).map(tuple),
    )
    return st.tuples(axes, st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@given(data=st.data())
def test_reductions(name, data):
    # distinct values at least 0.05 apart: no ties, and no kink within the finite-difference step
    steps = data.draw(
        hnp.arrays(np.int64, hnp.array_shapes(**SMALL), elements=st.integers(-40, 40), unique=True)
    )
    x = steps * 0.05
    axis, keepdims = data.draw(axes_and_keepdims(x.ndim))
    op = getattr(F, name)
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert_close(op(corenn.tensor(x), axis=axis, keepdims=keepdims).data, expected, name)
    check(lambda a: op(a, axis=axis, keepdims=keepdims), x)


def test_max_splits_gradient_between_ties():
    x = corenn.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]), requires_grad=True)
    F.max(x, axis=1).sum().backward()
    assert_close(x.grad, [[0, 0.5, 0.5], [0.5, 0, 0.5]], "max gradient at ties")


@given(x=f64(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3)), data=st.data())
def test_reshape_and_transpose(x, data):
    perm = tuple(data.draw(st.permutations(range(x.ndim))))
    assert_close(F.transpose(corenn.tensor(x), perm).data, x.transpose(perm), "transpose")
    check(lambda a: F.transpose(a, perm), x)
    check(lambda a: a.T, x)
    check(lambda a: F.reshape(a, (-1,)) * 2.0, x)
    check(lambda a: a.reshape(x.shape[::-1]), x)


@given(x=f64((4, 3)), data=st.data())
def test_getitem_with_repeated_advanced_indices(x, data):
    rows = np.array(data.draw(st.lists(st.integers(-4, 3), min_size=1, max_size=6)))
    assert_close(corenn.tensor(x)[rows].data, x[rows], "x[rows]")
    check(lambda a: a[rows], x)
    check(lambda a: a[1:, ::2], x)
    check(lambda a: a[rows, 1:], x)
    # d/dx of sum(x[rows]) counts how often each row was picked
    t = corenn.tensor(x, requires_grad=True)
    t[rows].sum().backward()
    counts = np.bincount(rows % 4, minlength=4)[:, None] * np.ones(3)
    assert_close(t.grad, counts, "getitem gradient with repeated indices")


@given(x=f64((3, 4)), dim=st.sampled_from([0, 1, -1]), data=st.data())
def test_gather(x, dim, data):
    n = x.shape[dim]
    idx = data.draw(hnp.arrays(np.int64, (2, 3), elements=st.integers(0, n - 1)))
    out = F.gather(corenn.tensor(x), dim, idx).data
    for i, j in np.ndindex(idx.shape):
        want = x[idx[i, j], j] if dim == 0 else x[i, idx[i, j]]
        assert out[i, j] == want, f"gather[{i}, {j}] = {out[i, j]}, expected {want}"
    check(lambda a: F.gather(a, dim, idx), x)


@given(
    x=hnp.arrays(np.float32, (4, 3), elements=floats()),
    rows=st.lists(st.integers(-4, 3), min_size=1, max_size=12),
)
def test_indexing_backward_uses_the_deterministic_scatter(x, rows):
    """GetItem and Gather sum repeated indices with the scatter kernel: the Numba twin equals
    the reference bit for bit."""
    rows = np.array(rows)
    g = np.random.default_rng(rows.size).standard_normal((rows.size, 3)).astype(np.float32)
    grads = {}
    for backend in ("cpu", "reference"):
        kernels.set_backend_override(backend)
        try:
            a, b = leaves(x, x)
            a[rows].backward(g)
            F.gather(b, 0, np.resize(rows % 4, (rows.size, 3))).backward(g)
        finally:
            kernels.set_backend_override(None)
        grads[backend] = (a.grad, b.grad)
    for what, got, want in zip(("getitem", "gather"), grads["cpu"], grads["reference"]):
        assert np.array_equal(got, want), f"{what}: Numba scatter differs from the reference"
    naive = np.zeros_like(x)
    for n, r in enumerate(rows):
        naive[r] += g[n]
    assert np.array_equal(grads["cpu"][0], naive), "getitem gradient != in-order naive sum"


def test_gather_rejects_out_of_range_index():
    with pytest.raises(IndexError, match="index 5 out of range"):
        F.gather(corenn.tensor(np.zeros((2, 3))), 1, np.array([[5], [0]]))


def test_no_grad_records_nothing():
    x = corenn.tensor(np.ones(3), requires_grad=True)
    with corenn.no_grad():
        y = (x * 2.0).sum()
    assert not y.requires_grad and y.creator is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_gradients_accumulate_over_two_backward_calls(rng):
    a = rng.standard_normal((3, 2))
    x = corenn.tensor(a, requires_grad=True)
    for _ in range(2):
        (x * x).sum().backward()
    assert_close(x.grad, 4 * a, "grad after two backward calls (2 * 2x)")


def test_reused_input_accumulates_within_one_graph(rng):
    a = rng.standard_normal(4)
    x = corenn.tensor(a, requires_grad=True)
    (x * x + x).sum().backward()
    assert_close(x.grad, 2 * a + 1, "d/dx (x^2 + x)")


def test_deep_chain_backprops_without_recursion_error():
    depth = 10_000
    x = corenn.tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(depth):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    assert_close(x.grad, [1.0001**depth], f"gradient through a {depth}-deep chain", rtol=1e-9)
