"""Initialisers: shapes, dtypes, bounds, moments, orthogonality, explicit generators, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from corenn import init

shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))
dtypes = st.sampled_from([np.float32, np.float64])


@given(shapes, dtypes, st.floats(0.1, 3.0))
def test_uniform_families_respect_their_bounds(shape, dtype, gain):
    fan_in, fan_out = shape
    cases = {
        "glorot_uniform": (init.glorot_uniform, gain * math.sqrt(6 / (fan_in + fan_out))),
        "he_uniform": (init.he_uniform, gain * math.sqrt(3 / fan_in)),
    }
    for name, (fn, bound) in cases.items():
        w = fn(shape, np.random.default_rng(0), dtype, gain)
        assert w.shape == shape and w.dtype == dtype, f"{name}: {w.shape} {w.dtype}"
        assert np.abs(w).max() <= bound * (1 + 1e-6), f"{name} exceeds its bound {bound}"


def test_moments_match_the_formulas(rng):
    shape = (300, 200)
    cases = {
        "glorot_uniform": (init.glorot_uniform, math.sqrt(2 / 500)),
        "glorot_normal": (init.glorot_normal, math.sqrt(2 / 500)),
        "he_uniform": (init.he_uniform, math.sqrt(2 / 300)),
        "he_normal": (init.he_normal, math.sqrt(2 / 300)),
    }
    for name, (fn, std) in cases.items():
        w = fn(shape, rng, np.float64)
        assert abs(w.std() / std - 1) < 0.02, f"{name}: std {w.std():.4g}, expected {std:.4g}"
        assert abs(w.mean()) < 0.01 * std * 10, f"{name}: mean {w.mean():.3g}"


@given(shapes, dtypes, st.floats(0.5, 2.0))
def test_orthogonal_is_orthogonal(shape, dtype, gain):
    w = init.orthogonal(shape, np.random.default_rng(1), dtype, gain)
    assert w.shape == shape and w.dtype == dtype
    gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
    err = np.abs(gram - gain**2 * np.eye(min(shape))).max()
    assert err < (1e-4 if dtype == np.float32 else 1e-10), f"W W^T off identity by {err:.3g}"


def test_generator_makes_results_reproducible_and_dtypes_consistent():
    for fn in (init.glorot_uniform, init.glorot_normal, init.he_normal, init.orthogonal):
        a = fn((5, 7), np.random.default_rng(3), np.float64)
        b = fn((5, 7), np.random.default_rng(3), np.float32)
        np.testing.assert_allclose(b, a, rtol=1e-6, err_msg=fn.__name__)
    u = init.uniform((4, 4), 0.5, np.random.default_rng(3))
    assert u.dtype == np.float32 and np.abs(u).max() <= 0.5
    z = init.zeros((2, 3), np.float64)
    assert z.dtype == np.float64 and not z.any()


def test_errors():
    with pytest.raises(TypeError, match="Generator"):
        init.glorot_uniform((2, 2), rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="float32 or float64"):
        init.zeros((2,), np.int32)
    with pytest.raises(ValueError, match="bound"):
        init.uniform((2,), -1.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.orthogonal((3,))
    with pytest.raises(ValueError, match="non-negative"):
        init.he_normal((2, -1))
