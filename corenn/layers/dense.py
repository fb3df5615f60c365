"""Dense (fully connected) layer: ``y = activation(x @ W + b)`` over any leading dimensions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from corenn import init
from corenn.backend import DEFAULT_DTYPE, check_float_dtype
from corenn.layers.module import Module
from corenn.ops.activations import relu, sigmoid, tanh
from corenn.ops.basic import matmul
from corenn.tensor import Parameter, Tensor

ACTIVATIONS: dict[str, Callable[[Any], Tensor]] = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}


class Dense(Module):
    """Affine map plus an optional activation: ``y = f(x @ W + b)``.

    Parameters
    ----------
    in_features : int
        Width of the input's last axis.
    out_features : int
        Width of the output's last axis.
    activation : {None, "relu", "sigmoid", "tanh"} or callable
        ``f``; None is the identity. A callable maps a Tensor to a Tensor.
    bias : bool
        Whether to add ``b``.
    dtype : float32 or float64
    rng : numpy.random.Generator, optional
        Source of the Glorot-uniform initial ``W`` (a fresh ``default_rng()`` when None).

    Attributes
    ----------
    weight : Parameter, shape (in_features, out_features)
        Glorot uniform: ``U(-a, a)``, ``a = sqrt(6 / (in_features + out_features))``.
    bias : Parameter, shape (out_features,), or None
        Zeros.

    Notes
    -----
    Input (..., in_features) gives output (..., out_features); the dtype is the layer's.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str | Callable[[Any], Tensor] | None = None,
        bias: bool = True,
        dtype: Any = DEFAULT_DTYPE,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Dense: {name} must be a positive integer, got {value!r}")
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(
                    f"Dense: unknown activation {activation!r}; expected one of "
                    f"{sorted(ACTIVATIONS)}, None or a callable"
                )
            activation_fn = ACTIVATIONS[activation]
        elif activation is None or callable(activation):
            activation_fn = activation
        else:
            raise TypeError(f"Dense: activation must be a name or a callable, got {activation!r}")
        dt = check_float_dtype(dtype)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = activation_fn
        self.weight = Parameter(
            init.glorot_uniform((self.in_features, self.out_features), rng, dt)
        )
        self.bias = Parameter(init.zeros(self.out_features, dt)) if bias else None

    def forward(self, x: Any) -> Tensor:
        """``f(x @ W + b)`` for ``x`` of shape (..., in_features).

        Raises
        ------
        ValueError
            If the last axis of ``x`` is not ``in_features`` wide (names the layer and shapes).
        TypeError
            If ``x`` is a Tensor of another float dtype than the layer's.
        """
        if not isinstance(x, Tensor):
            x = Tensor(x, dtype=self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r}: input of shape {x.shape} does not fit the weight of shape "
                f"{self.weight.shape}; expected (..., {self.in_features})"
            )
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"{self!r}: input dtype {x.dtype} differs from the layer's {self.weight.dtype}; "
                f"cast with .astype()"
            )
        y = matmul(x, self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y if self.activation is None else self.activation(y)

    def extra_repr(self) -> str:
        name = getattr(self.activation, "__name__", repr(self.activation))
        act = "" if self.activation is None else f", activation={name}"
        bias = "" if self.bias is not None else ", bias=False"
        return f"in_features={self.in_features}, out_features={self.out_features}{act}{bias}"
