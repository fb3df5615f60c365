"""Lift against independence, checked against counting baskets by hand."""

import math
from itertools import combinations

import numpy as np
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.lift import BasketCounts


@given(seed=st.integers(0, 1000), n=st.integers(1, 30), items=st.integers(2, 6))
def test_counts_and_lift_match_enumeration(seed, n, items):
    rng = np.random.default_rng(seed)
    dense = rng.random((n, items)) < 0.4
    counts = BasketCounts(sp.csr_matrix(dense.astype(float)))
    for size in (1, 2, 3, 4):
        for subset in combinations(range(items), size):
            together = int(dense[:, list(subset)].all(axis=1).sum())
            assert counts.together(subset) == together
            share = dense[:, list(subset)].mean(axis=0)
            lift = counts.lift(subset)
            assert counts.lift(subset, together) == lift or math.isnan(lift)
            if size < 2 or share.min() == 0:
                assert math.isnan(lift)
            else:
                assert lift == (together / n) / np.prod(share) or math.isclose(
                    lift, (together / n) / np.prod(share), rel_tol=1e-12
                )


def test_independent_items_have_lift_one_and_exclusive_items_zero():
    # Items 0 and 1 independent (each in half the baskets, together in a quarter); 2 and 3 never.
    dense = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 0, 1]], dtype=float)
    counts = BasketCounts(sp.csr_matrix(dense))
    assert counts.lift([0, 1]) == 1.0
    assert counts.lift([2, 3]) == 0.0
    assert counts.lift([0, 2]) == 2.0
    assert counts.together([]) == 4
