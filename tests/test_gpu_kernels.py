"""The GPU kernels (kernels.gpu) against their reference twins, at small shapes.

Every test body runs once per device of ``DEVICES``: ``"simulator"`` (Numba's CUDA simulator
running the ``numba.cuda`` kernels on host arrays; only in a process started with
``NUMBA_ENABLE_CUDASIM=1``, which tests/test_gpu_simulator.py starts in CI) and ``"gpu"``
(cupy arrays on a real device; skipped with the reason when there is none). The simulator
checks the kernels' logic, indexing and launch shapes, not their speed or float32 intrinsics.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels import reference as ref
from kernels.gpu import _device

DEVICES = ["simulator", "gpu"] if _device.simulated() else ["gpu"]
TOL = {
    np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13),
}


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "gpu" and not _device.available():
        pytest.skip("no GPU: cupy is not installed or CUDA reports no device")
    if request.param == "gpu" and _device.simulated():
        pytest.skip("a real device does not run under the CUDA simulator")
    import kernels.gpu

    return request.param, kernels.gpu


def put(device, array):
    """A copy of ``array`` on ``device`` (host arrays for the simulator)."""
    return _device.cupy_module().asarray(array) if device[0] == "gpu" else np.array(array)


def close(got, want, dtype=np.float64, what=""):
    got = _device.to_host(got)
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(got, want, **tol, err_msg=f"{what} differs from the reference")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("keep", [True, False])
def test_lstm_layer_forward_and_backward_match_the_reference(device, dtype, keep, rng):
    n, steps, inputs, hidden = 3, 4, 2, 3
    x = rng.standard_normal((n, steps, inputs)).astype(dtype)
    w_t = (0.5 * rng.standard_normal((inputs + hidden, 4 * hidden))).astype(dtype)
    bias = rng.standard_normal(4 * hidden).astype(dtype)
    lengths = np.array([4, 2, 1], np.int64)
    kept = steps if keep else 1

    def buffers():
        hs = np.zeros((kept + 1, n, hidden), dtype)
        cs = np.zeros((kept + 1, n, hidden), dtype)
        hs[0], cs[0] = rng_state
        return [
            hs,
            cs,
            np.zeros((kept, n, 4 * hidden), dtype),
            np.zeros((kept, n, hidden), dtype),
            np.zeros((kept, n, inputs + hidden), dtype),
            np.zeros((n, steps, hidden), dtype),
        ]

    rng_state = rng.standard_normal((2, n, hidden)).astype(dtype)
    want = buffers()
    ref.lstm_seq_fwd(x, w_t, bias, lengths, False, 2, *want)
    got = [put(device, b) for b in buffers()]
    args = [put(device, a) for a in (x, w_t, bias)]
    device[1].lstm_seq_fwd(*args, lengths, False, 2, *got)
    names = ["hs", "cs", "acts", "tanh_c", "xh", "y"]
    for name, g, w in zip(names, got, want, strict=True):
        if name != "xh" or keep:  # xh is only written (and read) when every step is kept
            close(g, w, dtype, name)
    if not keep:
        return
    hs, cs, acts, tanh_c, xh, y = want
    gy = rng.standard_normal(y.shape).astype(dtype)
    gh_n, gc_n = rng.standard_normal((2, n, hidden)).astype(dtype)
    grads = {}
    for name, run, on in (
        ("ref", ref.lstm_seq_bwd, lambda a: a),
        ("dev", device[1].lstm_seq_bwd, lambda a: put(device, a)),
    ):
        dc, dh = on(gc_n.copy()), on(np.zeros_like(gc_n))
        dx, dw, db = (
            on(np.zeros_like(x)),
            on(np.zeros_like(w_t.T)),
            on(np.zeros(4 * hidden, dtype)),
        )
        run(
            on(w_t),
            on(acts),
            on(tanh_c),
            on(cs),
            on(xh),
            lengths,
            on(gy),
            on(gh_n),
            dc,
            dh,
            False,
            2,
            dx,
            dw,
            db,
        )
        grads[name] = [_device.to_host(a) for a in (dx, dw, db, dc, dh)]
    for name, g, w in zip(
        ["dx", "dw", "db", "dc0", "dh0"], grads["dev"], grads["ref"], strict=True
    ):
        close(g, w, dtype, name)


def test_embedding_gather_and_deterministic_scatter_add(device, rng):
    weight = rng.standard_normal((6, 3))
    ids = np.array([4, 0, 4, 5, 0, 4], np.int64)  # repeated ids
    close(device[1].embedding_fwd(put(device, weight), put(device, ids)), weight[ids])
    values = rng.standard_normal((6, 3)).astype(np.float32)
    unique, sums = device[1].scatter_rows_sum(put(device, ids), put(device, values))
    want_unique, want_sums = ref.scatter_rows_sum(ids, values)
    np.testing.assert_array_equal(_device.to_host(unique), want_unique)
    np.testing.assert_array_equal(_device.to_host(sums), want_sums)  # same order of additions


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_dense_and_row_sparse_steps_match_the_reference(device, decoupled, amsgrad, rng):
    args = dict(
        lr=0.01,
        beta1=0.9,
        beta2=0.99,
        eps=1e-8,
        weight_decay=0.1,
        decoupled=decoupled,
        amsgrad=amsgrad,
    )
    state = [rng.standard_normal((4, 3)), np.zeros((4, 3)), np.zeros((4, 3)), np.zeros((4, 3))]
    dense_ref = [a.reshape(-1).copy() for a in state]
    rows_ref = [a.copy() for a in state]
    dense_dev = [put(device, a.reshape(-1)) for a in state]
    rows_dev = [put(device, a) for a in state]
    rows = np.array([0, 2, 3], np.int64)
    for step in (1, 2, 3):
        g = rng.standard_normal((4, 3))
        p, m, v, vmax = dense_ref
        ref.adam_step(p, g.reshape(-1), m, v, vmax, step, **args)
        p, m, v, vmax = dense_dev
        device[1].adam_step(p, put(device, g.reshape(-1)), m, v, vmax, step, **args)
        p, m, v, vmax = rows_ref
        ref.adam_step_rows(p, rows, g[rows], m, v, vmax, step, **args)
        p, m, v, vmax = rows_dev
        device[1].adam_step_rows(
            p, put(device, rows), put(device, g[rows]), m, v, vmax, step, **args
        )
    for name, g, w in zip(["p", "m", "v", "vmax"], dense_dev, dense_ref, strict=True):
        close(g, w, np.float64, f"dense {name}")
    for name, g, w in zip(["p", "m", "v", "vmax"], rows_dev, rows_ref, strict=True):
        close(g, w, np.float64, f"row-sparse {name}")
    with pytest.raises(ValueError, match="strictly increasing"):
        p, m, v, vmax = rows_dev
        device[1].adam_step_rows(
            p, put(device, rows[::-1].copy()), put(device, g[rows]), m, v, vmax, 4, **args
        )


def test_sum_of_squares_matches_the_reference(device, rng):
    x = rng.standard_normal((5, 7)).astype(np.float32)
    assert device[1].sum_squares(put(device, x)) == pytest.approx(ref.sum_squares(x), rel=1e-12)
    assert device[1].sum_squares(put(device, np.zeros((0, 3)))) == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activations_match_the_reference(device, dtype, rng):
    x = (4 * rng.standard_normal((3, 4))).astype(dtype)
    x[0, 0], x[1, 1] = 0.0, 60.0  # the kink, and a saturated input
    g = rng.standard_normal((3, 4)).astype(dtype)
    k = device[1]
    for name in ("relu", "sigmoid", "tanh"):
        fwd = getattr(ref, f"{name}_fwd")(x)
        close(getattr(k, f"{name}_fwd")(put(device, x)), fwd, dtype, f"{name}_fwd")
        saved = x if name == "relu" else fwd
        want = getattr(ref, f"{name}_bwd")(g, saved)
        close(
            getattr(k, f"{name}_bwd")(put(device, g), put(device, saved)),
            want,
            dtype,
            f"{name}_bwd",
        )
    for name in ("softmax", "log_softmax"):
        for axis in (0, 1):
            y = getattr(ref, f"{name}_fwd")(x, axis)
            close(getattr(k, f"{name}_fwd")(put(device, x), axis), y, dtype, f"{name}_fwd")
            want = getattr(ref, f"{name}_bwd")(g, y, axis)
            got = getattr(k, f"{name}_bwd")(put(device, g), put(device, y), axis)
            close(got, want, dtype, f"{name}_bwd axis {axis}")


@pytest.mark.parametrize("weighted", [False, True])
def test_losses_match_the_reference(device, weighted, rng):
    k = device[1]
    x = 3 * rng.standard_normal((4, 5))
    x[0, 0] = 1e4  # finite loss and gradient far out
    t = rng.uniform(size=(4, 5))
    w = rng.uniform(size=(1, 5)) if weighted else None
    pw = rng.uniform(0.5, 2, size=5) if weighted else None
    g = rng.standard_normal((4, 5))
    on = [None if a is None else put(device, a) for a in (x, t, w, pw, g)]
    close(k.bce_with_logits_fwd(*on[:4]), ref.bce_with_logits_fwd(x, t, w, pw), what="bce")
    for got, want in zip(
        k.bce_with_logits_bwd(on[4], *on[:4]), ref.bce_with_logits_bwd(g, x, t, w, pw), strict=True
    ):
        close(got, want, what="bce gradient")
    close(k.mse_fwd(on[0], on[1]), ref.mse_fwd(x, t), what="mse")
    for got, want in zip(k.mse_bwd(on[4], on[0], on[1]), ref.mse_bwd(g, x, t), strict=True):
        close(got, want, what="mse gradient")
    q = rng.uniform(size=5)  # one quantile level per column, broadcast over the rows
    t_kink = np.where(rng.uniform(size=x.shape) < 0.3, x, t)  # some targets at the kink
    on_q, on_t = put(device, q), put(device, t_kink)
    close(k.pinball_fwd(on[0], on_t, on_q), ref.pinball_fwd(x, t_kink, q), what="pinball")
    for got, want in zip(
        k.pinball_bwd(on[4], on[0], on_t, on_q), ref.pinball_bwd(g, x, t_kink, q), strict=True
    ):
        close(got, want, what="pinball gradient")
    classes = np.array([2, -100, 0, 4], np.int64)  # one ignored row
    cw = rng.uniform(size=5) if weighted else None
    for smoothing in (0.0, 0.2):
        want = ref.cross_entropy_fwd(x, classes, cw, -100, smoothing)
        cw_dev = None if cw is None else put(device, cw)
        got = k.cross_entropy_fwd(put(device, x), put(device, classes), cw_dev, -100, smoothing)
        for name, a, b in zip(["loss", "row weight", "log-probabilities"], got, want, strict=True):
            close(a, b, what=f"cross-entropy {name}")
        g_rows = rng.standard_normal(4)
        want_dx = ref.cross_entropy_bwd(g_rows, want[2], classes, cw, -100, smoothing)
        got_dx = k.cross_entropy_bwd(
            put(device, g_rows), got[2], put(device, classes), cw_dev, -100, smoothing
        )
        close(got_dx, want_dx, what="cross-entropy gradient")


SPECS = [
    ("abZ,bcZ->acZ", [(2, 3, 4), (3, 2, 4)]),  # sums out b, case axis last
    ("ab,b->", [(2, 3), (3,)]),  # scalar result
    ("a,ab,bc->c", [(2,), (2, 3), (3, 2)]),  # three operands
    ("aa->a", [(3, 3)]),  # a repeated axis: the diagonal
    ("ab->ab", [(2, 0)]),  # no entries
]


@pytest.mark.parametrize("spec,shapes", SPECS)
def test_factor_sum_product_matches_einsum(device, spec, shapes, rng):
    tables = [rng.uniform(size=s) for s in shapes]
    got = device[1].factor_sum_product(spec, *[put(device, t) for t in tables])
    close(got, ref.factor_sum_product(spec, *tables), what=spec)


def test_factor_max_product_and_gather_match_the_reference(device, rng):
    a, b = rng.uniform(size=(2, 3, 4)), rng.uniform(size=(3, 2))
    a[1, 0, 0] = a[0, 0, 0] = 0.9  # a tie keeps the lower index
    b[0, 0] = 1.0
    best, arg = device[1].factor_max_product("abZ,bc->acZ", put(device, a), put(device, b))
    want_best, want_arg = ref.factor_max_product("abZ,bc->acZ", a, b)
    close(best, want_best, what="max")
    np.testing.assert_array_equal(_device.to_host(arg), want_arg)
    table = rng.uniform(size=(2, 3, 6))
    rows = np.array([5, 0, -1, 2], np.int64)
    got = device[1].factor_gather(put(device, table), put(device, rows))
    close(got, ref.factor_gather(table, rows), what="gather")


def test_every_array_kernel_has_a_gpu_twin():
    """A cupy array reaching any kernel but the planning ones (which take host integer
    problems, never device arrays) finds a GPU implementation."""
    import kernels.gpu
    from kernels.reference import planning, steps

    host_only = set(planning.__all__) | set(steps.__all__)
    names = {n for n in dir(ref) if n.endswith(("_fwd", "_bwd")) or n in _public(ref)}
    missing = sorted(n for n in names - host_only if not hasattr(kernels.gpu, n))
    assert not missing, f"no GPU kernel for {missing}"


def _public(module) -> set[str]:
    import importlib
    import pkgutil

    found = set()
    for info in pkgutil.iter_modules(module.__path__):
        found |= set(
            getattr(importlib.import_module(f"{module.__name__}.{info.name}"), "__all__", ())
        )
    return found
