"""Inverted dropout with an explicit random generator."""

from __future__ import annotations

from typing import Any

import numpy as np

from corenn.backend import get_array_module
from corenn.ops.basic import mul
from corenn.tensor import Tensor


def dropout(
    x: Any, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` drawn independently per element, so
    ``E[y] = x``; the gradient is ``g * m / (1 - p)``. With ``p = 1`` every element is zeroed.

    Parameters
    ----------
    x : Tensor or array, any shape, float
    p : float
        Drop probability in [0, 1].
    training : bool
        When False (or ``p == 0``) ``x`` is returned unchanged (as a Tensor).
    rng : numpy.random.Generator, optional
        Source of the mask; a fresh ``numpy.random.default_rng()`` when None.

    Returns
    -------
    Tensor, shape and dtype of ``x``

    Raises
    ------
    ValueError
        If ``p`` is outside [0, 1].
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    x = x if isinstance(x, Tensor) else Tensor(x)
    if not training or p == 0.0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    keep = rng.random(x.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = get_array_module(x).asarray(keep * scale, dtype=x.dtype)
    return mul(x, mask)
