"""Encoding learning data: columns of state indices with their names and states (see
:mod:`pgm.learning` for the accepted inputs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pgm.errors import PGMError, UnknownStateError, UnknownVariableError


# -- data encoding -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    """Encoded data: ``codes[i]`` is the ``(n,)`` state-index column of variable ``names[i]``."""

    names: list
    states: list[list[str]]
    codes: np.ndarray  # (d, n), smallest unsigned dtype that holds the state indices

    @property
    def n_rows(self) -> int:
        return self.codes.shape[1]

    @property
    def cards(self) -> np.ndarray:
        return np.array([len(s) for s in self.states], dtype=np.int64)

    def column(self, name: Any) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownVariableError(f"data has no column {name!r}") from None


def _small(codes: np.ndarray, card: int) -> np.ndarray:
    return codes.astype(np.min_scalar_type(max(card - 1, 0)), copy=False)


def _distinct_ints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of an integer column, sorted; O(n) when the value range is small."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64), values[:0]
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 4 * values.size + 1024:
        uniques, codes = np.unique(values, return_inverse=True)
        return codes, uniques
    shifted = values - lo if lo else values
    if hi - lo <= 1:  # min and max are present: the shifted values are the codes (0/1 data)
        return shifted, np.arange(lo, hi + 1)
    present = np.bincount(shifted, minlength=hi - lo + 1) > 0
    lookup = np.cumsum(present) - 1
    return lookup[shifted], np.flatnonzero(present) + lo


def _encode_column(name: Any, series: pd.Series, states: Sequence | None):
    """State indices ``(n,)`` and state names of one DataFrame column."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int64)
        uniques = np.asarray(series.cat.categories, dtype=object)
        if (codes < 0).any():
            raise PGMError(
                f"column {name!r} holds missing values (NaN) at row "
                f"{int(np.flatnonzero(codes < 0)[0])}"
            )
    else:
        values = series.to_numpy()
        if (
            values.dtype.kind == "f"
            and np.isnan(values).any()
            or (values.dtype.kind not in "iuf" and series.isna().any())
        ):
            row = int(np.flatnonzero(series.isna().to_numpy())[0])
            raise PGMError(f"column {name!r} holds missing values (NaN) at row {row}")
        if values.dtype.kind == "f" and np.array_equal(values, np.round(values)):
            values = values.astype(np.int64)
        if values.dtype.kind in "iu":
            codes, uniques = _distinct_ints(values)
        else:
            try:
                codes, uniques = pd.factorize(series, sort=True)
            except TypeError:  # mixed types that do not sort: order by their names
                codes, uniques = pd.factorize(series.astype(str), sort=True)
            uniques = np.asarray(uniques, dtype=object)
    found = [str(u) for u in uniques]
    if states is None:
        return codes, found
    states = [str(s) for s in states]
    lookup = pd.Index(states).get_indexer(found)
    if (lookup < 0).any():
        value = uniques[int(np.flatnonzero(lookup < 0)[0])]
        value = value.item() if isinstance(value, np.generic) else value
        raise UnknownStateError(
            f"column {name!r} holds the value {value!r}, which is not a state of {name!r}; "
            f"states are {states}"
        )
    return lookup[codes], states


def _encode_array(data: np.ndarray, state_names: Mapping | None) -> Data:
    if data.ndim != 2:
        raise PGMError(f"data must be 2-D (rows, variables), got shape {data.shape}")
    if data.dtype.kind == "f":
        bad = np.argwhere(np.isnan(data))
        if bad.size:
            raise PGMError(
                f"data holds missing values (NaN) at row {bad[0][0]}, column {bad[0][1]}"
            )
        if not np.array_equal(data, np.round(data)):
            raise PGMError("an ndarray of data must hold integer state indices")
    elif data.dtype.kind not in "iub":
        raise TypeError(f"an ndarray of data must hold integer state indices, not {data.dtype}")
    data = data.astype(np.int64)
    names = list(state_names) if state_names else [str(i) for i in range(data.shape[1])]
    if len(names) != data.shape[1]:
        raise PGMError(
            f"state_names names {len(names)} variables but data has {data.shape[1]} columns"
        )
    states, codes = [], []
    for i, name in enumerate(names):
        col = data[:, i]
        if state_names:
            col_states = [str(s) for s in state_names[name]]
        else:
            col_states = [str(k) for k in range(int(col.max(initial=-1)) + 1)]
        bad = np.flatnonzero((col < 0) | (col >= len(col_states)))
        if bad.size:
            raise UnknownStateError(
                f"column {name!r} holds the state index {col[bad[0]]} at row {bad[0]}; "
                f"{name!r} has {len(col_states)} states"
            )
        states.append(col_states)
        codes.append(_small(col, len(col_states)))
    return Data(names, states, np.stack(codes) if codes else np.zeros((0, len(data)), np.uint8))


def encode(data: Any, state_names: Mapping | None = None, columns: Sequence | None = None) -> Data:
    """Encode data (see the module docstring), keeping only ``columns`` if given."""
    state_names = dict(state_names or {})
    if isinstance(data, np.ndarray):
        encoded = _encode_array(data, state_names or None)
        if columns is None:
            return encoded
        keep = [encoded.column(c) for c in columns]
        return Data(list(columns), [encoded.states[i] for i in keep], encoded.codes[keep])
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"data must be a pandas DataFrame or an ndarray, not {type(data).__name__}"
        )
    if data.columns.has_duplicates:
        raise PGMError(
            f"data has repeated column names: {list(data.columns[data.columns.duplicated()])}"
        )
    names = list(data.columns) if columns is None else list(columns)
    for name in names:
        if name not in data.columns:
            raise UnknownVariableError(f"data has no column {name!r}")
    states, codes = [], []
    for name in names:
        col_codes, col_states = _encode_column(name, data[name], state_names.get(name))
        states.append(col_states)
        codes.append(_small(col_codes, len(col_states)))
    if not codes:
        return Data(names, states, np.zeros((0, len(data)), np.uint8))
    return Data(names, states, np.stack(codes))
