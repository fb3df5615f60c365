"""Factor operations against enumeration over every assignment."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import pgm

CARDS = {"a": 2, "b": 3, "c": 2, "d": 4}


@st.composite
def factors(draw, pool=tuple(CARDS)) -> pgm.Factor:
    """A factor over a random subset of ``CARDS`` in a random axis order."""
    scope = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True))
    shape = [CARDS[v] for v in scope]
    values = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 5.0)))
    return pgm.Factor(scope, shape, values)


def at(factor: pgm.Factor, assignment: dict) -> np.ndarray:
    """Entries of ``factor`` at rows of an assignment ``{var: (R,) int}``."""
    return factor.values[tuple(assignment[v] for v in factor.variables)]


@given(f=factors(), g=factors())
def test_product_matches_enumeration(f, g):
    union = sorted(set(f.variables) | set(g.variables))
    rows = np.indices([CARDS[v] for v in union]).reshape(len(union), -1)
    assignment = dict(zip(union, rows, strict=True))
    prod = f.product(g)
    assert prod.variables == union, f"scope {prod.variables} is not the sorted union {union}"
    expected = at(f, assignment) * at(g, assignment)
    diff = np.max(np.abs(at(prod, assignment) - expected))
    assert diff <= 1e-12, f"product differs from enumeration by {diff:.3e}"


@given(f=factors(), data=st.data())
def test_marginalize_maximize_reduce(f, data):
    gone = data.draw(st.lists(st.sampled_from(f.variables), unique=True))
    axes = tuple(f.variables.index(v) for v in gone)
    summed, maxed = f.marginalize(gone), f.maximize(gone)
    kept = [v for v in f.variables if v not in gone]
    assert summed.variables == kept and maxed.variables == kept
    np.testing.assert_allclose(summed.values, f.values.sum(axis=axes), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(maxed.values, f.values.max(axis=axes))
    evidence = {v: data.draw(st.integers(0, CARDS[v] - 1)) for v in gone}
    index = tuple(evidence.get(v, slice(None)) for v in f.variables)
    by_name = f.reduce({v: str(s) for v, s in evidence.items()})
    np.testing.assert_array_equal(by_name.values, f.values[index])
    assert f.reduce(evidence).allclose(by_name, atol=0)


@given(f=factors())
def test_axis_order_given_does_not_matter(f):
    order = f.variables[::-1]
    perm = [f.variables.index(v) for v in order]
    g = pgm.Factor(order, [CARDS[v] for v in order], f.values.transpose(perm))
    pgm.assert_factors_close(g, f, atol=0)
    if f.values.sum() > 0:
        assert abs(f.normalize().values.sum() - 1) < 1e-12
    full = {v: 0 for v in f.variables}
    assert f.get_value(**full) == f.values[(0,) * len(f.variables)]


def test_state_names_and_errors():
    f = pgm.Factor(["x", "y"], [2, 3], np.arange(6.0), {"y": ["lo", "mid", "hi"]})
    assert f.get_value(x=1, y="mid") == 4.0
    assert f.state_names == {"x": ["0", "1"], "y": ["lo", "mid", "hi"]}
    with pytest.raises(ValueError):
        f.values[0, 0] = 1.0
    with pytest.raises(pgm.PGMError, match="needs 6 values"):
        pgm.Factor(["x", "y"], [2, 3], np.ones(5))
    with pytest.raises(pgm.PGMError, match="NaN or negative"):
        pgm.Factor(["x"], [2], [0.5, -0.1])
    with pytest.raises(pgm.PGMError, match="repeats"):
        pgm.Factor(["x", "x"], [2, 2], np.ones(4))
    with pytest.raises(pgm.UnknownVariableError, match="'z'"):
        f.marginalize(["z"])
    with pytest.raises(pgm.UnknownStateError, match="'max'"):
        f.reduce({"y": "max"})
    with pytest.raises(pgm.UnknownStateError, match="out of range"):
        f.reduce({"x": 2})
    with pytest.raises(pgm.PGMError, match="states"):
        f.product(pgm.Factor(["y"], [3], np.ones(3)))
    with pytest.raises(pgm.PGMError, match="all entries are zero"):
        pgm.Factor(["x"], [2], [0.0, 0.0]).normalize()
    with pytest.raises(AssertionError, match="differ by 1.000e\\+00"):
        pgm.assert_factors_close(
            f, pgm.Factor(["x", "y"], [2, 3], np.arange(6.0) + 1, f.state_names)
        )
