"""Baselines: hand-computed values on a tiny shop and set-based oracles on random ones."""

from itertools import combinations
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bundlerec.cases import Cases
from bundlerec.models import baselines
from bundlerec.models.baselines import (
    EASE,
    AssociationRules,
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
    logged = Popularity(log=True).fit(SHOP).score(cases([[]], 5))
    assert logged.dtype == np.float32
    assert_close("log(1 + counts)", logged, np.log1p([[3.0, 3, 2, 1, 0]]))


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
        return [
            Popularity(),
            CoOccurrence("max"),
            CoOccurrence(),
            ItemKNN(5),
            Transition(),
            EASE(l2=3.0, max_items=20),
            AssociationRules(0.005, metric="lift"),
        ]

    whole = [m.fit(train).score(batch) for m in models()]
    monkeypatch.setattr(baselines, "_CHUNK_CASES", 2)
    for model, want in zip(models(), whole, strict=True):
        got = model.fit(train).score(batch)
        np.testing.assert_array_equal(got, want, err_msg=f"{type(model).__name__} in chunks of 2")


# --- EASE and association rules --------------------------------------------------------------


def basket_shop(baskets, n_items):
    """Interactions with one purchase per (basket, item); basket b belongs to user b % 3."""
    rows = [(b % 3, i, b, b, PURCHASE) for b, items in enumerate(baskets) for i in items]
    return interactions(rows, 3, n_items)


@st.composite
def basket_lists(draw, max_items=6):
    n_items = draw(st.integers(1, max_items))
    baskets = draw(
        st.lists(st.sets(st.integers(0, n_items - 1), min_size=1, max_size=5), max_size=12)
    )
    contexts = draw(
        st.lists(st.lists(st.integers(0, n_items - 1), max_size=4), min_size=1, max_size=5)
    )
    return baskets, n_items, contexts


def ease_oracle(x, l2):
    """B column by column from its definition: ridge regression of X_j on the other columns."""
    n = x.shape[1]
    b = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        xo = x[:, others]
        b[others, j] = np.linalg.solve(xo.T @ xo + l2 * np.eye(n - 1), xo.T @ x[:, j])
    return b


@given(basket_lists(), st.sampled_from([0.5, 2.0, 10.0]))
def test_ease_matches_column_wise_ridge_regression(shop, l2):
    baskets, n_items, contexts = shop
    x = np.zeros((len(baskets), n_items))
    for r, items in enumerate(baskets):
        x[r, list(items)] = 1
    want_b = ease_oracle(x, l2)
    model = EASE(l2=l2).fit(basket_shop(baskets, n_items))
    assert_close("B", model.weights_, want_b, atol=1e-5)
    items = [sorted(set(c)) for c in contexts]
    want = [want_b[c].sum(axis=0) for c in items]
    got = model.score(cases(contexts, n_items))
    assert got.dtype == np.float32
    assert_close("scores", got, np.reshape(want, got.shape), atol=1e-5)


def test_ease_keeps_the_most_frequent_items_and_ranks_the_rest_below():
    # item counts: 0 x4, 1 x3, 2 x3, 3 x1, 4 x0 -> max_items=3 keeps 0, 1, 2
    baskets = [{0, 1}, {0, 1, 2}, {0, 2, 3}, {0, 1, 2}]
    model = EASE(l2=1.0, max_items=3).fit(basket_shop(baskets, 5))
    np.testing.assert_array_equal(model.kept_, [0, 1, 2])
    x = np.array([[1, 1, 0], [1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    b = ease_oracle(x, 1.0)
    got = model.score(cases([[3, 1], [0]], 5))
    for row, kept in ((0, b[1]), (1, b[0])):
        assert_close(f"kept items, case {row}", got[row, :3], kept, atol=1e-5)
        assert_close(f"others, case {row}", got[row, 3:], [kept.min() - 1] * 2, atol=1e-5)


@given(basket_lists(max_items=8), st.integers(1, 9))
def test_ease_keep_holds_the_largest_entries_of_each_row_and_saves_without_pickle(shop, keep):
    """``keep`` stores the ``keep`` entries of largest magnitude of each row of the dense B
    (all of them when keep >= K: the same scores as the dense model), and the state rebuilds
    a model that scores the same, also over cases with items added after the fit."""
    baskets, n_items, contexts = shop
    train = basket_shop(baskets, n_items)
    dense = EASE(l2=2.0).fit(train)
    pruned = EASE(l2=2.0, keep=keep).fit(train)
    b = dense.weights_
    got = pruned.weights_.toarray()
    assert sp.issparse(pruned.weights_) and pruned.weights_.dtype == np.float32
    assert (np.diff(pruned.weights_.indptr) == min(keep, n_items)).all()
    np.testing.assert_array_equal(got[got != 0], b[got != 0])  # kept entries are B's own
    for row in range(n_items):
        kept = np.abs(b[row][got[row] != 0])
        dropped = np.abs(b[row][got[row] == 0])
        assert kept.size <= keep and kept.min(initial=np.inf) >= dropped.max(initial=0.0)
    ctx = cases(contexts, n_items)
    if keep >= n_items:
        np.testing.assert_array_equal(got, b)
        assert_close("scores as dense", pruned.score(ctx), dense.score(ctx), atol=1e-5)
    for model in (dense, pruned):
        state = model.get_state()
        again = EASE.from_state(corenn_round_trip(state))
        np.testing.assert_array_equal(again.score(ctx), model.score(ctx))
        wider = Cases(ctx.users, ctx.context, ctx.lengths, ctx.targets, _wider(ctx.exclude, 2))
        scores = again.score(wider)
        np.testing.assert_array_equal(scores[:, :n_items], model.score(ctx))
        below = scores[:, again.kept_].min(axis=1, initial=0.0) - 1.0
        np.testing.assert_array_equal(scores[:, n_items:], np.repeat(below[:, None], 2, axis=1))


def corenn_round_trip(state):
    """``state`` written and read back by ``corenn.save`` / ``corenn.load`` (no pickle)."""
    import tempfile

    import corenn

    with tempfile.TemporaryDirectory() as tmp:
        corenn.save({"ease": state}, f"{tmp}/s.npz")
        return corenn.load(f"{tmp}/s.npz")["ease"]


def _wider(exclude, extra):
    """``exclude`` (n, I) with ``extra`` more item columns, none excluded."""
    return sp.hstack([exclude, sp.csr_matrix((exclude.shape[0], extra), dtype=bool)]).tocsr()


def test_ease_keep_and_narrower_cases_are_refused():
    with pytest.raises(ValueError, match="keep"):
        EASE(keep=0)
    model = EASE().fit(basket_shop([{0, 1}, {1, 2}], 3))
    with pytest.raises(ValueError, match="fitted on 3"):
        model.score(cases([[0]], 2))


def rules_oracle(baskets, n_items, min_support, min_confidence, metric):
    """{(antecedent, j): metric} by enumerating every itemset of 1-3 items of every basket."""
    n = max(len(baskets), 1)
    count = {}
    for basket in baskets:
        for k in (1, 2, 3):
            for s in combinations(sorted(basket), k):
                count[s] = count.get(s, 0) + 1
    frequent = {s: c for s, c in count.items() if c / n >= min_support}
    rules = {}
    for s, c in frequent.items():
        for j in s if len(s) > 1 else ():
            a = tuple(i for i in s if i != j)
            conf = c / frequent[a]
            if conf >= min_confidence:
                rules[a, j] = conf if metric == "confidence" else conf * n / frequent[(j,)]
    return rules


def kept_rules(rules, k):
    """The oracle's rules with each antecedent pair's ``k`` strongest kept (ties: lower j)."""
    if k is None:
        return dict(rules)
    kept, by_pair = {}, {}
    for (a, j), value in rules.items():
        if len(a) == 1:
            kept[a, j] = value
        else:
            by_pair.setdefault(a, []).append((-value, j))
    for a, ranked in by_pair.items():
        kept |= {(a, j): -neg for neg, j in sorted(ranked)[:k]}
    return kept


@given(
    basket_lists(),
    st.sampled_from([0.0, 0.1, 0.25]),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from(["lift", "confidence"]),
)
def test_rules_match_brute_force_enumeration(shop, min_support, min_confidence, metric):
    baskets, n_items, contexts = shop
    rules = rules_oracle(baskets, n_items, min_support, min_confidence, metric)
    model = AssociationRules(min_support, min_confidence, metric)
    got = model.fit(basket_shop(baskets, n_items)).score(cases(contexts, n_items))
    want = np.zeros(got.shape)
    for row, context in enumerate(contexts):
        for (a, j), value in rules.items():
            if set(a) <= set(context):
                want[row, j] = max(want[row, j], value)
    assert_close(f"rules ({metric}, support {min_support})", got, want, atol=1e-5)


@given(
    basket_lists(max_items=8),
    st.sampled_from([0.0, 0.1, 0.25]),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from(["lift", "confidence"]),
    st.sampled_from([None, 1, 2, 3]),
    st.sampled_from([1, 10, 1 << 24]),
)
def test_fitted_rules_are_the_enumerated_ones_blocked_and_truncated(
    shop, min_support, min_confidence, metric, max_consequents, block_entries
):
    # every rule of the brute-force enumeration, each pair antecedent's max_consequents
    # strongest ones, whatever the block size of the counting products (1 entry: one
    # antecedent per block)
    baskets, n_items, contexts = shop
    want = kept_rules(
        rules_oracle(baskets, n_items, min_support, min_confidence, metric), max_consequents
    )
    model = AssociationRules(min_support, min_confidence, metric, max_consequents=max_consequents)
    with mock.patch.object(baselines, "_BLOCK_ENTRIES", block_entries):
        model.fit(basket_shop(baskets, n_items))
    got = {((a,), j): v for (a, j), v in model.item_rules_.todok().items()}
    pair_rules = model.pair_rules_.tocoo()
    got |= {
        (tuple(model.pairs_[p].tolist()), j): v
        for p, j, v in zip(pair_rules.row, pair_rules.col, pair_rules.data, strict=True)
    }
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == value, f"{key}: {got[key]} != {value}"
    assert model.pairs_.dtype == np.int64
    assert sorted(map(tuple, model.pairs_.tolist())) == sorted({a for a, _ in want if len(a) == 2})
    # truncation only lowers scores, and only of items with max_consequents others as high
    full = AssociationRules(min_support, min_confidence, metric, max_consequents=None)
    full = full.fit(basket_shop(baskets, n_items)).score(cases(contexts, n_items))
    cut = model.score(cases(contexts, n_items))
    assert (cut <= full).all()
    for row, j in zip(*np.nonzero(cut != full), strict=True):
        assert max_consequents is not None
        assert (full[row] >= full[row, j]).sum() - 1 >= max_consequents


def test_rules_by_hand():
    # baskets {0,1,2} x2, {0,1}, {2}: support 0 3/4, 1 3/4, 2 3/4, 01 3/4, 02 1/2, 12 1/2,
    # 012 1/2. At min_support 0.6 only item 0 -> 1 and 1 -> 0 survive (confidence 1, lift 4/3).
    baskets = [{0, 1, 2}, {0, 1, 2}, {0, 1}, {2}]
    model = AssociationRules(min_support=0.6, metric="lift").fit(basket_shop(baskets, 3))
    assert_close("rules", model.item_rules_.toarray(), [[0, 4 / 3, 0], [4 / 3, 0, 0], [0] * 3])
    assert model.pairs_.shape == (0, 2)
    model = AssociationRules(min_support=0.5).fit(basket_shop(baskets, 3))
    np.testing.assert_array_equal(model.pairs_, [[0, 1], [0, 2], [1, 2]])
    # confidences: 0 -> 1 and 1 -> 0: 1; 0 -> 2, 1 -> 2, 2 -> 0, 2 -> 1 and {0, 1} -> 2: 2/3;
    # {0, 2} -> 1 and {1, 2} -> 0: 1
    got = model.score(cases([[0, 1], [1, 2], [2]], 3))
    assert_close("triple rules", got, [[1, 1, 2 / 3], [1, 2 / 3, 2 / 3], [2 / 3, 2 / 3, 0]])


def test_new_baselines_refuse_bad_parameters():
    with pytest.raises(ValueError, match="l2"):
        EASE(l2=0)
    with pytest.raises(ValueError, match="max_items"):
        EASE(max_items=0)
    with pytest.raises(ValueError, match="min_support"):
        AssociationRules(min_support=2)
    with pytest.raises(ValueError, match="max_consequents"):
        AssociationRules(max_consequents=0)
    with pytest.raises(ValueError, match="metric"):
        AssociationRules(metric="leverage")
    with pytest.raises(NotFittedError, match="fitted"):
        EASE().score(cases([[0]], 5))
