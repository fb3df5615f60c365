"""bundlerec.forecast.synthetic: the demo shop's daily sales have the structure the docstring
promises (seed determinism, promotions that lift sales, weekly seasonality, stock-outs)."""

import numpy as np
import pandas as pd
import pytest

from bundlerec.forecast import to_grid
from bundlerec.forecast.synthetic import synthetic_sales


@pytest.fixture(scope="module")
def sales():
    return synthetic_sales(n_items=30, n_days=364, seed=5)


def test_equal_seeds_give_equal_frames(sales):
    again = synthetic_sales(n_items=30, n_days=364, seed=5)
    for a, b in zip(sales, again):
        pd.testing.assert_frame_equal(a, b)
    other, _, _ = synthetic_sales(n_items=30, n_days=364, seed=6)
    assert not other["quantity"].equals(sales[0]["quantity"])


def test_columns_and_values(sales):
    events, stock, items = sales
    assert list(events.columns) == ["item_id", "timestamp", "quantity", "price", "promo"]
    assert (events["quantity"] > 0).all() and set(events["promo"]) <= {0, 1}
    assert events["timestamp"].is_monotonic_increasing
    assert list(stock.columns) == ["item_id", "on_hand", "stockout_days"]
    assert (stock["on_hand"] >= 0).all() and len(items) == 30


def test_promotions_lift_sales_and_cut_the_price(sales):
    events, _, items = sales
    per_item = events.groupby(["item_id", "promo"])["quantity"].mean().unstack()
    lifted = (per_item[1] > per_item[0]).mean()
    assert lifted > 0.8, f"only {lifted:.0%} of items sell more on promotion days"
    price = events.groupby(["item_id", "promo"])["price"].mean().unstack()
    assert (price[1] < price[0]).all()


def test_weekly_seasonality_and_stock_outs(sales):
    events, stock, _ = sales
    grid = to_grid(events, "D", end="2024-12-29")
    weekday = grid.periods.start_time.day_of_week.to_numpy()
    total = grid.values.sum(axis=0)
    saturday, monday = total[weekday == 5].mean(), total[weekday == 0].mean()
    assert saturday > 1.2 * monday, (saturday, monday)
    assert (stock["stockout_days"] > 0).any(), "some item runs out of stock"
    assert np.all(grid.values >= 0)
