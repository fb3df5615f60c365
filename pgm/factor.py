"""Discrete factors: a non-negative table with one axis per variable.

Canonical order
---------------
A :class:`Factor` keeps its scope sorted by ``str(variable)``, whatever order the constructor
was given: two factors over the same variables then have identical axes, and products and
comparisons need no bookkeeping. ``values`` has shape ``cardinality`` (one axis per variable,
in that canonical order) and dtype float64; it is read-only (factors are immutable).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from pgm.errors import PGMError, UnknownVariableError
from pgm.states import check_state_names, state_index

_LETTERS = string.ascii_letters


def _frozen(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.float64)
    values.flags.writeable = False
    return values


class Factor:
    """An immutable discrete factor ``phi(X_1, ..., X_k) >= 0``.

    Parameters
    ----------
    variables : sequence of hashable
        The scope, distinct names, in the order the axes of ``values`` are given.
    cardinality : sequence of int
        Number of states of each variable, same order.
    values : array_like of float
        Shape ``cardinality`` (or flat with ``prod(cardinality)`` entries, last variable fastest).
    state_names : dict, optional
        ``{variable: [state name, ...]}``; missing variables get ``"0" .. "k-1"``.

    Raises
    ------
    PGMError
        On repeated variables, a size mismatch, NaN or negative values.
    """

    __slots__ = ("_variables", "_cardinality", "_values", "_state_names")

    def __init__(
        self,
        variables: Sequence[Any],
        cardinality: Sequence[int],
        values: Any,
        state_names: Mapping[Any, Sequence] | None = None,
    ) -> None:
        variables = list(variables)
        cardinality = [int(c) for c in cardinality]
        if len(set(variables)) != len(variables):
            raise PGMError(f"factor scope repeats a variable: {variables}")
        if len(cardinality) != len(variables):
            raise PGMError(
                f"{len(variables)} variables {variables} but {len(cardinality)} cardinalities"
            )
        if any(c < 1 for c in cardinality):
            raise PGMError(f"cardinalities must be >= 1, got {cardinality}")
        values = np.asarray(values, dtype=np.float64)
        if values.size != int(np.prod(cardinality)):
            raise PGMError(
                f"factor over {variables} with cardinality {cardinality} needs "
                f"{int(np.prod(cardinality))} values, got shape {values.shape}"
            )
        if np.isnan(values).any() or (values < 0).any():
            raise PGMError(f"factor over {variables} has NaN or negative values")
        names = check_state_names(variables, cardinality, state_names)
        order = sorted(range(len(variables)), key=lambda i: str(variables[i]))
        values = values.reshape(cardinality).transpose(order)
        self._init(
            tuple(variables[i] for i in order),
            tuple(cardinality[i] for i in order),
            values,
            {variables[i]: names[variables[i]] for i in order},
        )

    def _init(self, variables, cardinality, values, state_names) -> None:
        self._variables = variables
        self._cardinality = cardinality
        self._values = _frozen(values)
        self._state_names = state_names

    @classmethod
    def _canonical(cls, variables, cardinality, values, state_names) -> Factor:
        """Build from parts already in canonical order (no validation)."""
        factor = cls.__new__(cls)
        factor._init(tuple(variables), tuple(cardinality), values, state_names)
        return factor

    # -- attributes ---------------------------------------------------------------------------
    @property
    def variables(self) -> list:
        """The scope in canonical order (sorted by ``str``)."""
        return list(self._variables)

    @property
    def cardinality(self) -> np.ndarray:
        """``(k,)`` int64: number of states of each variable."""
        return np.array(self._cardinality, dtype=np.int64)

    @property
    def values(self) -> np.ndarray:
        """Read-only float64 table of shape ``cardinality``."""
        return self._values

    @property
    def state_names(self) -> dict[Any, list[str]]:
        """``{variable: [state name, ...]}``."""
        return {v: list(s) for v, s in self._state_names.items()}

    def scope(self) -> list:
        """Same as :attr:`variables`."""
        return self.variables

    def __repr__(self) -> str:
        pairs = zip(self._variables, self._cardinality, strict=True)
        scope = ", ".join(f"{v}:{c}" for v, c in pairs)
        return f"<Factor over ({scope})>"

    # -- operations ---------------------------------------------------------------------------
    def _axis(self, variable: Any) -> int:
        try:
            return self._variables.index(variable)
        except ValueError:
            raise UnknownVariableError(
                f"variable {variable!r} is not in the factor scope {list(self._variables)}"
            ) from None

    def product(self, other: Factor) -> Factor:
        """Pointwise product over the union of the scopes.

        Raises
        ------
        PGMError
            If a shared variable has different cardinalities or state names.
        """
        names = dict(self._state_names)
        for var, states in other._state_names.items():
            if var in names and names[var] != states:
                raise PGMError(
                    f"variable {var!r} has states {names[var]} in one factor and "
                    f"{states} in the other"
                )
            names[var] = states
        scope = sorted(names, key=str)
        if len(scope) > len(_LETTERS):
            raise PGMError(f"product scope of {len(scope)} variables is too large")
        label = {v: _LETTERS[i] for i, v in enumerate(scope)}
        spec = (
            "".join(label[v] for v in self._variables)
            + ","
            + "".join(label[v] for v in other._variables)
            + "->"
            + "".join(label[v] for v in scope)
        )
        values = np.einsum(spec, self._values, other._values)
        return Factor._canonical(
            scope, [len(names[v]) for v in scope], values, {v: names[v] for v in scope}
        )

    __mul__ = product

    def _eliminate(self, variables: Iterable[Any], reduce_op) -> Factor:
        variables = list(variables)
        axes = tuple(self._axis(v) for v in variables)
        keep = [i for i in range(len(self._variables)) if i not in axes]
        return Factor._canonical(
            [self._variables[i] for i in keep],
            [self._cardinality[i] for i in keep],
            reduce_op(self._values, axis=axes),
            {self._variables[i]: self._state_names[self._variables[i]] for i in keep},
        )

    def marginalize(self, variables: Iterable[Any]) -> Factor:
        """Sum out ``variables`` (each must be in the scope)."""
        return self._eliminate(variables, np.sum)

    def maximize(self, variables: Iterable[Any]) -> Factor:
        """Max out ``variables`` (each must be in the scope)."""
        return self._eliminate(variables, np.max)

    def reduce(self, evidence: Mapping[Any, Any]) -> Factor:
        """Fix variables to states: ``{variable: state name or index}``; they leave the scope."""
        index: list[Any] = [slice(None)] * len(self._variables)
        for var, value in evidence.items():
            axis = self._axis(var)
            index[axis] = state_index(var, self._state_names[var], value)
        keep = [i for i, ix in enumerate(index) if isinstance(ix, slice)]
        return Factor._canonical(
            [self._variables[i] for i in keep],
            [self._cardinality[i] for i in keep],
            self._values[tuple(index)],
            {self._variables[i]: self._state_names[self._variables[i]] for i in keep},
        )

    def normalize(self) -> Factor:
        """Divide by the sum of all entries.

        Raises
        ------
        PGMError
            If every entry is zero.
        """
        total = self._values.sum()
        if total <= 0:
            raise PGMError(f"cannot normalize {self!r}: all entries are zero")
        return Factor._canonical(
            self._variables, self._cardinality, self._values / total, self._state_names
        )

    def get_value(self, **assignment: Any) -> float:
        """Entry at a full assignment ``variable=state name or index``."""
        missing = [v for v in self._variables if v not in assignment]
        extra = [v for v in assignment if v not in self._state_names]
        if extra:
            raise UnknownVariableError(f"variables {extra} are not in the scope of {self!r}")
        if missing:
            raise PGMError(f"get_value needs a state for every variable; missing {missing}")
        index = tuple(state_index(v, self._state_names[v], assignment[v]) for v in self._variables)
        return float(self._values[index])

    # -- comparison ---------------------------------------------------------------------------
    def max_abs_diff(self, other: Factor) -> float:
        """Largest absolute difference of the tables (``inf`` if scopes or states differ)."""
        if self._variables != other._variables or self._state_names != other._state_names:
            return float("inf")
        if not self._values.size:
            return 0.0
        return float(np.max(np.abs(self._values - other._values)))

    def allclose(self, other: Factor, atol: float = 1e-10) -> bool:
        """Whether scopes and state names agree and every entry is within ``atol``."""
        return self.max_abs_diff(other) <= atol


def assert_factors_close(actual: Factor, expected: Factor, atol: float = 1e-10) -> None:
    """Raise ``AssertionError`` saying what differs (scope, states, or largest difference)."""
    if actual.variables != expected.variables:
        raise AssertionError(f"scopes differ: {actual.variables} vs {expected.variables}")
    if actual.state_names != expected.state_names:
        raise AssertionError(f"state names differ: {actual.state_names} vs {expected.state_names}")
    diff = actual.max_abs_diff(expected)
    if diff > atol:
        where = np.unravel_index(
            np.argmax(np.abs(actual.values - expected.values)), actual.values.shape
        )
        raise AssertionError(
            f"factors over {actual.variables} differ by {diff:.3e} > {atol:.1e} at index "
            f"{tuple(int(i) for i in where)}"
        )
