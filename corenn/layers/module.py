"""Module: the container of parameters and submodules, registered by attribute assignment."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from corenn.backend import check_device, device_of, get_array_module, to_device
from corenn.sparse import RowSparse
from corenn.tensor import Parameter, Tensor


class StateDictError(KeyError):
    """A state dict does not fit a module: a missing, unexpected or misshapen key (named)."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class Module:
    """Base class of layers and models.

    Assigning a :class:`~corenn.Parameter` or a Module to an attribute registers it; buffers
    (non-trainable arrays saved in the state dict) are registered with :meth:`register_buffer`.
    Subclasses define ``forward``; calling the module calls ``forward``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__()")
        for store in (self._parameters, self._modules, self._buffers):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array: Any) -> None:
        """Register a non-trainable array (kept in ``state_dict``)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- traversal --------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted name, parameter)`` for this module and its submodules, once each."""
        seen: set[int] = set()
        for mod_name, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        for mod_name, m in self.named_modules():
            for name, b in m._buffers.items():
                yield (f"{mod_name}.{name}" if mod_name else name), b

    # -- modes ------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # -- device -----------------------------------------------------------------------------
    def to(self, device: str) -> Module:
        """Move every parameter, its gradient and every buffer to ``device``, in place.

        The Parameter objects stay the same, so an optimizer built on them keeps working: its
        state follows each parameter at the next step. Returns ``self``.

        Raises
        ------
        ValueError
            On a device name other than ``"cpu"`` and ``"gpu"`` (nothing is moved).
        GPUUnavailableError
            For ``"gpu"`` without cupy or a CUDA device (nothing is moved).
        """
        check_device(device)
        for p in self.parameters():
            p.data = to_device(p.data, device)
            grad = p.grad
            if isinstance(grad, RowSparse):
                p.grad = RowSparse(
                    to_device(grad.indices, device), to_device(grad.values, device), grad.shape
                )
            elif grad is not None:
                p.grad = to_device(getattr(grad, "data", grad), device)
        for m in self.modules():
            for name, b in m._buffers.items():
                m._buffers[name] = to_device(b, device)
                object.__setattr__(m, name, m._buffers[name])
        return self

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed by dotted name."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = p.data.copy()
        for name, b in self.named_buffers():
            out[name] = b.copy()
        return out

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays from ``state`` into the parameters and buffers.

        Everything is validated before anything is written: a missing or unexpected key (with
        ``strict``), or a shape that differs, raises :class:`StateDictError` naming the key, and
        the module is left unchanged. Arrays are cast to each parameter's dtype.
        """
        targets: dict[str, Any] = {}
        for mod_name, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, value in store.items():
                    key = f"{mod_name}.{name}" if mod_name else name
                    targets[key] = value
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise StateDictError(
                f"state dict does not match {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        for key, value in targets.items():
            if key in state:
                new = state[key]
                data = value.data if isinstance(value, Tensor) else value
                if tuple(np.shape(new)) != tuple(data.shape):
                    raise StateDictError(
                        f"state dict key {key!r}: shape {tuple(np.shape(new))} does not match "
                        f"the module's {tuple(data.shape)}"
                    )
                xp = get_array_module(new)
                if data.dtype.kind == "f" and not bool(xp.isfinite(xp.asarray(new)).all()):
                    raise StateDictError(f"state dict key {key!r} holds NaN or inf")
        for key, value in targets.items():
            if key not in state:
                continue
            data = value.data if isinstance(value, Tensor) else value
            new = to_device(getattr(state[key], "data", state[key]), device_of(data))
            data[...] = new.astype(data.dtype, copy=False)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")

    def extra_repr(self) -> str:
        return ""


class Sequential(Module):
    """Apply modules in order: ``Sequential(a, b)(x) == b(a(x))``."""

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def forward(self, x: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x)
        return x
