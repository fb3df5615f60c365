"""Tests of the two-tower sequence model (bundlerec.models.sequence, bundlerec.models.towers).

Oracles: brute-force loops for the sequence plumbing (step merging, windows, case contexts),
the popularity baseline for learning, exact equality for reproducibility and state round trips,
and the dot-product identity ``score = user_vectors @ item_vectors.T``.
"""

from __future__ import annotations

import json

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from bundlerec import parallel
from bundlerec.cases import Cases, next_item_cases
from bundlerec.metrics import recall_at_k, top_k
from bundlerec.models import sequence as seq
from bundlerec.models import sequence_data
from bundlerec.models.baselines import Popularity
from bundlerec.models.sequence import SequenceModel
from bundlerec.models.towers import ItemTower
from bundlerec.prep import Interactions

N_ITEMS = 40
SMALL = dict(dim=8, hidden=16, max_len=12, epochs=2, batch_size=64, patience=None, verbose=False)


def _chain(rng: np.random.Generator, n_users: int = 150, low: int = 6, high: int = 14):
    """Users walk one cycle through all items (next = successor of the last), random starts.

    Returns train (all but each user's last event) and test (each user's last event).
    """
    order = rng.permutation(N_ITEMS)
    successor = np.empty(N_ITEMS, dtype=np.int64)
    successor[order] = np.roll(order, -1)
    counts = rng.integers(low, high + 1, size=n_users)
    users = np.repeat(np.arange(n_users), counts)
    items = np.empty(users.size, dtype=np.int64)
    items[np.cumsum(counts) - counts] = rng.integers(N_ITEMS, size=n_users)
    for i in np.flatnonzero(np.r_[False, users[1:] == users[:-1]]):
        items[i] = successor[items[i - 1]]
    n = users.size
    events = Interactions(
        users,
        items,
        np.arange(n),
        np.arange(n),
        rng.integers(0, 4, n).astype(np.int8),
        n_users,
        N_ITEMS,
    )
    last = np.r_[users[1:] != users[:-1], True]
    return events.subset(~last), events.subset(last)


@pytest.fixture(scope="module")
def data():
    train, test = _chain(np.random.default_rng(7))
    category = np.arange(N_ITEMS) % 5
    ages = np.arange(train.n_users) % 3
    return train, next_item_cases(train, test, max_len=12), {"category": category}, {"age": ages}


@pytest.fixture(scope="module")
def fitted(data):
    train, _, items, users = data
    return SequenceModel(**SMALL, seed=3).fit(train, item_features=items, user_features=users)


def _recall(scores: np.ndarray, cases: Cases) -> float:
    return float(recall_at_k(top_k(scores, 10, cases.exclude), cases.targets, 10).mean())


def _cases(context: list[list[int]], users: list[int], n_items: int = N_ITEMS) -> Cases:
    width = max([len(c) for c in context] + [1])
    ctx = np.full((len(context), width), -1, dtype=np.int64)
    for i, c in enumerate(context):
        ctx[i, : len(c)] = c
    return Cases(
        users=np.asarray(users, dtype=np.int64),
        context=ctx,
        lengths=np.array([len(c) for c in context], dtype=np.int64),
        targets=np.zeros((len(context), 1), dtype=np.int64),
        exclude=sp.csr_matrix((len(context), n_items), dtype=bool),
    )


# -- learning -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"loss": "bce", "sampler": "uniform", "n_negatives": 4},
        {"head": "mlp", "dtype": "float64"},
    ],
)
def test_learns_a_deterministic_successor_far_better_than_popularity(data, options):
    train, cases, items, _ = data
    params = {**SMALL, "dim": 16, "hidden": 32, "epochs": 12, "batch_size": 32, "lr": 1e-2}
    model = SequenceModel(**{**params, **options}, seed=0).fit(train, item_features=items)
    ours = _recall(model.score(cases), cases)
    popular = _recall(Popularity(events=None).fit(train).score(cases), cases)
    assert ours >= popular + 0.4, f"Recall@10 {ours:.3f} vs popularity {popular:.3f} ({options})"


def test_early_stopping_restores_the_best_validated_epoch(data):
    train, _, items, _ = data
    model = SequenceModel(**{**SMALL, "epochs": 4, "patience": 1}, seed=1).fit(train, items)
    hits = [h["valid_hit@10"] for h in model.history_]
    assert len(hits) >= 2 and all(0.0 <= h <= 1.0 for h in hits), hits
    best = int(np.argmax(hits))
    assert len(hits) == 4 or len(hits) == best + 2, f"stopped after {len(hits)} epochs: {hits}"
    steps = sequence_data.merge(train.user, train.item, train.event, train.timestamp)
    _, val = sequence_data.hold_out_last(steps, train.n_users, model.max_len)
    assert model._hit_rate(val) == hits[best], "the best epoch's weights were not restored"


def test_early_stop_is_announced_with_the_best_epoch(data, monkeypatch, capsys):
    """Validation scores 0.3, 0.5, 0.4, 0.2: with patience 2 training stops at epoch 4, best 2."""
    train, _, items, _ = data
    scores = iter([0.3, 0.5, 0.4, 0.2, 0.9, 0.9])
    monkeypatch.setattr(SequenceModel, "_hit_rate", lambda self, val: next(scores))
    params = {**SMALL, "epochs": 6, "patience": 2, "verbose": True}
    model = SequenceModel(**params, seed=1).fit(train, items)
    err = capsys.readouterr().err
    assert len(model.history_) == 4
    assert "stopped early at epoch 4 (best 2:" in err, err


# -- the item tower's batched lookup --------------------------------------------------------------
def _dense(grad) -> np.ndarray:
    return grad.to_dense() if hasattr(grad, "to_dense") else np.asarray(grad)


@given(
    st.lists(
        hnp.arrays(
            np.int64,
            hnp.array_shapes(min_dims=1, max_dims=2, max_side=5),
            elements=st.integers(0, 9),
        ),
        min_size=1,
        max_size=3,
    ),
    st.integers(0, 2**32 - 1),
)
def test_item_lookup_equals_separate_lookups_in_values_and_gradients(rows, seed):
    rng = np.random.default_rng(seed)
    codes = np.zeros((10, 2), dtype=np.int64)
    codes[1:] = rng.integers(1, 4, size=(9, 2))
    tower = ItemTower(codes, [4, 4], 3, "float64", rng)
    upstream = [(rng.normal(size=r.shape + (3,)), rng.normal(size=r.shape)) for r in rows]
    grads, values = [], []
    for batched in (True, False):
        tower.zero_grad()
        pairs = tower.lookup(*rows) if batched else [(tower(r), tower.biases(r)) for r in rows]
        loss = sum((v * gv).sum() + (b * gb).sum() for (v, b), (gv, gb) in zip(pairs, upstream))
        loss.backward()
        values.append([(v.numpy(), b.numpy()) for v, b in pairs])
        grads.append({name: _dense(p.grad) for name, p in tower.named_parameters()})
    for k, ((v, b), (v0, b0)) in enumerate(zip(*values)):
        assert v.shape == v0.shape and b.shape == b0.shape, f"array {k}: shapes differ"
        np.testing.assert_allclose(v, v0, rtol=1e-12, err_msg=f"vectors of array {k}")
        np.testing.assert_allclose(b, b0, rtol=1e-12, err_msg=f"biases of array {k}")
    for name, grad in grads[0].items():
        np.testing.assert_allclose(grad, grads[1][name], atol=1e-12, err_msg=f"gradient of {name}")


# -- reproducibility and state --------------------------------------------------------------------
def test_same_seed_gives_identical_scores(data, fitted):
    train, cases, items, users = data
    again = SequenceModel(**SMALL, seed=3).fit(train, item_features=items, user_features=users)
    a, b = fitted.score(cases), again.score(cases)
    assert a.dtype == np.float32 and a.shape == (len(cases), N_ITEMS)
    assert np.array_equal(a, b), f"same seed differs by up to {np.abs(a - b).max()}"
    other = SequenceModel(**SMALL, seed=4).fit(train, item_features=items, user_features=users)
    assert not np.array_equal(a, other.score(cases)), "a different seed gave identical scores"


def test_state_round_trip_gives_identical_scores(data, fitted):
    _, cases, _, _ = data
    arrays, config = fitted.get_state()
    config = json.loads(json.dumps(config))
    restored = SequenceModel.from_state({k: v.copy() for k, v in arrays.items()}, config)
    a, b = fitted.score(cases), restored.score(cases)
    assert np.array_equal(a, b), f"restored scores differ by up to {np.abs(a - b).max()}"
    missing = dict(arrays)
    missing.pop(next(iter(missing)))
    with pytest.raises(KeyError, match="missing keys"):
        SequenceModel.from_state(missing, config)
    with pytest.raises(ValueError, match="config"):
        SequenceModel.from_state(arrays, {"format": "other"})


def test_dot_scores_are_one_matrix_product(data, fitted, monkeypatch):
    _, cases, _, _ = data
    product = fitted.user_vectors(cases) @ fitted.item_vectors().T
    whole = fitted.score(cases)
    np.testing.assert_allclose(whole, product, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(seq, "_SCORE_ROWS", 3)  # blocks of 3 shoppers, on 2 threads
    monkeypatch.setattr(parallel.corenn, "get_num_threads", lambda: 2)
    np.testing.assert_allclose(fitted.score(cases), whole, rtol=1e-6, atol=1e-6)


def test_mlp_head_scores_pairs_in_batches(data, monkeypatch):
    train, cases, items, _ = data
    model = SequenceModel(**SMALL, head="mlp", seed=2).fit(train, item_features=items)
    full = model.score(cases)
    monkeypatch.setattr(seq, "_MLP_CELLS", 1)  # one case per chunk
    assert np.array_equal(full, model.score(cases)), "chunked MLP scoring differs"
    assert np.isfinite(full).all()


# -- unknown users, empty histories, cold items, fine-tuning --------------------------------------
def test_unknown_user_and_empty_history_score(fitted):
    cases = _cases([[], [], [3, 3, 4], [3, 4]], [-1, 0, -1, -1])
    scores = fitted.score(cases)
    assert scores.shape == (4, N_ITEMS) and np.isfinite(scores).all()
    assert not np.array_equal(scores[0], scores[1]), "user attributes had no effect"
    assert np.array_equal(scores[2], scores[3]), "repeated context item was not merged"


def test_grow_items_keeps_old_scores_and_uses_attributes(data):
    train, cases, items, _ = data
    model = SequenceModel(**SMALL, seed=5).fit(train, item_features=items)
    before = model.score(cases)
    model.grow_items(3, {"category": np.array([1, 1, 5])})
    after = model.score(cases)
    assert after.shape == (len(cases), N_ITEMS + 3)
    np.testing.assert_array_equal(after[:, :N_ITEMS], before)
    assert np.array_equal(after[:, N_ITEMS], after[:, N_ITEMS + 1]), "same attributes differ"
    vectors = model.item_vectors()
    np.testing.assert_allclose(vectors[N_ITEMS + 2, :-1], 0.0, err_msg="unseen category not 0")
    with pytest.raises(KeyError, match="category"):
        model.grow_items(1, {"brand": np.array([0])})


def test_fine_tune_accepts_new_users_and_is_reproducible(data):
    train, cases, items, users = data
    more, _ = _chain(np.random.default_rng(11), n_users=train.n_users + 5)
    runs = []
    for _ in range(2):
        model = SequenceModel(**SMALL, seed=6).fit(train, item_features=items, user_features=users)
        before = model.score(cases)
        model.fine_tune(more, epochs=1)
        runs.append(model.score(cases))
    assert model.n_users_ == more.n_users
    assert not np.array_equal(before, runs[0]), "fine_tune did not change the weights"
    assert np.array_equal(runs[0], runs[1]), "fine_tune is not reproducible"
    new_user = _cases([[1, 2]], [more.n_users - 1])
    assert np.isfinite(model.score(new_user)).all()


# -- bad input ------------------------------------------------------------------------------------
def test_bad_inputs_raise_naming_the_problem(data, fitted):
    train, _, items, _ = data
    model = SequenceModel(**SMALL)
    with pytest.raises(ValueError, match=r"item_features\['category'\] has shape \(39,\)"):
        model.fit(train, item_features={"category": items["category"][:-1]})
    with pytest.raises(TypeError, match=r"user_features\['age'\].*integer"):
        model.fit(train, user_features={"age": np.zeros(train.n_users)})
    with pytest.raises(ValueError, match="not fitted"):
        model.score(_cases([[1]], [0]))
    with pytest.raises(ValueError, match=r"cases.context holds item code 40 outside"):
        fitted.score(_cases([[1, 40]], [0], n_items=N_ITEMS + 1))
    with pytest.raises(ValueError, match=r"cases.users holds code"):
        fitted.score(_cases([[1]], [10_000]))
    with pytest.raises(ValueError, match="grow_items"):
        fitted.fine_tune(Interactions(*[np.zeros(1, np.int64)] * 4, np.zeros(1, np.int8), 1, 99))
    with pytest.raises(ValueError, match="loss must be one of"):
        SequenceModel(loss="hinge")
    with pytest.raises(ValueError, match="max_len must be an integer >= 2"):
        SequenceModel(max_len=1)


# -- sequence plumbing against brute force --------------------------------------------------------
def _runs(user: np.ndarray, item: np.ndarray, event: np.ndarray):
    out = []
    for u, i, e in zip(user.tolist(), item.tolist(), event.tolist(), strict=True):
        if out and out[-1][0] == u and out[-1][1] == i:
            out[-1][2] = max(out[-1][2], e)
        else:
            out.append([u, i, e])
    return out


events_strategy = st.integers(0, 30).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.int64, n, elements=st.integers(0, 3)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 4)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 3)),
    )
)


@given(events_strategy, st.integers(2, 6))
def test_merge_and_windows_match_brute_force(arrays, max_len):
    user, item, event = arrays
    user = np.sort(user)
    steps = sequence_data.merge(user, item, event, np.zeros_like(user))
    expected = _runs(user, item, event)
    got = list(zip(steps.user.tolist(), steps.item.tolist(), steps.event.tolist(), strict=True))
    assert got == [tuple(r) for r in expected], f"merged {got} != {expected}"
    start, stop = sequence_data.windows(steps, 4, max_len)
    covered = np.zeros(steps.item.size, dtype=int)
    for a, b in zip(start.tolist(), stop.tolist(), strict=True):
        assert 0 < b - a <= max_len and len(set(steps.user[a:b].tolist())) == 1, (a, b)
        covered[a:b] += 1
    assert (covered == 1).all(), f"steps covered {covered.tolist()} times"
    first, last = steps.bounds(4)
    for u in np.flatnonzero(last > first):  # each user's most recent window is a full one
        full = min(max_len, last[u] - first[u])
        assert ((stop == last[u]) & (stop - start == full)).any(), f"user {u}: {start}, {stop}"


@given(
    st.lists(st.lists(st.integers(0, 5), max_size=8), min_size=1, max_size=6), st.integers(2, 5)
)
def test_case_contexts_are_merged_and_truncated(contexts, max_len):
    model = SequenceModel(max_len=max_len)
    model._net, model.n_items_, model.n_users_ = object(), 6, 3
    inputs = model._case_inputs(_cases(contexts, [-1] * len(contexts), n_items=6))
    for i, c in enumerate(contexts):
        merged = [
            r[1] for r in _runs(np.zeros(len(c)), np.array(c, dtype=np.int64), np.zeros(len(c)))
        ]
        kept = merged[len(merged) - min(len(merged), max_len - 1) :]
        row = inputs.items[i, : inputs.lengths[i]].tolist()
        assert row == [0] + [k + 1 for k in kept], f"context {c} fed as {row}"
        assert (inputs.items[i, inputs.lengths[i] :] == 0).all()
    assert (inputs.users == 0).all()


@given(hnp.arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 4)))
def test_popularity_sampler_draws_from_q(items):
    sampler = sequence_data.Sampler("popularity", items, 5, np.dtype("float64"))
    expected = np.bincount(items, minlength=5) ** 0.75
    expected /= expected.sum()
    np.testing.assert_allclose(np.exp(sampler.log_q[1:]), expected, err_msg="log q is not q")
    assert sampler.log_q[0] == 0.0
    rows = sampler.draw(np.random.default_rng(0), (20_000,))
    freq = np.bincount(rows - 1, minlength=5) / rows.size
    assert np.abs(freq - expected).max() < 0.02, f"frequencies {freq} vs q {expected}"
    assert (freq[expected == 0] == 0).all(), "an item with q = 0 was drawn"


@given(
    hnp.arrays(np.int64, st.integers(0, 30), elements=st.integers(0, 2)),
    st.integers(0, 2**32 - 1),
)
def test_shuffle_ties_reorders_only_steps_of_one_user_at_one_time(time, seed):
    user = np.sort(np.random.default_rng(seed).integers(0, 3, size=time.size))
    time = np.sort(time + 10 * user) - 10 * user  # sorted by (user, time)
    steps = sequence_data.Steps(user, np.arange(time.size), np.zeros_like(time), time)
    out = sequence_data.shuffle_ties(steps, np.random.default_rng(seed))
    assert np.array_equal(out.user, user) and np.array_equal(out.time, time), "order broke"
    assert sorted(out.item.tolist()) == list(range(time.size)), "steps were lost or repeated"
    moved = out.item
    assert np.array_equal(user[moved], user) and np.array_equal(time[moved], time), (
        f"a step left its (user, time) run: {moved.tolist()}"
    )


def test_validation_cases_hide_one_basket_item_after_the_history():
    arrays = ([0, 0, 1], [5, 6, 7], [3, 3, 3], [0, 1, 0])
    steps = sequence_data.Steps(*(np.array(a) for a in arrays))
    model = SequenceModel(max_len=6)
    model.n_items_, model.n_users_ = 10, 3
    # user 0: first valid basket {1, 2} (then another basket); user 2: one item, no history.
    valid = Interactions(
        np.array([0, 0, 0, 2]),
        np.array([1, 2, 3, 4]),
        np.array([0, 0, 1, 2]),
        np.array([5, 5, 9, 5]),
        np.full(4, 3, dtype=np.int8),
        3,
        10,
    )
    val = model._valid_cases(steps, valid, np.random.default_rng(0))
    first = val.context[0][val.context[0] >= 0].tolist()
    assert first[:2] == [5, 6] and {val.target[0], *first[2:]} == {1, 2}, (first, val.target)
    assert val.context[1].tolist() == [-1] * 5 and val.target[1] == 4, val.context[1]
    assert val.inputs.users.tolist() == [1, 3]


def test_item_bias_starts_at_log_popularity(data):
    train, _, _, _ = data
    model = SequenceModel(**{**SMALL, "epochs": 1, "lr": 1e-12}, seed=0).fit(train)
    steps = sequence_data.merge(train.user, train.item, train.event, train.timestamp)
    counts = np.bincount(steps.item, minlength=N_ITEMS) + 1.0
    expected = np.log(counts / counts.mean())
    np.testing.assert_allclose(model.item_vectors()[:, -1], expected, atol=1e-5)


def _fresh_scores(model: SequenceModel, cases: Cases) -> np.ndarray:
    """Scores of a rebuilt copy of ``model``: item vectors computed from the weights anew."""
    arrays, config = model.get_state()
    return SequenceModel.from_state(arrays, config).score(cases)


def test_cached_item_vectors_follow_every_change_of_the_weights(data):
    train, cases, items, _ = data
    model = SequenceModel(**SMALL, seed=7).fit(train, item_features=items)
    model.score(cases)  # fills the item-vector cache
    model.fine_tune(train, epochs=1)
    tuned = model.score(cases)
    np.testing.assert_array_equal(tuned, _fresh_scores(model, cases), "stale after fine_tune")
    model.grow_items(2, {"category": np.array([0, 1])})
    grown = model.score(cases)
    assert grown.shape[1] == N_ITEMS + 2, f"stale after grow_items: {grown.shape}"
    np.testing.assert_array_equal(grown, _fresh_scores(model, cases), "stale after grow_items")
