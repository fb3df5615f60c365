"""Readers and validation of bundlerec.data: CSV, Parquet, DataFrame, ARFF, RecBole, MovieLens."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.data import (
    EVENT_TYPES,
    DataError,
    DataWarning,
    load_arff_baskets,
    load_events,
    load_items,
    load_movielens,
    load_recbole,
    load_users,
    read_recbole,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

EVENTS = pd.DataFrame(
    {
        "user_id": ["007", "007", "u2", "u2"],
        "item_id": [1, 2, 1, 3],
        "timestamp": ["2024-01-01T00:00:00Z", "2024-01-01 00:01:00", "2024-01-02", "1970-01-01"],
        "event": ["View", "purchase", "cart", "click"],
        "basket_id": ["b1", "b1", None, "b2"],
        "quantity": [1, 2, 1, 1],
        "price": [1.5, 2.0, np.nan, 0.0],
    }
)


def expected_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["007", "007", "u2", "u2"],
            "item_id": ["1", "2", "1", "3"],
            "timestamp": [1704067200, 1704067260, 1704153600, 0],
            "event": pd.Categorical.from_codes([0, 3, 2, 1], categories=EVENT_TYPES),
            "basket_id": ["b1", "b1", None, "b2"],
            "quantity": [1, 2, 1, 1],
            "price": [1.5, 2.0, np.nan, 0.0],
        }
    )


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns), f"columns {list(got.columns)}"
    for column in want.columns:
        g, w = got[column].to_numpy(), want[column].to_numpy()
        same = (g == w) | (pd.isna(g) & pd.isna(w))
        assert same.all(), f"{column}: rows {np.flatnonzero(~same)} got {g[~same]} want {w[~same]}"
    assert got["timestamp"].dtype == np.int64 and got["quantity"].dtype == np.int64


@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet", "frame"])
def test_readers_agree_on_canonical_events(tmp_path, suffix):
    path = tmp_path / f"events.{suffix}"
    if suffix == "csv":
        EVENTS.to_csv(path, index=False)
    elif suffix == "tsv":
        EVENTS.to_csv(path, index=False, sep="\t")
    elif suffix == "parquet":
        EVENTS.to_parquet(path)
    assert_same(load_events(EVENTS if suffix == "frame" else path), expected_events())


def test_column_mapping_and_datetime_dtype():
    frame = pd.DataFrame(
        {
            "customer": [3, 4],
            "sku": ["a", "b"],
            "when": pd.to_datetime(["2024-01-01 00:00:01", "2024-01-01 01:00:00"]).tz_localize(
                "Europe/Berlin"
            ),
        }
    )
    events = load_events(
        frame, columns={"customer": "user_id", "sku": "item_id", "when": "timestamp"}
    )
    assert events["timestamp"].tolist() == [1704067200 - 3600 + 1, 1704067200]
    assert events["user_id"].tolist() == ["3", "4"]
    assert (events["event"] == "purchase").all()


@given(
    users=st.lists(st.integers(0, 50), min_size=1, max_size=30),
    data=st.data(),
)
def test_load_events_keeps_values(users, data):
    n = len(users)
    items = data.draw(
        st.lists(st.text("abcxyz_0123", min_size=1, max_size=4), min_size=n, max_size=n)
    )
    times = data.draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n))
    kinds = data.draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=n, max_size=n))
    frame = pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "timestamp": times,
            "event": [k.upper() for k in kinds],
        }
    )
    events = load_events(frame)
    assert events["user_id"].tolist() == [str(u) for u in users]
    assert events["item_id"].tolist() == items
    assert events["timestamp"].tolist() == times
    assert list(events["event"].cat.codes) == [EVENT_TYPES.index(k) for k in kinds]


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("timestamp", ["2024-01-01", "not a date", "also bad"], "2 row(s) with an unparseable"),
        ("timestamp", [1.0, np.nan, 3.0], "1 row(s) with a missing timestamp; first at row 1"),
        ("timestamp", [1.0, 2.5, 3.0], "1 row(s) with a fractional"),
        ("price", [1.0, -2.0, -0.5], "2 row(s) with a negative price; first at row 1"),
        ("price", ["1.0", "cheap", "2"], "1 row(s) with a non-numeric price"),
        ("event", ["view", "buy", None], "2 row(s) with an unknown event type"),
        ("quantity", [1, 0, 2], "1 row(s) with a non-positive quantity"),
        ("quantity", [1, np.nan, 2], "1 row(s) with a missing (NaN) quantity"),
        ("rating", [1, np.nan, 2], "1 row(s) with a missing (NaN) rating"),
    ],
)
def test_validation_errors_name_count_and_row(column, values, message):
    frame = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 1, 2], "timestamp": [1, 2, 3]})
    frame[column] = values
    with pytest.raises(DataError) as err:
        load_events(frame)
    assert message in str(err.value), str(err.value)
    assert column in str(err.value)


def test_missing_column_is_named():
    with pytest.raises(DataError, match=r"missing required column\(s\) \['timestamp'\]"):
        load_events(pd.DataFrame({"user_id": [1], "item_id": [2], "time": [3]}))
    with pytest.raises(DataError, match="'item_id'"):
        load_items(pd.DataFrame({"sku": [1]}))


def test_missing_ids_are_dropped_with_a_count():
    frame = pd.DataFrame(
        {"user_id": [1, None, 3, 4], "item_id": [1, 2, None, 4], "timestamp": [1, 2, 3, 4]}
    )
    with pytest.warns(DataWarning, match="dropped 2 row"):
        events = load_events(frame)
    assert events["user_id"].tolist() == ["1", "4"], events


def test_fractional_ids_and_unknown_format_are_errors(tmp_path):
    with pytest.raises(DataError, match="fractional item_id"):
        load_events(pd.DataFrame({"user_id": [1], "item_id": [1.5], "timestamp": [0]}))
    with pytest.raises(DataError, match="unknown file format"):
        load_events(tmp_path / "events.xlsx")


def test_items_and_users(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,category,brand,price,size\n01,pasta,,2.5,\n2,sauce,acme,,42\n")
    items = load_items(path)
    assert items["item_id"].tolist() == ["01", "2"]
    assert items["brand"].isna().tolist() == [True, False]
    assert np.isnan(items["price"][1]) and items["price"][0] == 2.5
    assert items["size"].tolist()[1] == "42"
    with pytest.raises(DataError, match="1 row.* duplicate item_id; first at row 2"):
        load_items(pd.DataFrame({"item_id": ["a", "b", "a"]}))
    with pytest.raises(DataError, match="negative price"):
        load_items(pd.DataFrame({"item_id": ["a"], "price": [-1.0]}))
    users = load_users(pd.DataFrame({"user_id": [5, 6], "region": ["north", None]}))
    assert users["user_id"].tolist() == ["5", "6"] and users["region"].isna().tolist() == [
        False,
        True,
    ]


ARFF = """% a comment
@relation shop
@attribute 'bread and cake' { t}
@attribute milk {t}
@attribute "tea" { t}
@attribute total { low, high} % low < 100

@data
t,?,t,low
?,?,?,high
?,t,t,high
"""


def test_arff_baskets(tmp_path):
    path = tmp_path / "shop.arff"
    path.write_text(ARFF)
    events, baskets = load_arff_baskets(path)
    assert events["item_id"].tolist() == ["bread and cake", "tea", "milk", "tea"]
    assert events["basket_id"].tolist() == ["0", "0", "2", "2"]
    assert (events["user_id"] == events["basket_id"]).all()
    assert events["timestamp"].tolist() == [0, 0, 2, 2]
    assert baskets.to_dict("list") == {
        "basket_id": ["0", "1", "2"],
        "total": ["low", "high", "high"],
    }
    path.write_text(ARFF.replace("?,t,t,high", "?,x,t,high"))
    with pytest.raises(DataError, match="1 row.* outside milk's domain"):
        load_arff_baskets(path)


def test_real_supermarket_arff():
    path = DATA / "supermarket.arff"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    events, baskets = load_arff_baskets(path)
    lines = path.read_text().split("@data", 1)[1].split()
    bought = sum(line.split(",")[:-1].count("t") for line in lines)
    assert len(baskets) == len(lines) == 4627
    assert len(events) == bought, f"{len(events)} events, {bought} 't' values in the file"
    assert set(baskets["total"]) == {"low", "high"}
    assert events["item_id"].nunique() <= 216 and "total" not in set(events["item_id"])


def test_recbole(tmp_path):
    (tmp_path / "shop.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t10\t4.0\t881250949\n2\t20\t3.5\t881250950\n"
    )
    (tmp_path / "shop.item").write_text(
        "item_id:token\tgenre:token_seq\tprice:float\n10\ta b\t3\n"
    )
    events, items, users = load_recbole(tmp_path / "shop.inter")
    assert users is None
    assert events["timestamp"].tolist() == [881250949, 881250950]
    assert events["rating"].tolist() == [4.0, 3.5] and events["item_id"].tolist() == ["10", "20"]
    assert items.to_dict("list") == {"item_id": ["10"], "genre": ["a b"], "price": [3.0]}
    (tmp_path / "bad.inter").write_text("user_id\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match="'user_id' needs a type"):
        read_recbole(tmp_path / "bad.inter")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,29,4.0,1260759145\n",
        ),
        ("u.data", "1\t31\t2.5\t1260759144\n1\t29\t4\t1260759145\n"),
        ("ratings.dat", "1::31::2.5::1260759144\n1::29::4::1260759145\n"),
    ],
)
def test_movielens_formats(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    events = load_movielens(tmp_path / name)
    assert events["item_id"].tolist() == ["31", "29"]
    assert events["timestamp"].tolist() == [1260759144, 1260759145]
    assert events["rating"].tolist() == [2.5, 4.0]
    liked = load_movielens(tmp_path / name, min_rating=4.0)
    assert liked["item_id"].tolist() == ["29"]
