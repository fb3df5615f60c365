"""Promotions: the table, prices at a moment, value objectives (against brute force) and the
promoted slots (a property over random requests)."""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundlerec.compose import compose_bundles
from bundlerec.data import DataError, load_promotions
from bundlerec.datasets import synthetic_shop
from bundlerec.prep import Encoder
from bundlerec.promotions import active_prices, item_values, promoted_slots
from bundlerec.recommender import Recommender

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}


def _promos(**columns):
    base = {"item_id": ["a"], "start": ["2024-01-01"], "end": ["2024-02-01"]}
    return pd.DataFrame({**base, **columns})


def test_load_promotions_validates():
    table = load_promotions(_promos(discount=[0.25]))
    assert table.loc[0, "discount"] == 0.25 and np.isnan(table.loc[0, "promo_price"])
    assert table.loc[0, "end"] - table.loc[0, "start"] == 31 * 86_400
    with pytest.raises(DataError, match="promo_price or a discount"):
        load_promotions(_promos())
    with pytest.raises(DataError, match="exactly one"):
        load_promotions(_promos(discount=[0.1], promo_price=[2.0]))
    with pytest.raises(DataError, match="discount of 1"):
        load_promotions(_promos(discount=[1.0]))
    with pytest.raises(DataError, match="negative promo_price"):
        load_promotions(_promos(promo_price=[-1.0]))
    with pytest.raises(DataError, match="end <= start"):
        load_promotions(_promos(promo_price=[1.0], end=["2023-12-01"]))


def test_active_prices_take_the_lowest_active_offer():
    ids = Encoder().fit(["a", "b", "c"])
    price = np.array([10.0, 20.0, np.nan])
    promos = load_promotions(
        pd.DataFrame(
            {
                "item_id": ["a", "a", "b", "c", "zz"],
                "promo_price": [8.0, np.nan, np.nan, np.nan, 1.0],
                "discount": [np.nan, 0.5, 0.1, 0.5, np.nan],
                "start": [0, 0, 100, 0, 0],
                "end": [50, 50, 200, 50, 50],
            }
        )
    )
    prices, promoted = active_prices(promos, ids, price, now=10)
    assert prices[0] == 5.0 and prices[1] == 20.0 and np.isnan(prices[2])
    assert promoted.tolist() == [True, False, True]
    prices, promoted = active_prices(promos, ids, price, now=150)
    assert prices.tolist()[:2] == [10.0, 18.0] and promoted.tolist() == [False, True, False]
    prices, promoted = active_prices(promos, ids, price, now=200)  # end is exclusive
    assert not promoted.any()


def test_values_and_slots():
    prices, cost = np.array([10.0, 5.0]), np.array([4.0, np.nan])
    assert item_values("probability", prices, cost) is None
    assert item_values("revenue", prices, cost).tolist() == [10.0, 5.0]
    margin = item_values("margin", prices, cost)
    assert margin[0] == 6.0 and np.isnan(margin[1])
    with pytest.raises(ValueError, match="cost column"):
        item_values("margin", prices, np.full(2, np.nan))
    with pytest.raises(ValueError, match="objective"):
        item_values("profit", prices, cost)
    assert [promoted_slots(s, 3) for s in (0.0, 0.2, 1 / 3, 0.5, 1.0)] == [0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match="share"):
        promoted_slots(1.5, 2)


@settings(max_examples=60)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 3]), st.booleans())
def test_value_objective_finds_the_brute_force_best(seed, free, margin):
    """With every item in the pool and a wide beam, the search is exhaustive: its best bundle
    maximises sum log p + log value, the log of the expected value."""
    rng = np.random.default_rng(seed)
    n = 7
    relevance = np.log(rng.uniform(0.01, 0.5, n))
    value = rng.uniform(-5.0, 20.0, n) if margin else rng.uniform(1.0, 20.0, n)
    prices = rng.uniform(1, 10, n)
    best = compose_bundles(
        relevance,
        prices,
        np.arange(n),
        np.ones(n, dtype=bool),
        lambda bundles: np.zeros(len(bundles)),
        k=1,
        size=free,
        n_candidates=n,
        beam_width=200,
        value=value,
    )

    def objective(b):
        total = value[list(b)].sum()
        return relevance[list(b)].sum() + np.log(total) if total > 0 else -np.inf

    combos = list(itertools.combinations(range(n), free))
    want = max(objective(b) for b in combos)
    if not np.isfinite(want):
        assert best == []
        return
    assert best and best[0].score == pytest.approx(want)


@pytest.fixture(scope="module")
def model():
    events, items, users = synthetic_shop(n_users=150, n_items=60, n_days=30, seed=3)
    items = items.assign(cost=items["price"] * 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=SMALL_SEQ, network={"n_top": 30}).fit(events, items, users)
    promoted = [str(i) for i in model.items.classes_[::7]]
    model.set_campaign(
        promotions=pd.DataFrame(
            {
                "item_id": promoted,
                "discount": [0.3] * len(promoted),
                "start": ["2024-01-01"] * len(promoted),
                "end": ["2024-03-01"] * len(promoted),
            }
        )
    )
    return model


NOW = "2024-02-01"


def test_bundles_are_priced_at_promotional_prices(model):
    user = model.users.classes_[0]
    promoted = set(str(i) for i in model.items.classes_[::7])
    result = model.recommend_bundles(user, k=3, size=3, promote_share=1.0, now=NOW)
    assert result["bundles"]
    for bundle in result["bundles"]:
        total = 0.0
        for item in bundle["items"]:
            assert item["item_id"] in promoted
            assert item["price"] == pytest.approx(0.7 * item["regular_price"])
            total += item["price"]
        assert bundle["total_price"] == pytest.approx(total)
    later = model.recommend_bundles(user, k=1, size=3, now="2024-04-01")
    assert all("regular_price" not in i for b in later["bundles"] for i in b["items"])


def test_objectives_change_what_is_maximised(model):
    user = model.users.classes_[1]
    value = {}
    for objective in ("probability", "revenue", "margin"):
        result = model.recommend_bundles(user, k=1, size=3, objective=objective, now=NOW)
        value[objective] = result["bundles"][0]["total_price"]
    # the same items may be summed in another order: equal up to rounding
    assert value["revenue"] >= value["probability"] * (1 - 1e-12)
    with pytest.raises(ValueError, match="objective"):
        model.recommend_bundles(user, objective="likes")


@settings(max_examples=100)
@given(
    user=st.integers(0, 149),
    share=st.sampled_from([0.0, 0.2, 0.34, 0.5, 0.67, 1.0]),
    size=st.integers(2, 4),
    anchored=st.booleans(),
    budget=st.one_of(st.none(), st.floats(20.0, 2000.0)),
)
def test_promoted_share_is_respected_in_random_requests(
    model, user, share, size, anchored, budget
):
    promoted = set(str(i) for i in model.items.classes_[::7])
    anchor = [str(model.items.classes_[(user * 7 + 3) % 60])] if anchored else None
    free = size - (1 if anchored else 0)
    result = model.recommend_bundles(
        str(model.users.classes_[user]),
        k=2,
        size=size,
        anchor=anchor,
        promote_share=share,
        budget=budget,
        now=NOW,
    )
    for bundle in result["bundles"]:
        companions = [i["item_id"] for i in bundle["items"]][size - free :]
        assert sum(c in promoted for c in companions) >= share * free - 1e-9
        if budget is not None:
            assert bundle["total_price"] <= budget + 1e-9


def test_cli_recommend_with_campaign_files(model, tmp_path, capsys):
    import json

    from bundlerec import cli

    model.save(tmp_path / "m")
    ids = [str(i) for i in model.items.classes_]
    pd.DataFrame({"item_id": ids, "on_hand": [0] * 30 + [9] * 30}).to_csv(
        tmp_path / "stock.csv", index=False
    )
    pd.DataFrame(
        {"item_id": ids[30:45], "promo_price": 1.0, "start": 0, "end": 2_000_000_000}
    ).to_csv(tmp_path / "promos.csv", index=False)
    args = ["recommend", "--model", str(tmp_path / "m"), "--user", str(model.users.classes_[0])]
    campaign = [
        "--stock",
        str(tmp_path / "stock.csv"),
        "--promotions",
        str(tmp_path / "promos.csv"),
    ]
    code = cli.main(
        [*args, *campaign, "--promote-share", "0.5", "--format", "json", "--now", "1700000000"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bundles"]
    for bundle in result["bundles"]:
        shown = [i["item_id"] for i in bundle["items"]]
        assert set(shown) <= set(ids[30:]) and len(set(shown) & set(ids[30:45])) >= 2
    assert cli.main([*args, "--objective", "margin", "--favour-overstock", "30"]) == 0
    with pytest.raises(SystemExit):  # a usage error: argparse exits with 2
        cli.main([*args, "--promote-share", "2"])
    capsys.readouterr()
    (tmp_path / "bad.csv").write_text("item_id,discount,start,end\na,1.5,0,10\n")
    assert cli.main([*args, "--promotions", str(tmp_path / "bad.csv")]) == 2
    assert "discount" in capsys.readouterr().err
