"""The co-purchase network fitted from basket counts equals the one fitted from the baskets."""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bundlerec.catalogue import user_features
from bundlerec.datasets import synthetic_shop
from bundlerec.lift import BasketStatistics
from bundlerec.models.copurchase import CoPurchaseNetwork
from bundlerec.prep import Encoder, Interactions, clean, to_interactions
from pgm.learning import mutual_information_matrix


def _baskets(rng, n_baskets, n_items, n_users) -> Interactions:
    """Random baskets (item j with its own probability), one owner each, codes 0..N-1."""
    take = rng.random((n_baskets, n_items)) < rng.uniform(0.05, 0.6, n_items)
    take[np.arange(n_baskets), rng.integers(0, n_items, n_baskets)] = True  # none empty
    basket, item = np.nonzero(take)
    owner = rng.integers(0, n_users, n_baskets)
    order = np.lexsort((basket, owner[basket]))
    basket, item = basket[order], item[order]
    zeros = np.zeros(basket.size, dtype=np.int64)
    return Interactions(
        owner[basket], item, basket, zeros, zeros.astype(np.int8) + 3, n_users, n_items
    )


def _tree_weight(net: CoPurchaseNetwork, table) -> float:
    mi = mutual_information_matrix(table.astype(str))
    cols = list(table.columns)
    return sum(mi[cols.index(u), cols.index(v)] for u, v in net.model.edges())


@given(seed=st.integers(0, 10_000))
def test_fit_counts_equals_fit_without_ties(seed):
    rng = np.random.default_rng(seed)
    n_users = 40
    train = _baskets(rng, 300, 7, n_users)
    features = {"age": rng.integers(0, 3, n_users), "region": rng.integers(0, 2, n_users)}
    stats = BasketStatistics.from_interactions(train, features)
    a = CoPurchaseNetwork(n_top=6).fit(train, features)
    b = CoPurchaseNetwork(n_top=6).fit_counts(stats, features)
    mi = mutual_information_matrix(a._table(train, features).astype(str))
    pairs = mi[np.triu_indices_from(mi, 1)]
    assume(np.unique(np.round(pairs, 12)).size == pairs.size)  # with a tie, either tree is maximal
    assert sorted(a.model.edges()) == sorted(b.model.edges())
    assert np.array_equal(a.items, b.items) and a.n_rows == b.n_rows == train.n_baskets
    assert np.allclose(a.prior, b.prior)
    for node in a.model.nodes():
        ca, cb = a.model.get_cpds(node), b.model.get_cpds(node)
        assert ca.evidence == cb.evidence
        assert ca.state_names == cb.state_names
        np.testing.assert_allclose(ca.get_values(), cb.get_values(), rtol=1e-12)


def test_fit_counts_on_a_shop_gives_a_maximum_tree_and_the_same_cpts():
    events, _, users = synthetic_shop(n_users=150, n_items=50, n_days=20, seed=8)
    events = clean(events)
    ids = Encoder().fit(events["user_id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = to_interactions(events, ids, Encoder().fit(events["item_id"]))
    features = user_features(users, ids)[0]
    a = CoPurchaseNetwork(n_top=25).fit(train, features)
    b = CoPurchaseNetwork(n_top=25).fit_counts(
        BasketStatistics.from_interactions(train, features), features
    )
    table = a._table(train, features)
    assert _tree_weight(b, table) == pytest.approx(_tree_weight(a, table), rel=1e-12)
    for node in a.model.nodes():
        ca, cb = a.model.get_cpds(node), b.model.get_cpds(node)
        if ca.evidence == cb.evidence:
            np.testing.assert_allclose(ca.get_values(), cb.get_values(), rtol=1e-12)
    cases_scored = b.coherence([(int(a.items[0]), int(a.items[1]))])
    assert np.isfinite(cases_scored).all()


def test_fit_counts_refuses_what_counts_cannot_give():
    rng = np.random.default_rng(0)
    train = _baskets(rng, 50, 5, 10)
    stats = BasketStatistics.from_interactions(train)
    with pytest.raises(ValueError, match="structure='chow-liu'"):
        CoPurchaseNetwork(structure="hill-climb").fit_counts(stats)
    with pytest.raises(ValueError, match="states of 'age'"):
        CoPurchaseNetwork().fit_counts(stats, {"age": np.zeros(10, dtype=np.int64)})
    empty = BasketStatistics(0, stats.gram[:0, :0], 0)
    with pytest.raises(ValueError, match="no baskets"):
        CoPurchaseNetwork().fit_counts(empty)
