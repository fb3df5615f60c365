"""TabularCPD validation, network mutations (all or nothing), moralization and sampling."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import pgm


def sprinkler() -> pgm.BayesianNetwork:
    bn = pgm.BayesianNetwork([("Rain", "Wet"), ("Sprinkler", "Wet"), ("Rain", "Sprinkler")])
    bn.add_cpds(
        pgm.TabularCPD("Rain", 2, [[0.8], [0.2]], state_names={"Rain": ["no", "yes"]}),
        pgm.TabularCPD(
            "Sprinkler", 2, [[0.6, 0.99], [0.4, 0.01]], ["Rain"], [2], {"Rain": ["no", "yes"]}
        ),
        pgm.TabularCPD(
            "Wet",
            2,
            [[1.0, 0.2, 0.1, 0.01], [0.0, 0.8, 0.9, 0.99]],
            ["Rain", "Sprinkler"],
            [2, 2],
            {"Rain": ["no", "yes"]},
        ),
    )
    return bn


def test_cpd_layout_last_parent_fastest():
    cpd = sprinkler().get_cpds("Wet")
    f = cpd.to_factor()
    for col, (r, s) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for w in range(2):
            assert f.get_value(Wet=w, Rain=r, Sprinkler=s) == cpd.get_values()[w, col]
    assert cpd.values.shape == (2, 2, 2) and cpd.state_names["Rain"] == ["no", "yes"]
    assert cpd.state_names["Wet"] == ["0", "1"]


def test_cpd_validation_names_the_problem():
    with pytest.raises(pgm.CPDError, match=r"'B'.*\(2, 3\).*\(2, 2\)"):
        pgm.TabularCPD("B", 2, np.full((2, 3), 0.5), ["A"], [2])
    with pytest.raises(pgm.CPDError, match="'B': column 1 sums to 0.9"):
        pgm.TabularCPD("B", 2, [[0.5, 0.5], [0.5, 0.4]], ["A"], [2])
    with pytest.raises(pgm.CPDError, match="NaN or negative"):
        pgm.TabularCPD("B", 2, [[np.nan], [0.5]])
    with pytest.raises(pgm.CPDError, match="NaN or negative"):
        pgm.TabularCPD("B", 2, [[1.5], [-0.5]])
    with pytest.raises(pgm.CPDError, match="2 state names"):
        pgm.TabularCPD("B", 3, [[0.2], [0.3], [0.5]], state_names={"B": ["x", "y"]})


def test_cycle_is_named_and_model_unchanged():
    bn = sprinkler()
    edges, version = bn.edges(), bn.version
    with pytest.raises(pgm.CycleError, match="Wet -> Rain -> Wet"):
        bn.add_edge("Wet", "Rain")
    with pytest.raises(pgm.CycleError, match="X -> X"):
        bn.add_edges_from([("Rain", "X"), ("X", "X")])
    assert bn.edges() == edges and bn.version == version and "X" not in bn.nodes()
    with pytest.raises(pgm.UnknownVariableError, match="'Nope'"):
        bn.add_cpds(pgm.TabularCPD("Rain", 2, [[0.5], [0.5]]), pgm.TabularCPD("Nope", 1, [[1]]))
    assert bn.get_cpds("Rain").get_values()[0, 0] == 0.8 and bn.version == version


def test_check_model_names_the_node():
    bn = sprinkler()
    assert bn.check_model()
    bn.remove_cpds("Wet")
    with pytest.raises(pgm.ModelError, match="'Wet' has no CPD"):
        bn.check_model()
    bn.add_cpds(pgm.TabularCPD("Wet", 2, [[0.5, 0.5], [0.5, 0.5]], ["Rain"], [2]))
    with pytest.raises(pgm.ModelError, match="CPD of 'Wet' is conditioned on"):
        bn.check_model()
    bn.add_cpds(pgm.TabularCPD("Wet", 2, np.full((2, 6), 0.5), ["Rain", "Sprinkler"], [3, 2]))
    with pytest.raises(pgm.ModelError, match="cardinality 3"):
        bn.check_model()
    bn.add_cpds(pgm.TabularCPD("Wet", 2, np.full((2, 4), 0.5), ["Rain", "Sprinkler"], [2, 2]))
    with pytest.raises(pgm.ModelError, match="names the states of 'Rain'"):
        bn.check_model()


@given(n=st.integers(1, 8), data=st.data())
def test_random_dag_topological_order_and_moralization(n, data):
    names = data.draw(st.permutations([f"N{i}" for i in range(n)]))
    edges = [
        (names[i], names[j])
        for j in range(n)
        for i in range(j)
        if data.draw(st.booleans(), label=f"edge {i}->{j}")
    ]
    bn = pgm.BayesianNetwork()
    bn.add_nodes_from(names)
    bn.add_edges_from(edges)
    position = {v: k for k, v in enumerate(bn.topological_order())}
    assert sorted(position) == sorted(names)
    for u, v in bn.edges():
        assert position[u] < position[v], f"{u} -> {v} but {v} comes first"
    moral = {frozenset(e) for e in bn.to_markov_network().edges()}
    expected = {frozenset(e) for e in edges}
    for child in names:
        parents = bn.get_parents(child)
        expected |= {frozenset((a, b)) for a in parents for b in parents if a != b}
    assert moral == expected, f"moral graph differs: {moral ^ expected}"


def test_moral_network_has_the_same_distribution():
    bn = sprinkler()
    mn = bn.to_markov_network()
    assert mn.check_model() and abs(mn.partition_function() - 1.0) < 1e-12
    ours = pgm.VariableElimination(mn).query(["Rain"], {"Wet": 1})
    theirs = pgm.VariableElimination(bn).query(["Rain"], {"Wet": 1})
    pgm.assert_factors_close(ours, theirs, atol=1e-12)


def test_simulate_frequencies_match_the_joint(rng):
    bn = sprinkler()
    n = 20_000
    df = bn.simulate(n, rng)
    assert list(df.columns) == bn.nodes() and len(df) == n
    assert set(df["Rain"]) <= {"no", "yes"}
    # P(Wet=1) by enumeration: sum_r,s P(r) P(s|r) P(w=1|r,s)
    p_rain = np.array([0.8, 0.2])
    p_spr = np.array([[0.6, 0.4], [0.99, 0.01]])
    p_wet = np.array([[0.0, 0.8], [0.9, 0.99]])
    p = float((p_rain[:, None] * p_spr * p_wet).sum())
    freq = float((df["Wet"] == "1").mean())
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(freq - p) < 5 * sigma, (
        f"P(Wet=1) {freq:.4f} vs exact {p:.4f} (5 sigma={5 * sigma:.4f})"
    )
    again = bn.simulate(50, np.random.default_rng(7))
    assert again.equals(bn.simulate(50, np.random.default_rng(7)))


def test_copy_and_version():
    bn = sprinkler()
    other = bn.copy()
    v = bn.version
    other.remove_edge("Rain", "Sprinkler")
    assert bn.version == v and ("Rain", "Sprinkler") in bn.edges()
    assert other.version == v + 1 and other.get_cpds("Sprinkler") is None
    assert bn.states("Rain") == ["no", "yes"] and bn.get_cardinality("Wet") == 2


def test_markov_network_validation():
    mn = pgm.MarkovNetwork([("a", "b")])
    with pytest.raises(pgm.UnknownVariableError, match="'c'"):
        mn.add_factors(pgm.Factor(["a", "c"], [2, 2], np.ones(4)))
    mn.add_nodes_from(["c"])
    mn.add_factors(pgm.Factor(["a", "c"], [2, 2], np.ones(4)))
    with pytest.raises(pgm.ModelError, match="not neighbours"):
        mn.check_model()
    with pytest.raises(pgm.PGMError, match="symmetric"):
        pgm.MarkovNetwork.from_ising([[0, 1], [2, 0]], [0, 0])
    with pytest.raises(pgm.PGMError, match=r"\(n, n\)"):
        pgm.MarkovNetwork.from_ising(np.zeros((3, 3)), [0, 0])
