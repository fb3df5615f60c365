"""State names and the lookup of a state given by name or by index.

A state is named by a ``str`` (its name) or an integer (its index, ``0 <= i < cardinality``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pgm.errors import PGMError, UnknownStateError


def default_state_names(cardinality: int) -> list[str]:
    """Return ``["0", ..., str(cardinality - 1)]``."""
    return [str(i) for i in range(cardinality)]


def check_state_names(
    variables: Sequence[Any], cardinality: Sequence[int], given: Mapping[Any, Sequence] | None
) -> dict[Any, list[str]]:
    """Complete and validate state names: one distinct ``str`` per state of each variable.

    Raises
    ------
    PGMError
        If a list has the wrong length, repeats a name, or names an unknown variable.
    """
    given = dict(given or {})
    unknown = set(given) - set(variables)
    if unknown:
        raise PGMError(f"state_names given for variables not in the scope: {sorted(unknown)}")
    names: dict[Any, list[str]] = {}
    for var, card in zip(variables, cardinality, strict=True):
        states = [str(s) for s in given.get(var, default_state_names(card))]
        if len(states) != card:
            raise PGMError(
                f"variable {var!r} has cardinality {card} but {len(states)} state names"
            )
        if len(set(states)) != card:
            raise PGMError(f"variable {var!r} has repeated state names: {states}")
        names[var] = states
    return names


def state_index(variable: Any, states: Sequence[str], value: Any) -> int:
    """Index of ``value`` (a state name, or an integer index) among ``states``.

    Raises
    ------
    UnknownStateError
        If the name is not a state of ``variable`` or the index is out of range.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if 0 <= value < len(states):
            return int(value)
        raise UnknownStateError(
            f"state index {value} out of range for variable {variable!r} with {len(states)} states"
        )
    try:
        return list(states).index(str(value))
    except ValueError:
        raise UnknownStateError(
            f"unknown state {value!r} of variable {variable!r}; states are {list(states)}"
        ) from None


def state_indices(
    variable: Any, states: Sequence[str], values: Any, allow_missing: bool = False
) -> np.ndarray:
    """Vectorised :func:`state_index`: an ``(n,)`` int64 array from names or integer indices.

    With ``allow_missing``, an entry that is not observed in its case (the index ``-1``, or a
    ``None``/NaN name or number, ``-1.0``) becomes ``-1``.

    Raises
    ------
    UnknownStateError
        Naming the first unknown state (or out-of-range index) and its position.
    PGMError
        If ``values`` holds non-integral numbers, or missing values without ``allow_missing``.
    """
    arr = np.asarray(values).reshape(-1)
    if arr.dtype.kind == "f":
        missing = np.isnan(arr) | (arr == -1)
        if (arr[~missing] != np.round(arr[~missing])).any():
            raise PGMError(f"evidence for {variable!r} holds non-integral numbers")
        idx = np.where(missing, -1, arr).astype(np.int64)
    elif arr.dtype.kind in "iu":
        idx = arr.astype(np.int64)
        missing = idx == -1
    else:
        missing = np.asarray(pd.isna(arr), dtype=bool)
        idx = pd.Index(list(states)).get_indexer(arr.astype(str)).astype(np.int64)
        idx[missing] = -1
    bad = np.flatnonzero(((idx < 0) & ~missing) | (idx >= len(states)))
    if bad.size:
        raise UnknownStateError(
            f"unknown state {arr[bad[0]]!r} of variable {variable!r} at row {bad[0]}; "
            f"states are {list(states)}"
        )
    if missing.any() and not allow_missing:
        raise PGMError(
            f"evidence for {variable!r} holds missing values (row {np.flatnonzero(missing)[0]})"
        )
    return idx
