"""Loading and validation of shop data: events, items and users.

Every reader returns pandas DataFrames in one canonical schema (details in ``docs/data.md``):

events
    ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64, seconds since the epoch, UTC),
    ``event`` (categorical over :data:`EVENT_TYPES`, ``"purchase"`` when the source has no event
    column) and, only when the source has them, ``basket_id`` (str, missing allowed),
    ``quantity`` (int64 > 0), ``price`` (float64 >= 0, missing allowed) and ``rating`` (float64).
    Other source columns are dropped.
items, users
    ``item_id`` / ``user_id`` (str, unique), ``price`` (items only: float64 >= 0, missing allowed),
    every other column a categorical attribute kept as str with its missing values (they are
    filled explicitly by :func:`bundlerec.prep.fill_missing`).

Ids and categorical values are canonicalised to their text (``7`` and ``"7"`` are the same id;
whole floats such as ``7.0``, which pandas makes of integer columns with gaps, read as ``"7"``).
Bad input raises :class:`DataError` naming the problem, how many rows have it and the first such
row (0-based data row of the source); rows without a user or item id are dropped with a
:class:`DataWarning` that gives the count. Nothing else is coerced.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "EVENT_TYPES",
    "DataError",
    "DataWarning",
    "load_arff_baskets",
    "load_events",
    "load_items",
    "load_movielens",
    "load_recbole",
    "load_users",
    "read_recbole",
    "read_table",
]

EVENT_TYPES: tuple[str, ...] = ("view", "click", "cart", "purchase")
"""Event names; an event's int8 code is its position here (0 view ... 3 purchase)."""

Source = str | os.PathLike | pd.DataFrame


class DataError(ValueError):
    """Input data that breaks the schema: a missing column, bad values, an unknown format."""


class DataWarning(UserWarning):
    """Input rows that were dropped (missing ids); the message gives the count."""


def _fail(frame: pd.DataFrame, bad: np.ndarray, problem: str, columns: Iterable[str]) -> None:
    """Raise :class:`DataError` with a count and the first offending row when ``bad`` has any."""
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        example = frame.iloc[pos][list(columns)].to_dict()
        raise DataError(
            f"{int(bad.sum())} row(s) with {problem}; first at row {frame.index[pos]}: {example}"
        )


def read_table(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    text_columns: Iterable[str] = (),
    sep: str | None = None,
) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file or take a DataFrame, then rename columns.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        ``.csv`` / ``.txt`` (comma), ``.tsv`` (tab), ``.parquet`` / ``.pq``; a compression suffix
        such as ``.csv.gz`` is allowed. A DataFrame is copied.
    columns : mapping of str to str, optional
        Source column name -> canonical name, e.g. ``{"customer": "user_id"}``.
    text_columns : iterable of str
        Canonical names of columns read as text from CSV (ids: keeps ``"007"`` intact).
    sep : str, optional
        Field separator overriding the one implied by the suffix.

    Returns
    -------
    pandas.DataFrame
        The raw table with a fresh RangeIndex and canonical column names.
    """
    columns = dict(columns or {})
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True).copy()
    else:
        path = Path(source)
        suffixes = [s.lower() for s in path.suffixes]
        if {".parquet", ".pq"} & set(suffixes):
            frame = pd.read_parquet(path)
        elif {".csv", ".tsv", ".txt"} & set(suffixes):
            wanted = set(text_columns)
            as_text = [src for src, dst in columns.items() if dst in wanted] + list(wanted)
            default_sep = "\t" if ".tsv" in suffixes else ","
            frame = pd.read_csv(path, sep=sep or default_sep, dtype=dict.fromkeys(as_text, str))
        else:
            raise DataError(
                f"unknown file format {path.name!r}: expected .csv, .tsv, .txt or .parquet"
            )
    return frame.rename(columns=columns)


def _require(frame: pd.DataFrame, names: Iterable[str], what: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"{what}: missing required column(s) {missing}; found {list(map(str, frame.columns))}"
        )


def _drop_missing_ids(frame: pd.DataFrame, keys: Iterable[str], what: str) -> pd.DataFrame:
    missing = frame[list(keys)].isna().any(axis=1).to_numpy()
    if missing.any():
        warnings.warn(
            f"{what}: dropped {int(missing.sum())} row(s) with a missing {' or '.join(keys)}",
            DataWarning,
            stacklevel=3,
        )
        frame = frame[~missing]
    return frame


def _as_text(frame: pd.DataFrame, column: str) -> pd.Series:
    """Ids and categorical values as text; missing values stay missing."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"column {column!r} holds booleans; expected ids or labels")
    if pd.api.types.is_float_dtype(values):
        v = values.to_numpy(dtype=np.float64)
        _fail(frame, ~np.isnan(v) & (v != np.floor(v)), f"a fractional {column}", [column])
        values = values.astype("Int64")
    return values.astype(str).where(values.notna())


def _as_numbers(
    frame: pd.DataFrame,
    column: str,
    *,
    required: bool = False,
    sign: str = "any",
    integral: bool = False,
) -> np.ndarray:
    """A numeric column as float64.

    Non-numbers, infinities, NaN (if ``required``), values of the wrong ``sign``
    (``"any"``, ``"nonnegative"``, ``"positive"``) and fractions (if ``integral``) are errors.
    """
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"column {column!r} holds booleans; expected numbers")
    if not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(values, errors="coerce")
    v = values.to_numpy(dtype=np.float64, na_value=np.nan)
    nan = np.isnan(v)
    _fail(frame, nan & frame[column].notna().to_numpy(), f"a non-numeric {column}", [column])
    if required:
        _fail(frame, nan, f"a missing (NaN) {column}", [column])
    _fail(frame, np.isinf(v), f"an infinite {column}", [column])
    if sign == "positive":
        _fail(frame, v <= 0, f"a non-positive {column}", [column])
    elif sign == "nonnegative":
        _fail(frame, v < 0, f"a negative {column}", [column])
    if integral:
        _fail(frame, ~nan & (v != np.floor(v)), f"a fractional {column}", [column])
    return v


def _datetime_seconds(values: pd.Series) -> np.ndarray:
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.to_numpy().astype("datetime64[s]").astype(np.int64)


def _as_seconds(frame: pd.DataFrame, column: str = "timestamp") -> np.ndarray:
    """Timestamps as int64 epoch seconds: whole numbers, or datetimes (naive ones are UTC)."""
    values = frame[column]
    _fail(frame, values.isna().to_numpy(), f"a missing {column}", [column])
    if pd.api.types.is_datetime64_any_dtype(values):
        return _datetime_seconds(values)
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"column {column!r} holds booleans; expected timestamps")
    numbers = values if pd.api.types.is_numeric_dtype(values) else None
    if numbers is None:
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.isna().any():
            parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            _fail(frame, parsed.isna().to_numpy(), f"an unparseable {column}", [column])
            return _datetime_seconds(parsed)
    if pd.api.types.is_integer_dtype(numbers):
        return numbers.to_numpy(dtype=np.int64)
    v = numbers.to_numpy(dtype=np.float64)
    _fail(
        frame,
        ~np.isfinite(v) | (v != np.floor(v)),
        f"a fractional or infinite numeric {column} (whole epoch seconds expected)",
        [column],
    )
    return v.astype(np.int64)


def _as_events(frame: pd.DataFrame, column: str = "event") -> pd.Categorical:
    names = frame[column].astype(str).str.strip().str.lower().where(frame[column].notna())
    codes = pd.Index(EVENT_TYPES).get_indexer(names)
    _fail(frame, codes < 0, f"an unknown {column} type (expected one of {EVENT_TYPES})", [column])
    return pd.Categorical.from_codes(codes, categories=EVENT_TYPES)


def load_events(
    source: Source, *, columns: Mapping[str, str] | None = None, sep: str | None = None
) -> pd.DataFrame:
    """Load and validate interaction events.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        CSV/TSV/Parquet file or DataFrame with columns ``user_id``, ``item_id``, ``timestamp``
        and optionally ``event`` (view|click|cart|purchase, case-insensitive), ``basket_id``,
        ``quantity``, ``price``, ``rating``.
    columns : mapping of str to str, optional
        Source column name -> canonical name.
    sep : str, optional
        Field separator for text files.

    Returns
    -------
    pandas.DataFrame
        Canonical events (see module docstring), in source row order, fresh RangeIndex.

    Raises
    ------
    DataError
        Missing column; missing, unparseable, fractional numeric timestamps; unknown event
        types; non-numeric, negative prices; non-positive or fractional quantities; NaN ratings.
    """
    frame = read_table(
        source, columns=columns, text_columns=("user_id", "item_id", "basket_id"), sep=sep
    )
    _require(frame, ("user_id", "item_id", "timestamp"), "events")
    frame = _drop_missing_ids(frame, ("user_id", "item_id"), "events")
    out = pd.DataFrame(
        {
            "user_id": _as_text(frame, "user_id"),
            "item_id": _as_text(frame, "item_id"),
            "timestamp": _as_seconds(frame),
        },
        index=frame.index,
    )
    if "event" in frame.columns:
        out["event"] = _as_events(frame)
    else:
        out["event"] = pd.Categorical.from_codes(
            np.full(len(frame), EVENT_TYPES.index("purchase")), categories=EVENT_TYPES
        )
    if "basket_id" in frame.columns:
        out["basket_id"] = _as_text(frame, "basket_id")
    if "quantity" in frame.columns:
        q = _as_numbers(frame, "quantity", required=True, sign="positive", integral=True)
        out["quantity"] = q.astype(np.int64)
    if "price" in frame.columns:
        out["price"] = _as_numbers(frame, "price", sign="nonnegative")
    if "rating" in frame.columns:
        out["rating"] = _as_numbers(frame, "rating", required=True)
    return out.reset_index(drop=True)


def _load_entities(
    source: Source,
    key: str,
    columns: Mapping[str, str] | None,
    sep: str | None,
    numeric: tuple[str, ...],
) -> pd.DataFrame:
    what = "items" if key == "item_id" else "users"
    frame = read_table(source, columns=columns, text_columns=(key,), sep=sep)
    _require(frame, (key,), what)
    frame = _drop_missing_ids(frame, (key,), what)
    out = pd.DataFrame({key: _as_text(frame, key)}, index=frame.index)
    _fail(frame, out[key].duplicated().to_numpy(), f"a duplicate {key}", [key])
    for column in frame.columns:
        if column == key:
            continue
        if column in numeric:
            out[column] = _as_numbers(frame, column, sign="nonnegative")
        else:
            out[column] = _as_text(frame, column)
    return out.reset_index(drop=True)


def load_items(
    source: Source, *, columns: Mapping[str, str] | None = None, sep: str | None = None
) -> pd.DataFrame:
    """Load and validate item attributes.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        Table with a unique ``item_id`` and optional ``category``, ``brand``, ``price`` and
        further categorical columns.
    columns : mapping of str to str, optional
        Source column name -> canonical name.
    sep : str, optional
        Field separator for text files.

    Returns
    -------
    pandas.DataFrame
        ``item_id`` (str), ``price`` (float64, NaN = unknown) if present, every other column as
        text with missing values kept.

    Raises
    ------
    DataError
        Missing ``item_id`` column, duplicate ids, non-numeric or negative prices.
    """
    return _load_entities(source, "item_id", columns, sep, numeric=("price",))


def load_users(
    source: Source, *, columns: Mapping[str, str] | None = None, sep: str | None = None
) -> pd.DataFrame:
    """Load and validate user attributes: a unique ``user_id`` plus categorical columns.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        Table with ``user_id`` and optional categorical attributes (e.g. age band, region).
    columns : mapping of str to str, optional
        Source column name -> canonical name.
    sep : str, optional
        Field separator for text files.

    Returns
    -------
    pandas.DataFrame
        ``user_id`` (str) and every other column as text with missing values kept.
    """
    return _load_entities(source, "user_id", columns, sep, numeric=())


_ARFF_ATTRIBUTE = re.compile(r"""@attribute\s+('[^']*'|"[^"]*"|\S+)\s+([^%]*)""", re.IGNORECASE)


def _arff_header(path: Path) -> tuple[list[str], list[tuple[str, ...] | None], int]:
    """Attribute names, nominal domains (None if not nominal) and the first data line index."""
    names: list[str] = []
    domains: list[tuple[str, ...] | None] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            text = line.strip()
            if text.lower().startswith("@data"):
                return names, domains, number + 1
            if not text.lower().startswith("@attribute"):
                continue
            match = _ARFF_ATTRIBUTE.match(text)
            if match is None:
                raise DataError(f"{path.name}: bad @attribute on line {number + 1}: {text!r}")
            names.append(match.group(1).strip("'\""))
            kind = match.group(2).strip()
            if kind.startswith("{") and kind.endswith("}"):
                domains.append(tuple(v.strip().strip("'\"") for v in kind[1:-1].split(",")))
            else:
                domains.append(None)
    raise DataError(f"{path.name}: no @data section")


def load_arff_baskets(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read an ARFF basket file: one basket per row, one ``{t}`` column per item.

    Attributes whose nominal domain is exactly ``{t}`` are items (``t`` bought, ``?`` not); all
    other attributes (e.g. ``total {low,high}`` in ``supermarket.arff``) describe the basket.
    The shoppers are unknown, so each basket becomes its own synthetic user: for the basket in
    data row ``r`` (0-based), ``user_id = basket_id = str(r)`` and ``timestamp = r``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.arff`` file (dense format).

    Returns
    -------
    events : pandas.DataFrame
        Canonical events, one ``purchase`` per bought item, with ``basket_id``; sorted by basket
        then by attribute order. Item ids are the attribute names.
    baskets : pandas.DataFrame, shape (n_baskets, 1 + n_basket_attributes)
        ``basket_id`` plus the non-item attributes as text (missing = ``?``).

    Raises
    ------
    DataError
        No ``@data`` section, no item attributes, or a value outside an attribute's domain.
    """
    path = Path(path)
    names, domains, first_data = _arff_header(path)
    raw = pd.read_csv(
        path,
        skiprows=first_data,
        header=None,
        names=names,
        dtype=str,
        na_values=["?"],
        keep_default_na=False,
        comment="%",
        quotechar="'",
        skipinitialspace=True,
    )
    for name, domain in zip(names, domains, strict=True):
        if domain is not None:
            column = raw[name].str.strip()
            _fail(
                raw,
                (column.notna() & ~column.isin(domain)).to_numpy(),
                f"a value outside {name}'s domain {domain}",
                [name],
            )
    is_item = [domain == ("t",) for domain in domains]
    items = [n for n, flag in zip(names, is_item, strict=True) if flag]
    if not items:
        raise DataError(f"{path.name}: no item attributes (nominal domain {{t}}) found")
    basket_ids = np.arange(len(raw)).astype(str)
    rows, cols = np.nonzero(raw[items].notna().to_numpy())
    events = load_events(
        pd.DataFrame(
            {
                "user_id": basket_ids[rows],
                "item_id": np.asarray(items, dtype=object)[cols],
                "timestamp": rows.astype(np.int64),
                "basket_id": basket_ids[rows],
            }
        )
    )
    extra = [n for n, flag in zip(names, is_item, strict=True) if not flag]
    baskets = raw[extra].apply(lambda c: c.str.strip())
    baskets.insert(0, "basket_id", basket_ids)
    return events, baskets


_RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")


def read_recbole(path: str | os.PathLike) -> pd.DataFrame:
    """Read one RecBole atomic file (``.inter``, ``.item``, ``.user``): tab-separated text whose
    header names fields as ``name:type``.

    Parameters
    ----------
    path : str or os.PathLike
        The atomic file.

    Returns
    -------
    pandas.DataFrame
        Columns named without their type; ``float`` fields as float64, the others
        (``token``, ``token_seq``, ``float_seq``) as text.

    Raises
    ------
    DataError
        A header field without ``:type``, an unknown type, a non-numeric float field.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
    names, kinds = [], []
    for field in header:
        name, _, kind = field.partition(":")
        if kind not in _RECBOLE_TYPES:
            raise DataError(
                f"{path.name}: header field {field!r} needs a type among {_RECBOLE_TYPES}"
            )
        names.append(name)
        kinds.append(kind)
    frame = pd.read_csv(
        path, sep="\t", header=0, names=names, dtype=str, keep_default_na=False, na_values=[""]
    )
    for name, kind in zip(names, kinds, strict=True):
        if kind == "float":
            frame[name] = _as_numbers(frame, name)
    return frame


def load_recbole(
    path: str | os.PathLike, *, columns: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """Load a RecBole dataset: ``<stem>.inter`` and, when present, ``<stem>.item``/``.user``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.inter`` file, or the stem shared by the atomic files.
    columns : mapping of str to str, optional
        Field name -> canonical name (RecBole's ``user_id``, ``item_id``, ``timestamp`` are
        canonical already), applied to all three files.

    Returns
    -------
    events : pandas.DataFrame
        Canonical events (``rating`` kept when the file has it).
    items, users : pandas.DataFrame or None
        Canonical attribute tables, None when the file is absent.
    """
    stem = Path(path)
    if stem.suffix in (".inter", ".item", ".user"):
        stem = stem.with_suffix("")
    events = load_events(read_recbole(stem.with_suffix(".inter")), columns=columns)
    item_path, user_path = stem.with_suffix(".item"), stem.with_suffix(".user")
    items = load_items(read_recbole(item_path), columns=columns) if item_path.exists() else None
    users = load_users(read_recbole(user_path), columns=columns) if user_path.exists() else None
    return events, items, users


_MOVIELENS_FIELDS = ["user_id", "item_id", "rating", "timestamp"]


def load_movielens(path: str | os.PathLike, *, min_rating: float | None = None) -> pd.DataFrame:
    """Load MovieLens ratings as purchase events with a ``rating`` column.

    Parameters
    ----------
    path : str or os.PathLike
        ``ratings.csv`` (header ``userId,movieId,rating,timestamp``), ``u.data`` (tab-separated,
        no header: user, item, rating, timestamp) or ``ratings.dat`` (``::``-separated).
    min_rating : float, optional
        Keep only ratings >= this value (e.g. 4.0 to treat liked movies as purchases).

    Returns
    -------
    pandas.DataFrame
        Canonical events.
    """
    path = Path(path)
    ids = {"user_id": str, "item_id": str}
    if path.name.endswith(".dat"):
        frame = pd.read_csv(
            path, sep="::", engine="python", header=None, names=_MOVIELENS_FIELDS, dtype=ids
        )
    else:
        with open(path, encoding="utf-8") as fh:
            has_header = "userId" in fh.readline()
        if has_header:
            frame = pd.read_csv(path, dtype={"userId": str, "movieId": str})
            frame = frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
        else:
            frame = pd.read_csv(path, sep="\t", header=None, names=_MOVIELENS_FIELDS, dtype=ids)
    events = load_events(frame)
    if min_rating is not None:
        events = events[events["rating"].to_numpy() >= min_rating].reset_index(drop=True)
    return events
