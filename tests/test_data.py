"""Readers and validation of bundlerec.data: CSV, Parquet, DataFrame, ARFF, RecBole, MovieLens;
timestamp rules (round trips of generated datetimes), encodings, errors that name the file."""

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
    items_from_events,
    load_arff_baskets,
    load_events,
    load_items,
    load_movielens,
    load_recbole,
    load_users,
    read_recbole,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HERE = Path(__file__).resolve().parent / "data"
YEAR_1 = -62_135_596_800  # 0001-01-01T00:00:00Z in epoch seconds: the earliest timestamp accepted

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
    times = data.draw(st.lists(st.integers(YEAR_1, 10**11 - 1), min_size=n, max_size=n))
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
    pd.testing.assert_frame_equal(load_events(path), events)


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


# -- timestamps: one rule per column ------------------------------------------------------------

EPOCH = pd.Timestamp("1970-01-01")
MOMENTS = st.datetimes(
    min_value=pd.Timestamp("1974-01-01").to_pydatetime(),
    max_value=pd.Timestamp("2199-12-31").to_pydatetime(),
)
OFFSETS = st.tuples(st.integers(-12 * 4, 14 * 4).map(lambda q: 15 * q), st.integers(0, 3))
"""A UTC offset in minutes east and a choice among its spellings."""


def zone(offset: tuple[int, int]) -> str:
    minutes, spelling = offset
    if minutes == 0 and spelling < 2:
        return ("Z", " UTC")[spelling]
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    if spelling == 3 and rest == 0:
        return f"{sign}{hours:02d}"
    return f"{sign}{hours:02d}{rest:02d}" if spelling == 2 else f"{sign}{hours:02d}:{rest:02d}"


def writer(fmt: str, *, zoned: bool = False, keeps: str = "s"):
    """A writer of UTC moment ``t`` in local time at ``offset`` (see OFFSETS), and the seconds
    that the text keeps (``keeps``: the unit it is floored to)."""

    def write(t, offset):
        shown = t + pd.Timedelta(minutes=offset[0]) if zoned else t
        text = pd.Timestamp(shown).strftime(fmt) + (zone(offset) if zoned else "")
        kept = pd.Timestamp(t).floor(keeps)
        return text, (kept - EPOCH) // pd.Timedelta(seconds=1)

    return write


def epoch_text(t, offset):
    seconds = (pd.Timestamp(t).floor("s") - EPOCH) // pd.Timedelta(seconds=1)
    return str(seconds), seconds


COMMON = [
    epoch_text,
    writer("%Y-%m-%dT%H:%M:%SZ"),
    writer("%Y-%m-%d %H:%M:%S", zoned=True),
    writer("%Y-%m-%dT%H:%M:%S.%f"),
    writer("%Y-%m-%d", keeps="D"),
    writer("%Y/%m/%d %H:%M:%S"),
    writer("%d %b %Y %H:%M:%S"),
    writer("%B %d, %Y", keeps="D"),
]
MONTH_FIRST = [
    writer("%m/%d/%Y %H:%M:%S"),
    writer("%m/%d/%Y %I:%M %p", keeps="min"),
    writer("%m-%d-%Y %H:%M", zoned=True, keeps="min"),
    writer("%m.%d.%Y", keeps="D"),
]
DAY_FIRST = [
    writer("%d/%m/%Y %H:%M:%S"),
    writer("%d.%m.%Y %I:%M:%S %p"),
    writer("%d-%m-%Y %H:%M:%S", zoned=True),
]


def column(data, writers, n_max=12):
    """A mixed column: every row in a writer drawn from ``writers``; and its expected seconds."""
    moments = data.draw(st.lists(MOMENTS, min_size=1, max_size=n_max), label="moments")
    rows = [
        data.draw(st.sampled_from(writers), label="writer")(t, data.draw(OFFSETS, label="zone"))
        for t in moments
    ]
    return [text for text, _ in rows], [seconds for _, seconds in rows]


def events_csv(directory: Path, times: list) -> Path:
    path = directory / "events.csv"
    pd.DataFrame({"user_id": range(len(times)), "item_id": "a", "timestamp": times}).to_csv(
        path, index=False
    )
    return path


@given(data=st.data(), dayfirst=st.booleans())
def test_timestamp_round_trip_mixed_formats(tmp_path_factory, data, dayfirst):
    texts, want = column(data, COMMON + (DAY_FIRST if dayfirst else MONTH_FIRST))
    path = events_csv(tmp_path_factory.mktemp("ts"), texts)
    got = load_events(path, dayfirst=dayfirst)["timestamp"].tolist()
    wrong = [(t, g, w) for t, g, w in zip(texts, got, want, strict=True) if g != w]
    assert not wrong, f"(text, got, want): {wrong}"


@given(
    moments=st.lists(MOMENTS, min_size=1, max_size=12),
    milliseconds=st.booleans(),
    as_text=st.booleans(),
)
def test_timestamp_round_trip_epoch_units(moments, milliseconds, as_text):
    stamps = [pd.Timestamp(t) for t in moments]
    unit = pd.Timedelta(milliseconds=1) if milliseconds else pd.Timedelta(seconds=1)
    numbers = [(t.floor(unit.resolution_string) - EPOCH) // unit for t in stamps]
    frame = pd.DataFrame({"user_id": 1, "item_id": 2, "timestamp": numbers})
    if as_text:
        frame["timestamp"] = frame["timestamp"].astype(str)
    want = [(t.floor("s") - EPOCH) // pd.Timedelta(seconds=1) for t in stamps]
    assert load_events(frame)["timestamp"].tolist() == want


FORMATS = ["%d.%m.%Y %H:%M:%S", "%Y%m%d%H%M%S", "%d/%m/%y %H:%M", "%H:%M:%S %d %B %Y", "%Y-%j"]


@given(
    moments=st.lists(MOMENTS.map(lambda t: t.replace(year=min(t.year, 2068))), min_size=1),
    fmt=st.sampled_from(FORMATS),
)
def test_timestamp_round_trip_explicit_format(moments, fmt):
    texts = [pd.Timestamp(t).strftime(fmt) for t in moments]
    frame = pd.DataFrame({"user_id": 1, "item_id": 2, "timestamp": texts})
    got = load_events(frame, timestamp_format=fmt)["timestamp"].tolist()
    want = [(pd.to_datetime(x, format=fmt) - EPOCH) // pd.Timedelta(seconds=1) for x in texts]
    assert got == want, f"format {fmt!r}: {texts}"


def load_times(times, **options):
    return load_events(pd.DataFrame({"user_id": 1, "item_id": 2, "timestamp": times}), **options)[
        "timestamp"
    ].tolist()


def test_mixed_epoch_and_iso_in_a_csv(tmp_path):
    path = events_csv(
        tmp_path, ["1704067200", "2024-01-01T00:01:00Z", "2024-01-01 01:00:00+01:00"]
    )
    assert load_events(path)["timestamp"].tolist() == [1704067200, 1704067260, 1704067200]


def test_only_the_bad_rows_are_named():
    times = ["2024-01-01", "1704067200", "01/02/2024", "Jan 3, 2024", "2024-01-04", "yesterday"]
    with pytest.raises(DataError) as err:
        load_times(times)
    message = str(err.value)
    assert (
        "1 row(s) with an unparseable timestamp; first at row 5: {'timestamp': 'yesterday'}"
        in (message)
    ), message
    with pytest.raises(DataError, match="2 row.* unparseable.* first at row 1: .*'now'"):
        load_times(["2024-01-01", "now", "today"])


def test_day_month_order_is_one_rule_per_column():
    assert load_times(["03/04/2024", "12/31/2024"]) == [1709510400, 1735603200]
    with pytest.raises(DataError) as err:
        load_times(["03/04/2024", "13/03/2024", "14/03/2024"])
    message = str(err.value)
    assert "2 row(s) with a timestamp that is not a valid month-first date" in message, message
    assert "first at row 1: {'timestamp': '13/03/2024'}" in message and "--dayfirst" in message
    assert load_times(["03/04/2024", "13/03/2024"], dayfirst=True) == [1712102400, 1710288000]
    with pytest.raises(
        DataError, match=r"not a valid day-first date.*'03/13/2024'.*leave dayfirst"
    ):
        load_times(["03/04/2024", "03/13/2024"], dayfirst=True)
    with pytest.raises(DataError, match="1 row.* unparseable.* '13/13/2024'"):
        load_times(["13/13/2024"], dayfirst=True)


def test_timestamp_edge_cases():
    assert load_times(["1969-12-31T23:59:59Z", "-1", "01/01/69", "12/31/68 11:59:59 PM"]) == [
        -1,
        -1,
        -31536000,
        3124223999,
    ]
    assert load_times([1.7e12, 1.7e12 + 999]) == [1_700_000_000, 1_700_000_000]
    with pytest.raises(DataError, match=r"1 row.* >= 1e\+11 \(milliseconds\).*first at row 1"):
        load_times([1_700_000_000, 1_700_000_000_000])
    with pytest.raises(DataError, match="unparseable.*'2024-02-30'"):
        load_times(["2024-02-29", "2024-02-30"])
    with pytest.raises(DataError, match="unparseable.*'02/29/2023 10:00'"):
        load_times(["02/28/2023 10:00", "02/29/2023 10:00"])
    with pytest.raises(DataError, match="unparseable.*'01/01/2024 13:00 PM'"):
        load_times(["01/01/2024 13:00 PM"])
    with pytest.raises(DataError, match="1 row.* not in the format '%d.%m.%Y'.* '2024-01-01'"):
        load_times(["01.02.2024", "2024-01-01"], timestamp_format="%d.%m.%Y")
    with pytest.raises(DataError, match="bad timestamp_format '%Q'"):
        load_times(["01.02.2024"], timestamp_format="%Q")
    with pytest.raises(DataError, match="holds booleans"):
        load_times([True, False])


# -- ARFF through load_events, categories in the events ---------------------------------------


def test_load_events_reads_arff_baskets():
    events = load_events(HERE / "basket.arff")
    assert events["item_id"].tolist() == [
        "bread and cake", "milk-cream", "milk-cream", "tea", "bread and cake", "coffee",
        "bread and cake", "milk-cream", "tea",
    ]  # fmt: skip
    assert events["basket_id"].tolist() == ["0", "0", "1", "1", "2", "2", "3", "3", "3"]
    assert (events["user_id"] == events["basket_id"]).all() and (
        events["event"] == "purchase"
    ).all()
    assert events["timestamp"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    pd.testing.assert_frame_equal(events, load_arff_baskets(HERE / "basket.arff")[0])


def test_category_column_gives_an_items_table(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,timestamp,category,brand,colour\n"
        "1,a,1,pasta,acme,red\n"
        "1,b,2,,,blue\n"
        "2,a,3,pasta,,red\n"
        "2,c,4,cheese,007,\n"
    )
    events = load_events(path)
    assert list(events.columns) == [
        "user_id", "item_id", "timestamp", "event", "category", "brand",
    ]  # fmt: skip
    items = items_from_events(events)
    assert items.fillna("-").to_dict("list") == {
        "item_id": ["a", "b", "c"],
        "category": ["pasta", "-", "cheese"],
        "brand": ["acme", "-", "007"],
    }
    pd.testing.assert_frame_equal(load_items(items), items)
    wider = load_events(path, item_columns=["category", "colour"])
    assert items_from_events(wider).columns.tolist() == ["item_id", "category", "colour"]
    assert items_from_events(load_events(path, item_columns=())) is None


def test_items_from_events_keeps_the_latest_value_and_warns():
    events = load_events(
        pd.DataFrame(
            {
                "user_id": [1, 1, 2, 2],
                "item_id": ["a", "a", "a", "b"],
                "timestamp": [5, 1, 5, 2],
                "category": ["new", "old", "newer", None],
            }
        )
    )
    with pytest.warns(DataWarning, match=r"1 item\(s\) have several category.*'a'.*'newer'"):
        items = items_from_events(events)
    assert items["category"].fillna("-").tolist() == ["newer", "-"]


# -- every loading error names the file --------------------------------------------------------


BAD_FILES = [
    ("events.csv", b"", "empty file"),
    ("events.csv", b"user_id,item_id,timestamp\n", "no data rows"),
    (
        "events.csv",
        b"user_id,item_id,time\n1,2,3\n",
        r"missing required column\(s\) \['timestamp'\]",
    ),
    ("events.csv", b"user_id,item_id,timestamp\n1,2,3\n4,5,6,7\n", "malformed table text"),
    ("events.csv", b"user_id,item_id,timestamp\n1,2,yesterday\n", "unparseable timestamp"),
    ("events.csv", b"user_id,item_id,timestamp,price\n1,2,3,cheap\n", "non-numeric price"),
    ("events.parquet", b"not parquet", "not a readable Parquet file"),
    ("events.xlsx", b"", "unknown file format"),
    ("events.arff", b"@relation x\n@attribute a {t}\n", "no @data section"),
    ("events.arff", b"@attribute a {t}\n@data\nt\nx\n", r"outside a's domain"),
    ("events.arff", b"@attribute a {x,y}\n@data\nx\n", "no item attributes"),
]


@pytest.mark.parametrize(("name", "content", "problem"), BAD_FILES)
def test_loading_errors_name_the_file(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as err:
        load_events(path)
    assert str(err.value).startswith(f"{path}: "), str(err.value)
    assert err.value.source == str(path)


def test_ids_errors_and_warnings_name_the_file(tmp_path):
    path = tmp_path / "events.parquet"
    pd.DataFrame({"user_id": [1.0, 2.5], "item_id": [1, 2], "timestamp": [1, 2]}).to_parquet(path)
    with pytest.raises(DataError, match=f"^{path}: 1 row.* fractional user_id; first at row 1"):
        load_events(path)
    csv = tmp_path / "events.csv"
    csv.write_text("user_id,item_id,timestamp\n1,,1\nNaN,2,2\n3,3,3\n")
    with pytest.warns(DataWarning, match=f"^{csv}: events: dropped 2 row"):
        assert load_events(csv)["user_id"].tolist() == ["3"]
    csv.write_text("user_id,item_id,timestamp\n1,,1\n,2,2\n")
    with pytest.raises(DataError, match=f"^{csv}: all 2 row.* lack a user_id or item_id"):
        load_events(csv)
    items = tmp_path / "items.csv"
    items.write_text("item_id,price\na,1\na,2\n")
    with pytest.raises(DataError, match=f"^{items}: 1 row.* duplicate item_id"):
        load_items(items)
    users = tmp_path / "users.tsv"
    users.write_text("id\tregion\n1\tnorth\n")
    with pytest.raises(DataError, match=f"^{users}: users: missing required column"):
        load_users(users)
    with pytest.raises(DataError, match=r"column name\(s\) \['user_id'\] occur more than once"):
        load_events(csv, columns={"item_id": "user_id"})


def test_recbole_and_movielens_errors_name_the_file(tmp_path):
    inter = tmp_path / "shop.inter"
    inter.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tsoon\n")
    with pytest.raises(DataError, match=f"^{inter}: 1 row.* non-numeric timestamp"):
        load_recbole(inter)
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,2,,3\n")
    with pytest.raises(DataError, match=f"^{ratings}: 1 row.* missing \\(NaN\\) rating"):
        load_movielens(ratings)
    (tmp_path / "u.data").write_bytes(b"")
    with pytest.raises(DataError, match="u.data: no data rows"):
        load_movielens(tmp_path / "u.data")


LATIN1 = "user_id,item_id,timestamp,category\nJosé,crème brûlée,1,desserts\nZoë,café,2,drinks\n"


def test_latin1_file_falls_back_with_a_warning(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(LATIN1.encode("latin-1"))
    with pytest.warns(
        DataWarning, match=f"^{path}: not valid UTF-8 text \\(line 2\\); read as latin-1"
    ):
        events = load_events(path)
    assert events["item_id"].tolist() == ["crème brûlée", "café"]
    assert events["user_id"].tolist() == ["José", "Zoë"]
    pd.testing.assert_frame_equal(load_events(path, encoding="latin-1"), events)
    with pytest.raises(DataError, match=f"^{path}: not valid utf-8 text \\(line 2\\); pass the"):
        load_events(path, encoding="utf-8")
    with pytest.raises(DataError, match=f"^{path}: unknown text encoding 'klingon'"):
        load_events(path, encoding="klingon")
    items = tmp_path / "items.csv.gz"
    pd.DataFrame({"item_id": ["café"]}).to_csv(items, index=False, encoding="latin-1")
    with pytest.warns(DataWarning, match="line 2"):
        assert load_items(items)["item_id"].tolist() == ["café"]


def test_utf8_with_byte_order_mark(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(LATIN1.encode("utf-8-sig"))
    assert load_events(path)["user_id"].tolist() == ["José", "Zoë"]
