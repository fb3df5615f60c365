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
