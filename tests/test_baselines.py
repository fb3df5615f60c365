"""Baselines: hand-computed values on a tiny shop and set-based oracles on random ones."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bundlerec.cases import Cases
from bundlerec.models import baselines
from bundlerec.models.baselines import (
    CoOccurrence,
    ItemKNN,
    NotFittedError,
    Popularity,
    Transition,
)
from bundlerec.prep import Interactions

VIEW, PURCHASE = 0, 3


def interactions(rows, n_users, n_items):
    """Interactions from (user, item, basket, timestamp, event) rows, sorted by user and time."""
    a = np.array(rows, dtype=np.int64).reshape(-1, 5)
    a = a[np.lexsort((a[:, 3], a[:, 0]))]
    cols = [a[:, c].copy() for c in range(4)]
    return Interactions(*cols, a[:, 4].astype(np.int8), n_users, n_items)


def cases(contexts, n_items):
    """Cases whose contexts are the given item lists (targets are irrelevant to scoring)."""
    n = len(contexts)
    width = max([1, *map(len, contexts)])
    context = np.full((n, width), -1, dtype=np.int64)
    for row, items in enumerate(contexts):
        context[row, : len(items)] = items
    rows = [r for r, items in enumerate(contexts) for _ in items]
    exclude = sp.csr_matrix(
        (np.ones(len(rows), bool), (rows, [j for items in contexts for j in items])),
        shape=(n, n_items),
    )
    return Cases(
        users=np.full(n, -1, dtype=np.int64),
        context=context,
        lengths=np.array([len(c) for c in contexts], dtype=np.int64),
        targets=np.zeros((n, 1), dtype=np.int64),
        exclude=exclude,
    )


def assert_close(name, got, want, atol=1e-6):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    err = np.abs(got - want)
    assert err.max(initial=0.0) <= atol, (
        f"{name}: max abs difference {err.max():.3g}\n got\n{got}\n want\n{want}"
    )


# A tiny shop: (user, item, basket, timestamp, event). Purchased baskets: b0 {0, 1, 2},
# b1 {0, 1}, b2 {1, 3}, b3 {0, 2}; user 1 also views item 4. Sequences (all events, repeats
# merged): user 0: 0 1 2 0 1; user 1: 1 3 4; user 2: 0 2.
SHOP = interactions(
    [
        (0, 0, 0, 1, VIEW),
        (0, 0, 0, 2, PURCHASE),
        (0, 1, 0, 3, PURCHASE),
        (0, 2, 0, 4, PURCHASE),
        (0, 0, 1, 10, PURCHASE),
        (0, 1, 1, 11, PURCHASE),
        (1, 1, 2, 5, PURCHASE),
        (1, 3, 2, 5, PURCHASE),
        (1, 4, 2, 6, VIEW),
        (2, 0, 3, 7, PURCHASE),
        (2, 2, 3, 8, PURCHASE),
    ],
    n_users=3,
    n_items=5,
)


def test_popularity_by_hand():
    scores = Popularity().fit(SHOP).score(cases([[], [2]], 5))
    assert scores.dtype == np.float32 and scores.shape == (2, 5)
    assert_close("purchase counts", scores, [[3, 3, 2, 1, 0]] * 2)
    assert_close(
        "all events", Popularity(events=None).fit(SHOP).score(cases([[]], 5)), [[4, 3, 2, 1, 1]]
    )


def test_co_occurrence_by_hand():
    model = CoOccurrence().fit(SHOP)
    # baskets holding item 0: 3, 1: 3, 2: 2, 3: 1; holding both 0, 1: 2; 0, 2: 2; 1, 2: 1; 1, 3: 1
    conf = [
        [0, 2 / 3, 2 / 3, 0, 0],
        [2 / 3, 0, 1 / 3, 1 / 3, 0],
        [1, 1 / 2, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    assert_close("confidence", model.confidence_.toarray(), conf)
    context = cases([[0, 2], [4], []], 5)
    summed = [[1, 2 / 3 + 1 / 2, 2 / 3, 0, 0], [0] * 5, [0] * 5]
    assert_close("sum over context", model.score(context), summed)
    maxed = [[1, 2 / 3, 2 / 3, 0, 0], [0] * 5, [0] * 5]
    assert_close("max over context", CoOccurrence("max").fit(SHOP).score(context), maxed)
    top1 = CoOccurrence(neighbours=1).fit(SHOP).confidence_.toarray()
    assert_close("one consequent", top1, np.where(np.eye(5)[[1, 0, 0, 1, 0]] > 0, conf, 0))


def test_item_knn_by_hand():
    # users per item (all events): 0 {u0, u2}, 1 {u0, u1}, 2 {u0, u2}, 3 {u1}, 4 {u1}
    r = 1 / np.sqrt(2)
    cosine = np.array(
        [
            [0, 1 / 2, 1, 0, 0],
            [1 / 2, 0, 1 / 2, r, r],
            [1, 1 / 2, 0, 0, 0],
            [0, r, 0, 0, 1],
            [0, r, 0, 1, 0],
        ]
    )
    assert_close("cosine", ItemKNN().fit(SHOP).similarity_.toarray(), cosine)
    nearest = ItemKNN(neighbours=1).fit(SHOP)
    # ties (item 1: items 3 and 4 at 1/sqrt 2) keep the lower item
    keep = np.eye(5, dtype=bool)[[2, 3, 0, 4, 3]]
    assert_close("one neighbour", nearest.similarity_.toarray(), np.where(keep, cosine, 0))
    assert_close("score", nearest.score(cases([[1, 3]], 5)), [[0, 0, 0, r, 1]])
    # basket columns (all events): 0 {b0, b1, b3}, 1 {b0, b1, b2}, 3 {b2}, 4 {b2}
    by_basket = ItemKNN(by="basket").fit(SHOP).similarity_.toarray()
    assert_close("basket cosine", by_basket[3], [0, 1 / np.sqrt(3), 0, 0, 1])


def test_transition_by_hand():
    model = Transition().fit(SHOP)
    # steps: 0->1 x2, 1->2, 2->0 (user 0); 1->3, 3->4 (user 1); 0->2 (user 2)
    counts = np.zeros((5, 5))
    for a, b, c in [(0, 1, 2), (1, 2, 1), (2, 0, 1), (1, 3, 1), (3, 4, 1), (0, 2, 1)]:
        counts[a, b] = c
    assert_close("counts", model.counts_.toarray(), counts)
    got = model.score(cases([[2, 0], [1], [], [4]], 5))
    assert_close(
        "last item", got, [[0, 2 / 3, 1 / 3, 0, 0], [0, 0, 1 / 2, 1 / 2, 0], [0] * 5, [0] * 5]
    )
    purchases = Transition(events=[PURCHASE]).fit(SHOP).counts_.toarray()
    assert purchases[1, 3] == 1 and purchases[3, 4] == 0, "the view of item 4 must not count"


def test_bad_use_is_named():
    with pytest.raises(NotFittedError, match="fitted"):
        Popularity().score(cases([[0]], 5))
    with pytest.raises(ValueError, match="outside"):
        ItemKNN().fit(SHOP).score(cases([[7]], 8))
    with pytest.raises(ValueError, match="aggregate"):
        CoOccurrence("mean")
    with pytest.raises(ValueError, match="by"):
        ItemKNN(by="session")
    with pytest.raises(ValueError, match="neighbours"):
        ItemKNN(neighbours=0)


# --- random shops against set-based oracles ------------------------------------------------


@st.composite
def shops(draw):
    n_users, n_items = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    n = draw(st.integers(0, 30))
    cols = [
        hnp.arrays(np.int64, n, elements=st.integers(0, n_users - 1)),
        hnp.arrays(np.int64, n, elements=st.integers(0, n_items - 1)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 5)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 9)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 3)),
    ]
    rows = np.stack([draw(c) for c in cols], axis=1)
    contexts = draw(
        st.lists(st.lists(st.integers(0, n_items - 1), max_size=4), min_size=1, max_size=5)
    )
    return interactions(rows, n_users, n_items), contexts


def oracle_matrices(train, neighbours):
    """Confidence, cosine (top neighbours) and transition probabilities from Python sets."""
    n_items = train.n_items
    bought = {}
    users = {}
    for u, i, b, e in zip(train.user, train.item, train.basket, train.event, strict=True):
        if e == PURCHASE:
            bought.setdefault(int(b), set()).add(int(i))
        users.setdefault(int(i), set()).add(int(u))
    conf = np.zeros((n_items, n_items))
    cosine = np.zeros((n_items, n_items))
    for i in range(n_items):
        having = [s for s in bought.values() if i in s]
        for j in range(n_items):
            if i != j and having:
                conf[i, j] = sum(j in s for s in having) / len(having)
            both = users.get(i, set()) & users.get(j, set())
            if i != j and both:
                cosine[i, j] = len(both) / np.sqrt(len(users[i]) * len(users[j]))
        ranked = sorted(np.flatnonzero(cosine[i]), key=lambda j: (-cosine[i, j], j))
        cosine[i, ranked[neighbours:]] = 0
    steps = np.zeros((n_items, n_items))
    for u in range(train.n_users):
        seq = [int(i) for i in train.item[train.user == u]]
        seq = [x for pos, x in enumerate(seq) if pos == 0 or seq[pos - 1] != x]
        for a, b in zip(seq, seq[1:], strict=False):
            steps[a, b] += 1
    total = steps.sum(axis=1, keepdims=True)
    return conf, cosine, np.divide(steps, total, out=np.zeros_like(steps), where=total > 0)


@given(shops())
def test_item_models_match_set_oracles(shop):
    train, contexts = shop
    conf, cosine, transition = oracle_matrices(train, neighbours=2)
    batch = cases(contexts, train.n_items)
    items = [sorted(set(c)) for c in contexts]
    want = {
        "co-occurrence sum": [conf[c].sum(axis=0) for c in items],
        "co-occurrence max": [conf[c].max(axis=0, initial=0) for c in items],
        "item-knn": [cosine[c].sum(axis=0) for c in items],
        "transition": [transition[c[-1]] if c else 0 * conf[0] for c in contexts],
    }
    models = {
        "co-occurrence sum": CoOccurrence("sum"),
        "co-occurrence max": CoOccurrence("max"),
        "item-knn": ItemKNN(neighbours=2),
        "transition": Transition(),
    }
    for name, model in models.items():
        got = model.fit(train).score(batch)
        assert got.dtype == np.float32, f"{name} returned {got.dtype}"
        assert_close(name, got, np.array(want[name]).reshape(got.shape))


def test_chunked_scoring_is_deterministic(monkeypatch, rng):
    n_users, n_items, n = 20, 30, 400
    rows = np.stack(
        [
            rng.integers(0, n_users, n),
            rng.integers(0, n_items, n),
            rng.integers(0, 60, n),
            rng.integers(0, 1000, n),
            rng.integers(0, 4, n),
        ],
        axis=1,
    )
    train = interactions(rows, n_users, n_items)
    contexts = [list(rng.integers(0, n_items, rng.integers(0, 6))) for _ in range(9)]
    batch = cases(contexts, n_items)

    def models():
        return [Popularity(), CoOccurrence("max"), CoOccurrence(), ItemKNN(5), Transition()]

    whole = [m.fit(train).score(batch) for m in models()]
    monkeypatch.setattr(baselines, "_CHUNK_CASES", 2)
    for model, want in zip(models(), whole, strict=True):
        got = model.fit(train).score(batch)
        np.testing.assert_array_equal(got, want, err_msg=f"{type(model).__name__} in chunks of 2")
