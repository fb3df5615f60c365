"""The category back-off of the bundle objective against counting baskets one by one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.category_backoff import CategoryBackoff


def _brute(baskets: np.ndarray, categories: np.ndarray, e: int) -> np.ndarray:
    """q_e(j) by its definition (module doc), one basket and one item at a time."""
    n_baskets, n_items = baskets.shape
    c_e = categories[e]
    counts = baskets.sum(axis=0) + 0.5
    q = np.zeros(n_items)
    for j in range(n_items):
        if j == e:
            continue
        c = categories[j]
        holding = [b for b in baskets if b[categories == c_e].any()]
        if c == c_e:
            besides = sum(b[categories == c].sum() >= 2 for b in holding)
        else:
            besides = sum(b[categories == c].any() for b in holding)
        share = sum(b[categories == c].any() for b in baskets) / n_baskets
        given_category = (besides + share) / (len(holding) + 1.0)
        others = counts[(categories == c) & (np.arange(n_items) != e)].sum()
        q[j] = given_category * counts[j] / others
    return q


@st.composite
def shops(draw):
    n_items = draw(st.integers(2, 7))
    n_cat = draw(st.integers(1, n_items))
    categories = np.array(
        draw(st.lists(st.integers(0, n_cat - 1), min_size=n_items, max_size=n_items))
    )
    _, categories = np.unique(categories, return_inverse=True)
    n_baskets = draw(st.integers(1, 12))
    cells = draw(
        st.lists(st.booleans(), min_size=n_baskets * n_items, max_size=n_baskets * n_items)
    )
    return np.array(cells, dtype=float).reshape(n_baskets, n_items), categories


@given(shops())
def test_prior_matches_counting_baskets(shop):
    baskets, categories = shop
    backoff = CategoryBackoff(sp.csr_matrix(baskets), categories)
    evidence = np.arange(baskets.shape[1])
    q = backoff.prior(evidence)
    assert q.shape == (evidence.size, baskets.shape[1])
    for e in evidence:
        np.testing.assert_allclose(q[e], _brute(baskets, categories, e), rtol=1e-12)
    assert np.all(q >= 0)


def test_one_category_is_popularity_times_a_second_item():
    baskets = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=float)
    q = CategoryBackoff(sp.csr_matrix(baskets), np.zeros(3, dtype=np.int64)).prior(np.array([0]))
    # 3 baskets hold two or more items, of 4 holding any; item 0 left out of the shares
    second = (3 + 1.0) / (4 + 1.0)
    counts = baskets.sum(axis=0) + 0.5
    np.testing.assert_allclose(q[0], [0.0, *(second * counts[1:] / counts[1:].sum())])


def test_categories_must_cover_every_item():
    with pytest.raises(ValueError, match="categories must have shape"):
        CategoryBackoff(sp.csr_matrix(np.ones((2, 3))), np.zeros(2, dtype=np.int64))
