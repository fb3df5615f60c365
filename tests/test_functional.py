"""corenn.functional: activations, concat/stack, dropout and losses.

Oracles: closed forms and naive per-sample formulas for values, central differences
(corenn.gradcheck in float64 with a random upstream gradient) for gradients, exact limits at
|x| = 1e4 for stability, and PyTorch (optional; skipped when missing) for values and gradients.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corenn
from corenn import F

SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
REDUCTIONS = ["mean", "sum", "none"]


def f64(shape, low=-3.0, high=3.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False))


def check(fn, *arrays, seed=0):
    leaves = [corenn.tensor(a.copy(), requires_grad=True) for a in arrays]
    corenn.gradcheck(fn, leaves, rng=np.random.default_rng(seed))


def assert_close(actual, expected, what, rtol=1e-10, atol=1e-12):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.max(np.abs(actual - expected), initial=0.0)
    assert np.allclose(actual, expected, rtol=rtol, atol=atol), f"{what}: max |diff| {err:.3g}"


def value_and_grad(fn, x, **kwargs):
    t = corenn.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    out = fn(t, **kwargs)
    out.sum().backward()
    return out.data, t.grad


# -- activations ------------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True),
    "log_softmax": lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(x=f64(SHAPES))
def test_activation_values_and_gradients(name, x):
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # keep away from relu's kink
    fn = getattr(F, name)
    assert_close(fn(corenn.tensor(x)).data, ACTIVATIONS[name](x), f"{name} value")
    check(fn, x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(x=f64(hnp.array_shapes(min_dims=2, max_dims=3, max_side=4)), data=st.data())
def test_softmax_family_along_any_axis(name, x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    moved = np.moveaxis(x, axis, -1)
    expected = np.moveaxis(ACTIVATIONS[name](moved), -1, axis)
    assert_close(getattr(F, name)(corenn.tensor(x), axis=axis).data, expected, f"{name} {axis}")
    check(lambda a: getattr(F, name)(a, axis=axis), x)


def test_relu_gradient_is_zero_at_the_kink():
    _, grad = value_and_grad(F.relu, [-1.0, 0.0, 2.0])
    assert_close(grad, [0.0, 0.0, 1.0], "relu gradient at -1, 0, 2")


def test_softmax_rejects_a_bad_axis():
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        F.softmax(np.zeros((2, 3)), axis=2)


BIG = 1e4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_are_stable_at_large_inputs(dtype):
    x = np.array([-BIG, BIG], dtype=dtype)
    for name, value, grad in [
        ("sigmoid", [0.0, 1.0], [0.0, 0.0]),
        ("tanh", [-1.0, 1.0], [0.0, 0.0]),
        ("relu", [0.0, BIG], [0.0, 1.0]),
    ]:
        t = corenn.tensor(x, requires_grad=True)
        out = getattr(F, name)(t)
        out.sum().backward()
        assert out.dtype == dtype, f"{name} changed dtype to {out.dtype}"
        assert_close(out.data, value, f"{name}(+-1e4)", atol=0)
        assert_close(t.grad, grad, f"{name}'(+-1e4)", atol=0)
    logits = np.array([[BIG, 0.0, -BIG]], dtype=dtype)
    assert_close(F.softmax(logits).data, [[1.0, 0.0, 0.0]], "softmax at +-1e4", atol=0)
    assert_close(F.log_softmax(logits).data, [[0.0, -BIG, -2 * BIG]], "log_softmax", atol=0)
    t = corenn.tensor(logits, requires_grad=True)
    F.log_softmax(t)[0, 2].backward()
    assert_close(t.grad, [[-1.0, 0.0, 1.0]], "log_softmax gradient at +-1e4", atol=0)


# -- concat, stack, dropout -------------------------------------------------------------------
@given(data=st.data())
def test_concat_and_stack(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    widths = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    pieces = [
        data.draw(f64(shape[: axis % len(shape)] + (w,) + shape[axis % len(shape) + 1 :]))
        for w in widths
    ]
    out = F.concat([corenn.tensor(p) for p in pieces], axis=axis)
    assert_close(out.data, np.concatenate(pieces, axis=axis), "concat value")
    check(lambda *ts: F.concat(list(ts), axis=axis), *pieces)

    same = [data.draw(f64(shape)) for _ in widths]
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    out = F.stack(same, axis=new_axis)
    assert_close(out.data, np.stack(same, axis=new_axis), "stack value")
    check(lambda *ts: F.stack(ts, axis=new_axis), *same)


def test_concat_and_stack_reject_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        F.concat([], axis=0)
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        F.stack([np.zeros((2, 2))], axis=3)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.9, 1.0])
def test_dropout_scales_kept_elements_and_their_gradient(p, rng):
    x = rng.standard_normal((200, 50))
    t = corenn.tensor(x, requires_grad=True)
    out = F.dropout(t, p, training=True, rng=rng)
    out.sum().backward()
    kept = out.data != 0
    scale = 0.0 if p == 1.0 else 1 / (1 - p)
    assert_close(out.data[kept], x[kept] * scale, f"kept values at p={p}")
    assert_close(t.grad, kept * scale, f"dropout gradient at p={p}")
    # 10,000 Bernoulli draws: the kept fraction is within 5 standard deviations of 1 - p
    sd = np.sqrt(p * (1 - p) / x.size)
    assert abs(kept.mean() - (1 - p)) <= 5 * sd + 1e-12, f"kept {kept.mean():.4f}, p={p}"


def test_dropout_is_the_identity_when_not_training(rng):
    x = corenn.tensor(rng.standard_normal(5))
    assert F.dropout(x, 0.5, training=False, rng=rng) is x
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        F.dropout(x, 1.5, rng=rng)


# -- losses: naive oracles --------------------------------------------------------------------
def naive_bce(x, t, w, pw):
    s = 1 / (1 + np.exp(-x))
    return -w * (pw * t * np.log(s) + (1 - t) * np.log(1 - s))


def naive_cross_entropy(x, t, w, ignore, eps):
    """Per-sample loss and counted weight, one sample at a time, for (N, C) logits."""
    losses, counted = [], []
    for row, target in zip(x, t, strict=True):
        if target == ignore:
            losses.append(0.0)
            counted.append(0.0)
            continue
        logp = np.log(np.exp(row) / np.exp(row).sum())
        losses.append(-(1 - eps) * w[target] * logp[target] - eps / len(row) * (w * logp).sum())
        counted.append(w[target])
    return np.array(losses), np.array(counted)


def reduce(loss, reduction, denom):
    if reduction == "none":
        return loss
    return loss.sum() / (denom if reduction == "mean" else 1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(x=f64(SHAPES), data=st.data())
def test_bce_with_logits(reduction, x, data):
    t = data.draw(f64(x.shape, 0.0, 1.0))
    weighted = data.draw(st.booleans())
    w = data.draw(f64(x.shape[-1:], 0.1, 2.0)) if weighted else None
    pw = data.draw(f64(x.shape[-1:], 0.1, 3.0)) if data.draw(st.booleans()) else None
    kwargs = {"weight": w, "pos_weight": pw, "reduction": reduction}
    out = F.binary_cross_entropy_with_logits(x, t, **kwargs)
    naive = naive_bce(x, t, 1.0 if w is None else w, 1.0 if pw is None else pw)
    assert_close(out.data, reduce(naive, reduction, x.size), "bce value", rtol=1e-9)
    check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, **kwargs), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data())
def test_cross_entropy(reduction, data):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    x = data.draw(f64((n, c)))
    t = np.array(data.draw(st.lists(st.integers(-1, c - 1), min_size=n, max_size=n)))
    w = data.draw(f64((c,), 0.1, 2.0)) if data.draw(st.booleans()) else None
    eps = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
    kwargs = {"weight": w, "ignore_index": -1, "reduction": reduction, "label_smoothing": eps}
    out = F.cross_entropy(x, t, **kwargs)
    losses, counted = naive_cross_entropy(x, t, np.ones(c) if w is None else w, -1, eps)
    total = counted.sum()
    expected = 0.0 if reduction == "mean" and total == 0 else reduce(losses, reduction, total)
    assert_close(out.data, expected, "cross_entropy value", rtol=1e-9)
    check(lambda a: F.cross_entropy(a, t, **kwargs), x)


@given(data=st.data())
def test_cross_entropy_with_spatial_dims_equals_flattened(data):
    n, c, d1, d2 = (data.draw(st.integers(1, 3)) for _ in range(4))
    x = data.draw(f64((n, c, d1, d2)))
    t = data.draw(hnp.arrays(np.int64, (n, d1, d2), elements=st.integers(0, c - 1)))
    flat_x = np.moveaxis(x, 1, -1).reshape(-1, c)
    per_sample = F.cross_entropy(x, t, reduction="none")
    flat = F.cross_entropy(flat_x, t.reshape(-1), reduction="none")
    assert_close(per_sample.data, flat.data.reshape(t.shape), "(N, C, d1, d2) vs flattened")
    check(lambda a: F.cross_entropy(a, t, label_smoothing=0.2), x)


def test_cross_entropy_mean_over_nothing_is_zero():
    x = corenn.tensor(np.ones((2, 3)), requires_grad=True)
    out = F.cross_entropy(x, np.array([-100, -100]))
    out.backward()
    assert out.item() == 0.0 and not x.grad.any(), f"loss {out.item()}, grad {x.grad}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(x=f64(SHAPES), data=st.data())
def test_mse_loss(reduction, x, data):
    t = data.draw(f64(x.shape))
    out = F.mse_loss(x, t, reduction=reduction)
    assert_close(out.data, reduce((x - t) ** 2, reduction, x.size), "mse value")
    check(lambda a, b: F.mse_loss(a, b, reduction=reduction), x, t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_are_stable_at_large_logits(dtype):
    x = np.array([BIG, -BIG, BIG, -BIG], dtype=dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    loss, grad = value_and_grad(
        lambda a: F.binary_cross_entropy_with_logits(a.astype(dtype), t, reduction="none"), x
    )
    # -log s(x) -> max(-x, 0) and -log(1 - s(x)) -> max(x, 0); gradient s(x) - t -> step - t
    assert_close(loss, [0.0, 0.0, BIG, BIG], "bce at +-1e4", atol=0)
    assert_close(grad, [0.0, 0.0, 1.0, -1.0], "bce gradient at +-1e4", atol=0)
    logits = np.array([[BIG, 0.0, -BIG], [BIG, 0.0, -BIG]], dtype=dtype)
    loss, grad = value_and_grad(
        lambda a: F.cross_entropy(a.astype(dtype), np.array([0, 2]), reduction="none"), logits
    )
    assert_close(loss, [0.0, 2 * BIG], "cross_entropy at +-1e4", atol=0)
    assert_close(grad, [[0.0, 0, 0], [1.0, 0, -1.0]], "cross_entropy gradient at +-1e4", atol=0)


# -- losses: bad input ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: F.binary_cross_entropy_with_logits(x, np.ones(4)), "logits contains 2 NaN"),
        (lambda x: F.cross_entropy(x.reshape(2, 2), np.array([0, 1])), "logits contains 2 NaN"),
        (lambda x: F.mse_loss(np.ones(4), x), "target contains 2 NaN"),
        (
            lambda x: F.binary_cross_entropy_with_logits(np.ones(4), np.ones(4), weight=x),
            "weight contains 2 NaN",
        ),
    ],
)
def test_losses_report_nan_inputs(call, match):
    x = np.array([np.nan, 1.0, np.nan, 0.0])
    with pytest.raises(F.LossInputError, match=match) as info:
        call(x)
    assert isinstance(info.value, FloatingPointError) and isinstance(info.value, ValueError)


def test_loss_argument_errors():
    x = np.zeros((2, 3))
    with pytest.raises(IndexError, match="target class 3 is out of range for C=3"):
        F.cross_entropy(x, np.array([0, 3]))
    with pytest.raises(IndexError, match="target class -2 is out of range for C=3"):
        F.cross_entropy(x, np.array([-2, 0]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="expected \\(2,\\)"):
        F.cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="weight of shape \\(2,\\) must be \\(3,\\)"):
        F.cross_entropy(x, np.array([0, 1]), weight=np.ones(2))
    with pytest.raises(ValueError, match="shape \\(2, 3\\) and target shape \\(3,\\)"):
        F.mse_loss(x, np.zeros(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.mse_loss(x, x, reduction="avg")


# -- optional PyTorch oracle ------------------------------------------------------------------
def torch_cases(torch):
    tf = torch.nn.functional
    t_bin = np.array([[1.0, 0.0, 0.3], [0.0, 1.0, 1.0]])
    w3, c_t = np.array([0.5, 2.0, 1.0]), np.array([2, -100])
    return [
        ("relu", F.relu, tf.relu),
        ("sigmoid", F.sigmoid, torch.sigmoid),
        ("tanh", F.tanh, torch.tanh),
        ("softmax", lambda a: F.softmax(a, axis=0), lambda a: tf.softmax(a, dim=0)),
        ("log_softmax", F.log_softmax, lambda a: tf.log_softmax(a, dim=-1)),
        (
            "bce",
            lambda a: F.binary_cross_entropy_with_logits(a, t_bin, weight=w3, pos_weight=w3),
            lambda a: tf.binary_cross_entropy_with_logits(
                a, torch.tensor(t_bin), weight=torch.tensor(w3), pos_weight=torch.tensor(w3)
            ),
        ),
        (
            "cross_entropy",
            lambda a: F.cross_entropy(a, c_t, weight=w3, label_smoothing=0.1),
            lambda a: tf.cross_entropy(
                a, torch.tensor(c_t), weight=torch.tensor(w3), label_smoothing=0.1
            ),
        ),
        ("mse", lambda a: F.mse_loss(a, t_bin), lambda a: tf.mse_loss(a, torch.tensor(t_bin))),
    ]


def test_values_and_gradients_match_torch(rng):
    torch = pytest.importorskip("torch", reason="torch is not installed: oracle test skipped")
    for scale in (1.0, BIG):
        x = rng.standard_normal((2, 3)) * scale
        for name, ours, theirs in torch_cases(torch):
            value, grad = value_and_grad(ours, x)
            tx = torch.tensor(x, requires_grad=True)
            out = theirs(tx)
            out.sum().backward()
            assert_close(value, out.detach().numpy(), f"{name} value vs torch at scale {scale}")
            assert_close(grad, tx.grad.numpy(), f"{name} gradient vs torch at scale {scale}")
