"""The bundle objective's item probabilities: category back-off, history, old model directories."""

import json
import warnings

import numpy as np
import pytest

from bundlerec.category_backoff import CategoryBackoff
from bundlerec.datasets import synthetic_shop
from bundlerec.recommender import Recommender

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 1, "batch_size": 128, "patience": None}


@pytest.fixture(scope="module")
def model():
    events, items, users = synthetic_shop(n_users=150, n_items=60, n_days=30, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recommender(sequence=SMALL_SEQ, network={"n_top": 30}, verbose=False).fit(
            events, items, users
        )


def test_evidence_marginals_mix_counts_popularity_and_category_prior(model):
    counts = model._basket_counts()
    baskets = counts.baskets.toarray()
    context = [int(np.argmax(counts.item_counts)), 3]
    m, kappa = 2.0, 50.0
    model.bundle_config.update(smoothing=m, categories=kappa)
    got = model._evidence_marginals(context)
    popular = (counts.item_counts + 1.0) / (counts.n_baskets + 2.0)
    prior = CategoryBackoff(counts.baskets, model.catalogue.category_codes).prior(
        np.array(context)
    )
    want = np.mean(
        [
            ((baskets[:, e] @ baskets) + m * popular + kappa * prior[r])
            / (baskets[:, e].sum() + m + kappa)
            for r, e in enumerate(context)
        ],
        axis=0,
    )
    np.testing.assert_allclose(got, want, rtol=1e-12)
    model.bundle_config.update(categories=0.0)
    plain = model._evidence_marginals(context)
    want0 = np.mean(
        [((baskets[:, e] @ baskets) + m * popular) / (baskets[:, e].sum() + m) for e in context],
        axis=0,
    )
    np.testing.assert_allclose(plain, want0, rtol=1e-12)


def test_bundles_may_repeat_history_unless_excluded(model):
    """Bought items stay candidates (baskets repeat them); ``exclude`` leaves them out."""
    user = str(model.users.classes_[0])
    code = model._user_code(user)
    start, stop = np.searchsorted(model.history.user, [code, code + 1])
    bought = np.unique(model.history.item[start:stop])
    with_history = 0
    for anchor in np.argsort(-np.bincount(model.history.item))[:10]:
        kept = model.compose(code, [int(anchor)], k=5, size=3)[0]
        with_history += sum(bool(set(b.items[1:]) & set(bought.tolist())) for b in kept)
        excluded = [int(j) for j in bought if j != anchor]
        left = model.compose(code, [int(anchor)], excluded, k=5, size=3)[0]
        assert all(not set(b.items[1:]) & set(excluded) for b in left)
    assert with_history > 0  # the first shopper's history does appear among 50 bundles


def test_a_model_saved_before_the_back_off_loads_without_it(model, tmp_path):
    model.bundle_config.update(categories=300.0)
    model.save(tmp_path / "m")
    assert Recommender.load(tmp_path / "m").bundle_config["categories"] == 300.0
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    del meta["config"]["bundle"]["categories"]
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    old = Recommender.load(tmp_path / "m")
    assert old.bundle_config["categories"] == 0.0


@pytest.fixture(scope="module")
def basket_model():
    events, items, users = synthetic_shop(n_users=400, n_items=60, n_days=30, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recommender(
            task="basket-completion", sequence=SMALL_SEQ, network={"n_top": 30}, verbose=False
        ).fit(events, items, users)


def _empty_cart_probabilities(model, user):
    """The (I,) item probabilities the bundles of ``user`` without cart or anchor rest on."""
    return model._compose(user, [], [], [], 3, 3, None, 1)[2]


def test_an_empty_cart_is_scored_by_the_home_fusion_which_is_saved(basket_model, model, tmp_path):
    assert model.home_fusion is None  # next-item: its fusion is fitted on histories already
    home = basket_model.home_fusion
    assert home is not None and home.validation is not None
    user = int(basket_model.history.user[-1])
    got = _empty_cart_probabilities(basket_model, user)
    basket_model.home_fusion = None
    try:
        main = _empty_cart_probabilities(basket_model, user)
    finally:
        basket_model.home_fusion = home
    assert not np.allclose(got, main), "the home fusion changed nothing"
    basket_model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.home_fusion.weights == home.weights and loaded.home_fusion.bias == home.bias
    np.testing.assert_allclose(_empty_cart_probabilities(loaded, user), got, rtol=1e-6)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    del meta["home_fusion"]  # as saved before the home fusion existed
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    old = Recommender.load(tmp_path / "m")
    assert old.home_fusion is None
    np.testing.assert_allclose(_empty_cart_probabilities(old, user), main, rtol=1e-6)


def test_home_lists_repeat_the_history_only_where_the_fit_chose_it(basket_model, tmp_path):
    """Without an anchor, ``recommend_items`` (and the batch) keep the shopper's history
    exactly when ``history_repeats``, and bundles (with or without an anchor) leave it out
    when not; with an anchor ``recommend_items`` always leaves it out; the flag is saved."""
    code = int(np.argmax(np.bincount(basket_model.history.user)))
    user = str(basket_model.users.classes_[code])
    start, stop = np.searchsorted(basket_model.history.user, [code, code + 1])
    bought = set(basket_model.history.item[start:stop][-50:].tolist())  # the context served
    n = basket_model.history.n_items
    chosen = basket_model.history_repeats
    try:
        for repeats in (False, True):
            basket_model.history_repeats = repeats
            listed = {
                basket_model.items.code(r["item_id"])
                for r in basket_model.recommend_items(user, k=n)
            }
            batch = {
                basket_model.items.code(i)
                for i in basket_model.recommend_items_batch([user], k=n)[0]
                if i is not None
            }
            assert listed == batch
            assert (bought <= listed) if repeats else not (bought & listed)
            anchor = next(j for j in range(n) if j not in bought)
            for anchors in ([], [anchor]):
                bundles = basket_model.compose(code, anchors, k=5, size=3)[0]
                if not repeats:
                    assert bundles and not bought & set().union(*(b.items for b in bundles))
            anchored = basket_model.recommend_items(
                user, k=n, anchor=[basket_model.items.classes_[anchor]]
            )
            assert not bought & {basket_model.items.code(r["item_id"]) for r in anchored}
            basket_model.save(tmp_path / f"m{repeats}")
            assert Recommender.load(tmp_path / f"m{repeats}").history_repeats is repeats
    finally:
        basket_model.history_repeats = chosen
    meta = json.loads((tmp_path / "mTrue" / "meta.json").read_text())
    del meta["home_fusion"]["repeats"]  # as saved before the choice existed
    (tmp_path / "mTrue" / "meta.json").write_text(json.dumps(meta))
    old = Recommender.load(tmp_path / "mTrue")
    assert old.history_repeats is None  # as then: lists leave the history out, bundles not
    listed = {old.items.code(r["item_id"]) for r in old.recommend_items(user, k=n)}
    assert not bought & listed


def test_history_is_rebought_unless_targets_repeat_it_less_than_chance():
    """The one-sided Poisson test of :func:`_history_rebought` against counting by hand."""
    import scipy.sparse as sp
    from scipy.stats import poisson

    from bundlerec.cases import Cases
    from bundlerec.prep import Interactions
    from bundlerec.recommender import _history_rebought

    n_items = 10
    # training baskets: {0, 1}, {0, 2, 3}, {4}: q_j = mean of [j in b] / |b|
    basket = np.array([0, 0, 1, 1, 1, 2])
    item = np.array([0, 1, 0, 2, 3, 4])
    zeros = np.zeros(6, dtype=np.int64)
    train = Interactions(zeros, item, basket, np.arange(6), zeros.astype(np.int8), 1, n_items)
    q = np.zeros(n_items)
    for b in ({0, 1}, {0, 2, 3}, {4}):
        for j in b:
            q[j] += 1 / len(b) / 3

    def cases(targets, n_cases):
        targets = (targets * n_cases)[:n_cases]
        return Cases(
            np.zeros(n_cases, dtype=np.int64),
            np.tile(np.array([[0, 4, 0]], dtype=np.int64), (n_cases, 1)),
            np.full(n_cases, 3, dtype=np.int64),
            np.array(targets, dtype=np.int64)[:, None],
            sp.csr_matrix((n_cases, n_items), dtype=bool),
        )

    expected_per_case = q[0] + q[4]  # history {0, 4}
    for n_cases in (5, 40):
        never = cases([7], n_cases)  # no target in the history
        want = not poisson.cdf(0, n_cases * expected_per_case) < 0.01
        assert _history_rebought(never, train) is want
    assert _history_rebought(cases([7], 5), train)  # too few cases to tell: kept
    assert not _history_rebought(cases([7], 40), train)  # 0 found, 24.4 expected
    assert _history_rebought(cases([0, 7], 40), train)  # half bought again: kept
