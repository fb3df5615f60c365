"""bundlerec.forecast.grid: events to a regular grid of periods.

Oracles: a naive per-event loop over pandas Periods for the sums, hand-made logs for the
zero-filled gaps, prices, promotions and errors.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.data import DataError
from bundlerec.forecast.grid import SEASON, to_grid

DAY = 86_400
START = 1_704_067_200  # 2024-01-01, a Monday


@st.composite
def logs(draw):
    n = draw(st.integers(1, 30))
    items = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n, max_size=n))
    seconds = draw(st.lists(st.integers(0, 400 * DAY), min_size=n, max_size=n))
    quantity = draw(
        st.lists(
            st.floats(0, 50, allow_nan=False).map(lambda q: round(q, 2)), min_size=n, max_size=n
        )
    )
    return pd.DataFrame(
        {"item_id": items, "timestamp": np.array(seconds) + START, "quantity": quantity}
    )


@pytest.mark.parametrize("freq", ["D", "W", "M", "Q"])
@given(events=logs())
def test_sums_match_a_per_event_loop(freq, events):
    grid = to_grid(events, freq)
    alias = {"D": "D", "W": "W-SUN", "M": "M", "Q": "Q"}[freq]
    periods = list(grid.periods)
    expected = np.zeros_like(grid.values)
    for item, ts, q in events.itertuples(index=False):
        period = pd.Timestamp(ts, unit="s").to_period(alias)
        expected[list(grid.items).index(item), periods.index(period)] += q
    assert np.allclose(grid.values, expected), np.abs(grid.values - expected).max()
    assert list(grid.items) == sorted(set(events["item_id"]))
    assert grid.values.shape[1] == len(periods) and grid.season == SEASON[freq]
    first = pd.Timestamp(events["timestamp"].min(), unit="s").to_period(alias)
    last = pd.Timestamp(events["timestamp"].max(), unit="s").to_period(alias)
    assert periods[0] == first and periods[-1] == last, "the grid spans first to last event"


def test_missing_periods_are_zero_and_quantity_defaults_to_one():
    events = pd.DataFrame(
        {"item_id": ["x", "x", "y"], "timestamp": ["2024-01-01", "2024-01-04", "2024-01-04"]}
    )
    grid = to_grid(events, "D", end="2024-01-06")
    assert grid.values.tolist() == [[1, 0, 0, 1, 0, 0], [0, 0, 0, 1, 0, 0]]
    assert [str(p) for p in grid.periods[[0, -1]]] == ["2024-01-01", "2024-01-06"]


def test_weeks_start_on_monday_and_only_purchases_count():
    events = pd.DataFrame(
        {
            "item_id": ["x"] * 4,
            "timestamp": [
                "2024-01-07",
                "2024-01-08",
                "2024-01-14",
                "2024-01-15",
            ],  # Sun Mon Sun Mon
            "event": ["purchase", "purchase", "purchase", "view"],
            "quantity": [2, 1, 1, 5],
        }
    )
    grid = to_grid(events, "W")
    assert grid.values.tolist() == [[2, 2]]
    assert str(grid.periods.start_time[0].date()) == "2024-01-01"


def test_price_is_a_weighted_mean_carried_forward_and_promo_a_share():
    events = pd.DataFrame(
        {
            "item_id": ["x", "x", "x"],
            "timestamp": ["2024-01-01", "2024-01-01", "2024-01-03"],
            "quantity": [1, 3, 2],
            "price": [2.0, 1.0, 4.0],
            "promo": [0, 1, 0],
        }
    )
    grid = to_grid(events, "D")
    assert np.allclose(grid.price, [[1.25, 1.25, 4.0]])
    assert np.allclose(grid.promo, [[0.75, 0.0, 0.0]])


@pytest.mark.parametrize(
    ("events", "match"),
    [
        (pd.DataFrame({"item_id": [], "timestamp": []}), "no sales"),
        (pd.DataFrame({"item_id": ["x"], "when": [1]}), "timestamp"),
        (
            pd.DataFrame(
                {"item_id": ["x", "x"], "timestamp": [START, START], "quantity": [1, np.nan]}
            ),
            "missing or non-numeric quantity.*row 1",
        ),
        (
            pd.DataFrame({"item_id": ["x"], "timestamp": [START], "quantity": ["two"]}),
            "non-numeric",
        ),
        (
            pd.DataFrame(
                {"item_id": ["x", "x"], "timestamp": [START, START], "quantity": [1, -2]}
            ),
            "negative quantity.*row 1",
        ),
        (pd.DataFrame({"item_id": ["x"], "timestamp": ["yesterday"]}), "timestamp"),
        (pd.DataFrame({"item_id": [None], "timestamp": [START]}), "no item_id"),
        (pd.DataFrame({"item_id": ["x"], "timestamp": [START], "event": ["view"]}), "no sales"),
    ],
)
def test_bad_logs_raise_a_data_error_naming_the_problem(events, match):
    with pytest.raises(DataError, match=match):
        to_grid(events, "D")


def test_unknown_frequency():
    with pytest.raises(ValueError, match="freq must be one of D, W, M, Q"):
        to_grid(pd.DataFrame({"item_id": ["x"], "timestamp": [START]}), "H")
