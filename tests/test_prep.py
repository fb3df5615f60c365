"""Preparation (bundlerec.prep) and cases (bundlerec.cases) against brute-force oracles."""

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from bundlerec.cases import Cases, basket_completion_cases, history_cases, next_item_cases
from bundlerec.data import EVENT_TYPES, DataWarning, load_events
from bundlerec.prep import (
    UNKNOWN,
    Encoder,
    Interactions,
    PriceScaler,
    assign_baskets,
    clean,
    deduplicate,
    encode_attributes,
    encode_split,
    fill_missing,
    filter_min_counts,
    split_baskets,
    split_global_time,
    split_leave_last_out,
    to_interactions,
    user_sequences,
)


def random_events(rng: np.random.Generator, n: int, n_users: int = 6, n_items: int = 8):
    """Canonical events with small id ranges (many ties and repeats)."""
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n),
            "item_id": rng.integers(0, n_items, n),
            "timestamp": rng.integers(0, 500, n),
            "event": rng.choice(EVENT_TYPES, n),
        }
    )
    return load_events(frame)


@st.composite
def events_strategy(draw, max_size=60):
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, max_size))
    return random_events(np.random.default_rng(seed), n)


labels = st.lists(st.text("abc01", min_size=1, max_size=3), min_size=1, max_size=20)


@given(train=labels, test=labels, reserve=st.booleans())
def test_encoder_fit_transform_json(train, test, reserve):
    encoder = Encoder(reserve_unknown=reserve).fit(train)
    classes = sorted(set(train))
    assert list(encoder.classes_) == classes
    codes = encoder.transform(test)
    unknown = len(classes) if reserve else -1
    want = [classes.index(t) if t in classes else unknown for t in test]
    assert codes.tolist() == want, f"codes {codes.tolist()} want {want}"
    assert encoder.inverse_transform(encoder.transform(train)).tolist() == train
    restored = Encoder.from_json(json.loads(json.dumps(encoder.to_json())))
    assert restored.transform(test).tolist() == want and restored.n_codes == encoder.n_codes


def test_encoder_errors():
    encoder = Encoder().fit(["a", "b", 3])
    assert encoder.transform([3, "3", "a"]).tolist() == [0, 0, 1]
    with pytest.raises(KeyError, match="1 unknown label.*'z'"):
        encoder.transform(["a", "z"], strict=True)
    with pytest.raises(KeyError, match="outside"):
        encoder.inverse_transform([3])
    with pytest.raises(ValueError, match="not fitted"):
        Encoder().transform(["a"])
    with pytest.raises(ValueError, match="1 missing"):
        Encoder().fit(["a", None])
    with pytest.raises(ValueError, match="distinct"):
        Encoder.from_json({"classes": ["b", "a", "b"], "reserve_unknown": False})


def test_encoder_extend_keeps_codes_and_round_trips():
    encoder = Encoder(reserve_unknown=True).fit(["b", "d"])
    grown = encoder.extend(["c", "b", "a", "c"])
    assert grown.classes_ == ("b", "d", "c", "a")
    assert grown.transform(["b", "d", "c", "a", "zz"]).tolist() == [0, 1, 2, 3, 4]
    assert encoder.classes_ == ("b", "d")  # the original is unchanged
    again = Encoder.from_json(grown.to_json())
    assert again.transform(["a", "c"]).tolist() == [3, 2]


def test_price_scaler(rng):
    train = np.exp(rng.normal(2.0, 1.0, 1000))
    scaler = PriceScaler(n_buckets=4).fit(np.r_[train, np.nan])
    z = scaler.standardize(train)
    assert abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9, (z.mean(), z.std())
    counts = np.bincount(scaler.bucketize(train), minlength=4)
    assert (np.abs(counts - 250) <= 1).all(), f"train bucket counts {counts}"
    test = np.array([0.0, np.nan, 1e9])
    assert scaler.bucketize(test).tolist() == [0, 4, 3]
    assert scaler.standardize(test)[1] == 0.0
    restored = PriceScaler.from_json(json.loads(json.dumps(scaler.to_json())))
    assert (restored.bucketize(train) == scaler.bucketize(train)).all()
    assert PriceScaler(3).fit([5.0, 5.0, 5.0]).n_buckets_ == 2  # tied edges merged
    with pytest.raises(ValueError, match=">= 0"):
        scaler.fit([-1.0])


def kcore_oracle(pairs: list[tuple[str, str]], min_user: int, min_item: int) -> Counter:
    rows = list(pairs)
    while True:
        users, items = Counter(u for u, _ in rows), Counter(i for _, i in rows)
        kept = [(u, i) for u, i in rows if users[u] >= min_user and items[i] >= min_item]
        if len(kept) == len(rows):
            return Counter(kept)
        rows = kept


@given(events=events_strategy(), min_user=st.integers(1, 4), min_item=st.integers(1, 4))
def test_min_count_filter_reaches_fixed_point(events, min_user, min_item):
    got = filter_min_counts(events, min_user=min_user, min_item=min_item)
    pairs = list(zip(events["user_id"], events["item_id"], strict=True))
    want = kcore_oracle(pairs, min_user, min_item)
    have = Counter(zip(got["user_id"], got["item_id"], strict=True))
    assert have == want, f"kept {sum(have.values())} rows, oracle {sum(want.values())}"


def test_deduplicate_and_fill_missing():
    events = load_events(
        pd.DataFrame({"user_id": [1, 1, 1], "item_id": [2, 2, 2], "timestamp": [5, 5, 6]})
    )
    assert deduplicate(events)["timestamp"].tolist() == [5, 6]
    items = pd.DataFrame({"item_id": ["a", "b"], "brand": ["x", None], "price": [1.0, np.nan]})
    filled = fill_missing(items)
    assert filled["brand"].tolist() == ["x", UNKNOWN] and np.isnan(filled["price"][1])


def baskets_oracle(events: pd.DataFrame, window: int) -> list[frozenset[int]]:
    """Partition of row positions by a per-user loop over sorted times (gap rule)."""
    groups: dict[tuple, set[int]] = {}
    ordered = sorted(range(len(events)), key=lambda r: (events["timestamp"][r], r))
    last: dict[str, tuple[int, int]] = {}
    count = 0
    for r in ordered:
        user, t, given_id = events["user_id"][r], events["timestamp"][r], events["basket_id"][r]
        if isinstance(given_id, str):
            key = ("given", user, given_id)
        else:
            if user not in last or t - last[user][0] > window:
                count += 1
                last[user] = (t, count)
            last[user] = (t, last[user][1])
            key = ("window", last[user][1])
        groups.setdefault(key, set()).add(r)
    return sorted(map(frozenset, groups.values()), key=min)


@given(events=events_strategy(), window=st.integers(0, 60), data=st.data())
def test_assign_baskets_matches_gap_rule(events, window, data):
    given_ids = data.draw(
        st.lists(st.sampled_from([None, "a", "b"]), min_size=len(events), max_size=len(events))
    )
    events = events.assign(basket_id=pd.Series(given_ids, dtype=object))
    baskets = assign_baskets(events, window)
    got = {}
    for r, b in enumerate(baskets):
        got.setdefault(b, set()).add(r)
    assert sorted(map(frozenset, got.values()), key=min) == baskets_oracle(events, window)
    assert set(baskets) == set(range(len(got))), "basket numbers are not contiguous"


@given(events=events_strategy(), n_last=st.integers(1, 3))
def test_leave_last_out_has_no_leakage(events, n_last):
    train, test = split_leave_last_out(events, n_last)
    assert len(train) + len(test) == len(events)
    sizes = events["user_id"].value_counts()
    assert set(test["user_id"]) == set(sizes[sizes > n_last].index)
    assume(len(test) > 0)
    for user, rows in test.groupby("user_id"):
        before = train[train["user_id"] == user]
        assert len(rows) == n_last and len(before) >= 1, f"user {user}"
        assert rows["timestamp"].min() >= before["timestamp"].max(), f"user {user} leaks"


@given(events=events_strategy(), share=st.floats(0.05, 0.95))
def test_global_time_cut(events, share):
    train, test = split_global_time(events, test_share=share)
    assert len(train) + len(test) == len(events) and len(test) >= 1
    if len(train):
        assert train["timestamp"].max() < test["timestamp"].min()
    cut = int(test["timestamp"].min())
    again = split_global_time(events, cut=pd.Timestamp(cut, unit="s"))
    assert len(again[1]) == len(test)


@given(events=events_strategy(), share=st.floats(0.1, 0.9), seed=st.integers(0, 100))
def test_basket_holdout_is_disjoint_and_seeded(events, share, seed):
    events = clean(events, window=300)
    train, test = split_baskets(events, share, seed)
    assert not set(train["basket"]) & set(test["basket"])
    n_baskets = events["basket"].nunique()
    assert test["basket"].nunique() == round(share * n_baskets)
    assert split_baskets(events, share, seed)[1].equals(test)


def test_encode_split_fits_on_train_only():
    train = load_events(
        pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "timestamp": [1, 2, 3]})
    )
    test = load_events(
        pd.DataFrame({"user_id": [1, 3, 2], "item_id": [9, 1, 2], "timestamp": [4, 5, 6]})
    )
    with pytest.warns(DataWarning, match="dropped 2 event"):
        split = encode_split(train, test)
    assert split.items.classes_ == ("1", "2") and split.users.classes_ == ("1", "2")
    assert split.test.user.tolist() == [1] and split.test.item.tolist() == [1]
    with pytest.warns(DataWarning, match="dropped 1 event"):
        kept = encode_split(train, test, unknown_users="reserve")
    assert kept.test.n_users == kept.train.n_users == 3
    assert kept.test.user.tolist() == [1, 2] and kept.known_users == 2


def test_interactions_validate():
    ok = dict(
        user=np.array([0, 1]),
        item=np.array([0, 0]),
        basket=np.array([0, 1]),
        timestamp=np.array([5, 1]),
        event=np.array([3, 3], dtype=np.int8),
        n_users=2,
        n_items=1,
    )
    assert Interactions(**ok).purchases().n_baskets == 2
    with pytest.raises(ValueError, match="item codes outside"):
        Interactions(**{**ok, "n_items": 0})
    with pytest.raises(ValueError, match="sorted"):
        Interactions(**{**ok, "user": np.array([1, 0])})
    with pytest.raises(TypeError, match="int8"):
        Interactions(**{**ok, "event": np.array([3, 3])})


def encoded(events: pd.DataFrame) -> Interactions:
    users, items = Encoder().fit(events["user_id"]), Encoder().fit(events["item_id"])
    return to_interactions(events, users, items, window=60)


@given(events=events_strategy(), max_len=st.integers(1, 6))
def test_user_sequences_match_loop(events, max_len):
    data = encoded(events)
    items, lengths = user_sequences(data, max_len)
    assert items.shape == (data.n_users, max_len)
    for u in range(data.n_users):
        history = data.item[data.user == u][-max_len:]
        want = np.r_[history, -np.ones(max_len - len(history), dtype=np.int64)]
        assert (items[u] == want).all() and lengths[u] == len(history), f"user {u}: {items[u]}"


@pytest.mark.filterwarnings("ignore::bundlerec.data.DataWarning")
@given(events=events_strategy(), horizon=st.integers(1, 2), max_len=st.integers(1, 5))
def test_next_item_cases_match_loop(events, horizon, max_len):
    train_frame, test_frame = split_leave_last_out(events, 2)
    split = encode_split(train_frame, test_frame)
    assume(len(split.test) > 0)
    cases = next_item_cases(split.train, split.test, max_len=max_len, horizon=horizon)
    history, lengths = user_sequences(split.train, max_len)
    assert cases.users.tolist() == sorted(set(split.test.user.tolist()))
    assert len(cases) > 0, "no cases from a non-empty test part"
    for row, u in enumerate(cases.users):
        future = split.test.item[split.test.user == u][:horizon]
        want = np.r_[future, -np.ones(horizon - len(future), dtype=np.int64)]
        assert (cases.targets[row] == want).all(), f"row {row}: {cases.targets[row]} vs {want}"
        assert (cases.context[row] == history[u]).all() and cases.lengths[row] == lengths[u]
        seen = set(split.train.item[split.train.user == u].tolist())
        assert set(cases.exclude[row].indices.tolist()) == seen


@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=20), seed=st.integers(0, 99))
def test_basket_completion_cases(sizes, seed):
    n_items = 10
    gen = np.random.default_rng(seed)
    baskets = [gen.integers(0, n_items, s) for s in sizes]
    cases = basket_completion_cases(baskets, n_items, np.random.default_rng(seed))
    distinct = [list(dict.fromkeys(b.tolist())) for b in baskets]
    eligible = [d for d in distinct if len(d) >= 2]
    assert len(cases) == len(eligible) and (cases.users == -1).all()
    assume(len(eligible) > 0)
    for row, items in enumerate(eligible):
        context = cases.context[row, : cases.lengths[row]].tolist()
        target = int(cases.targets[row, 0])
        assert (cases.context[row, cases.lengths[row] :] == -1).all()
        assert target not in context and sorted(context + [target]) == sorted(items)
        assert context == [i for i in items if i != target], "context lost basket order"
        assert sorted(cases.exclude[row].indices.tolist()) == sorted(context)
    again = basket_completion_cases(baskets, n_items, np.random.default_rng(seed))
    assert (again.targets == cases.targets).all(), "not deterministic for a seed"


@pytest.mark.filterwarnings("ignore::bundlerec.data.DataWarning")
@given(events=events_strategy(), max_len=st.integers(1, 4), seed=st.integers(0, 99))
def test_history_cases_match_loop(events, max_len, seed):
    events = clean(events, window=50)
    train_frame, test_frame = split_baskets(events, 0.5, seed)
    split = encode_split(train_frame, test_frame)
    train, held = split.train, split.test
    cases = history_cases(train, held, np.random.default_rng(seed), max_len=max_len)
    want = []  # (user, context) of each basket whose shopper has earlier training events
    for b in np.unique(held.basket):
        rows = held.basket == b
        user, start = int(held.user[rows][0]), held.timestamp[rows].min()
        before = train.item[(train.user == user) & (train.timestamp < start)]
        if before.size:
            want.append((user, before[-max_len:].tolist(), set(held.item[rows].tolist())))
    assert len(cases) == len(want) and cases.exclude.nnz == 0
    for row, (user, context, basket) in enumerate(want):
        assert cases.users[row] == user
        assert cases.context[row, : cases.lengths[row]].tolist() == context
        assert (cases.context[row, cases.lengths[row] :] == -1).all()
        assert int(cases.targets[row, 0]) in basket
    again = history_cases(train, held, np.random.default_rng(seed), max_len=max_len)
    assert (again.targets == cases.targets).all(), "not deterministic for a seed"


@pytest.mark.filterwarnings("ignore::bundlerec.data.DataWarning")
def test_history_cases_reject_bad_input(rng):
    split = encode_split(*split_baskets(clean(random_events(rng, 50), window=50), 0.5, 0))
    with pytest.raises(ValueError, match="max_len"):
        history_cases(split.train, split.test, rng, max_len=0)
    other = encode_split(
        *split_baskets(clean(random_events(rng, 50, n_items=3), window=50), 0.5, 0)
    )
    with pytest.raises(ValueError, match="encoders"):
        history_cases(split.train, other.test, rng)


def test_basket_completion_from_interactions(rng):
    events = clean(random_events(rng, 200), window=200)
    train, test = split_baskets(events, 0.5, 1)
    split = encode_split(train, test, unknown_users="reserve")
    cases = basket_completion_cases(split.test, None, rng, known_users=split.known_users)
    assert cases.n_items == split.train.n_items and cases.targets.shape[1] == 1
    sizes = np.bincount(
        np.unique(split.test.basket * split.test.n_items + split.test.item) // split.test.n_items
    )
    assert len(cases) == int((sizes >= 2).sum()), "one case per basket of >= 2 items"
    assert ((cases.users == -1) | ((cases.users >= 0) & (cases.users < split.known_users))).all()
    empty = basket_completion_cases([], 4, rng)
    assert len(empty) == 0 and empty.context.shape == (0, 0)


def test_cases_validate():
    ok = dict(
        users=np.array([0]),
        context=np.array([[1, -1]]),
        lengths=np.array([1]),
        targets=np.array([[2]]),
        exclude=basket_completion_cases([[1, 2]], 3, np.random.default_rng(0)).exclude,
    )
    Cases(**ok)
    with pytest.raises(ValueError, match="lengths"):
        Cases(**{**ok, "lengths": np.array([3])})
    with pytest.raises(TypeError, match="int64"):
        Cases(**{**ok, "users": np.array([0], dtype=np.int32)})


@given(st.integers(0, 5), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_allowed_is_the_complement_of_exclude(n, n_items, seed):
    """Duplicate and explicitly stored False entries included."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(0, 3 * n * n_items + 1))
    rows, cols = rng.integers(0, max(n, 1), k), rng.integers(0, n_items, k)
    data = rng.random(k) < 0.8
    exclude = sp.csr_matrix((data, (rows, cols)), shape=(n, n_items), dtype=bool)
    cases = Cases(
        users=np.zeros(n, np.int64),
        context=np.full((n, 1), -1),
        lengths=np.zeros(n, np.int64),
        targets=np.full((n, 1), -1),
        exclude=exclude,
    )
    np.testing.assert_array_equal(cases.allowed(), exclude.toarray() == 0)


def test_encode_attributes():
    items = pd.DataFrame(
        {"item_id": ["b", "a", "zz"], "brand": ["x", None, "y"], "price": [1.0, 2.0, 3.0]}
    )
    ids = Encoder().fit(["a", "b", "c"])
    codes, encoders = encode_attributes(items, "item_id", ids)
    assert list(encoders) == ["brand"]
    assert encoders["brand"].classes_ == (UNKNOWN, "x")
    assert codes[:, 0].tolist() == [0, 1, 0]  # a: missing brand, b: x, c: no row
    again, _ = encode_attributes(items.assign(brand=["q", "x", "y"]), "item_id", ids, encoders)
    assert again[:, 0].tolist() == [1, 2, 0]  # unseen "q" -> reserved code 2


@given(labels=st.lists(st.text(max_size=4), min_size=1, max_size=20), probe=st.text(max_size=4))
def test_code_of_one_label_equals_transform(labels, probe):
    for reserve in (False, True):
        enc = Encoder(reserve_unknown=reserve).fit(labels)
        for label in [*labels, probe, 7, None]:
            assert enc.code(label) == int(enc.transform([label])[0])
