"""corenn.F.pinball_loss: values, gradients, minimiser and errors.

Oracles: the two-branch definition evaluated per element in plain Python, central differences
(corenn.gradcheck in float64 with a random upstream gradient) on inputs kept away from the kink,
the empirical quantile as the minimiser of the summed loss, and PyTorch (optional) for values
and gradients.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corenn
from corenn import F

SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def f64(shape, low=-3.0, high=3.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False))


def naive(x, t, q):
    q = np.broadcast_to(q, x.shape)
    out = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        d = t[i] - x[i]
        out[i] = q[i] * d if d >= 0 else (q[i] - 1) * d
    return out


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(x=f64(SHAPES), data=st.data())
def test_values_and_gradients(reduction, x, data):
    t = data.draw(f64(x.shape))
    t = np.where(np.abs(t - x) < 1e-3, x + 0.5, t)  # away from the kink
    q = data.draw(f64(x.shape[-1:], 0.0, 1.0))
    out = F.pinball_loss(x, t, q, reduction=reduction)
    per = naive(x, t, q)
    expected = {"none": per, "sum": per.sum(), "mean": per.mean()}[reduction]
    assert np.allclose(out.data, expected, rtol=1e-12, atol=1e-12), (
        f"value differs by {np.max(np.abs(out.data - expected))}"
    )
    leaves = [corenn.tensor(a.copy(), requires_grad=True) for a in (x, t)]
    corenn.gradcheck(
        lambda a, b: F.pinball_loss(a, b, q, reduction=reduction),
        leaves,
        rng=np.random.default_rng(0),
    )


def test_gradient_at_the_kink_follows_the_documented_branch():
    x = corenn.tensor(np.array([1.0, 2.0]), requires_grad=True)
    F.pinball_loss(x, np.array([1.0, 2.0]), np.array([0.9, 0.2]), reduction="sum").backward()
    assert np.array_equal(x.grad, [-0.9, -0.2]), x.grad


@given(
    t=hnp.arrays(np.float64, st.integers(5, 40), elements=st.floats(-10, 10)),
    q=st.sampled_from([0.1, 0.5, 0.9]),
)
def test_minimiser_is_the_empirical_quantile(t, q):
    """No constant prediction has a smaller summed loss than the empirical q-quantile."""

    def total(c):
        return F.pinball_loss(np.full(t.shape, c), t, q, reduction="sum").item()

    at_quantile = total(np.quantile(t, q, method="inverted_cdf"))
    grid = np.concatenate([t, np.linspace(t.min() - 1, t.max() + 1, 50)])
    best = min(total(c) for c in grid)
    assert at_quantile <= best + 1e-9 * (1 + abs(best)), (at_quantile, best, q)


def test_float32_stays_float32():
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    out = F.pinball_loss(x, np.zeros((2, 3), np.float32), np.array([0.1, 0.5, 0.9]))
    assert out.dtype == np.float32


def test_mean_over_an_empty_batch_is_zero():
    x = corenn.tensor(np.zeros((0, 3)), requires_grad=True)
    out = F.pinball_loss(x, np.zeros((0, 3)), np.array([0.1, 0.5, 0.9]))
    out.backward()
    assert out.item() == 0.0 and x.grad.shape == (0, 3)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((np.zeros(3), np.zeros(2), 0.5), ValueError, "shape"),
        ((np.zeros(3), np.zeros(3), 1.5), ValueError, r"\[0, 1\]"),
        ((np.zeros(3), np.zeros(3), np.array([0.1, 0.5])), ValueError, "broadcast"),
        ((np.array([np.nan, 0, 0]), np.zeros(3), 0.5), F.LossInputError, "input contains 1 NaN"),
        ((np.zeros(3), np.array([0, np.nan, 0]), 0.5), F.LossInputError, "target"),
    ],
)
def test_bad_arguments_raise(args, error, match):
    with pytest.raises(error, match=match):
        F.pinball_loss(*args)
    with pytest.raises(ValueError, match="reduction"):
        F.pinball_loss(np.zeros(2), np.zeros(2), 0.5, reduction="avg")


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, t = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 5, 3))
    q = np.array([0.1, 0.5, 0.9])
    xt = torch.tensor(x, requires_grad=True)
    d = torch.tensor(t) - xt
    qt = torch.tensor(q)
    torch.maximum(qt * d, (qt - 1) * d).mean().backward()
    ours = corenn.tensor(x, requires_grad=True)
    out = F.pinball_loss(ours, t, q)
    out.backward()
    assert np.isclose(out.item(), float(torch.maximum(qt * d, (qt - 1) * d).mean().detach()))
    assert np.allclose(ours.grad, xt.grad.numpy(), atol=1e-15)
