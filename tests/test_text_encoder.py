"""The text encoder: the embedding_bag op (gradient check, naive loop), hashed n-gram bags, the
item tower's text term and its saved state."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corenn
from bundlerec.datasets import synthetic_shop
from bundlerec.models.sequence import SequenceModel
from bundlerec.models.text import TextBags, ngrams, text_bags
from bundlerec.models.towers import ItemTower
from bundlerec.recommender import Recommender


@st.composite
def bags(draw, max_rows=6):
    rows = draw(st.integers(1, max_rows))
    width = draw(st.integers(1, 4))
    table = draw(hnp.arrays(np.float64, (rows, width), elements=st.floats(-3, 3, allow_nan=False)))
    sizes = draw(st.lists(st.integers(0, 4), min_size=1, max_size=5))
    ids = draw(hnp.arrays(np.int64, sum(sizes), elements=st.integers(0, rows - 1)))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return table, ids, offsets


def _naive(table, ids, offsets):
    out = np.zeros((offsets.size - 1, table.shape[1]))
    for b in range(offsets.size - 1):
        part = ids[offsets[b] : offsets[b + 1]]
        if part.size:
            out[b] = table[part].mean(axis=0)
    return out


@given(bags())
def test_embedding_bag_is_the_mean_of_each_bag_and_its_gradient_checks(case):
    table, ids, offsets = case
    w = corenn.tensor(table, requires_grad=True)
    out = corenn.F.embedding_bag(ids, offsets, w)
    np.testing.assert_allclose(out.numpy(), _naive(table, ids, offsets), atol=1e-12)
    g = np.random.default_rng(ids.size).standard_normal(out.shape)
    out.backward(g)
    want = np.zeros_like(table)
    for b in range(offsets.size - 1):
        part = ids[offsets[b] : offsets[b + 1]]
        np.add.at(want, part, g[b] / max(part.size, 1))
    np.testing.assert_allclose(w.grad.to_dense(), want, atol=1e-12)
    corenn.gradcheck(
        lambda t: corenn.F.embedding_bag(ids, offsets, t) * 1.5,
        [corenn.tensor(table, requires_grad=True)],
        rng=np.random.default_rng(0),
    )


def test_embedding_bag_errors():
    w = corenn.tensor(np.zeros((3, 2)), requires_grad=True)
    with pytest.raises(IndexError, match="out of range"):
        corenn.F.embedding_bag(np.array([3]), np.array([0, 1]), w)
    with pytest.raises(TypeError, match="offsets must be integers"):
        corenn.F.embedding_bag(np.array([1]), np.array([0.0, 1.0]), w)
    for offsets in ([1, 1], [0, 2, 1], [0, 3], [[0, 1]]):
        with pytest.raises(ValueError, match="offsets"):
            corenn.F.embedding_bag(np.array([1]), np.array(offsets), w)


def test_ngrams_and_bags():
    assert ngrams("Verde organic PASTA, organic") == [
        "verde",
        "organic",
        "pasta",
        "verde organic",
        "organic pasta",
        "pasta organic",
    ]
    assert ngrams("") == [] and ngrams("one") == ["one"]
    b = text_bags(["a b", "", "b a b"], 1000)
    assert b.offsets.tolist() == [0, 3, 3, 7] and b.ids.max() < 1000  # b, a, "b a", "a b"
    again = text_bags(["a b", "", "b a b"], 1000)  # the hash is the same in every run
    assert np.array_equal(b.ids, again.ids)
    assert set(b.ids[:3].tolist()) < set(b.ids[3:].tolist())  # "b a" is a new bigram
    with pytest.raises(ValueError, match="n_buckets"):
        text_bags(["a"], 0)


@given(st.lists(st.text(alphabet="abc ", max_size=8), min_size=1, max_size=6), st.data())
def test_bag_rows_concat_replace_agree_with_rebuilding(texts, data):
    n = len(texts)
    b = text_bags(texts, 50)
    which = data.draw(st.lists(st.integers(0, n - 1), max_size=8))
    picked = b.rows(np.array(which, dtype=np.int64))
    want = text_bags([texts[i] for i in which], 50)
    assert np.array_equal(picked.ids, want.ids) and np.array_equal(picked.offsets, want.offsets)
    extra = ["c a", "b"]
    both = b.concat(text_bags(extra, 50))
    assert np.array_equal(both.ids, text_bags([*texts, *extra], 50).ids)
    replaced = b.replace(np.array([n - 1]), text_bags(["c c a"], 50))
    assert np.array_equal(replaced.ids, text_bags([*texts[:-1], "c c a"], 50).ids)


def test_item_tower_adds_the_text_mean(rng):
    codes = np.array([[0], [1], [2], [1]], dtype=np.int64)
    texts = ["", "red shoe", "blue shoe", ""]
    tower = ItemTower(codes, [3], 4, "float64", rng, text_bags(texts, 64), 64)
    rows = np.array([1, 2, 3, 2])
    got = tower(rows).numpy()
    bags = text_bags(texts, 64)
    text = _naive(tower.text.weight.data, bags.ids, bags.offsets)
    want = tower.ids.weight.data[rows] + tower.attr0.weight.data[codes[rows, 0]] + text[rows]
    np.testing.assert_allclose(got, want, atol=1e-12)
    content = tower.content(rows).numpy()
    np.testing.assert_allclose(content, want - tower.ids.weight.data[rows], atol=1e-12)
    keep = np.array([True, False, True, False])
    dropped = tower(rows, keep).numpy()
    np.testing.assert_allclose(dropped[~keep], content[~keep], atol=1e-12)
    np.testing.assert_allclose(dropped[keep], got[keep], atol=1e-12)
    grown = tower.grown(np.array([[2]]), [3], rng, text_bags(["red boot"], 64))
    np.testing.assert_allclose(grown(rows).numpy(), got, atol=1e-12)
    assert np.any(grown.content(np.array([4])).numpy() != 0)


def test_text_trains_and_survives_save_and_load(tmp_path):
    events, items, users = synthetic_shop(n_users=120, n_items=60, n_days=20, seed=5, titles=True)
    seq = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=seq, network={"n_top": 20}).fit(events, items, users)
    assert model.sequence.has_text
    table = model.sequence._net.items.text.weight.data
    assert np.abs(table).sum() > 0
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.sequence.has_text
    np.testing.assert_array_equal(loaded.sequence.item_vectors(), model.sequence.item_vectors())
    plain = items.drop(columns=["title", "description"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        without = Recommender(sequence=seq, network={"n_top": 20}).fit(events, plain, users)
    assert not without.sequence.has_text
    assert "title" not in without.item_state["attributes"]
    assert "title" not in model.item_state["attributes"], "text is never a categorical code"
    assert isinstance(model.sequence._net.items.bags, TextBags)


def test_id_dropout_is_checked_and_trains():
    with pytest.raises(ValueError, match="id_dropout"):
        SequenceModel(id_dropout=1.0)
    events, items, users = synthetic_shop(n_users=80, n_items=40, n_days=15, seed=6, titles=True)
    seq = {"dim": 8, "hidden": 8, "epochs": 1, "batch_size": 64, "patience": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = Recommender(sequence=seq, network={"n_top": 10}).fit(events, items, users)
        dropped = Recommender(sequence={**seq, "id_dropout": 0.5}, network={"n_top": 10}).fit(
            events, items, users
        )
    assert dropped.sequence.get_params()["id_dropout"] == 0.5
    assert not np.array_equal(plain.sequence.item_vectors(), dropped.sequence.item_vectors())
