"""Shared test configuration: hypothesis profiles and random generators.

Profiles: ``ci`` (derandomized, bounded examples, no deadline; used by ``.ci/run``) and ``dev``
(more examples, random). Select with ``pytest --hypothesis-profile=ci``.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test (no global seeding)."""
    return np.random.default_rng(12345)
