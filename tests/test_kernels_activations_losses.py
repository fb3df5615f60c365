"""The Numba activation and loss kernels against their plain-numpy references.

Oracle: :mod:`kernels.reference` (same names and signatures). The arithmetic-only kernels must
equal it bit for bit; the others within a few float eps of the scale of their terms (the twins
and the reference round differently: libm/polynomial exponentials, float64 vs pairwise sums),
plus a few subnormal spacings (1.4e-45 in float32) times what multiplies an exponential.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import kernels
from kernels import cpu, reference

# NaN and inf inputs make numpy warn inside the reference; the results are what is compared.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

DTYPES = [np.float32, np.float64]
ULPS = 8  # measured worst cases are 1-5.4 eps of the same scales (see the kernels' docstrings)
FLUSH = {np.float32: 8e-45, np.float64: 2e-323}
EDGE = [0.0, 1e4, -1e4, 88.0, -90.0, np.nan, np.inf, -np.inf]


def values(dtype, scale=30.0):
    """Floats of ``dtype``: moderate, plus 0, +-1e4, the ends of float32 ``exp``, NaN, +-inf."""
    return st.one_of(st.floats(-scale, scale, width=32), st.sampled_from(EDGE)).map(dtype)


def shapes(min_dims=1, min_side=0):
    return hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=min_side, max_side=6)


def assert_close(name, got, want, scale=None, exact=False, flush=1.0):
    """``got`` equals ``want`` (dtype, shape, NaN positions), within ULPS eps of ``scale`` plus
    a few subnormal spacings times ``flush`` (what multiplies an exponential)."""
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != reference {want.dtype}"
    assert got.shape == want.shape, f"{name}: shape {got.shape} != reference {want.shape}"
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), f"{name}: NaN at other places than the reference"
    if exact:
        assert np.array_equal(got, want, equal_nan=True), (
            f"{name}: differs from the reference (bit-equal expected) by "
            f"{np.max(np.abs(got - want), initial=0):.3g}"
        )
        return
    dtype = want.dtype.type
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(got.astype(np.float64) - want)
        scale = np.abs(want) if scale is None else np.asarray(scale, dtype=np.float64)
        limit = ULPS * np.finfo(dtype).eps * scale + FLUSH[dtype] * np.abs(flush)
        bad = ~nan & ~(err <= limit) & ~(got == want)
    assert not bad.any(), (
        f"{name}: {int(bad.sum())} of {want.size} values differ from the reference beyond "
        f"{ULPS} eps of their scale, e.g. {got[bad][0]!r} vs {want[bad][0]!r} "
        f"(allowed {np.broadcast_to(limit, want.shape)[bad][0]:.3g})"
    )


def test_dispatch_picks_the_twin():
    assert kernels.get("sigmoid_fwd", np.zeros(3)) is cpu.sigmoid_fwd
    assert kernels.get("cross_entropy_fwd", np.zeros(3)) is cpu.cross_entropy_fwd


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_elementwise_activations(dtype, data):
    x = data.draw(hnp.arrays(dtype, shapes(), elements=values(dtype)), label="x")
    g = data.draw(hnp.arrays(dtype, x.shape, elements=values(dtype, 3.0)), label="g")
    y = reference.sigmoid_fwd(x)
    assert_close("sigmoid_fwd", cpu.sigmoid_fwd(x), y)
    assert_close("sigmoid_bwd", cpu.sigmoid_bwd(g, y), reference.sigmoid_bwd(g, y), exact=True)
    th = reference.tanh_fwd(x)
    assert_close("tanh_bwd", cpu.tanh_bwd(g, th), reference.tanh_bwd(g, th), exact=True)
    assert_close("relu_bwd", cpu.relu_bwd(g, x), reference.relu_bwd(g, x), exact=True)
    # a broadcast upstream gradient (what a "mean" reduction passes), and a transposed input
    g0 = np.broadcast_to(g.flat[0] if g.size else dtype(1), x.T.shape)
    assert_close("relu_bwd", cpu.relu_bwd(g0, x.T), reference.relu_bwd(g0, x.T), exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_family(dtype, data):
    x = data.draw(hnp.arrays(dtype, shapes(min_side=1), elements=values(dtype)), label="x")
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    g = data.draw(hnp.arrays(dtype, x.shape, elements=values(dtype, 3.0)), label="g")
    with np.errstate(over="ignore", under="ignore"):
        z = x - x.max(axis=axis, keepdims=True)
        lse = np.log(np.exp(z.astype(np.float64)).sum(axis=axis, keepdims=True))

    y = reference.softmax_fwd(x, axis)
    assert_close("softmax_fwd", cpu.softmax_fwd(x, axis), y)
    gy = np.abs(g) * y
    scale = y * (np.abs(g) + gy.sum(axis=axis, keepdims=True))
    assert_close(
        "softmax_bwd", cpu.softmax_bwd(g, y, axis), reference.softmax_bwd(g, y, axis), scale
    )

    q = reference.log_softmax_fwd(x, axis)
    assert_close(
        "log_softmax_fwd", cpu.log_softmax_fwd(x, axis), q, np.maximum(np.abs(z), lse) + 1
    )
    g_sum = np.abs(g.astype(np.float64)).sum(axis=axis, keepdims=True)
    want = reference.log_softmax_bwd(g, q, axis)
    got = cpu.log_softmax_bwd(g, q, axis)
    assert_close("log_softmax_bwd", got, want, np.abs(g) + np.exp(q) * g_sum, flush=g_sum)


def test_limits_and_nan():
    big = np.array([1e4, -1e4, 0.0, np.nan], dtype=np.float32)
    assert np.array_equal(cpu.sigmoid_fwd(big), [1, 0, 0.5, np.nan], equal_nan=True)
    assert np.array_equal(cpu.softmax_fwd(big[:3], 0), [1, 0, 0])
    assert np.array_equal(cpu.log_softmax_fwd(big[:2], 0), [0, -2e4])
    assert np.isnan(cpu.softmax_fwd(big, 0)).all(), "a NaN must make its whole row NaN"
    loss = cpu.bce_with_logits_fwd(big[:2], np.array([0, 1], np.float32), None, None)
    assert np.array_equal(loss, [1e4, 1e4]), f"bce at |x| = 1e4 gave {loss}"
    with pytest.raises(ValueError, match="zero-size"):
        cpu.softmax_fwd(np.zeros((2, 0)), 1)
    with pytest.raises(IndexError, match="out of range"):
        cpu.cross_entropy_fwd(np.zeros((2, 3)), np.array([0, 3]), None, -100, 0.0)


def weight_like(data, dtype, shape, name):
    """None, a per-last-axis weight, or a full-shape one."""
    kind = data.draw(st.sampled_from(["none", "row", "full"]), label=f"{name} kind")
    if kind == "none" or not shape:
        return None
    wshape = shape[-1:] if kind == "row" else shape
    return data.draw(hnp.arrays(dtype, wshape, elements=st.floats(0, 3, width=32)), label=name)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_bce_and_mse(dtype, data):
    x = data.draw(hnp.arrays(dtype, shapes(min_dims=0), elements=values(dtype)), label="x")
    t = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(0, 1, width=32)), label="t")
    g = data.draw(hnp.arrays(dtype, x.shape, elements=values(dtype, 3.0)), label="g")
    w = weight_like(data, dtype, x.shape, "weight")
    pw = weight_like(data, dtype, x.shape, "pos_weight")
    wa = 1.0 if w is None else np.abs(w.astype(np.float64))
    pa = 1.0 if pw is None else np.abs(pw.astype(np.float64)) + 1
    terms = np.maximum(np.abs(x.astype(np.float64)), 1) * wa * pa

    want = reference.bce_with_logits_fwd(x, t, w, pw)
    got = cpu.bce_with_logits_fwd(x, t, w, pw)
    assert_close("bce_with_logits_fwd", got, want, terms, flush=wa * pa)
    (dx, dt), (rx, rt) = (
        cpu.bce_with_logits_bwd(g, x, t, w, pw),
        reference.bce_with_logits_bwd(g, x, t, w, pw),
    )
    assert_close("bce_with_logits_bwd dx", dx, rx, np.abs(g) * wa * pa, flush=g * wa * pa)
    assert_close("bce_with_logits_bwd dt", dt, rt, np.abs(g) * terms, flush=g * wa * pa)

    assert_close("mse_fwd", cpu.mse_fwd(x, t), reference.mse_fwd(x, t), exact=True)
    for got, ref, name in zip(cpu.mse_bwd(g, x, t), reference.mse_bwd(g, x, t), ["dx", "dt"]):
        assert_close(f"mse_bwd {name}", got, ref, exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_cross_entropy(dtype, data):
    m, c = data.draw(st.integers(0, 6), label="M"), data.draw(st.integers(1, 7), label="C")
    x = data.draw(hnp.arrays(dtype, (m, c), elements=values(dtype)), label="x")
    ignore = data.draw(st.sampled_from([-100, 0, -1]), label="ignore_index")
    t = data.draw(hnp.arrays(np.int64, (m,), elements=st.integers(-c, c - 1)), label="t")
    t = np.where(data.draw(hnp.arrays(bool, (m,)), label="ignored"), ignore, t)
    weight = data.draw(
        st.none() | hnp.arrays(dtype, (c,), elements=st.floats(0, 3, width=32)), label="weight"
    )
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 1.0]), label="label_smoothing")
    g = data.draw(hnp.arrays(dtype, (m,), elements=values(dtype, 3.0)), label="g")

    with np.errstate(over="ignore", under="ignore"):
        z = x - x.max(axis=1, keepdims=True) if m else x
        lse = np.log(np.exp(z.astype(np.float64)).sum(axis=1)) if m else np.zeros(0)
    q_scale = np.maximum(np.maximum(np.abs(z).max(axis=1, initial=0), lse), 1)
    w = np.ones(c) if weight is None else weight.astype(np.float64)
    row_scale = w[np.where(t == ignore, 0, t)] + smoothing * np.abs(w).sum() / c

    loss, row_w, q = cpu.cross_entropy_fwd(x, t, weight, ignore, smoothing)
    rloss, rrow_w, rq = reference.cross_entropy_fwd(x, t, weight, ignore, smoothing)
    assert_close("cross_entropy_fwd row_weight", row_w, rrow_w, exact=True)
    assert_close("cross_entropy_fwd log_probs", q, rq, q_scale[:, None])
    assert_close("cross_entropy_fwd loss", loss, rloss, q_scale * row_scale)

    got = cpu.cross_entropy_bwd(g, rq, t, weight, ignore, smoothing)
    want = reference.cross_entropy_bwd(g, rq, t, weight, ignore, smoothing)
    scale = np.abs(g)[:, None] * (row_scale[:, None] + smoothing * w)
    assert_close("cross_entropy_bwd", got, want, scale, flush=scale)
