"""Stock: the table, days of cover, and the constraints of bundles in random requests (no item
out of stock, promoted share, budget, category cap)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bundlerec.compose import compose_bundles
from bundlerec.data import DataError, load_stock
from bundlerec.datasets import synthetic_shop
from bundlerec.prep import Interactions
from bundlerec.recommender import Recommender
from bundlerec.stock import days_of_cover

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}
DAY = 86_400


def test_load_stock_validates():
    table = load_stock(pd.DataFrame({"item_id": [1, 2], "on_hand": [0, 5]}))
    assert table["item_id"].tolist() == ["1", "2"] and table["on_hand"].tolist() == [0.0, 5.0]
    with pytest.raises(DataError, match="on_hand"):
        load_stock(pd.DataFrame({"item_id": ["a"]}))
    with pytest.raises(DataError, match="negative on_hand"):
        load_stock(pd.DataFrame({"item_id": ["a"], "on_hand": [-1]}))
    with pytest.raises(DataError, match="missing"):
        load_stock(pd.DataFrame({"item_id": ["a"], "on_hand": [None]}))
    with pytest.raises(DataError, match="duplicate"):
        load_stock(pd.DataFrame({"item_id": ["a", "a"], "on_hand": [1, 2]}))


def test_days_of_cover_from_recent_sales():
    now = 100 * DAY
    # item 0: 14 purchases in the window (0.5 a day); item 1: one old purchase only;
    # item 2: a view in the window (not a sale).
    times = [now - (k + 1) * DAY for k in range(14)] + [now - 60 * DAY, now - DAY]
    items = [0] * 14 + [1, 2]
    events = [3] * 15 + [0]
    n = len(items)
    order = np.argsort(times, kind="stable")
    history = Interactions(
        np.zeros(n, np.int64),
        np.array(items, np.int64)[order],
        np.arange(n, dtype=np.int64),
        np.array(times, np.int64)[order],
        np.array(events, np.int8)[order],
        n_users=1,
        n_items=4,
    )
    cover = days_of_cover(np.array([10.0, 3.0, 0.0, np.nan]), history, now, window=28)
    assert cover[0] == pytest.approx(10.0 / 0.5)
    assert cover[1] == np.inf and cover[2] == 0.0 and np.isnan(cover[3])


@settings(max_examples=1000)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(1, 4),
    n_fixed=st.integers(0, 1),
    share=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    budget=st.one_of(st.none(), st.floats(5.0, 60.0)),
    cap=st.integers(1, 2),
    objective=st.sampled_from(["probability", "value"]),
)
def test_every_constraint_holds_in_random_searches(
    seed, size, n_fixed, share, budget, cap, objective
):
    """compose_bundles over random catalogues: allowed (in stock) items only, the reserved
    promoted slots filled, the budget and the category cap kept."""
    rng = np.random.default_rng(seed)
    n = 25
    relevance = np.log(rng.uniform(0.001, 1.0, n))
    prices = rng.uniform(1.0, 20.0, n)
    categories = rng.integers(0, 6, n)
    in_stock = rng.random(n) < 0.7
    promoted = rng.random(n) < 0.3
    fixed = [int(j) for j in rng.choice(n, n_fixed, replace=False)] if size > n_fixed else []
    free = size - len(fixed)
    n_promoted = int(np.ceil(share * free - 1e-9))
    bundles = compose_bundles(
        relevance,
        prices,
        categories,
        in_stock,
        lambda bs: -0.1 * np.array([len(b) for b in bs], dtype=float),
        k=3,
        size=size,
        budget=budget,
        max_per_category=cap,
        fixed=fixed,
        value=prices if objective == "value" else None,
        promoted=promoted,
        n_promoted=n_promoted,
    )
    for b in bundles:
        companions = list(b.items[len(fixed) :])
        assert list(b.items[: len(fixed)]) == fixed and len(set(b.items)) == size
        assert in_stock[companions].all(), "an out-of-stock item was offered"
        assert promoted[companions].sum() >= n_promoted
        if budget is not None:
            assert b.total_price <= budget + 1e-9
        assert np.bincount(categories[list(b.items)]).max() <= cap


@pytest.fixture(scope="module")
def model():
    events, items, users = synthetic_shop(n_users=150, n_items=60, n_days=30, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recommender(sequence=SMALL_SEQ, network={"n_top": 30}).fit(events, items, users)


@settings(max_examples=100)
@given(
    on_hand=arrays(np.float64, 60, elements=st.sampled_from([0.0, 0.0, 3.0, 50.0, 500.0])),
    user=st.integers(-1, 149),
    anchored=st.booleans(),
    size=st.integers(2, 4),
    share=st.sampled_from([0.0, 0.5, 1.0]),
    overstock=st.one_of(st.none(), st.sampled_from([1.0, 30.0])),
)
def test_no_out_of_stock_item_in_random_requests(
    model, on_hand, user, anchored, size, share, overstock
):
    ids = [str(i) for i in model.items.classes_]
    model.set_campaign(
        stock=pd.DataFrame({"item_id": ids, "on_hand": on_hand}),
        promotions=pd.DataFrame(
            {"item_id": ids[::5], "discount": 0.2, "start": 0, "end": 2_000_000_000}
        ),
    )
    anchor = ids[(user * 11 + 7) % 60] if anchored else None
    shopper = "visitor" if user < 0 else str(model.users.classes_[user])
    result = model.recommend_bundles(
        shopper, k=2, size=size, anchor=anchor, promote_share=share, favour_overstock=overstock
    )
    out = {i for i, units in zip(ids, on_hand) if units <= 0}
    if anchored and anchor in out:
        assert result["bundles"] == [] and any("out of stock" in n for n in result["notes"])
    free = size - (1 if anchored else 0)
    for bundle in result["bundles"]:
        shown = [i["item_id"] for i in bundle["items"]]
        assert not out & set(shown), "an out-of-stock item was offered"
        promoted = sum(i in set(ids[::5]) for i in shown[size - free :])
        assert promoted >= share * free - 1e-9


def test_favour_overstock_raises_overstocked_items(model):
    ids = [str(i) for i in model.items.classes_]
    now = int(model.history.timestamp.max()) + 1
    model.set_campaign(stock=pd.DataFrame({"item_id": ids, "on_hand": 40.0}))
    over = model._overstocked(60.0, now)
    assert over.any() and not over.all(), "some items sell slowly, some fast"
    counted = {}
    for option in (None, 60.0):
        n = 0
        for u in model.users.classes_:  # slow sellers are rare in bundles: ask many
            result = model.recommend_bundles(u, k=3, size=3, favour_overstock=option, now=now)
            n += sum(
                over[model.items.code(i["item_id"])]
                for bundle in result["bundles"]
                for i in bundle["items"]
            )
        counted[option] = n
    assert counted[60.0] > counted[None]
