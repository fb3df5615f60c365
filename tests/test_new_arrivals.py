"""New arrivals: items added before any event, scored from attributes and text, borrowing from
similar known items; the cold-start evaluation; the synthetic shop's titles and arrivals."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.cold_start_eval import evaluate_new_arrivals
from bundlerec.datasets import STYLES, synthetic_shop
from bundlerec.models.text import text_bags
from bundlerec.new_arrivals import (
    CATEGORY_WEIGHT,
    TASTE_WEIGHT,
    Borrowing,
    Tastes,
    arrival_scores,
    category_share,
    donors,
    text_matrix,
)
from bundlerec.prep import split_global_time
from bundlerec.recommender import Recommender

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}


def test_donors_are_the_most_similar_known_items(rng):
    content = rng.standard_normal((12, 4))
    cold = np.zeros(12, dtype=bool)
    cold[[2, 7, 11]] = True
    given, weights = donors(content, cold, k=3)
    unit = content / np.linalg.norm(content, axis=1, keepdims=True)
    for r, j in enumerate([2, 7, 11]):
        cos = {k: unit[j] @ unit[k] for k in np.flatnonzero(~cold)}
        want = sorted(cos, key=lambda k: -cos[k])[:3]
        assert given[r].tolist() == want
        positive = np.maximum([cos[k] for k in want], 0)
        expected = positive / positive.sum() if positive.sum() > 0 else np.full(3, 1 / 3)
        np.testing.assert_allclose(weights[r], expected)
    assert donors(content, np.zeros(12, dtype=bool))[0].shape == (0, 0)


class _Fixed:
    def __init__(self, scores):
        self.scores = scores

    def score(self, cases):
        return self.scores.copy()


def test_borrowing_replaces_cold_columns_by_the_donor_mean(rng):
    scores = rng.standard_normal((3, 6)).astype(np.float32)
    cold, given, weights = (
        np.array([4, 5]),
        np.array([[0, 1], [2, 2]]),
        np.array([[0.25, 0.75], [0.5, 0.5]]),
    )
    out = Borrowing(_Fixed(scores), lambda: (cold, given, weights)).score(None)
    np.testing.assert_allclose(out[:, :4], scores[:, :4])
    np.testing.assert_allclose(out[:, 4], 0.25 * scores[:, 0] + 0.75 * scores[:, 1], rtol=1e-6)
    np.testing.assert_allclose(out[:, 5], scores[:, 2], rtol=1e-6)


@given(st.integers(0, 2**32 - 1), st.integers(2, 9), st.integers(1, 4), st.integers(1, 5))
def test_taste_affinity_is_the_gradient_step_of_the_choice_model(seed, n_items, groups, n):
    """``theta_u . (x_j - m_{c_j})`` with ``theta_u = sum_i n_ui (x_i - m_{c_i})`` and ``m_c``
    the purchase-weighted mean of category ``c``, computed densely."""
    rng = np.random.default_rng(seed)
    content = rng.random((n_items, 6)) * (rng.random((n_items, 6)) < 0.5)
    category = rng.integers(0, groups, n_items)
    sold = rng.integers(0, 4, n_items).astype(float)
    bought = rng.integers(0, 3, (n, n_items)) * (rng.random((n, n_items)) < 0.4)
    items = rng.integers(0, n_items, 3)
    got = Tastes(sp.csr_matrix(content), category, sold).affinity(sp.csr_matrix(bought), items)
    means = np.zeros((groups, 6))
    for c in range(groups):
        w = sold * (category == c)
        if w.sum() > 0:
            means[c] = w @ content / w.sum()
    deviation = content - means[category]
    np.testing.assert_allclose(got, (bought @ deviation) @ deviation[items].T, atol=1e-9)


def test_a_shoppers_words_lift_new_items_of_their_style_within_a_category():
    texts = ["organic pasta", "natural organic pasta", "premium pasta", "deluxe pasta", "jam"]
    texts += ["organic fresh pasta", "premium luxury pasta"]  # two new items
    content = text_matrix(text_bags(texts, 1 << 12), 1 << 12)
    rows = content.toarray()
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0)
    category = np.array([0, 0, 0, 0, 1, 0, 0])
    tastes = Tastes(content, category, np.array([3.0, 1.0, 3.0, 1.0, 2.0, 0.0, 0.0]))
    bought = sp.csr_matrix(np.array([[2, 1, 0, 0, 1, 0, 0], [0, 0, 1, 1, 1, 0, 0]]))
    organic, premium = tastes.affinity(bought, np.array([5, 6])).T
    assert organic[0] > 0 > premium[0], "the organic shopper"
    assert premium[1] > 0 > organic[1], "the premium shopper"
    only_jam = tastes.affinity(sp.csr_matrix(np.eye(7)[[4]]), np.array([5, 6]))
    np.testing.assert_allclose(only_jam, 0.0, atol=1e-12), "a lone item of its category"


def test_category_share_and_arrival_scores():
    share = category_share(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
    np.testing.assert_allclose(share, [4 / 7, 2 / 7, 1 / 7])  # counts 3, 1, 0 plus one
    probs, affinity = np.array([[0.2, 0.0]]), np.array([[0.1, -0.3]])
    got = arrival_scores(probs, share[[0, 2]], affinity)
    want = (1 - CATEGORY_WEIGHT) * np.log([0.2, 1e-30]) + CATEGORY_WEIGHT * np.log(share[[0, 2]])
    np.testing.assert_allclose(got[0], want + TASTE_WEIGHT * affinity[0])


@pytest.fixture(scope="module")
def shop():
    events, items, users = synthetic_shop(
        n_users=200, n_items=60, n_days=30, seed=2, titles=True, style_taste=1.0, new_share=0.3
    )
    return events, items.drop(columns="arrival"), users, items["arrival"].to_numpy()


@pytest.fixture(scope="module")
def split_model(shop):
    events, items, users, _ = shop
    train, test = split_global_time(events, test_share=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=SMALL_SEQ, network={"n_top": 30}).fit(train, items, users)
    return model, train, test


def test_add_items_then_new_arrivals_and_their_audiences(split_model, shop, tmp_path):
    model, train, _ = split_model
    _, items, _, _ = shop
    known = set(map(str, model.items.classes_))
    new_rows = items[~items["item_id"].isin(known)]
    assert len(new_rows) > 0
    before = model.sequence.item_vectors().copy()
    cost = new_rows.assign(cost=1.0, on_hand=5.0)
    model.add_items(cost)
    n_old = before.shape[0]
    assert len(model.items.classes_) == n_old + len(new_rows)
    np.testing.assert_array_equal(model.sequence.item_vectors()[:n_old], before)
    assert (model.catalogue.cost[n_old:] == 1.0).all() and (model.on_hand[n_old:] == 5.0).all()
    assert list(model.catalogue.text[n_old:]) == [
        f"{t} {d}" for t, d in zip(new_rows["title"], new_rows["description"])
    ]
    user = str(model.users.classes_[0])
    arrivals = model.recommend_new_arrivals(user, k=5)
    assert arrivals and {r["item_id"] for r in arrivals} <= set(new_rows["item_id"])
    assert [r["score"] for r in arrivals] == sorted((r["score"] for r in arrivals), reverse=True)
    cases = model._serving_cases(np.array([0]), [], [])
    fresh = np.arange(n_old, len(model.items.classes_))
    scores = model._new_arrival_scores(cases, fresh)[0]
    best = fresh[np.lexsort((fresh, -scores))][:5]
    assert [r["item_id"] for r in arrivals] == [str(model.items.classes_[j]) for j in best]
    # since= counts items first seen at or after it: the known items of the last days too.
    last = int(model.history.timestamp.max())
    recent = model.recommend_new_arrivals(user, k=100, since=last - 5 * 86_400)
    assert {r["item_id"] for r in recent} > {r["item_id"] for r in arrivals}
    crowd = model.audience(str(new_rows["item_id"].iloc[0]), n=10)
    assert len(crowd["users"]) == 10
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.recommend_new_arrivals(user, k=5) == arrivals


def test_new_items_borrow_from_their_donors(split_model, shop):
    model, _, _ = split_model
    cold, given, weights = model._cold_donors()
    assert cold.size > 0 and given.shape == (cold.size, 5)
    bias = model.sequence.item_vectors()[:, -1]
    np.testing.assert_allclose(bias[cold], (bias[given] * weights).sum(axis=1), rtol=1e-5)
    cases = model._serving_cases(np.arange(3), [], [])
    raw = model.network.score(cases)
    fused = model.fusion.components["copurchase"].score(cases)
    np.testing.assert_allclose(
        fused[:, cold], np.einsum("nck,ck->nc", raw[:, given], weights), rtol=1e-5
    )


def test_cold_start_evaluation_runs(shop):
    events, items, users, _ = shop
    train, test = split_global_time(events, test_share=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=SMALL_SEQ, network={"n_top": 30}).fit(train, items, users)
        result = evaluate_new_arrivals(model, test, items)
    assert result["n_cases"] > 0 and result["n_new_items"] > 0
    assert set(result["results"]) == {
        "bundlerec",
        "fused",
        "sequence",
        "popularity",
        "category_popularity",
        "shopper_category",
    }
    assert all(0.0 <= v <= 1.0 for v in result["results"].values())


def test_synthetic_shop_options(shop):
    events, items, _, arrival = shop
    plain = synthetic_shop(n_users=200, n_items=60, n_days=30, seed=2)
    titled = synthetic_shop(n_users=200, n_items=60, n_days=30, seed=2, titles=True)
    pd.testing.assert_frame_equal(plain[0], titled[0])  # titles change no draw of the events
    words = {w for ws in STYLES.values() for w in ws}
    assert all(len(set(t.lower().split()) & words) >= 1 for t in titled[1]["title"])
    bought = events[events["event"] == "purchase"]
    first = bought.groupby("item_id")["timestamp"].min()
    by_item = pd.Series(arrival, index=items["item_id"])
    assert (first >= by_item.reindex(first.index)).all(), "nothing is bought before it arrives"
    assert (arrival > 0).any()
    with pytest.raises(ValueError, match="new_share"):
        synthetic_shop(n_users=5, new_share=1.0)


def test_the_sequence_models_text_bags_are_the_items_texts_hashed(split_model):
    model, _, _ = split_model
    bags, n_buckets = model.sequence.item_text_bags()
    want = text_bags(list(model.catalogue.text), n_buckets)
    assert len(bags) == len(model.items.classes_)
    np.testing.assert_array_equal(bags.offsets, want.offsets)
    np.testing.assert_array_equal(bags.ids, want.ids)
    events, items, users = synthetic_shop(n_users=60, n_items=30, n_days=10, seed=1)
    plain = Recommender(sequence={**SMALL_SEQ, "epochs": 1}, network={"n_top": 10})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(events, items, users)  # no title, no description
    assert plain.sequence.item_text_bags() is None
    since = int(events["timestamp"].min())  # every item counts as new; no text, no taste term
    picks = plain.recommend_new_arrivals(str(plain.users.classes_[0]), k=3, since=since)
    assert picks and all(np.isfinite(p["score"]) for p in picks)
