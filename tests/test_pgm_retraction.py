"""pgm.leave_one_out against brute-force enumeration of the joint on random small networks."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given
from test_pgm_inference import brute_posterior, deterministic_network, networks

import pgm


def draw_case(data, model, max_targets: int = 3, max_evidence: int = 4):
    """Random targets (some also observed) and evidence, states by index or by name."""
    names = data.draw(st.permutations(model.nodes()))
    n_targets = data.draw(st.integers(1, min(max_targets, len(names))))
    n_evidence = data.draw(st.integers(0, min(max_evidence, len(names))))
    observed = data.draw(st.permutations(names))[:n_evidence]

    def state(var):
        index = data.draw(st.integers(0, model.get_cardinality(var) - 1))
        return model.states(var)[index] if data.draw(st.booleans()) else index

    targets = {v: state(v) for v in names[:n_targets]}
    evidence = {v: targets[v] if v in targets else state(v) for v in observed}
    return targets, evidence


def brute_probability(model, target, state, evidence) -> float:
    """``P(target = state | evidence)`` by enumeration (states by index)."""
    index = {v: s if isinstance(s, int) else model.states(v).index(s) for v, s in evidence.items()}
    posterior, _ = brute_posterior(model, [target], index)
    return float(posterior[state if isinstance(state, int) else model.states(target).index(state)])


@given(model=networks(max_vars=7), data=st.data(), joint=st.booleans())
def test_leave_one_out_matches_enumeration(model, data, joint):
    targets, evidence = draw_case(data, model)
    ve = pgm.VariableElimination(model)
    got = pgm.leave_one_out(ve, targets, evidence, max_entries=1 << 20 if joint else 1)
    assert list(got) == list(targets)
    for t, s in targets.items():
        given_t = {v: x for v, x in evidence.items() if v != t}
        full, without = got[t]
        expected = brute_probability(model, t, s, given_t)
        assert full == pytest.approx(expected, rel=1e-9, abs=1e-14), f"P({t}|E_t)"
        assert without.shape == (len(given_t),) and without.dtype == np.float64
        for k, v in enumerate(given_t):
            rest = {u: x for u, x in given_t.items() if u != v}
            expected = brute_probability(model, t, s, rest)
            assert without[k] == pytest.approx(expected, rel=1e-9, abs=1e-14), (
                f"P({t}|E_t without {v}): {without[k]} vs {expected}"
            )


def test_no_targets_no_query():
    ve = pgm.VariableElimination(deterministic_network())
    assert pgm.leave_one_out(ve, {}, {"A": "no"}) == {}


def test_zero_probability_evidence_and_unknown_names_raise():
    ve = pgm.VariableElimination(deterministic_network())
    for max_entries in (1, 1 << 16):  # the joint table and the per-subset queries
        with pytest.raises(pgm.ZeroProbabilityError):
            pgm.leave_one_out(ve, {"C": 1}, {"A": "yes", "B": 0}, max_entries=max_entries)
        with pytest.raises(pgm.UnknownVariableError, match="'D'"):
            pgm.leave_one_out(ve, {"C": 1}, {"D": 0}, max_entries=max_entries)
        with pytest.raises(pgm.UnknownStateError):
            pgm.leave_one_out(ve, {"C": "maybe"}, {"A": "no"}, max_entries=max_entries)
    full, without = pgm.leave_one_out(ve, {"C": 1}, {"A": "no", "B": 0})["C"]
    assert full == pytest.approx(0.8) and without == pytest.approx([0.8, 0.3 * 0.8 + 0.7 * 0.1])
