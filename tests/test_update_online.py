"""The feedback loop without retraining: events count at once, exact Dirichlet counts, forget."""

import warnings

import numpy as np
import pandas as pd
import pytest

from bundlerec.catalogue import padded
from bundlerec.data import load_events
from bundlerec.datasets import synthetic_shop
from bundlerec.feedback import OnlineFeedback
from bundlerec.prep import clean
from bundlerec.recommender import Recommender

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}


@pytest.fixture(scope="module")
def shop():
    return synthetic_shop(n_users=150, n_items=60, n_days=30, seed=3)


def _fit(shop) -> Recommender:
    events, items, users = shop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recommender(sequence=SMALL_SEQ, network={"n_top": 30}).fit(events, items, users)


@pytest.fixture(scope="module")
def fitted(shop, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m"
    _fit(shop).save(path)
    return path


def _events(model, user, items, start, step=20, event="purchase"):
    ids = model.items.classes_
    return pd.DataFrame(
        {
            "user_id": [user] * len(items),
            "item_id": [ids[j] for j in items],
            "timestamp": start + step * np.arange(len(items)),
            "event": event,
        }
    )


def _clean(frame):
    return clean(load_events(frame))


def _weights(model):
    return {k: np.array(v) for k, v in model.sequence.get_state()[0].items()}


def test_an_event_changes_the_shoppers_next_answer_without_a_gradient_step(fitted):
    model = Recommender.load(fitted)
    user = model.users.classes_[7]
    code = model.users.code(user)
    t0 = int(model.history.timestamp.max()) + 10_000
    weights = _weights(model)
    net_items = [int(j) for j in model.network.items[:2]]
    case = model._serving_cases(np.array([code]), [], [])
    scores = {n: s.score(case)[0] for n, s in (("seq", model.sequence), ("net", model.network))}
    before = [r["item_id"] for r in model.recommend_items(user, k=10)]
    model.update(_events(model, user, net_items, t0))
    case = model._serving_cases(np.array([code]), [], [])
    assert case.context[0, case.lengths[0] - 2 : case.lengths[0]].tolist() == net_items
    # Both models answer from the new context: the LSTM ran forward over the new steps (every
    # item's score moves), the network sees the new items as basket context (the items of their
    # Markov blankets move); no weight changed.
    others = np.setdiff1d(np.arange(model.history.n_items), net_items)
    moved = np.abs(model.sequence.score(case)[0] - scores["seq"])[others]
    assert (moved > 1e-6).all(), moved
    moved = np.abs(model.network.score(case)[0] - scores["net"])[others]
    assert moved.max() > 1e-3, moved
    for name, value in _weights(model).items():
        np.testing.assert_array_equal(value, weights[name], err_msg=name)
    after = [r["item_id"] for r in model.recommend_items(user, k=10)]
    assert after != before
    assert not {model.items.classes_[j] for j in net_items} & set(after)


def test_count_update_equals_counting_the_baskets_from_scratch(fitted):
    model = Recommender.load(fitted)
    net = model.network
    counts = {k: v.copy() for k, v in net.counts.items()}
    users = model.users.classes_[:20]
    t0 = int(model.history.timestamp.max()) + 10_000
    ids = [int(j) for j in net.items[:4]]
    new = pd.concat(
        [
            _events(model, u, ids[:2] if k % 2 else ids[2:], t0 + 7200 * k)
            for k, u in enumerate(users)
        ]
    )
    model.update(new)
    table = net._complete_rows(model.history.subset(model.history.timestamp >= t0))
    delta = net._family_counts(table)
    assert len(table) == len(users)
    for node, value in net.counts.items():
        np.testing.assert_allclose(value, counts[node] + delta[node], err_msg=node)
        cpd = net.model.get_cpds(node).get_values()
        alpha = value + net.equivalent_sample_size / value.size
        np.testing.assert_allclose(cpd, alpha / alpha.sum(axis=0), rtol=1e-12, err_msg=node)


def test_a_basket_posted_in_parts_counts_as_one_basket(fitted):
    one, parts = Recommender.load(fitted), Recommender.load(fitted)
    user = one.users.classes_[3]
    t0 = int(one.history.timestamp.max()) + 10_000
    ids = [int(j) for j in one.network.items[:3]]
    whole = _events(one, user, ids, t0)
    online = OnlineFeedback(one)
    online.observe(_clean(whole))
    online.recount()
    online = OnlineFeedback(parts)
    for k in range(3):  # three posts, each folded at once, 20 s apart: within the window
        online.observe(_clean(whole.iloc[k : k + 1].reset_index(drop=True)))
        online.recount()
    assert parts.history.n_baskets == one.history.n_baskets
    np.testing.assert_array_equal(parts.history.basket, one.history.basket)
    for node, value in one.network.counts.items():
        np.testing.assert_array_equal(parts.network.counts[node], value, err_msg=node)


def test_a_late_event_opens_a_new_basket(fitted):
    model = Recommender.load(fitted)
    user = model.users.classes_[3]
    n = model.history.n_baskets
    t_last = int(model.history.timestamp[model.history.user == model.users.code(user)].max())
    model.update(_events(model, user, [1], t_last + model.window + 1))
    assert model.history.n_baskets == n + 1


def test_new_shoppers_are_served_at_once(fitted):
    model = Recommender.load(fitted)
    t0 = int(model.history.timestamp.max()) + 10_000
    model.update(_events(model, "newcomer", [5, 6], t0, event="cart"))
    result = model.recommend_bundles("newcomer", k=1, size=2)
    assert not any("unknown shopper" in note for note in result["notes"])
    assert len(model.recommend_items("newcomer", k=5)) == 5


def test_fine_tuning_trains_on_the_new_shoppers_only(fitted):
    model = Recommender.load(fitted)
    user = model.users.classes_[9]
    t0 = int(model.history.timestamp.max()) + 10_000
    online = OnlineFeedback(model)
    online.observe(_clean(_events(model, user, [1, 2, 3], t0)))
    touched = online.touched(model.sequence.max_len)
    assert set(touched.user.tolist()) == {model.users.code(user)}
    weights = _weights(model)
    model.update(_events(model, user, [4], t0 + 30), epochs=1)
    assert any(not np.array_equal(v, weights[k]) for k, v in _weights(model).items())


def test_forget_leaves_no_trace_of_the_shopper(fitted, tmp_path):
    model = Recommender.load(fitted)
    code = 11
    user = model.users.classes_[code]
    net = model.network
    mine = model.history.subset(model.history.user == code)
    expected = {
        k: v - net._family_counts(net._complete_rows(mine)).get(k, 0)
        for k, v in net.counts.items()
    }
    n_users, n_events = len(model.users.classes_), len(model.history)
    removed = model.forget(user)
    assert removed == len(mine) > 0
    assert len(model.users.classes_) == n_users - 1 and len(model.history) == n_events - removed
    for node, value in net.counts.items():
        np.testing.assert_allclose(value, expected[node], err_msg=node)
    assert "unknown shopper" in model.recommend_bundles(user, k=1)["notes"][0]
    # the shopper after it keeps their answers (codes moved down by one)
    follower = Recommender.load(fitted).users.classes_[code + 1]
    assert model.recommend_items(follower, k=5) == Recommender.load(fitted).recommend_items(
        follower, k=5
    )
    model.save(tmp_path / "m")
    for path in (tmp_path / "m").rglob("*"):
        if path.is_file():
            assert user.encode() not in path.read_bytes(), path
    with pytest.raises(KeyError, match="unknown shopper"):
        model.forget(user)


def test_save_load_keeps_counts_and_the_store_position(fitted, tmp_path):
    model = Recommender.load(fitted)
    model.store_seq = 42
    model.save(tmp_path / "m")
    again = Recommender.load(tmp_path / "m")
    assert again.store_seq == 42
    for node, value in model.network.counts.items():
        np.testing.assert_array_equal(again.network.counts[node], value)


@pytest.fixture(scope="module")
def with_text(tmp_path_factory):
    """A model fitted with item titles, and the items no training event shows."""
    from bundlerec.prep import split_global_time

    events, items, users = synthetic_shop(
        n_users=100, n_items=40, n_days=20, seed=2, titles=True, new_share=0.3
    )
    items = items.drop(columns="arrival").assign(cost=lambda t: t["price"] * 0.6)
    train, _ = split_global_time(events, test_share=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=SMALL_SEQ, network={"n_top": 20}).fit(train, items, users)
    path = tmp_path_factory.mktemp("text") / "m"
    model.save(path)
    unseen = sorted(set(items["item_id"]) - set(model.items.classes_))
    assert unseen and model.sequence._net.items.n_buckets
    return path, items, unseen


def test_new_items_from_events_join_like_added_items(with_text):
    path, items, unseen = with_text
    row = items[items["item_id"] == unseen[0]]
    added, streamed = Recommender.load(path), Recommender.load(path)
    n_old = len(added.items.classes_)
    text_before = padded(added.catalogue.text, n_old, "")
    cost_before = padded(added.catalogue.cost, n_old, np.nan)
    added.add_items(row)
    user = streamed.users.classes_[0]
    t0 = int(streamed.history.timestamp.max()) + 10_000
    event = pd.DataFrame(
        {"user_id": [user], "item_id": [unseen[0]], "timestamp": [t0], "event": ["purchase"]}
    )
    streamed.update(event, items=items)
    assert streamed.items.code(unseen[0]) == added.items.code(unseen[0]) == n_old
    title = row[["title", "description"]].astype(str).agg(" ".join, axis=1).str.strip().iloc[0]
    for model in (added, streamed):
        assert model.catalogue.text[n_old] == title
        assert model.catalogue.cost[n_old] == pytest.approx(float(row["cost"].iloc[0]))
        np.testing.assert_array_equal(model.catalogue.text[:n_old], text_before)
        np.testing.assert_array_equal(model.catalogue.cost[:n_old], cost_before)
    # the same vector: attributes, text and the bias borrowed from the same donors
    np.testing.assert_allclose(
        streamed.sequence.item_vectors()[n_old], added.sequence.item_vectors()[n_old], rtol=1e-6
    )
    mean_bias = Recommender.load(path).sequence.item_vectors()[:, -1].mean()
    assert streamed.sequence.item_vectors()[n_old, -1] != pytest.approx(mean_bias)


def test_new_items_from_plain_events_keep_the_mean_bias(with_text):
    path, _, unseen = with_text
    model = Recommender.load(path)
    n_old = len(model.items.classes_)
    t0 = int(model.history.timestamp.max()) + 10_000
    event = pd.DataFrame(
        {"user_id": ["someone"], "item_id": [unseen[0]], "timestamp": [t0], "event": ["cart"]}
    )
    model.update(event)
    vectors = model.sequence.item_vectors()
    assert vectors[n_old, -1] == pytest.approx(vectors[:n_old, -1].mean(), rel=1e-5)
    assert model.catalogue.text[n_old] == ""
