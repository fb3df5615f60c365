"""Reverse-mode automatic differentiation over a tape of :class:`Function` nodes.

A Function's ``forward`` receives raw arrays and returns an array (or a tuple of arrays); its
``backward`` receives the gradients of its outputs (raw arrays, never ``None``) and returns one
gradient per input (``None`` where the input needs none). ``forward`` saves exactly what
``backward`` needs. Backpropagation visits Functions in reverse topological order with an explicit
stack, so graph depth is not limited by Python's recursion limit.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from corenn.backend import get_array_module

if TYPE_CHECKING:  # pragma: no cover
    from corenn.tensor import Tensor

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether operations are currently recorded for backpropagation."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def _grad_mode(enabled: bool):
    previous = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad():
    """Context manager (and decorator) that disables recording: results need no gradient."""
    return _grad_mode(False)


def enable_grad():
    """Context manager that re-enables recording inside :func:`no_grad`."""
    return _grad_mode(True)


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``.

    The one helper that undoes broadcasting for every element-wise op.
    """
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    out = grad.sum(axis=axes, keepdims=True) if axes else grad
    return out.reshape(shape)


class Function:
    """One differentiable operation; subclass and define ``forward`` and ``backward``.

    Positional arguments of :meth:`apply` are the differentiable inputs (Tensors, arrays or
    scalars); keyword arguments are configuration passed to ``forward`` unchanged.
    """

    inputs: tuple[Tensor, ...]
    needs_input_grad: tuple[bool, ...]
    saved: tuple[Any, ...]

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep the arrays (or other values) that ``backward`` needs."""
        self.saved = arrays

    def forward(self, *arrays: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grads: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **kwargs: Any) -> Any:
        """Run ``forward`` on the inputs' arrays and record the node when a gradient is needed.

        Returns a Tensor, or a tuple of Tensors when ``forward`` returns a tuple.
        """
        from corenn.tensor import Tensor

        fn = cls()
        tensors = tuple(
            x if isinstance(x, Tensor) else Tensor._constant(x, inputs) for x in inputs
        )
        fn.needs_input_grad = tuple(t.requires_grad for t in tensors)
        raw = fn.forward(*(t.data for t in tensors), **kwargs)
        record = is_grad_enabled() and any(fn.needs_input_grad)
        multiple = isinstance(raw, tuple)
        outs = tuple(Tensor(r, requires_grad=record) for r in (raw if multiple else (raw,)))
        if record:
            fn.inputs = tensors
            fn.out_meta = tuple((o.shape, o.dtype) for o in outs)
            for i, o in enumerate(outs):
                o.creator = fn
                o.output_index = i
        else:
            fn.saved = ()
        return outs if multiple else outs[0]


def _topological_functions(root: Function) -> list[Function]:
    """Functions reachable from ``root`` in an order where each comes after all its consumers."""
    order: list[Function] = []
    visited: set[int] = set()
    stack: list[tuple[Function, bool]] = [(root, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t.creator is not None and id(t.creator) not in visited:
                stack.append((t.creator, False))
    order.reverse()
    return order


def accumulate(existing: Any, new: Any) -> Any:
    """Sum two gradients without modifying either (``None`` means zero)."""
    if existing is None:
        return new
    return existing + new


def backward(root: Tensor, grad: Any = None) -> None:
    """Backpropagate from ``root``; leaf tensors that require grad accumulate into ``.grad``.

    Parameters
    ----------
    root : Tensor
        The output to differentiate. Without ``grad`` it must hold a single element.
    grad : array, optional
        Upstream gradient, same shape as ``root``.
    """
    xp = get_array_module(root.data)
    if grad is None:
        if root.data.size != 1:
            raise ValueError(
                f"backward() without a gradient needs a single-element output; got shape "
                f"{root.shape}: pass grad= of that shape"
            )
        grad = xp.ones_like(root.data)
    else:
        grad = xp.asarray(getattr(grad, "data", grad), dtype=root.dtype)
        if grad.shape != root.shape:
            raise ValueError(f"grad shape {grad.shape} does not match output shape {root.shape}")
    if not root.requires_grad:
        raise RuntimeError("backward() on a tensor that does not require grad")
    if root.creator is None:
        root.grad = accumulate(root.grad, grad)
        return
    pending: dict[int, list[Any]] = {id(root.creator): [None] * len(root.creator.out_meta)}
    pending[id(root.creator)][root.output_index] = grad
    for fn in _topological_functions(root.creator):
        grads = pending.pop(id(fn), None)
        if grads is None:
            continue
        grads = [
            g if g is not None else xp.zeros(shape, dtype=dtype)
            for g, (shape, dtype) in zip(grads, fn.out_meta)
        ]
        in_grads = fn.backward(*grads)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for t, g, needed in zip(fn.inputs, in_grads, fn.needs_input_grad):
            if not needed or g is None:
                continue
            if t.creator is None:
                t.grad = accumulate(t.grad, _cast(g, t.dtype))
            else:
                slot = pending.setdefault(id(t.creator), [None] * len(t.creator.out_meta))
                slot[t.output_index] = accumulate(slot[t.output_index], g)


def _cast(g: Any, dtype: Any) -> Any:
    return g if g.dtype == dtype else g.astype(dtype)
