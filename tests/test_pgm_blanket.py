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


@given(model=networks(), data=st.data(), n=st.integers(0, 3))
@settings(max_examples=15)
def test_all_variables_at_once_equal_one_at_a_time_and_enumeration(model, data, n):
    """Every variable in one call (mixed cardinalities, shuffled order): each posterior equals
    its own single-variable call and, for the first case, brute-force enumeration."""
    nodes = data.draw(st.permutations(model.nodes()))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    sample = model.simulate(n, rng)
    evidence = {v: [model.states(v).index(s) for s in sample[v]] for v in nodes}
    together = markov_blanket_posteriors(model, evidence, nodes)
    assert list(together) == list(nodes), "results not in request order"
    for v in nodes:
        alone = markov_blanket_posteriors(model, evidence, [v])[v]
        assert together[v].shape == (n, model.get_cardinality(v)), f"{v}: {together[v].shape}"
        np.testing.assert_allclose(together[v], alone, atol=1e-12, err_msg=f"{v}")
        if n:
            others = {u: evidence[u][0] for u in nodes if u != v}
            expected, _ = brute_posterior(model, [v], others)
            np.testing.assert_allclose(together[v][0], expected.reshape(-1), atol=1e-10)


def test_cpd_tables_in_any_memory_order_give_the_same_posteriors():
    """A CPD whose values are Fortran-ordered (as learned tables can be) reads correctly."""
    rng = np.random.default_rng(5)
    model = pgm.BayesianNetwork([("A", "B"), ("C", "B"), ("B", "D")])
    tables = {
        "A": (3, rng.dirichlet(np.ones(3))[:, None], [], []),
        "C": (2, rng.dirichlet(np.ones(2))[:, None], [], []),
        "B": (2, np.asfortranarray(rng.dirichlet(np.ones(2), size=6).T), ["A", "C"], [3, 2]),
        "D": (3, np.asfortranarray(rng.dirichlet(np.ones(3), size=2).T), ["B"], [2]),
    }
    for v, (card, values, parents, cards) in tables.items():
        model.add_cpds(pgm.TabularCPD(v, card, values, parents or None, cards or None))
    ve = pgm.VariableElimination(model)
    evidence = {"A": [2, 0], "B": [1, 0], "C": [0, 1], "D": [2, 1]}
    got = markov_blanket_posteriors(model, evidence, ["A", "B", "C", "D"])
    for v in "ABCD":
        for case in range(2):
            ev = {u: model.states(u)[evidence[u][case]] for u in "ABCD" if u != v}
            want = ve.query([v], evidence=ev).values.reshape(-1)
            np.testing.assert_allclose(got[v][case], want, atol=1e-12, err_msg=f"{v}, {case}")


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
