"""Markov-blanket posteriors equal variable elimination and brute-force enumeration."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_pgm_inference import brute_posterior, networks

import pgm
from pgm.blanket import markov_blanket, markov_blanket_posteriors


@given(model=networks(), data=st.data(), n=st.integers(1, 4))
@settings(max_examples=20)
def test_blanket_posterior_equals_enumeration(model, data, n):
    nodes = model.nodes()
    target = data.draw(st.sampled_from(nodes))
    others = [v for v in nodes if v != target]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    sample = model.simulate(n, rng)  # possible assignments: no zero-probability evidence
    evidence = {v: [model.states(v).index(s) for s in sample[v]] for v in others}
    got = markov_blanket_posteriors(model, evidence, [target])[target]
    ve = pgm.VariableElimination(model)
    for case in range(n):
        expected, _ = brute_posterior(model, [target], {v: evidence[v][case] for v in others})
        ev = {v: model.states(v)[evidence[v][case]] for v in others}
        np.testing.assert_allclose(got[case], expected.reshape(-1), atol=1e-10)
        np.testing.assert_allclose(
            got[case], ve.query([target], evidence=ev).values.reshape(-1), atol=1e-10
        )


def test_blanket_is_parents_children_and_coparents():
    model = pgm.BayesianNetwork([("A", "C"), ("B", "C"), ("C", "D"), ("E", "D"), ("D", "F")])
    assert markov_blanket(model, "C") == {"A", "B", "D", "E"}
    assert markov_blanket(model, "F") == {"D"}


def test_missing_blanket_variable_is_named():
    model = pgm.BayesianNetwork([("A", "B")])
    model.add_cpds(
        pgm.TabularCPD("A", 2, [[0.3], [0.7]]),
        pgm.TabularCPD("B", 2, [[0.9, 0.2], [0.1, 0.8]], evidence=["A"], evidence_card=[2]),
    )
    with pytest.raises(pgm.InferenceError, match="'B'"):
        markov_blanket_posteriors(model, {}, ["A"])
    with pytest.raises(pgm.InferenceError, match="outside"):
        markov_blanket_posteriors(model, {"B": [2]}, ["A"])
    post = markov_blanket_posteriors(model, {"B": [1, 0]}, ["A"])["A"]
    expected = np.array([[0.3 * 0.1, 0.7 * 0.8], [0.3 * 0.9, 0.7 * 0.2]])
    np.testing.assert_allclose(post, expected / expected.sum(axis=1, keepdims=True))


def test_cache_follows_model_mutations():
    model = pgm.BayesianNetwork([("A", "B")])
    b = pgm.TabularCPD("B", 2, [[0.9, 0.2], [0.1, 0.8]], evidence=["A"], evidence_card=[2])
    model.add_cpds(pgm.TabularCPD("A", 2, [[0.5], [0.5]]), b)
    first = markov_blanket_posteriors(model, {"B": [1]}, ["A"])["A"]
    model.remove_cpds("A")
    model.add_cpds(pgm.TabularCPD("A", 2, [[0.9], [0.1]]))
    second = markov_blanket_posteriors(model, {"B": [1]}, ["A"])["A"]
    expected = np.array([0.9 * 0.1, 0.1 * 0.8])
    np.testing.assert_allclose(second[0], expected / expected.sum())
    assert not np.allclose(first, second)
