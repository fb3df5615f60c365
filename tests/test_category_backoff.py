"""The category back-off of the bundle objective against counting baskets one by one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.category_backoff import CategoryBackoff, choose_kappa


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


def _brute_coverage(baskets, categories, m, kappa, seed, valid_share, top):
    """choose_kappa's held-out coverage for one kappa, one case at a time (same draws)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(baskets.shape[0])
    n_valid = int(round(valid_share * order.size))
    valid, train = baskets[np.sort(order[:n_valid])], baskets[np.sort(order[n_valid:])]
    rows = np.flatnonzero(valid.sum(axis=1) >= 2)
    picks = rng.integers(0, valid[rows].sum(axis=1).astype(np.int64))
    n_items = baskets.shape[1]
    backoff = CategoryBackoff(sp.csr_matrix(train), categories) if train.size else None
    popular = (train.sum(axis=0) + 1.0) / (train.shape[0] + 2.0)
    shares = []
    for r, pick in zip(rows, picks):
        e = int(np.flatnonzero(valid[r])[pick])
        q = backoff.prior(np.array([e]))[0] if kappa else np.zeros(n_items)
        both = sum(b[e] * b for b in train) if train.size else np.zeros(n_items)
        p = (both + m * popular + kappa * q) / (train[:, e].sum() + m + kappa)
        ranked = sorted((j for j in range(n_items) if j != e), key=lambda j: (-p[j], j))
        rest = set(np.flatnonzero(valid[r]).tolist()) - {e}
        shares.append(len(set(ranked[:top]) & rest) / len(rest))
    return float(np.mean(shares)) if shares else None


@given(shops(), st.integers(0, 99), st.sampled_from([0.3, 0.5]))
def test_choose_kappa_scores_each_value_as_counting_cases_one_by_one(shop, seed, share):
    baskets, categories = shop
    top = min(2, baskets.shape[1] - 1)
    grid = (0.0, 3.0, 30.0)
    kappa, coverage = choose_kappa(
        sp.csr_matrix(baskets),
        categories,
        1.0,
        np.random.default_rng(seed),
        grid=grid,
        valid_share=share,
        top=top,
    )
    want = {k: _brute_coverage(baskets, categories, 1.0, k, seed, share, top) for k in grid}
    if want[0.0] is None:  # no held-out basket of two items
        assert coverage == {} and kappa == 0.0
        return
    for k in grid:
        assert coverage[k] == pytest.approx(want[k], abs=1e-12)
    assert kappa == max(grid, key=lambda k: (want[k], -k))


def test_choose_kappa_follows_informative_categories():
    """Each basket holds an item of some category c and one of category c + 1 (mod 20), items
    drawn by a skewed popularity within their category, over 300 baskets of 200 items: pairs
    are seen once or twice, while the categories say what goes together, so kappa > 0. With
    categories that say nothing (every item its own), the back-off cannot beat the counts."""
    rng = np.random.default_rng(0)
    n_cat, per = 20, 10
    n = n_cat * per
    categories = np.repeat(np.arange(n_cat), per)
    weights = 1.0 / np.arange(1, per + 1)
    first = rng.integers(0, n_cat, 300)
    pick = lambda c: c * per + rng.choice(per, p=weights / weights.sum())  # noqa: E731
    cols = [(pick(c), pick((c + 1) % n_cat)) for c in first]
    rows = np.repeat(np.arange(len(cols)), 2)
    baskets = sp.csr_matrix((np.ones(rows.size), (rows, np.ravel(cols))), shape=(len(cols), n))
    chosen, coverage = choose_kappa(baskets, categories, 1.0, np.random.default_rng(1))
    assert chosen > 0 and coverage[chosen] > coverage[0.0] + 0.05
    own, own_coverage = choose_kappa(baskets, np.arange(n), 1.0, np.random.default_rng(1))
    assert max(own_coverage.values()) < coverage[chosen]


def test_choose_kappa_rejects_bad_settings():
    baskets = sp.csr_matrix(np.ones((4, 3)))
    with pytest.raises(ValueError, match="valid_share"):
        choose_kappa(baskets, np.zeros(3, np.int64), 1.0, np.random.default_rng(0), valid_share=1)
    with pytest.raises(ValueError, match="top"):
        choose_kappa(baskets, np.zeros(3, np.int64), 1.0, np.random.default_rng(0), top=3)
