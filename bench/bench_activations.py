"""Activation and loss kernels, forward and backward: Numba twin vs numpy reference vs torch.

float32. Element-wise activations, binary cross-entropy and squared error on (4096, 1024);
softmax, log-softmax and cross-entropy on (2048, 4096) along the last axis (M = 2048 rows of
C = 4096 classes, no class weights, no smoothing; losses unreduced). Each kernel is one group:
``cpu`` (our Numba twin, skipped where none is shipped), ``reference`` (our numpy twin) and
``torch`` (the forward op, ``reduction="none"``; its backward through ``torch.autograd.grad`` on
a graph built once, ``retain_graph=True``, so only the backward runs in the timed call). Each
backward takes the same upstream gradient and saved tensors as ours. Compilation is excluded
by a warm-up call. Run:
``BENCH_THREADS=1 python -m pytest bench/bench_activations.py --benchmark-group-by=group``.
"""

import numpy as np
import pytest

from kernels import cpu, reference

ROWS, COLS = 4096, 1024  # element-wise kernels, bce, mse
M, C = 2048, 4096  # softmax family and cross-entropy


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)

    def normal(shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    x, g = normal((ROWS, COLS), 3.0), normal((ROWS, COLS))
    xs, gs = normal((M, C), 3.0), normal((M, C))
    t = rng.random((ROWS, COLS)).astype(np.float32)
    labels = rng.integers(0, C, M)
    return {
        "x": x,
        "g": g,
        "t": t,
        "y_sigmoid": reference.sigmoid_fwd(x),
        "y_tanh": reference.tanh_fwd(x),
        "xs": xs,
        "gs": gs,
        "y_softmax": reference.softmax_fwd(xs, -1),
        "y_log_softmax": reference.log_softmax_fwd(xs, -1),
        "labels": labels,
        "g_rows": normal(M),
    }


# kernel name -> the arguments of ours, by name in ``data`` (ints and None passed as they are)
OURS = {
    "relu_fwd": ("x",),
    "relu_bwd": ("g", "x"),
    "sigmoid_fwd": ("x",),
    "sigmoid_bwd": ("g", "y_sigmoid"),
    "tanh_fwd": ("x",),
    "tanh_bwd": ("g", "y_tanh"),
    "softmax_fwd": ("xs", -1),
    "softmax_bwd": ("gs", "y_softmax", -1),
    "log_softmax_fwd": ("xs", -1),
    "log_softmax_bwd": ("gs", "y_log_softmax", -1),
    "bce_with_logits_fwd": ("x", "t", None, None),
    "bce_with_logits_bwd": ("g", "x", "t", None, None),
    "cross_entropy_fwd": ("xs", "labels", None, -100, 0.0),
    "cross_entropy_bwd": ("g_rows", "y_log_softmax", "labels", None, -100, 0.0),
    "mse_fwd": ("x", "t"),
    "mse_bwd": ("g", "x", "t"),
}


def _args(data, names):
    return [data[n] if isinstance(n, str) else n for n in names]


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("name", list(OURS))
def test_ours(benchmark, threads, data, name, backend):
    module = cpu if backend == "cpu" else reference
    if not hasattr(module, name):
        pytest.skip(f"no Numba twin of {name}: it did not beat the reference (dispatch uses it)")
    fn, args = getattr(module, name), _args(data, OURS[name])
    fn(*args)  # warm-up: Numba compilation (or cache load)
    benchmark.group = name
    benchmark.extra_info["threads"] = threads
    benchmark(fn, *args)


def _torch_case(torch, data, name):
    """The torch call equivalent to kernel ``name``, as a function of no arguments."""
    F = torch.nn.functional
    t_ = {k: torch.from_numpy(v) for k, v in data.items()}
    ops = {
        "relu": (lambda x: torch.relu(x), "x", "g"),
        "sigmoid": (lambda x: torch.sigmoid(x), "x", "g"),
        "tanh": (lambda x: torch.tanh(x), "x", "g"),
        "softmax": (lambda x: torch.softmax(x, -1), "xs", "gs"),
        "log_softmax": (lambda x: torch.log_softmax(x, -1), "xs", "gs"),
        "bce_with_logits": (
            lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
            "x",
            "g",
        ),
        "cross_entropy": (
            lambda x: F.cross_entropy(x, t_["labels"], reduction="none"),
            "xs",
            "g_rows",
        ),
        "mse": (lambda x, t: F.mse_loss(x, t, reduction="none"), "x", "g"),
    }
    op, direction = name.rsplit("_", 1)
    fn, x_name, g_name = ops[op]
    inputs = [t_[x_name]] + ([t_["t"]] if op in ("bce_with_logits", "mse") else [])
    if direction == "fwd":
        return lambda: fn(*inputs)
    leaves = [v.clone().requires_grad_(True) for v in inputs]
    out, grad = fn(*leaves), t_[g_name]
    return lambda: torch.autograd.grad(out, leaves, grad, retain_graph=True)


@pytest.mark.parametrize("name", list(OURS))
def test_torch(benchmark, torch, threads, data, name):
    step = _torch_case(torch, data, name)
    step()
    benchmark.group = name
    benchmark.extra_info["threads"] = threads
    benchmark(step)
