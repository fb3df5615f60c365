"""corenn.Dense: y = f(x @ W + b) over any leading dims, its gradients, init and errors."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corenn

NUMPY_ACTIVATIONS = {
    None: lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
}


def f64(shape):
    return hnp.arrays(np.float64, shape, elements=st.floats(-2, 2, allow_nan=False))


@given(
    lead=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 3),
    activation=st.sampled_from(sorted(NUMPY_ACTIVATIONS, key=str)),
    bias=st.booleans(),
    data=st.data(),
)
def test_dense_value_and_gradients(lead, n_in, n_out, activation, bias, data):
    layer = corenn.Dense(
        n_in, n_out, activation, bias, dtype=np.float64, rng=np.random.default_rng(1)
    )
    if bias:
        layer.bias.data[...] = data.draw(f64((n_out,)))
    x = data.draw(f64(lead + (n_in,)))
    z = x @ layer.weight.data + (layer.bias.data if bias else 0)
    out = layer(x)
    assert out.shape == lead + (n_out,), f"output shape {out.shape}"
    err = np.max(np.abs(out.data - NUMPY_ACTIVATIONS[activation](z)))
    assert err < 1e-12, f"Dense({activation}) differs from f(x @ W + b) by {err:.3g}"
    # Central differences are meaningless next to relu's kink: such inputs are not a case.
    assume(activation != "relu" or np.min(np.abs(z), initial=1.0) >= 1e-4)
    params = [layer.weight] + ([layer.bias] if bias else [])
    xt = corenn.tensor(x, requires_grad=True)
    corenn.gradcheck(lambda a, *_: layer(a), [xt, *params], rng=np.random.default_rng(2))


def test_callable_activation_and_default_dtype(rng):
    layer = corenn.Dense(3, 2, activation=lambda y: y * 2.0, rng=rng)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    out = layer(x)
    assert layer.weight.dtype == np.float32 and out.dtype == np.float32
    expected = 2 * (x @ layer.weight.data + layer.bias.data)
    assert np.allclose(out.data, expected, rtol=1e-6), np.max(np.abs(out.data - expected))


def test_init_is_glorot_uniform_and_reproducible():
    a = corenn.Dense(40, 60, rng=np.random.default_rng(7))
    b = corenn.Dense(40, 60, rng=np.random.default_rng(7))
    assert a.weight.shape == (40, 60) and a.bias.shape == (60,)
    assert np.array_equal(a.weight.data, b.weight.data), "same rng seed, different weights"
    bound = np.sqrt(6 / 100)
    assert np.abs(a.weight.data).max() <= bound, f"weight beyond the Glorot bound {bound:.3f}"
    assert np.abs(a.weight.data).max() > 0.9 * bound, "weights do not fill the Glorot range"
    assert not a.bias.data.any(), "bias does not start at zero"
    names = [n for n, _ in corenn.Dense(2, 2, bias=False).named_parameters()]
    assert names == ["weight"], names


def test_dense_errors_name_the_problem():
    layer = corenn.Dense(4, 3)
    with pytest.raises(ValueError, match=r"Dense\(in_features=4, out_features=3\).*\(2, 5\)"):
        layer(np.ones((2, 5)))
    with pytest.raises(TypeError, match="float64 differs from the layer's float32"):
        layer(corenn.tensor(np.ones((2, 4))))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        corenn.Dense(2, 2, activation="gelu")
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        corenn.Dense(0, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        corenn.Dense(2, 2, dtype=np.int32)
