"""The optimizer base: parameter groups, per-parameter state, ``zero_grad`` and state dicts.

A subclass declares its hyperparameters (``defaults``), checks a group (:meth:`_check_group`),
names the state it keeps per parameter (:meth:`_state_keys`) and updates one parameter
(:meth:`_update`); the base handles everything else.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from corenn.backend import device_of, get_array_module, to_device
from corenn.sparse import RowSparse
from corenn.tensor import Tensor

ParamsArg = Iterable[Tensor] | Iterable[Mapping[str, Any]]


class Optimizer:
    """Base class of the optimizers.

    Parameters
    ----------
    params : iterable of Tensor, or iterable of dict
        The parameters to optimize, or parameter groups: dicts with a ``"params"`` entry and
        per-group overrides of the hyperparameters.
    defaults : dict
        Hyperparameters of every group that does not override them.

    Attributes
    ----------
    param_groups : list of dict
        Each with ``"params"`` (list of Tensor) and every hyperparameter.
    state : dict
        Per-parameter state, keyed by the parameter itself (created on its first update).
    """

    def __init__(self, params: ParamsArg, defaults: Mapping[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        items = [params] if isinstance(params, Tensor) else list(params)
        if not items:
            raise ValueError("optimizer got an empty parameter list")
        if all(isinstance(g, Mapping) for g in items):
            for group in items:
                self.add_param_group(group)
        else:
            self.add_param_group({"params": items})

    # -- groups -----------------------------------------------------------------------------
    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest).

        Raises
        ------
        TypeError
            If an entry of ``params`` is not a Tensor.
        ValueError
            If ``params`` is missing or empty, a hyperparameter is unknown or out of range, or a
            parameter already belongs to a group.
        """
        if "params" not in group:
            raise ValueError(f"a parameter group needs a 'params' entry; got keys {list(group)}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        bad = [type(p).__name__ for p in params if not isinstance(p, Tensor)]
        if bad:
            raise TypeError(f"optimizers take Tensors (Parameters); got {bad}")
        if not params:
            raise ValueError("a parameter group has an empty 'params' list")
        unknown = sorted(set(group) - set(self.defaults) - {"params"})
        if unknown:
            raise ValueError(
                f"unknown hyperparameters {unknown} for {type(self).__name__}; "
                f"expected some of {sorted(self.defaults)}"
            )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if id(p) in seen:
                raise ValueError(f"parameter {p!r} appears in more than one parameter group")
            seen.add(id(p))
        full = {**self.defaults, **group, "params": params}
        self._check_group(full)
        self.param_groups.append(full)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError if a hyperparameter of ``group`` is out of range."""
        require_number("lr", group["lr"], lambda x: x >= 0, ">= 0")
        require_number("weight_decay", group["weight_decay"], lambda x: x >= 0, ">= 0")

    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    # -- updates ----------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Set the ``.grad`` of every parameter to None."""
        for p in self._params():
            p.grad = None

    def step(self) -> None:
        """Update every parameter whose ``.grad`` is not None (the others are skipped).

        A parameter's state arrays move to its device first if it has moved since the last
        step (:meth:`corenn.Module.to`).
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    state = self.state.setdefault(p, {})
                    if state:
                        _follow(state, p)
                    self._update(p, _checked_grad(p), state, group)

    def _update(
        self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]
    ) -> None:  # pragma: no cover - abstract
        """Update ``p.data`` in place from ``grad`` (an array, or a coalesced RowSparse)."""
        raise NotImplementedError

    def _state_keys(self, group: Mapping[str, Any]) -> set[str]:  # pragma: no cover - abstract
        """The keys of a parameter's state once it has been updated under ``group``."""
        raise NotImplementedError

    # -- state dicts ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of the state and hyperparameters, savable by :func:`corenn.save`.

        Returns
        -------
        dict
            ``{"state": {"<i>": {name: array or number}}, "param_groups": [{hyperparameters...,
            "params": [i, ...]}]}`` where ``i`` numbers the parameters over all groups in order.
            Arrays are copies.
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {
            str(index[id(p)]): {k: (v.copy() if hasattr(v, "shape") else v) for k, v in s.items()}
            for p, s in self.state.items()
        }
        groups = [
            {
                **{k: v for k, v in g.items() if k != "params"},
                "params": [index[id(p)] for p in g["params"]],
            }
            for g in self.param_groups
        ]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, possibly one passed through :func:`corenn.save` / load.

        Everything is checked before anything changes: the number of groups and of parameters
        per group, the hyperparameter names, the state keys of every parameter and the shapes of
        its arrays. Arrays are copied and cast to their parameter's dtype.

        Raises
        ------
        ValueError
            Naming the first mismatch.
        """
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"optimizer state dict has no {key!r} entry")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"optimizer state dict has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        owner: dict[int, tuple[Tensor, dict[str, Any]]] = {}
        new_groups = []
        for i, (saved, own) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            expected = set(own) - {"params"}
            found = set(saved) - {"params"}
            if found != expected:
                raise ValueError(
                    f"param_groups[{i}]: missing hyperparameters {sorted(expected - found)}, "
                    f"unexpected {sorted(found - expected)}"
                )
            if len(saved.get("params", ())) != len(own["params"]):
                raise ValueError(
                    f"param_groups[{i}] has {len(saved.get('params', ()))} parameters, "
                    f"this optimizer's group has {len(own['params'])}"
                )
            group = {k: _like(own[k], saved[k]) for k in expected}
            group["params"] = own["params"]
            self._check_group(group)
            new_groups.append(group)
            for index, p in zip(saved["params"], own["params"], strict=True):
                owner[int(index)] = (p, group)
        new_state = {}
        for key, entry in dict(state_dict["state"]).items():
            if not str(key).isdigit() or int(key) not in owner:
                raise ValueError(f"optimizer state dict: state key {key!r} names no parameter")
            p, group = owner[int(key)]
            new_state[p] = self._checked_state(key, dict(entry), p, group)
        self.param_groups = new_groups
        self.state = new_state

    def _checked_state(
        self, key: str, entry: dict[str, Any], p: Tensor, group: Mapping[str, Any]
    ) -> dict[str, Any]:
        expected = self._state_keys(group)
        if not entry:  # a parameter registered but never stepped
            return {}
        if set(entry) != expected:
            raise ValueError(
                f"optimizer state dict: state[{key!r}] has keys {sorted(entry)}, "
                f"expected {sorted(expected)}"
            )
        out: dict[str, Any] = {}
        device = device_of(p.data)
        for name, value in entry.items():
            if name == "step":
                if int(value) != value or value < 1:
                    raise ValueError(f"optimizer state dict: state[{key!r}]['step'] = {value!r}")
                out[name] = int(value)
            elif tuple(getattr(value, "shape", ())) != p.shape:
                raise ValueError(
                    f"optimizer state dict: state[{key!r}][{name!r}] has shape "
                    f"{tuple(getattr(value, 'shape', ()))}, the parameter has {p.shape}"
                )
            else:
                out[name] = to_device(value, device).astype(p.dtype)  # a copy
        return out


def _follow(state: dict[str, Any], p: Tensor) -> None:
    """Move the arrays of ``state`` to ``p``'s device where they are not on it (an array of
    another type than ``p.data``: numpy and cupy; one type check per entry on the CPU path)."""
    kind = type(p.data)
    for name, value in state.items():
        if type(value) is not kind and hasattr(value, "shape"):
            state[name] = to_device(value, device_of(p.data))


def _like(current: Any, value: Any) -> Any:
    """``value`` as the type of ``current`` where a save may have changed it (tuple -> list)."""
    return tuple(value) if isinstance(current, tuple) else value


def require_number(name: str, value: Any, ok: Callable[[float], bool], what: str) -> None:
    """Raise ValueError unless ``value`` is a real number (not NaN) for which ``ok`` holds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"hyperparameter {name} must be a number, got {value!r}")
    if not ok(value):
        raise ValueError(f"hyperparameter {name} must be {what}, got {value!r}")


def _checked_grad(p: Tensor) -> Any:
    """``p.grad`` in the parameter's dtype, checked against its shape; RowSparse coalesced.

    A row-sparse gradient whose indices already increase strictly is used as it is.
    """
    grad = p.grad
    if isinstance(grad, RowSparse):
        if grad.shape != p.shape or p.ndim != 2:
            raise ValueError(f"row-sparse gradient of shape {grad.shape} for parameter {p!r}")
        grad = coalesced(grad)
        return RowSparse(grad.indices.astype("int64", copy=False), _cast(grad.values, p), p.shape)
    xp = get_array_module(p.data)
    grad = xp.asarray(grad.data if isinstance(grad, Tensor) else grad)
    if grad.shape != p.shape:
        raise ValueError(f"gradient of shape {grad.shape} for parameter {p!r}")
    return _cast(grad, p)


def _cast(array: Any, p: Tensor) -> Any:
    return array if array.dtype == p.dtype else array.astype(p.dtype)


def coalesced(grad: RowSparse) -> RowSparse:
    """``grad`` with unique, sorted rows: itself when they already are, else its coalesce().

    Embedding gradients arrive with one row per lookup (as torch's ``sparse=True``); gradients
    that are already coalesced (e.g. after a first coalesce) skip the second pass.
    """
    idx = grad.indices
    if idx.ndim == 1 and bool(get_array_module(idx).all(idx[1:] > idx[:-1])):
        return grad
    return grad.coalesce()
