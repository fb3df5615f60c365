"""Finite-difference gradient checks (public): compare backprop with central differences.

For inputs x_1..x_n, outputs y_1..y_m and a random upstream gradient v_k per output, the scalar
L = sum_k <v_k, y_k> has analytic gradients from one ``backward``; each is compared with
(L(x + eps e_i) - L(x - eps e_i)) / (2 eps) element by element (small inputs) or along random
directions (large inputs, as Chainer's directional check). Run in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from corenn.autograd import no_grad
from corenn.sparse import RowSparse
from corenn.tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients differ; the message says where and by how much."""


def _as_tuple(out: Any) -> tuple[Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _flatten_outputs(out: Any) -> tuple[Tensor, ...]:
    flat: list[Tensor] = []
    for o in _as_tuple(out):
        if isinstance(o, (tuple, list)):
            flat.extend(_flatten_outputs(o))
        elif isinstance(o, Tensor):
            flat.append(o)
    return tuple(flat)


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    *,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    rng: np.random.Generator | None = None,
    max_elementwise: int = 512,
    n_directions: int = 8,
) -> None:
    """Check ``fn``'s backward against central differences, raising :class:`GradcheckError`.

    Parameters
    ----------
    fn : callable
        Takes the ``inputs`` (Tensors) and returns a Tensor or a (nested) tuple of Tensors.
    inputs : sequence of Tensor
        float64 tensors; those with ``requires_grad`` are checked.
    eps, atol, rtol : float
        Step and tolerances: ``|analytic - numeric| <= atol + rtol * |numeric|``.
    rng : numpy.random.Generator, optional
        Source of the upstream gradient and directions (default seed 0).
    max_elementwise : int
        Inputs with at most this many elements are checked element by element; larger ones along
        ``n_directions`` random directions.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    checked = [t for t in inputs if t.requires_grad]
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {t.dtype}")
        t.grad = None
    outs = _flatten_outputs(fn(*inputs))
    float_outs = [o for o in outs if o.dtype.kind == "f"]
    upstream = [rng.standard_normal(o.shape) for o in float_outs]

    def scalar() -> float:
        with no_grad():
            ys = [o for o in _flatten_outputs(fn(*inputs)) if o.dtype.kind == "f"]
        return float(sum(np.sum(y.data * v) for y, v in zip(ys, upstream)))

    total = None
    for o, v in zip(float_outs, upstream):
        if o.requires_grad:
            term = (o * Tensor(v)).sum()
            total = term if total is None else total + term
    if total is None:
        raise GradcheckError("no output depends on an input that requires grad")
    total.backward()

    for k, t in enumerate(inputs):
        if not t.requires_grad:
            continue
        grad = t.grad
        if grad is None:
            analytic = np.zeros(t.shape)
        elif isinstance(grad, RowSparse):
            analytic = grad.to_dense()
        else:
            analytic = np.asarray(grad)
        if analytic.shape != t.shape:
            raise GradcheckError(f"input {k}: gradient shape {analytic.shape} != {t.shape}")
        flat = t.data.reshape(-1)
        if t.size <= max_elementwise:
            numeric = np.empty(t.size)
            for i in range(t.size):
                old = flat[i]
                flat[i] = old + eps
                plus = scalar()
                flat[i] = old - eps
                minus = scalar()
                flat[i] = old
                numeric[i] = (plus - minus) / (2 * eps)
            _compare(k, analytic.reshape(-1), numeric, atol, rtol, elementwise=True)
        else:
            base = t.data.copy()
            dirs = rng.standard_normal((n_directions, t.size))
            numeric = np.empty(n_directions)
            for d in range(n_directions):
                step = dirs[d].reshape(t.shape) * eps
                t.data[...] = base + step
                plus = scalar()
                t.data[...] = base - step
                minus = scalar()
                numeric[d] = (plus - minus) / (2 * eps)
            t.data[...] = base
            _compare(k, dirs @ analytic.reshape(-1), numeric, atol, rtol, elementwise=False)


def _compare(k: int, analytic: np.ndarray, numeric: np.ndarray, atol, rtol, elementwise) -> None:
    err = np.abs(analytic - numeric)
    bad = err > atol + rtol * np.abs(numeric)
    if bad.any():
        i = int(np.argmax(err - (atol + rtol * np.abs(numeric))))
        what = "element" if elementwise else "direction"
        raise GradcheckError(
            f"input {k}: {int(bad.sum())} of {bad.size} {what}s differ; worst at {what} {i}: "
            f"analytic {analytic[i]:.10g} vs numeric {numeric[i]:.10g} (|diff| {err[i]:.3g})"
        )
