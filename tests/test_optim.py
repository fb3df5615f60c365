"""Optimizers, their kernels and gradient clipping against independent closed forms.

Oracles: the update rules written out below in plain numpy (Kingma & Ba's form for Adam, the
PyTorch documentation's for SGD), the reference kernels, dense updates for sparse ones, a norm
computed on the concatenated dense gradients, and PyTorch itself when installed.
"""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numba
import numpy as np
import pytest
from hypothesis import given

import corenn
import kernels.cpu.adam as cpu_adam
import kernels.cpu.norms as cpu_norms
import kernels.reference.adam as ref_adam
import kernels.reference.norms as ref_norms
from corenn.optim import SGD, Adam, AdamW, clip_grad_norm

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)
STEPS = 4


def assert_close(actual, expected, rtol, atol=0.0, what=""):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def make_param(rng, shape, dtype=np.float64):
    return corenn.Parameter(rng.standard_normal(shape), dtype=dtype)


# -- closed forms, written independently of corenn ---------------------------------------------
def sgd_closed_form(p, grads, lr, momentum, dampening, weight_decay, nesterov):
    buf = None
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def adam_closed_form(p, grads, lr, betas, eps, weight_decay, decoupled, amsgrad):
    b1, b2 = betas
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    v_max = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_max = np.maximum(v_max, v)
        m_hat = m / (1 - b1**t)
        v_hat = (v_max if amsgrad else v) / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def run(opt_cls, p0, grads, **hyper):
    """Run an optimizer over ``grads`` from ``p0`` (float64); return the final parameter."""
    p = corenn.Parameter(p0.copy(), dtype=p0.dtype)
    opt = opt_cls([p], **hyper)
    for g in grads:
        p.grad = g
        opt.step()
    return p.data


# -- dense updates against closed forms --------------------------------------------------------
@given(
    shape=shapes,
    seed=seeds,
    momentum=st.sampled_from([0.0, 0.9]),
    dampening=st.sampled_from([0.0, 0.3]),
    weight_decay=st.sampled_from([0.0, 0.05]),
    nesterov=st.booleans(),
)
def test_sgd_matches_closed_form(shape, seed, momentum, dampening, weight_decay, nesterov):
    nesterov = nesterov and momentum > 0 and dampening == 0
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(STEPS)]
    hyper = dict(
        lr=0.1,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
    )
    assert_close(
        run(SGD, p0, grads, **hyper),
        sgd_closed_form(p0, grads, **hyper),
        rtol=1e-12,
        atol=1e-14,
        what=f"SGD {hyper}",
    )


@given(
    shape=shapes,
    seed=seeds,
    decoupled=st.booleans(),
    amsgrad=st.booleans(),
    weight_decay=st.sampled_from([0.0, 0.1]),
    betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)]),
)
def test_adam_matches_closed_form(shape, seed, decoupled, amsgrad, weight_decay, betas):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(STEPS)]
    hyper = dict(lr=0.01, betas=betas, eps=1e-8, weight_decay=weight_decay, amsgrad=amsgrad)
    assert_close(
        run(AdamW if decoupled else Adam, p0, grads, **hyper),
        adam_closed_form(p0, grads, decoupled=decoupled, **hyper),
        rtol=1e-10,
        atol=1e-13,
        what=f"{'AdamW' if decoupled else 'Adam'} {hyper}",
    )


TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,hyper", TORCH_CASES)
def test_matches_torch(name, hyper, dtype, rng):
    torch = pytest.importorskip("torch", reason="torch is not installed: no PyTorch oracle")
    ours_cls = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[name]
    theirs_cls = getattr(torch.optim, name)
    shapes_ = [(4, 3), (5,)]
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes_]
    ours = [corenn.Parameter(p.copy(), dtype=dtype) for p in p0]
    theirs = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in p0]
    # Two groups: the second overrides the learning rate.
    opt = ours_cls([{"params": ours[:1]}, {"params": ours[1:], "lr": 0.003}], **hyper)
    topt = theirs_cls([{"params": theirs[:1]}, {"params": theirs[1:], "lr": 0.003}], **hyper)
    for _ in range(5):
        for a, b, s in zip(ours, theirs, shapes_, strict=True):
            g = rng.standard_normal(s).astype(dtype)
            a.grad, b.grad = g, torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    rtol = 1e-6 if dtype == np.float64 else 1e-5
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert_close(a.data, b.detach().numpy(), rtol=rtol, atol=rtol, what=f"{name} param {i}")


def test_lazy_adam_matches_torch_sparse_adam(rng):
    """Lazy semantics equal torch.optim.SparseAdam (which places eps after the bias correction)."""
    torch = pytest.importorskip("torch", reason="torch is not installed: no PyTorch oracle")
    table = rng.standard_normal((8, 3))
    ours = corenn.Parameter(table.copy(), dtype=np.float64)
    theirs = torch.nn.Parameter(torch.from_numpy(table.copy()))
    opt, topt = Adam([ours], lr=0.01), torch.optim.SparseAdam([theirs], lr=0.01)
    for _ in range(4):
        rows = rng.integers(0, 8, size=5)
        values = rng.standard_normal((5, 3))
        ours.grad = corenn.RowSparse(rows, values, (8, 3))
        theirs.grad = torch.sparse_coo_tensor(
            torch.from_numpy(rows)[None], torch.from_numpy(values), (8, 3), check_invariants=True
        )
        opt.step()
        topt.step()
    assert_close(ours.data, theirs.detach().numpy(), rtol=1e-6, atol=1e-8, what="lazy Adam")


# -- kernels against their reference ----------------------------------------------------------
kernel_flags = dict(
    seed=seeds,
    dtype=st.sampled_from([np.float32, np.float64]),
    step=st.integers(1, 50),
    decoupled=st.booleans(),
    amsgrad=st.booleans(),
)


def adam_state(rng, shape, dtype, amsgrad):
    p, g, m = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    v = rng.random(shape).astype(dtype)
    vmax = v + rng.random(shape).astype(dtype) if amsgrad else np.empty((0,) * len(shape), dtype)
    return [p, g, m, v, vmax]


def assert_twins_agree(ours, ref, what):
    """The twins round identically (same operation order, no fastmath): compare bit for bit."""
    for name, a, b in zip(["p", "g", "m", "v", "vmax"], ours, ref, strict=True):
        diff = np.max(np.abs(a - b), initial=0.0)
        assert np.array_equal(a, b), f"{what}: {name} differs from the reference by up to {diff}"


@given(n=st.integers(0, 40), **kernel_flags)
def test_adam_step_kernel_matches_reference(n, seed, dtype, step, decoupled, amsgrad):
    rng = np.random.default_rng(seed)
    ours = adam_state(rng, (n,), dtype, amsgrad)
    ref = [a.copy() for a in ours]
    args = (step, 0.01, 0.9, 0.99, 1e-8, 0.1, decoupled, amsgrad)
    cpu_adam.adam_step(*ours, *args)
    ref_adam.adam_step(*ref, *args)
    assert_twins_agree(ours, ref, "adam_step")


@given(
    rows_mask=st.lists(st.booleans(), min_size=1, max_size=8), d=st.integers(1, 4), **kernel_flags
)
def test_adam_step_rows_kernel_matches_reference(
    rows_mask, d, seed, dtype, step, decoupled, amsgrad
):
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(rows_mask).astype(np.int64)
    p, _, m, v, vmax = adam_state(rng, (len(rows_mask), d), dtype, amsgrad)
    g = rng.standard_normal((len(rows), d)).astype(dtype)
    ours = [p, rows, g, m, v, vmax]
    ref = [a.copy() for a in ours]
    p0 = p.copy()
    args = (step, 0.01, 0.9, 0.99, 1e-8, 0.1, decoupled, amsgrad)
    cpu_adam.adam_step_rows(*ours, *args)
    ref_adam.adam_step_rows(*ref, *args)
    untouched = ~np.asarray(rows_mask)
    assert np.array_equal(p[untouched], p0[untouched]), "an untouched row moved"
    assert_twins_agree(
        [ours[i] for i in (0, 2, 3, 4, 5)],
        [ref[i] for i in (0, 2, 3, 4, 5)],
        "adam_step_rows",
    )


@pytest.mark.parametrize("amsgrad", [False, True])
def test_updates_on_thread_blocks_match_the_reference(amsgrad, rng, monkeypatch):
    """Large Adam steps and sums of squares run one block per thread: forced here onto 3 blocks
    of small arrays, they give the reference's results."""
    monkeypatch.setattr(cpu_adam, "MIN_BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(cpu_norms, "MIN_BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 3)
    args = (3, 0.01, 0.9, 0.99, 1e-8, 0.1, False, amsgrad)
    ours = adam_state(rng, (10,), np.float32, amsgrad)
    ref = [a.copy() for a in ours]
    cpu_adam.adam_step(*ours, *args)
    ref_adam.adam_step(*ref, *args)
    assert_twins_agree(ours, ref, "adam_step on 3 blocks")
    p, _, m, v, vmax = adam_state(rng, (7, 3), np.float64, amsgrad)
    rows, g = np.array([0, 2, 3, 6]), rng.standard_normal((4, 3))
    ours, ref = [p, m, v, vmax], [p.copy(), m.copy(), v.copy(), vmax.copy()]
    cpu_adam.adam_step_rows(ours[0], rows, g, *ours[1:], *args)
    ref_adam.adam_step_rows(ref[0], rows, g, *ref[1:], *args)
    assert_twins_agree(
        [ours[0], g, *ours[1:]], [ref[0], g, *ref[1:]], "adam_step_rows on 3 blocks"
    )
    x = rng.standard_normal(10).astype(np.float32)
    assert cpu_norms.sum_squares(x) == pytest.approx(ref_norms.sum_squares(x), rel=1e-12)


@pytest.mark.parametrize("impl", [cpu_adam.adam_step_rows, ref_adam.adam_step_rows])
@pytest.mark.parametrize("rows", [[1, 1], [2, 0], [0, 4]])
def test_adam_step_rows_rejects_bad_rows(impl, rows):
    p = np.zeros((4, 2))
    with pytest.raises(ValueError, match="strictly increasing"):
        impl(
            p,
            np.array(rows),
            np.ones((2, 2)),
            p.copy(),
            p.copy(),
            np.empty((0, 0)),
            1,
            0.1,
            0.9,
            0.99,
            1e-8,
            0.0,
            False,
            False,
        )


@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
        elements=st.floats(-1e3, 1e3, width=32),
    )
)
def test_sum_squares_kernel_matches_reference(x):
    expected = ref_norms.sum_squares(x)
    assert expected == pytest.approx(float(np.sum(x.astype(np.float64) ** 2)), rel=1e-12)
    assert cpu_norms.sum_squares(x) == pytest.approx(expected, rel=1e-12, abs=1e-300)


# -- row-sparse (lazy) updates ----------------------------------------------------------------
def sparse_grad(rng, rows, shape):
    """A RowSparse gradient over ``rows`` with some rows repeated (summed when coalesced)."""
    ids = np.concatenate([rows, rng.choice(rows, size=min(2, len(rows)))]) if len(rows) else rows
    ids = rng.permutation(ids)
    return corenn.RowSparse(ids.astype(np.int64), rng.standard_normal((len(ids), shape[1])), shape)


@given(
    seed=seeds,
    n_rows=st.integers(1, 6),
    d=st.integers(1, 3),
    opt=st.sampled_from(
        [
            (Adam, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
            (AdamW, dict(lr=0.01)),
            (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
            (SGD, dict(lr=0.1)),
        ]
    ),
    coalesce_first=st.booleans(),
)
def test_sparse_equals_dense_when_every_row_is_touched(seed, n_rows, d, opt, coalesce_first):
    cls, hyper = opt
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((n_rows, d))
    sparse_p, dense_p = corenn.Parameter(table.copy()), corenn.Parameter(table.copy())
    sparse_opt, dense_opt = cls([sparse_p], **hyper), cls([dense_p], **hyper)
    for _ in range(STEPS):
        g = sparse_grad(rng, np.arange(n_rows), (n_rows, d))
        g = g.coalesce() if coalesce_first else g  # sorted unique rows are used as they are
        sparse_p.grad, dense_p.grad = g, g.to_dense()
        sparse_opt.step()
        dense_opt.step()
    assert_close(sparse_p.data, dense_p.data, rtol=1e-12, atol=1e-14, what=f"{cls.__name__}")


@given(
    seed=seeds,
    mask=st.lists(st.booleans(), min_size=2, max_size=8),
    cls=st.sampled_from([Adam, AdamW, SGD]),
)
def test_sparse_step_touches_only_its_rows(seed, mask, cls):
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(mask)
    table = rng.standard_normal((len(mask), 3))
    hyper = dict(lr=0.05, weight_decay=0.1) | ({"momentum": 0.9} if cls is SGD else {})
    sparse_p, dense_p = corenn.Parameter(table.copy()), corenn.Parameter(table.copy())
    sparse_opt, dense_opt = cls([sparse_p], **hyper), cls([dense_p], **hyper)
    g = sparse_grad(rng, rows, table.shape)
    sparse_p.grad, dense_p.grad = g, g.to_dense()
    sparse_opt.step()
    dense_opt.step()
    # One step: the touched rows follow the dense update exactly.
    assert_close(sparse_p.data[rows], dense_p.data[rows], rtol=1e-12, atol=1e-14, what="touched")
    # Untouched rows never move, step after step (lazy), even with momentum and weight decay.
    for _ in range(2):
        sparse_p.grad = corenn.RowSparse(rows, rng.standard_normal((len(rows), 3)), table.shape)
        sparse_opt.step()
    untouched = ~np.asarray(mask)
    assert np.array_equal(sparse_p.data[untouched], table[untouched]), "an untouched row moved"


# -- gradient clipping ------------------------------------------------------------------------
@given(
    seed=seeds,
    norm_type=st.sampled_from([2.0, 1.0, 3.0, math.inf]),
    max_norm=st.floats(0.01, 20.0),
    shape=shapes,
)
def test_clip_grad_norm_matches_hand_computed_norm(seed, norm_type, max_norm, shape):
    rng = np.random.default_rng(seed)
    dense = make_param(rng, shape)
    table = make_param(rng, (6, 2))
    no_grad = make_param(rng, (2,))
    dense.grad = rng.standard_normal(shape)
    table.grad = corenn.RowSparse(np.array([4, 1, 4]), rng.standard_normal((3, 2)), (6, 2))
    grads = [dense.grad.copy(), table.grad.to_dense()]
    expected = np.linalg.norm(np.concatenate([g.ravel() for g in grads]), ord=norm_type)
    total = clip_grad_norm([dense, table, no_grad], max_norm, norm_type)
    assert total == pytest.approx(expected, rel=1e-12), f"total norm {total} != {expected}"
    scale = min(1.0, max_norm / (expected + 1e-6))
    assert_close(dense.grad, grads[0] * scale, rtol=1e-12, what="dense gradient scaling")
    assert_close(table.grad.to_dense(), grads[1] * scale, rtol=1e-12, what="sparse scaling")
    assert no_grad.grad is None
    if scale < 1:  # the clipped gradients have the requested norm
        clipped = np.concatenate([dense.grad.ravel(), table.grad.to_dense().ravel()])
        assert np.linalg.norm(clipped, ord=norm_type) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_float32_uses_kernel_and_keeps_dtype(rng):
    p = make_param(rng, (1000,), dtype=np.float32)
    p.grad = rng.standard_normal(1000).astype(np.float32)
    expected = float(np.sqrt(np.sum(p.grad.astype(np.float64) ** 2)))
    assert clip_grad_norm(p, 1.0) == pytest.approx(expected, rel=1e-12)
    assert p.grad.dtype == np.float32
    assert float(np.linalg.norm(p.grad.astype(np.float64))) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_does_not_modify_shared_gradients(rng):
    a, b = make_param(rng, (3,)), make_param(rng, (3,))
    shared = np.full(3, 10.0)
    a.grad = b.grad = shared
    clip_grad_norm([a, b], 1.0)
    assert np.all(shared == 10.0), "a gradient array was scaled in place"
    assert np.linalg.norm(np.concatenate([a.grad, b.grad])) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"max_norm": -1.0}, "max_norm"), ({"max_norm": 1.0, "norm_type": 0.0}, "norm_type")],
)
def test_clip_grad_norm_rejects_bad_arguments(kwargs, match, rng):
    p = make_param(rng, (2,))
    p.grad = np.ones(2)
    with pytest.raises(ValueError, match=match):
        clip_grad_norm([p], **kwargs)


# -- state dicts ------------------------------------------------------------------------------
STATEFUL = [
    (SGD, dict(lr=0.1, momentum=0.9)),
    (Adam, dict(lr=0.01, amsgrad=True)),
    (AdamW, dict(lr=0.01)),
]


@pytest.mark.parametrize("cls,hyper", STATEFUL)
def test_state_dict_save_load_resumes_identically(cls, hyper, rng, tmp_path):
    table = rng.standard_normal((5, 2))
    grads = [rng.standard_normal((5, 2)) for _ in range(4)]
    sparse = corenn.RowSparse(np.array([3, 0]), rng.standard_normal((2, 2)), (5, 2))
    a, b = corenn.Parameter(table.copy()), corenn.Parameter(table.copy())
    skipped = corenn.Parameter(np.zeros(3))  # never has a gradient: no state
    opt_a = cls([a, skipped], **hyper)
    for g in [grads[0], sparse]:
        a.grad = g
        opt_a.step()
    corenn.save({"optim": opt_a.state_dict()}, tmp_path / "optim.npz")
    b.data[...] = a.data
    opt_b = cls([b, corenn.Parameter(np.zeros(3))], lr=123.0)
    opt_b.load_state_dict(corenn.load(tmp_path / "optim.npz")["optim"])
    assert opt_b.param_groups[0]["lr"] == hyper["lr"]
    for g in grads[1:]:
        a.grad, b.grad = g, g
        opt_a.step()
        opt_b.step()
    assert np.array_equal(a.data, b.data), (
        f"resumed run differs by {np.abs(a.data - b.data).max()}"
    )


def stepped_adam(rng):
    p = corenn.Parameter(rng.standard_normal((3, 2)))
    opt = Adam([p], lr=0.01)
    p.grad = rng.standard_normal((3, 2))
    opt.step()
    return opt


def _wrong_shape(sd):
    sd["state"]["0"]["exp_avg"] = np.zeros((2, 3))


def _missing_state(sd):
    del sd["state"]["0"]["exp_avg_sq"]


def _extra_group(sd):
    sd["param_groups"].append(dict(sd["param_groups"][0]))


def _unknown_hyper(sd):
    sd["param_groups"][0]["momentum"] = 0.9


def _bad_index(sd):
    sd["state"]["7"] = sd["state"].pop("0")


@pytest.mark.parametrize(
    "corrupt,match",
    [
        (_wrong_shape, r"state\['0'\]\['exp_avg'\] has shape \(2, 3\)"),
        (_missing_state, "exp_avg_sq"),
        (_extra_group, "2 parameter groups"),
        (_unknown_hyper, "unexpected.*momentum"),
        (_bad_index, "'7' names no parameter"),
    ],
)
def test_load_state_dict_names_the_mismatch_and_changes_nothing(corrupt, match, rng):
    opt = stepped_adam(rng)
    before = opt.state_dict()
    bad = opt.state_dict()
    corrupt(bad)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for key, value in before["state"]["0"].items():
        assert np.array_equal(after["state"]["0"][key], value), f"state {key} changed"


def test_sgd_state_does_not_load_into_adam(rng):
    p = corenn.Parameter(rng.standard_normal(3))
    sgd = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(3)
    sgd.step()
    with pytest.raises(ValueError, match="hyperparameters"):
        Adam([p]).load_state_dict(sgd.state_dict())


# -- construction and bookkeeping -------------------------------------------------------------
@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda p: Adam([p], lr=-1.0), ValueError, "lr must be >= 0"),
        (lambda p: Adam([p], betas=(1.0, 0.9)), ValueError, "beta1 must be in"),
        (lambda p: Adam([p], eps=float("nan")), ValueError, "eps must be a number"),
        (lambda p: SGD([p], lr=0.1, nesterov=True), ValueError, "Nesterov"),
        (lambda p: SGD([p], lr=0.1, momentum=-0.5), ValueError, "momentum"),
        (lambda p: SGD([], lr=0.1), ValueError, "empty parameter list"),
        (lambda p: SGD([p, p], lr=0.1), ValueError, "more than one"),
        (lambda p: SGD([{"params": [p], "betas": 1}], lr=0.1), ValueError, "unknown"),
        (lambda p: SGD([p.data], lr=0.1), TypeError, "Tensors"),
    ],
)
def test_bad_construction_raises(make, error, match, rng):
    with pytest.raises(error, match=match):
        make(make_param(rng, (2,)))


def test_step_skips_parameters_without_gradient_and_zero_grad_clears(rng):
    a, b = make_param(rng, (3,)), make_param(rng, (3,))
    b_before = b.data.copy()
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    assert np.array_equal(b.data, b_before) and b not in opt.state
    assert opt.state[a]["step"] == 1
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_gradient_of_wrong_shape_raises(rng):
    p = make_param(rng, (3,))
    p.grad = np.ones(4)
    with pytest.raises(ValueError, match=r"gradient of shape \(4,\)"):
        SGD([p], lr=0.1).step()
