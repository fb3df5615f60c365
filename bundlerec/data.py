"""Loading and validation of shop data: events, items and users.

Every reader returns pandas DataFrames in one canonical schema (details in ``docs/data.md``):

events
    ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64, seconds since the epoch, UTC),
    ``event`` (categorical over :data:`EVENT_TYPES`, ``"purchase"`` when the source has no event
    column) and, only when the source has them, ``basket_id`` (str, missing allowed),
    ``quantity`` (int64 > 0), ``price`` (float64 >= 0, missing allowed), ``rating`` (float64)
    and the per-item attributes of :data:`ITEM_ATTRIBUTES` (str, missing allowed; see
    :func:`items_from_events`). Other source columns are dropped.
items, users
    ``item_id`` / ``user_id`` (str, unique), ``price``, ``cost`` and ``on_hand`` (items only:
    float64 >= 0, missing allowed), ``title`` and ``description`` (items only: free text, see
    :data:`ITEM_TEXT`), every other column a categorical attribute kept as str with its missing
    values (they are filled explicitly by :func:`bundlerec.prep.fill_missing`).
promotions, stock
    :func:`load_promotions` (``item_id``, ``promo_price`` or ``discount``, ``start``, ``end``)
    and :func:`load_stock` (``item_id``, ``on_hand``), for campaigns (docs/campaigns.md).

Ids and categorical values are canonicalised to their text (``7`` and ``"7"`` are the same id;
whole floats such as ``7.0``, which pandas makes of integer columns with gaps, read as ``"7"``).
Timestamps follow one rule per column (:func:`parse_timestamps`). Bad input raises
:class:`DataError` naming the file, the problem, how many rows have it and the first such row
(0-based data row of the source); rows without a user or item id are dropped with a
:class:`DataWarning` that gives the count. Nothing else is coerced.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "EVENT_TYPES",
    "ITEM_ATTRIBUTES",
    "ITEM_NUMBERS",
    "ITEM_TEXT",
    "MILLISECONDS_FROM",
    "DataError",
    "DataWarning",
    "items_from_events",
    "load_arff_baskets",
    "load_events",
    "load_items",
    "load_movielens",
    "load_promotions",
    "load_recbole",
    "load_stock",
    "load_users",
    "parse_timestamps",
    "read_recbole",
    "read_table",
]

EVENT_TYPES: tuple[str, ...] = ("view", "click", "cart", "purchase")
"""Event names; an event's int8 code is its position here (0 view ... 3 purchase)."""

ITEM_ATTRIBUTES: tuple[str, ...] = ("category", "brand")
"""Columns of an events file that describe the item; :func:`load_events` keeps them."""

ITEM_TEXT: tuple[str, ...] = ("title", "description")
"""Free-text columns of an items table: features of the text encoder, never categorical codes."""

ITEM_NUMBERS: tuple[str, ...] = ("price", "cost", "on_hand")
"""Numeric columns of an items table (>= 0, missing allowed): price, unit cost, stock on hand."""

MILLISECONDS_FROM = 10**11
"""Epoch numbers at or above this (after 5138-11-16 as seconds, after 1973-03-03 as
milliseconds) are milliseconds: a column whose numbers all reach it is read as milliseconds."""

Source = str | os.PathLike | pd.DataFrame
_T = TypeVar("_T")

_EVENT_COLUMNS = (
    "user_id",
    "item_id",
    "timestamp",
    "event",
    "basket_id",
    "quantity",
    "price",
    "rating",
    "basket",
)


class DataError(ValueError):
    """Input data that breaks the schema: a missing column, bad values, an unknown format.

    Parameters
    ----------
    message : str
        What is wrong.
    source : str or os.PathLike, optional
        The file it is about; the message then starts with it.

    Attributes
    ----------
    source : str or None
        The file, as the caller named it; None for in-memory frames.
    """

    def __init__(self, message: str, source: str | os.PathLike | None = None) -> None:
        self.source = None if source is None else str(source)
        super().__init__(message if source is None else f"{source}: {message}")


class DataWarning(UserWarning):
    """Input that was dropped or guessed (missing ids, a fallback encoding); the message says
    what and how much."""


def _fail(
    frame: pd.DataFrame, bad: np.ndarray, problem: str, columns: Iterable[str], hint: str = ""
) -> None:
    """Raise :class:`DataError` with a count, the first offending row and an optional ``hint``
    (a sentence saying what to do) when ``bad`` has any."""
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        example = frame.iloc[pos][list(columns)].to_dict()
        raise DataError(
            f"{int(bad.sum())} row(s) with {problem}; first at row {frame.index[pos]}: {example}"
            + (f". {hint}" if hint else "")
        )


def _is_file(source: Source) -> bool:
    return not isinstance(source, pd.DataFrame)


@contextmanager
def _about(source: Source) -> Iterator[None]:
    """Name the file ``source`` in the :class:`DataError` s raised inside (frames stay unnamed)."""
    try:
        yield
    except DataError as err:
        if err.source is not None or not _is_file(source):
            raise
        raise DataError(str(err), source=source) from None


def _label(source: Source, what: str) -> str:
    """How warnings name the input: the file, or ``what`` for a frame."""
    return f"{source}: {what}" if _is_file(source) else what


_OPENERS: dict[str, Callable] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _first_bad_line(path: Path, encoding: str) -> str:
    """Where ``path`` stops being ``encoding`` text: ``" (line N)"``, or ``""`` if not found."""
    opener = _OPENERS.get(path.suffix.lower(), open)
    with opener(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return f" (line {number})"
    return ""


def _read_text(read: Callable[[str], _T], path: Path, encoding: str | None) -> _T:
    """``read(encoding)`` under the encoding rule of :func:`read_table`.

    With ``encoding=None`` the text is UTF-8 (a byte-order mark is skipped); text that is not
    valid UTF-8 is read again as latin-1 with a :class:`DataWarning`. A given ``encoding`` that
    does not fit or is unknown, an empty file and malformed CSV text are :class:`DataError` s.
    """
    try:
        try:
            return read(encoding or "utf-8-sig")
        except UnicodeDecodeError:
            where = _first_bad_line(path, encoding or "utf-8")
        if encoding is not None:
            raise DataError(
                f"not valid {encoding} text{where}; pass the file's encoding "
                "(encoding=..., --encoding), e.g. 'utf-8', 'cp1252' or 'latin-1'",
                source=path,
            )
        warnings.warn(
            f"{path}: not valid UTF-8 text{where}; read as latin-1. If accents look wrong, "
            "pass the file's encoding (encoding=..., --encoding), e.g. 'cp1252'",
            DataWarning,
            stacklevel=4,
        )
        return read("latin-1")
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r}", source=path) from None
    except pd.errors.EmptyDataError:
        raise DataError("empty file (no header line)", source=path) from None
    except pd.errors.ParserError as err:
        raise DataError(f"malformed table text; check the separator (sep=): {err}", path) from None


def read_table(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    text_columns: Iterable[str] = (),
    sep: str | None = None,
    encoding: str | None = None,
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
    encoding : str, optional
        Text encoding of CSV/TSV files. Default: UTF-8 (a byte-order mark is skipped), and if
        the file is not valid UTF-8, latin-1 with a :class:`DataWarning`.

    Returns
    -------
    pandas.DataFrame
        The raw table with a fresh RangeIndex and canonical column names.

    Raises
    ------
    DataError
        Naming the file: an unknown suffix, an empty file, a header without data rows, text
        that does not parse or does not fit ``encoding``, an unreadable Parquet file, two
        columns with one canonical name.
    """
    columns = dict(columns or {})
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True).copy()
    else:
        frame = _read_file(Path(source), columns, set(text_columns), sep, encoding)
    frame = frame.rename(columns=columns)
    twice = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if twice:
        message = f"column name(s) {twice} occur more than once (after renaming with columns=)"
        raise DataError(message, source=None if isinstance(source, pd.DataFrame) else source)
    return frame


def _read_file(
    path: Path, columns: dict[str, str], wanted: set[str], sep: str | None, encoding: str | None
) -> pd.DataFrame:
    suffixes = [s.lower() for s in path.suffixes]
    if {".parquet", ".pq"} & set(suffixes):
        try:
            frame = pd.read_parquet(path)
        except (ValueError, TypeError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise DataError(f"not a readable Parquet file ({err})", source=path) from None
    elif {".csv", ".tsv", ".txt"} & set(suffixes):
        as_text = [src for src, dst in columns.items() if dst in wanted] + list(wanted)
        sep = sep or ("\t" if ".tsv" in suffixes else ",")

        def read(enc: str) -> pd.DataFrame:
            return pd.read_csv(path, sep=sep, dtype=dict.fromkeys(as_text, str), encoding=enc)

        frame = _read_text(read, path, encoding)
    else:
        raise DataError(
            "unknown file format: expected .csv, .tsv, .txt or .parquet (events also .arff)",
            source=path,
        )
    if frame.empty:
        raise DataError(
            f"no data rows (columns {list(map(str, frame.columns))}, no rows)", source=path
        )
    return frame


def _require(frame: pd.DataFrame, names: Iterable[str], what: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"{what}: missing required column(s) {missing}; found {list(map(str, frame.columns))}"
        )


def _drop_missing_ids(frame: pd.DataFrame, keys: Iterable[str], what: str) -> pd.DataFrame:
    """Drop rows without an id with a :class:`DataWarning`; no row with an id is an error."""
    missing = frame[list(keys)].isna().any(axis=1).to_numpy()
    if len(missing) and missing.all():
        example = frame.iloc[0][list(keys)].to_dict()
        raise DataError(
            f"all {len(missing)} row(s) lack a {' or '.join(keys)}, e.g. row {frame.index[0]}: "
            f"{example}"
        )
    if missing.any():
        warnings.warn(
            f"{what}: dropped {int(missing.sum())} row(s) with a missing {' or '.join(keys)}",
            DataWarning,
            stacklevel=4,
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
        _fail(frame, np.isinf(v), f"an infinite {column}", [column])
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


_NUMBER = r"[+-]?\d+(?:\.\d*)?"
_DATE_PARTS = (  # RE2 syntax (no backreferences), so that pyarrow extracts without Python
    r"(?i)^\s*(?P<p1>\d{1,4})(?P<s1>[-/.])(?P<p2>\d{1,2})(?P<s2>[-/.])(?P<p3>\d{1,4})"
    r"(?:(?:T|\s+)(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<sec>\d{2})(?:[.,]\d+)?)?"
    r"\s*(?P<ampm>[ap]\.?m\.?)?)?\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_MONTH_NAME = r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_TIMESTAMP_RULES = (
    "Accepted: epoch seconds or milliseconds, ISO 8601 (2024-03-01T10:00:00Z), month-first "
    "dates (03/01/2024 10:00; day-first with dayfirst=True, --dayfirst), dates with a month "
    "name (1 Mar 2024), or any one format given as timestamp_format= (--timestamp-format)"
)


def _seconds(values: pd.Series) -> np.ndarray:
    """Datetimes as float64 epoch seconds (sub-second parts truncated), NaN for NaT; naive
    datetimes are UTC."""
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    seconds = values.to_numpy().astype("datetime64[s]").astype(np.int64).astype(np.float64)
    seconds[values.isna().to_numpy()] = np.nan
    return seconds


def _numbers(frame: pd.DataFrame, column: str, values: np.ndarray) -> np.ndarray:
    """Epoch numbers (float64) as seconds: milliseconds when all reach MILLISECONDS_FROM."""
    _fail(frame, np.isinf(values), f"an infinite {column}", [column])
    _fail(
        frame,
        values != np.floor(values),
        f"a fractional numeric {column} (whole epoch seconds or milliseconds expected)",
        [column],
    )
    large = values >= MILLISECONDS_FROM
    if large.all():
        return np.floor_divide(values, 1000)
    _fail(
        frame,
        large,
        f"an epoch number >= {MILLISECONDS_FROM:.0e} (milliseconds) in a {column} column whose "
        "other numbers are seconds",
        [column],
        "Write every number in one unit",
    )
    _fail(frame, values < -62_135_596_800, f"a {column} before the year 1", [column])
    return values


def _numeric_dates(text: pd.Series, column: str, dayfirst: bool) -> np.ndarray:
    """Seconds of ``D/M/Y`` or ``M/D/Y`` (one order, see :func:`parse_timestamps`) and
    ``Y/M/D`` dates with an optional time and zone; NaN where the text is no such date."""

    def present(values: pa.Array) -> pa.Array:
        """Empty strings (groups that matched nothing) as nulls."""
        return pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)

    found = pc.extract_regex(pa.array(text, type=pa.large_string()), _DATE_PARTS)
    parts = {f.name: present(v) for f, v in zip(found.type, found.flatten(), strict=True)}

    def number(values: pa.Array | str, default: float = np.nan) -> np.ndarray:
        values = present(parts[values] if isinstance(values, str) else values)
        values = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
        return np.where(np.isnan(values), default, values)

    def width(name: str) -> np.ndarray:
        return pc.utf8_length(parts[name]).fill_null(0).to_numpy(zero_copy_only=False)

    same = pc.equal(parts["s1"], parts["s2"]).fill_null(False).to_numpy(zero_copy_only=False)
    width1, width3 = width("p1"), width("p3")
    year_first = same & (width1 == 4) & (width3 <= 2)
    day_month = same & (width1 <= 2) & ((width3 == 2) | (width3 == 4))
    first, second, last = number("p1"), number("p2"), number("p3")
    day, month = (first, second) if dayfirst else (second, first)
    order, other = ("day", "month") if dayfirst else ("month", "day")
    fix = "leave dayfirst off (no --dayfirst)" if dayfirst else "pass dayfirst=True (--dayfirst)"
    _fail(
        text.to_frame(column),
        day_month & (month > 12) & (day <= 12),
        f"a {column} that is not a valid {order}-first date but is a valid {other}-first one",
        [column],
        f"Day and month keep one order per column: if this column is {other}-first, {fix}",
    )
    year = last + np.where(width3 == 2, np.where(last < 69, 2000, 1900), 0)
    ok = year_first | day_month
    dates = pd.DataFrame(
        {
            "year": np.where(year_first, first, year)[ok],
            "month": np.where(year_first, second, month)[ok],
            "day": np.where(year_first, last, day)[ok],
        }
    )
    seconds = np.full(len(text), np.nan)
    seconds[ok] = _seconds(pd.to_datetime(dates, errors="coerce", utc=True))
    hour, minute, sec = number("hour", 0.0), number("minute", 0.0), number("sec", 0.0)
    twelve = parts["ampm"].is_valid().to_numpy(zero_copy_only=False)
    pm = pc.starts_with(parts["ampm"], "p", ignore_case=True).fill_null(False)
    bad = (hour > 23) | (minute > 59) | (sec > 59) | (twelve & ((hour < 1) | (hour > 12)))
    hour = np.where(twelve, hour % 12 + 12 * pm.to_numpy(zero_copy_only=False), hour)
    digits = pc.replace_substring_regex(parts["zone"], r"\D", "")
    offset = 3600 * number(pc.utf8_slice_codeunits(digits, 0, 2), 0.0)
    offset += 60 * number(pc.utf8_slice_codeunits(digits, 2, 4), 0.0)
    west = pc.starts_with(parts["zone"], "-").fill_null(False).to_numpy(zero_copy_only=False)
    seconds += hour * 3600 + minute * 60 + sec - np.where(west, -offset, offset)
    seconds[bad] = np.nan
    return seconds


def _date_text(text: pd.Series, column: str, dayfirst: bool) -> np.ndarray:
    """Seconds of date strings, NaN where none of the rules of :func:`parse_timestamps` fits."""
    seconds = np.full(len(text), np.nan)
    iso = text.str.match(r"\d{4}-").to_numpy(dtype=bool)  # also keeps out "now", "today"
    if iso.any():
        parsed = pd.to_datetime(text[iso], format="ISO8601", utc=True, errors="coerce")
        seconds[iso] = _seconds(parsed)
    rest = np.isnan(seconds)
    if rest.any():
        seconds[rest] = _numeric_dates(text[rest], column, dayfirst)
    named = np.isnan(seconds) & text.str.contains(_MONTH_NAME).to_numpy(dtype=bool)
    if named.any():
        parsed = pd.to_datetime(text[named], format="mixed", utc=True, errors="coerce")
        seconds[named] = _seconds(parsed)
    return seconds


def parse_timestamps(
    values: pd.Series, *, dayfirst: bool = False, timestamp_format: str | None = None
) -> np.ndarray:
    """Parse a timestamp column with one rule for the whole column.

    Rules, in order (details and examples in ``docs/data.md``):

    1. A datetime column is taken as is (naive times are UTC, zoned ones are converted).
    2. Numbers (a numeric column, or text that is a plain number such as ``"1704067200"``) are
       epoch seconds, or epoch milliseconds when every number of the column is at least
       :data:`MILLISECONDS_FROM`; they must be whole, and one column must not mix the units.
    3. With ``timestamp_format``, all text values must match that strftime format (``%z`` for
       a zone; rule 2 does not apply to text then, so ``"%Y%m%d"`` reads ``"20240301"``).
    4. Otherwise text is ISO 8601 (``2024-03-01``, ``2024-03-01T10:00:00+01:00``), or a
       numeric date ``a/b/yyyy`` (separator ``/``, ``.`` or ``-``; 2-digit years 00-68 are
       20xx, 69-99 19xx; an optional ``HH:MM[:SS]``, ``AM``/``PM``, zone) read month-first, or
       day-first with ``dayfirst=True`` for the whole column, or ``yyyy/mm/dd``, or a date
       with a month name (``1 Mar 2024``, ``Mar 1, 2024``).

    Sub-second parts are truncated.

    Parameters
    ----------
    values : pandas.Series, shape (N,)
        The column; its name (default ``"timestamp"``) and index (row numbers) appear in errors.
    dayfirst : bool
        Read ``a/b/yyyy`` as day/month instead of month/day.
    timestamp_format : str, optional
        One strftime format for every text value, e.g. ``"%d.%m.%Y %H:%M"``.

    Returns
    -------
    numpy.ndarray, shape (N,), int64
        Seconds since the epoch, UTC.

    Raises
    ------
    DataError
        Missing values; values no rule reads, or not in ``timestamp_format``; a date that is
        impossible in the chosen day/month order but possible in the other (the message says
        which option to pass); fractional or infinite numbers; seconds and milliseconds in one
        column; a bad ``timestamp_format``.
    """
    column = "timestamp" if values.name is None else str(values.name)
    frame = values.to_frame(column)
    _fail(frame, values.isna().to_numpy(), f"a missing {column}", [column])
    if pd.api.types.is_datetime64_any_dtype(values):
        return _seconds(values).astype(np.int64)
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"column {column!r} holds booleans; expected timestamps")
    if pd.api.types.is_numeric_dtype(values):
        return _numbers(frame, column, values.to_numpy(dtype=np.float64)).astype(np.int64)
    text = values.astype(str).str.strip()
    if timestamp_format is not None:
        try:
            parsed = pd.to_datetime(text, format=timestamp_format, utc=True, errors="coerce")
        except ValueError as err:
            raise DataError(f"bad timestamp_format {timestamp_format!r}: {err}") from None
        seconds = _seconds(parsed)
        problem, hint = f"a {column} not in the format {timestamp_format!r}", ""
    else:
        number = text.str.fullmatch(_NUMBER).to_numpy(dtype=bool)
        seconds = np.full(len(text), np.nan)
        if number.any():
            epoch = pd.to_numeric(text[number]).to_numpy(dtype=np.float64)
            seconds[number] = _numbers(frame[number], column, epoch)
        if not number.all():
            seconds[~number] = _date_text(text[~number], column, dayfirst)
        problem, hint = f"an unparseable {column}", _TIMESTAMP_RULES
    _fail(frame, np.isnan(seconds), problem, [column], hint)
    return seconds.astype(np.int64)


def _as_events(frame: pd.DataFrame, column: str = "event") -> pd.Categorical:
    names = frame[column].astype(str).str.strip().str.lower().where(frame[column].notna())
    codes = pd.Index(EVENT_TYPES).get_indexer(names)
    _fail(frame, codes < 0, f"an unknown {column} type (expected one of {EVENT_TYPES})", [column])
    return pd.Categorical.from_codes(codes, categories=EVENT_TYPES)


def load_events(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    sep: str | None = None,
    dayfirst: bool = False,
    timestamp_format: str | None = None,
    encoding: str | None = None,
    item_columns: Iterable[str] = ITEM_ATTRIBUTES,
) -> pd.DataFrame:
    """Load and validate interaction events.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        CSV/TSV/Parquet file or DataFrame with columns ``user_id``, ``item_id``, ``timestamp``
        and optionally ``event`` (view|click|cart|purchase, case-insensitive), ``basket_id``,
        ``quantity``, ``price``, ``rating`` and item attributes (``item_columns``). An ``.arff``
        file is read by :func:`load_arff_baskets` (its events; ``columns``, ``sep``,
        ``dayfirst``, ``timestamp_format`` and ``item_columns`` do not apply).
    columns : mapping of str to str, optional
        Source column name -> canonical name.
    sep : str, optional
        Field separator for text files.
    dayfirst : bool
        Read numeric dates ``a/b/yyyy`` as day/month (default month/day); see
        :func:`parse_timestamps`.
    timestamp_format : str, optional
        One strftime format for all text timestamps, e.g. ``"%d.%m.%Y %H:%M"``.
    encoding : str, optional
        Text encoding; default UTF-8 with a latin-1 fallback (see :func:`read_table`).
    item_columns : iterable of str
        Columns that describe the item (default :data:`ITEM_ATTRIBUTES`: ``category``,
        ``brand``); those present are kept as text, for :func:`items_from_events`.

    Returns
    -------
    pandas.DataFrame
        Canonical events (see module docstring), in source row order, fresh RangeIndex.

    Raises
    ------
    DataError
        Naming the file: see :func:`read_table` for reading; missing column; missing or
        unparseable timestamps (:func:`parse_timestamps`); unknown event types; non-numeric,
        negative prices; non-positive or fractional quantities; NaN ratings; fractional ids.
    """
    if _is_file(source) and Path(source).suffix.lower() == ".arff":
        return load_arff_baskets(source, encoding=encoding)[0]
    item_columns = tuple(item_columns)
    with _about(source):
        frame = read_table(
            source,
            columns=columns,
            text_columns=("user_id", "item_id", "basket_id", "timestamp", *item_columns),
            sep=sep,
            encoding=encoding,
        )
        _require(frame, ("user_id", "item_id", "timestamp"), "events")
        frame = _drop_missing_ids(frame, ("user_id", "item_id"), _label(source, "events"))
        out = pd.DataFrame(
            {
                "user_id": _as_text(frame, "user_id"),
                "item_id": _as_text(frame, "item_id"),
                "timestamp": parse_timestamps(
                    frame["timestamp"], dayfirst=dayfirst, timestamp_format=timestamp_format
                ),
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
        for column in item_columns:
            if column in frame.columns and column not in _EVENT_COLUMNS:
                out[column] = _as_text(frame, column)
    return out.reset_index(drop=True)


def items_from_events(events: pd.DataFrame) -> pd.DataFrame | None:
    """An items table from the item attributes of events, for when there is no items file.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical events, e.g. from :func:`load_events` (which keeps ``category`` and
        ``brand``), cleaned or not. Every column that is not an event field (``user_id``,
        ``item_id``, ``timestamp``, ``event``, ``basket_id``, ``quantity``, ``price``,
        ``rating``, ``basket``) is an item attribute.

    Returns
    -------
    pandas.DataFrame or None
        Canonical items as :func:`load_items` returns them: one row per item of ``events``,
        sorted by ``item_id``; per attribute the item's most recent non-missing value (latest
        timestamp, then latest row), missing when it never has one. None when ``events`` has
        no attribute column.

    Warns
    -----
    DataWarning
        Per attribute, when items have several values: their count and one example.
    """
    attributes = [c for c in events.columns if c not in _EVENT_COLUMNS]
    if not attributes:
        return None
    order = np.lexsort((np.arange(len(events)), events["timestamp"].to_numpy()))
    ordered = events.iloc[order]
    groups = ordered.groupby("item_id", sort=True)[attributes]
    table = groups.last()
    counts = groups.nunique()
    for column in attributes:
        several = counts[column] > 1
        if several.any():
            item = several.idxmax()
            seen = sorted(ordered.loc[ordered["item_id"] == item, column].dropna().unique())
            warnings.warn(
                f"{int(several.sum())} item(s) have several {column} values in the events; each "
                f"keeps its most recent one, e.g. item {item!r}: {seen} -> "
                f"{table.at[item, column]!r}",
                DataWarning,
                stacklevel=2,
            )
    return table.reset_index()


def _load_entities(
    source: Source,
    key: str,
    columns: Mapping[str, str] | None,
    sep: str | None,
    encoding: str | None,
    numeric: tuple[str, ...],
) -> pd.DataFrame:
    what = "items" if key == "item_id" else "users"
    with _about(source):
        frame = read_table(
            source, columns=columns, text_columns=(key,), sep=sep, encoding=encoding
        )
        _require(frame, (key,), what)
        frame = _drop_missing_ids(frame, (key,), _label(source, what))
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
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    sep: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Load and validate item attributes.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        Table with a unique ``item_id`` and optional ``category``, ``brand``, ``price``,
        ``cost``, ``on_hand`` (stock), ``title``, ``description`` and further categorical
        columns.
    columns : mapping of str to str, optional
        Source column name -> canonical name.
    sep : str, optional
        Field separator for text files.
    encoding : str, optional
        Text encoding; default UTF-8 with a latin-1 fallback (see :func:`read_table`).

    Returns
    -------
    pandas.DataFrame
        ``item_id`` (str), ``price``, ``cost``, ``on_hand`` (float64, NaN = unknown) if
        present, every other column as text with missing values kept.

    Raises
    ------
    DataError
        Naming the file: see :func:`read_table`; missing ``item_id`` column, duplicate ids,
        non-numeric or negative prices, costs or stock.
    """
    return _load_entities(source, "item_id", columns, sep, encoding, numeric=ITEM_NUMBERS)


def load_promotions(
    source: Source,
    *,
    sep: str | None = None,
    encoding: str | None = None,
    dayfirst: bool = False,
) -> pd.DataFrame:
    """Load and validate a promotions table.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        One row per promotion: ``item_id``, ``promo_price`` (the price during the promotion)
        or ``discount`` (a share of the regular price in ``[0, 1)``; ``0.2`` = 20 % off), and
        ``start`` and ``end`` (timestamps as in :func:`parse_timestamps`; the promotion runs
        from ``start`` up to but not including ``end``). A row may give either price column.
    sep, encoding, dayfirst
        As in :func:`load_events`.

    Returns
    -------
    pandas.DataFrame
        ``item_id`` (str), ``promo_price`` (float64, NaN where a discount is given),
        ``discount`` (float64, NaN where a price is given), ``start``, ``end`` (int64 seconds).

    Raises
    ------
    DataError
        Naming the file: a missing column, a row with neither or both of ``promo_price`` and
        ``discount``, a negative price, a discount outside ``[0, 1)``, ``end`` not after
        ``start``, a bad timestamp.
    """
    with _about(source):
        frame = read_table(source, text_columns=("item_id",), sep=sep, encoding=encoding)
        _require(frame, ("item_id", "start", "end"), "promotions")
        if "promo_price" not in frame.columns and "discount" not in frame.columns:
            raise DataError("promotions: need a promo_price or a discount column")
        frame = _drop_missing_ids(frame, ("item_id",), _label(source, "promotions"))
        out = pd.DataFrame({"item_id": _as_text(frame, "item_id")}, index=frame.index)
        for column in ("promo_price", "discount"):
            out[column] = (
                _as_numbers(frame, column, sign="nonnegative")
                if column in frame.columns
                else np.nan
            )
        have = out[["promo_price", "discount"]].notna().sum(axis=1).to_numpy()
        shown = [c for c in ("item_id", "promo_price", "discount") if c in frame.columns]
        _fail(frame, have != 1, "not exactly one of promo_price and discount", shown)
        _fail(frame, out["discount"].to_numpy() >= 1, "a discount of 1 or more", ["discount"])
        for column in ("start", "end"):
            out[column] = parse_timestamps(frame[column].rename(column), dayfirst=dayfirst)
        bad = out["end"].to_numpy() <= out["start"].to_numpy()
        _fail(frame, bad, "end <= start", ["start", "end"])
    return out.reset_index(drop=True)


def load_stock(
    source: Source, *, sep: str | None = None, encoding: str | None = None
) -> pd.DataFrame:
    """Load and validate a stock table: a unique ``item_id`` and ``on_hand`` (units >= 0).

    Returns
    -------
    pandas.DataFrame
        ``item_id`` (str), ``on_hand`` (float64).

    Raises
    ------
    DataError
        Naming the file: a missing column, duplicate ids, a missing, non-numeric or negative
        ``on_hand``.
    """
    with _about(source):
        frame = read_table(source, text_columns=("item_id",), sep=sep, encoding=encoding)
        _require(frame, ("item_id", "on_hand"), "stock")
        frame = _drop_missing_ids(frame, ("item_id",), _label(source, "stock"))
        out = pd.DataFrame({"item_id": _as_text(frame, "item_id")}, index=frame.index)
        _fail(frame, out["item_id"].duplicated().to_numpy(), "a duplicate item_id", ["item_id"])
        out["on_hand"] = _as_numbers(frame, "on_hand", required=True, sign="nonnegative")
    return out.reset_index(drop=True)


def load_users(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    sep: str | None = None,
    encoding: str | None = None,
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
    encoding : str, optional
        Text encoding; default UTF-8 with a latin-1 fallback (see :func:`read_table`).

    Returns
    -------
    pandas.DataFrame
        ``user_id`` (str) and every other column as text with missing values kept.

    Raises
    ------
    DataError
        Naming the file: see :func:`read_table`; missing ``user_id`` column, duplicate ids.
    """
    return _load_entities(source, "user_id", columns, sep, encoding, numeric=())


_ARFF_ATTRIBUTE = re.compile(r"""@attribute\s+('[^']*'|"[^"]*"|\S+)\s+([^%]*)""", re.IGNORECASE)


def _arff_header(lines: Iterable[str]) -> tuple[list[str], list[tuple[str, ...] | None], int]:
    """Attribute names, nominal domains (None if not nominal) and the first data line index."""
    names: list[str] = []
    domains: list[tuple[str, ...] | None] = []
    for number, line in enumerate(lines):
        text = line.strip()
        if text.lower().startswith("@data"):
            return names, domains, number + 1
        if not text.lower().startswith("@attribute"):
            continue
        match = _ARFF_ATTRIBUTE.match(text)
        if match is None:
            raise DataError(f"bad @attribute on line {number + 1}: {text!r}")
        names.append(match.group(1).strip("'\""))
        kind = match.group(2).strip()
        if kind.startswith("{") and kind.endswith("}"):
            domains.append(tuple(v.strip().strip("'\"") for v in kind[1:-1].split(",")))
        else:
            domains.append(None)
    raise DataError("no @data section")


def _read_arff(
    path: Path, encoding: str
) -> tuple[list[str], list[tuple[str, ...] | None], pd.DataFrame]:
    with open(path, encoding=encoding) as fh:
        names, domains, first_data = _arff_header(fh)
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
        encoding=encoding,
    )
    return names, domains, raw


def load_arff_baskets(
    path: str | os.PathLike, *, encoding: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read an ARFF basket file: one basket per row, one ``{t}`` column per item.

    Attributes whose nominal domain is exactly ``{t}`` are items (``t`` bought, ``?`` not); all
    other attributes (e.g. ``total {low,high}`` in ``supermarket.arff``) describe the basket.
    The shoppers are unknown, so each basket becomes its own synthetic user: for the basket in
    data row ``r`` (0-based), ``user_id = basket_id = str(r)`` and ``timestamp = r``.
    :func:`load_events` reads ``.arff`` files with this function.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.arff`` file (dense format).
    encoding : str, optional
        Text encoding; default UTF-8 with a latin-1 fallback (see :func:`read_table`).

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
        Naming the file: no ``@data`` section, a bad ``@attribute`` line, no item attributes,
        a value outside an attribute's domain, text not in ``encoding``.
    """
    path = Path(path)
    with _about(path):
        names, domains, raw = _read_text(lambda enc: _read_arff(path, enc), path, encoding)
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
            raise DataError("no item attributes (nominal domain {t}) found")
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


def read_recbole(path: str | os.PathLike, *, encoding: str | None = None) -> pd.DataFrame:
    """Read one RecBole atomic file (``.inter``, ``.item``, ``.user``): tab-separated text whose
    header names fields as ``name:type``.

    Parameters
    ----------
    path : str or os.PathLike
        The atomic file.
    encoding : str, optional
        Text encoding; default UTF-8 with a latin-1 fallback (see :func:`read_table`).

    Returns
    -------
    pandas.DataFrame
        Columns named without their type; ``float`` fields as float64, the others
        (``token``, ``token_seq``, ``float_seq``) as text.

    Raises
    ------
    DataError
        Naming the file: a header field without ``:type``, an unknown type, a non-numeric
        float field, text not in ``encoding``.
    """
    path = Path(path)

    def read(enc: str) -> tuple[list[str], pd.DataFrame]:
        with open(path, encoding=enc) as fh:
            header = fh.readline().rstrip("\r\n").split("\t")
        frame = pd.read_csv(
            path,
            sep="\t",
            header=0,
            names=header,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding=enc,
        )
        return header, frame

    with _about(path):
        header, frame = _read_text(read, path, encoding)
        names = []
        for field in header:
            name, _, kind = field.partition(":")
            if kind not in _RECBOLE_TYPES:
                raise DataError(f"header field {field!r} needs a type among {_RECBOLE_TYPES}")
            names.append(name)
        frame.columns = names
        for field, name in zip(header, names, strict=True):
            if field.endswith(":float"):
                frame[name] = _as_numbers(frame, name)
    return frame


def load_recbole(
    path: str | os.PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    encoding: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """Load a RecBole dataset: ``<stem>.inter`` and, when present, ``<stem>.item``/``.user``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.inter`` file, or the stem shared by the atomic files.
    columns : mapping of str to str, optional
        Field name -> canonical name (RecBole's ``user_id``, ``item_id``, ``timestamp`` are
        canonical already), applied to all three files.
    encoding : str, optional
        Text encoding of the three files; default UTF-8 with a latin-1 fallback.

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
    tables = []
    for suffix, load in ((".inter", load_events), (".item", load_items), (".user", load_users)):
        file = stem.with_suffix(suffix)
        if suffix != ".inter" and not file.exists():
            tables.append(None)
            continue
        with _about(file):
            tables.append(load(read_recbole(file, encoding=encoding), columns=columns))
    events, items, users = tables
    return events, items, users


_MOVIELENS_FIELDS = ["user_id", "item_id", "rating", "timestamp"]


def load_movielens(
    path: str | os.PathLike, *, min_rating: float | None = None, encoding: str | None = None
) -> pd.DataFrame:
    """Load MovieLens ratings as purchase events with a ``rating`` column.

    Parameters
    ----------
    path : str or os.PathLike
        ``ratings.csv`` (header ``userId,movieId,rating,timestamp``), ``u.data`` (tab-separated,
        no header: user, item, rating, timestamp) or ``ratings.dat`` (``::``-separated).
    min_rating : float, optional
        Keep only ratings >= this value (e.g. 4.0 to treat liked movies as purchases).
    encoding : str, optional
        Text encoding; default UTF-8 with a latin-1 fallback (see :func:`read_table`).

    Returns
    -------
    pandas.DataFrame
        Canonical events.
    """
    path = Path(path)
    ids = {"user_id": str, "item_id": str}

    def read(enc: str) -> pd.DataFrame:
        if path.name.endswith(".dat"):
            return pd.read_csv(
                path,
                sep="::",
                engine="python",
                header=None,
                names=_MOVIELENS_FIELDS,
                dtype=ids,
                encoding=enc,
            )
        with open(path, encoding=enc) as fh:
            has_header = "userId" in fh.readline()
        if has_header:
            frame = pd.read_csv(path, dtype={"userId": str, "movieId": str}, encoding=enc)
            return frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
        return pd.read_csv(
            path, sep="\t", header=None, names=_MOVIELENS_FIELDS, dtype=ids, encoding=enc
        )

    with _about(path):
        frame = _read_text(read, path, encoding)
        if frame.empty:
            raise DataError("no data rows")
        events = load_events(frame)
    if min_rating is not None:
        events = events[events["rating"].to_numpy() >= min_rating].reset_index(drop=True)
    return events
