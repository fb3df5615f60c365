"""Weight initialisers: each returns a fresh numpy array of the requested shape and dtype.

Every random initialiser takes an explicit ``numpy.random.Generator``; when none is given a fresh
``numpy.random.default_rng()`` is used (never the global numpy state). Samples are drawn in
float64 and cast once, so a given generator state yields the same values in float32 and float64
up to rounding.

For 2-D shapes ``fan_in = shape[0]`` and ``fan_out = shape[1]`` (a Dense weight stored as
``(in_features, out_features)``); see :func:`compute_fans`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from corenn.backend import DEFAULT_DTYPE, check_float_dtype

__all__ = [
    "compute_fans",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "orthogonal",
    "uniform",
    "zeros",
]

Shape = int | tuple[int, ...]


def _shape(shape: Shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(not isinstance(s, (int, np.integer)) or s < 0 for s in shape):
        raise ValueError(f"shape must hold non-negative integers, got {shape}")
    return tuple(int(s) for s in shape)


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def compute_fans(shape: Shape) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight shape.

    Parameters
    ----------
    shape : int or tuple of int
        1-D ``(n,)`` gives ``(n, n)``; 2-D ``(a, b)`` gives ``(a, b)``; for ``k > 2`` dimensions
        the trailing axes are a receptive field of size ``r = prod(shape[2:])`` and the fans are
        ``(shape[0] * r, shape[1] * r)``.

    Raises
    ------
    ValueError
        If ``shape`` is a scalar shape ``()``.
    """
    shape = _shape(shape)
    if len(shape) == 0:
        raise ValueError("cannot compute fans of a scalar shape ()")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[0] * receptive, shape[1] * receptive


def uniform(
    shape: Shape,
    bound: float,
    rng: np.random.Generator | None = None,
    dtype: Any = DEFAULT_DTYPE,
) -> np.ndarray:
    """Sample ``U(-bound, bound)`` of ``shape`` and ``dtype``.

    Raises
    ------
    ValueError
        If ``bound`` is negative or not finite.
    """
    if not math.isfinite(bound) or bound < 0:
        raise ValueError(f"uniform bound must be finite and >= 0, got {bound}")
    dt = check_float_dtype(dtype)
    return _rng(rng).uniform(-bound, bound, size=_shape(shape)).astype(dt)


def _normal(shape: Shape, std: float, rng: np.random.Generator | None, dtype: Any) -> np.ndarray:
    dt = check_float_dtype(dtype)
    return (_rng(rng).standard_normal(_shape(shape)) * std).astype(dt)


def glorot_uniform(
    shape: Shape,
    rng: np.random.Generator | None = None,
    dtype: Any = DEFAULT_DTYPE,
    gain: float = 1.0,
) -> np.ndarray:
    """Glorot/Xavier uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = compute_fans(shape)
    return uniform(shape, gain * math.sqrt(6.0 / max(fan_in + fan_out, 1)), rng, dtype)


def glorot_normal(
    shape: Shape,
    rng: np.random.Generator | None = None,
    dtype: Any = DEFAULT_DTYPE,
    gain: float = 1.0,
) -> np.ndarray:
    """Glorot/Xavier normal: ``N(0, s^2)`` with ``s = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = compute_fans(shape)
    return _normal(shape, gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)), rng, dtype)


def he_uniform(
    shape: Shape,
    rng: np.random.Generator | None = None,
    dtype: Any = DEFAULT_DTYPE,
    gain: float = math.sqrt(2.0),
) -> np.ndarray:
    """He/Kaiming uniform: ``U(-a, a)`` with ``a = gain * sqrt(3 / fan_in)`` (ReLU gain sqrt 2)."""
    fan_in, _ = compute_fans(shape)
    return uniform(shape, gain * math.sqrt(3.0 / max(fan_in, 1)), rng, dtype)


def he_normal(
    shape: Shape,
    rng: np.random.Generator | None = None,
    dtype: Any = DEFAULT_DTYPE,
    gain: float = math.sqrt(2.0),
) -> np.ndarray:
    """He/Kaiming normal: ``N(0, s^2)`` with ``s = gain / sqrt(fan_in)`` (ReLU gain sqrt 2)."""
    fan_in, _ = compute_fans(shape)
    return _normal(shape, gain / math.sqrt(max(fan_in, 1)), rng, dtype)


def orthogonal(
    shape: Shape,
    rng: np.random.Generator | None = None,
    dtype: Any = DEFAULT_DTYPE,
    gain: float = 1.0,
) -> np.ndarray:
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al., 2014).

    The array is viewed as ``(rows, cols) = (shape[0], prod(shape[1:]))``. A standard normal
    matrix of the taller orientation is QR-factorised and ``Q`` is sign-corrected by
    ``sign(diag(R))`` so that the result is Haar distributed. If ``rows <= cols`` the rows are
    orthonormal (``W W^T = gain^2 I``), otherwise the columns are (``W^T W = gain^2 I``).

    Raises
    ------
    ValueError
        If ``shape`` has fewer than 2 dimensions.
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal needs a shape of at least 2 dimensions, got {shape}")
    dt = check_float_dtype(dtype)
    rows, cols = shape[0], math.prod(shape[1:])
    if rows == 0 or cols == 0:
        return np.zeros(shape, dtype=dt)
    a = _rng(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dt)


def zeros(shape: Shape, dtype: Any = DEFAULT_DTYPE) -> np.ndarray:
    """An array of zeros of ``shape`` and ``dtype``."""
    return np.zeros(_shape(shape), dtype=check_float_dtype(dtype))
