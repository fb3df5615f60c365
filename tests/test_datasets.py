"""The synthetic shop: deterministic for a seed and with the structure its docstring promises."""

import numpy as np
import pandas as pd
import pytest

from bundlerec.data import items_from_events, load_events, load_items, load_users
from bundlerec.datasets import (
    CATEGORIES,
    CHAINS,
    COMPLEMENTS,
    DEPARTMENT_OF,
    synthetic_shop,
)
from bundlerec.prep import assign_baskets


@pytest.fixture(scope="module")
def shop():
    return synthetic_shop(n_users=600, n_items=120, n_days=60, seed=7)


@pytest.fixture(scope="module")
def purchases(shop):
    events, items, _ = shop
    bought = events[events["event"] == "purchase"]
    category = items.set_index("item_id")["category"]
    return bought.assign(category=category.reindex(bought["item_id"]).to_numpy())


def test_deterministic_for_a_seed():
    a = synthetic_shop(n_users=50, n_items=30, n_days=10, seed=3)
    b = synthetic_shop(n_users=50, n_items=30, n_days=10, seed=3)
    c = synthetic_shop(n_users=50, n_items=30, n_days=10, seed=4)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert not a[0].equals(c[0]), "different seeds gave the same events"


def test_schema_and_sizes(shop):
    events, items, users = shop
    pd.testing.assert_frame_equal(load_events(events), events)
    pd.testing.assert_frame_equal(load_items(items), items)
    pd.testing.assert_frame_equal(load_users(users), users)
    assert len(items) == 120 and len(users) == 600
    assert items["category"].value_counts().eq(4).all() and len(CATEGORIES) == 30
    assert (np.diff(events["timestamp"].to_numpy()) >= 0).all()
    assert 15 * len(users) < len(events) < 30 * len(users), len(events)
    assert set(events["event"].unique()) == {"view", "click", "cart", "purchase"}
    with pytest.raises(ValueError, match="n_items"):
        synthetic_shop(n_items=10)


def test_baskets_have_one_to_five_items_and_windows_recover_trips(shop, purchases):
    events = shop[0]
    sizes = purchases.groupby("basket_id").size()
    assert sizes.min() >= 1 and sizes.max() <= 5, sizes.describe()
    assert not purchases.duplicated(["basket_id", "item_id"]).any()
    by_window = assign_baskets(events.drop(columns="basket_id"), window=1800)
    pairs = pd.DataFrame({"trip": events["basket_id"], "window": by_window}).drop_duplicates()
    assert pairs["trip"].is_unique and pairs["window"].is_unique, "30 min windows != trips"


def test_complements_co_occur_far_above_chance(purchases):
    baskets = pd.crosstab(purchases["basket_id"], purchases["category"]) > 0
    share = baskets.mean()
    lifts = [
        (baskets[a] & baskets[b]).mean() / (share[a] * share[b])
        for a, followers in COMPLEMENTS.items()
        for b in followers
    ]
    complements = {(a, b) for a, f in COMPLEMENTS.items() for b in f}
    others = [
        (baskets[a] & baskets[b]).mean() / (share[a] * share[b])
        for a in baskets.columns
        for b in baskets.columns
        if a < b and (a, b) not in complements and (b, a) not in complements
    ]
    assert np.median(lifts) > 5 and np.median(lifts) > 5 * np.median(others), (
        f"median complement lift {np.median(lifts):.2f}, other pairs {np.median(others):.2f}"
    )


def test_next_trip_often_starts_with_a_complement(purchases):
    trips = purchases.groupby(["user_id", "basket_id"], sort=False)["category"]
    first, last = trips.first().reset_index(), trips.last().reset_index()
    follows = []
    for (_, a), (_, b) in zip(last.groupby("user_id"), first.groupby("user_id"), strict=True):
        for previous, nxt in zip(a["category"].iloc[:-1], b["category"].iloc[1:], strict=True):
            follows.append(nxt in COMPLEMENTS[previous])
    rate = float(np.mean(follows))
    assert rate > 0.3, f"next trip starts with a complement in {rate:.2%} of trips"


def test_segments_shift_preferences_and_prices_follow_categories(shop, purchases):
    _, items, users = shop
    age = users.set_index("user_id")["age_band"].reindex(purchases["user_id"]).to_numpy()
    electronics = purchases["category"].map(DEPARTMENT_OF).eq("electronics").to_numpy()
    young, old = electronics[age == "18-29"].mean(), electronics[age == "65+"].mean()
    assert young > 2 * old, f"electronics share 18-29 {young:.2f} vs 65+ {old:.2f}"
    median = {c: p for chains in CHAINS.values() for ch in chains for c, p in ch}
    noise = np.log(items["price"].to_numpy() / items["category"].map(median).to_numpy())
    assert abs(noise.mean()) < 0.15 and 0.25 < noise.std() < 0.45, (noise.mean(), noise.std())


def test_items_from_flat_events_recover_the_items(shop, tmp_path):
    events, items, _ = shop
    flat = events.merge(items[["item_id", "category", "brand"]], on="item_id", how="left")
    flat.to_csv(tmp_path / "flat.csv", index=False)
    recovered = items_from_events(load_events(tmp_path / "flat.csv"))
    assert len(recovered) > 0
    want = items.set_index("item_id").loc[recovered["item_id"], ["category", "brand"]]
    pd.testing.assert_frame_equal(recovered.set_index("item_id"), want)
