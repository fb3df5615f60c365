"""Parameter and structure learning against hand counts, closed forms and known networks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.sparse.csgraph import minimum_spanning_tree

from pgm.errors import PGMError, UnknownStateError, UnknownVariableError
from pgm.learning import (
    chow_liu_tree,
    estimate_parameters,
    hill_climb,
    mutual_information_matrix,
    structure_score,
    update_parameters,
)
from pgm.models import BayesianNetwork, TabularCPD

# -- oracles -----------------------------------------------------------------------------------


def hand_counts(df, child, parents, states):
    """N[k, j] by a loop over rows; j enumerates parent states with the last parent fastest."""
    configs = list(itertools.product(*[states[p] for p in parents]))
    counts = np.zeros((len(states[child]), len(configs)))
    for _, row in df.iterrows():
        j = configs.index(tuple(str(row[p]) for p in parents))
        counts[states[child].index(str(row[child])), j] += 1
    return counts


def brute_mutual_information(x, y):
    n = len(x)
    total = 0.0
    for a in np.unique(x):
        for b in np.unique(y):
            p_ab = np.sum((x == a) & (y == b)) / n
            if p_ab > 0:
                total += p_ab * math.log(p_ab / (np.mean(x == a) * np.mean(y == b)))
    return total


def make_network(edges, cards, rng, concentration=1.0):
    """A network with random CPTs (Dirichlet columns) over the given edges."""
    model = BayesianNetwork()
    model.add_nodes_from(list(cards))
    model.add_edges_from(edges)
    cpds = []
    for node in model.nodes():
        parents = model.get_parents(node)
        q = int(np.prod([cards[p] for p in parents]))
        values = rng.dirichlet(np.full(cards[node], concentration), size=q).T
        cpds.append(
            TabularCPD(
                node,
                cards[node],
                values,
                evidence=parents or None,
                evidence_card=[cards[p] for p in parents] or None,
            )
        )
    model.add_cpds(*cpds)
    return model


small_data = hnp.arrays(
    np.int64,
    st.tuples(st.integers(1, 40), st.just(3)),
    elements=st.integers(0, 2),
)

STRUCTURE = BayesianNetwork([("A", "C"), ("B", "C")])
STATES = {"A": ["0", "1", "2"], "B": ["0", "1", "2"], "C": ["0", "1", "2"]}


# -- parameters --------------------------------------------------------------------------------


@given(small_data)
def test_mle_equals_hand_counts(x):
    df = pd.DataFrame(x, columns=["A", "B", "C"])
    model = estimate_parameters(STRUCTURE, df, prior=None, state_names=STATES)
    model.check_model()
    for node in "ABC":
        parents = STRUCTURE.get_parents(node)
        counts = hand_counts(df, node, parents, STATES)
        sums = counts.sum(axis=0)
        expected = np.where(sums > 0, counts / np.maximum(sums, 1), 1 / 3)
        got = model.get_cpds(node).get_values()
        assert np.abs(got - expected).max() < 1e-12, (
            f"{node}: MLE differs from hand counts by {np.abs(got - expected).max():.3g}"
        )


def test_bdeu_closed_form_on_a_tiny_table():
    df = pd.DataFrame({"A": ["x", "x", "x", "y"], "B": ["u", "v", "v", "v"]})
    model = estimate_parameters(
        BayesianNetwork([("A", "B")]), df, prior="bdeu", equivalent_sample_size=4.0
    )
    # A: q = 1, r = 2, alpha = 2: counts (3, 1) -> (5/8, 3/8)
    np.testing.assert_allclose(model.get_cpds("A").get_values()[:, 0], [5 / 8, 3 / 8])
    # B | A: q = 2, r = 2, alpha = 1: A=x counts (1, 2) -> (2/5, 3/5); A=y (0, 1) -> (1/3, 2/3)
    np.testing.assert_allclose(model.get_cpds("B").get_values(), [[2 / 5, 1 / 3], [3 / 5, 2 / 3]])
    assert model.states("A") == ["x", "y"] and model.states("B") == ["u", "v"]


def test_dirichlet_pseudo_counts_scalar_and_per_node():
    df = pd.DataFrame({"A": [0, 0, 0, 1], "B": [0, 1, 1, 1]})
    structure = BayesianNetwork([("A", "B")])
    model = estimate_parameters(structure, df, prior="dirichlet", pseudo_counts=1.0)
    np.testing.assert_allclose(model.get_cpds("A").get_values()[:, 0], [4 / 6, 2 / 6])
    alpha_b = np.array([[1.0, 0.0], [3.0, 2.0]])
    model = estimate_parameters(
        structure, df, prior="dirichlet", pseudo_counts={"A": 0.0, "B": alpha_b}
    )
    np.testing.assert_allclose(model.get_cpds("A").get_values()[:, 0], [3 / 4, 1 / 4])
    np.testing.assert_allclose(model.get_cpds("B").get_values(), [[2 / 7, 0 / 3], [5 / 7, 3 / 3]])
    with pytest.raises(PGMError, match="shape"):
        estimate_parameters(
            structure, df, prior="dirichlet", pseudo_counts={"A": 1, "B": [1, 2, 3]}
        )
    with pytest.raises(PGMError, match="pseudo_counts"):
        estimate_parameters(structure, df, prior="dirichlet")
    with pytest.raises(PGMError, match="unknown prior"):
        estimate_parameters(structure, df, prior="k3")


def test_estimates_converge_to_the_generating_network(rng):
    cards = {"A": 2, "B": 3, "C": 2, "D": 3}
    truth = make_network([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")], cards, rng, 2.0)
    data = truth.simulate(30_000, rng)
    for prior in (None, "bdeu"):
        model = estimate_parameters(truth, data, prior=prior)
        for node in truth.nodes():
            cpd = truth.get_cpds(node)
            parents = cpd.evidence
            counts = hand_counts_fast(data, node, parents, truth)
            n_j = counts.sum(axis=0)
            p = cpd.get_values()
            bound = 5 * np.sqrt(p * (1 - p) / np.maximum(n_j, 1)) + 2 / np.maximum(n_j, 1)
            err = np.abs(model.get_cpds(node).get_values() - p)
            assert (err <= bound).all(), f"{node} ({prior}): error {err.max():.3g} exceeds bound"


def hand_counts_fast(df, child, parents, model):
    """Counts via pandas crosstab (an independent path from np.bincount)."""
    states = {v: model.states(v) for v in [child, *parents]}
    if not parents:
        return df[child].value_counts().reindex(states[child], fill_value=0).to_numpy()[:, None]
    table = pd.crosstab(df[child], [df[p] for p in parents], dropna=False)
    if len(parents) == 1:
        columns = pd.Index(states[parents[0]])
    else:
        columns = pd.MultiIndex.from_product([states[p] for p in parents])
    return table.reindex(index=states[child], columns=columns, fill_value=0).to_numpy()


@given(small_data, st.floats(0.5, 50.0))
def test_update_parameters_is_the_dirichlet_posterior_mean(x, strength):
    rng = np.random.default_rng(int(x.sum()))
    model = make_network([("A", "C"), ("B", "C")], {"A": 3, "B": 3, "C": 3}, rng, 1.0)
    df = pd.DataFrame(x, columns=["A", "B", "C"])
    before = {n: model.get_cpds(n).get_values().copy() for n in model.nodes()}
    updated = update_parameters(model, df, strength)
    updated.check_model()
    for node in model.nodes():
        counts = hand_counts(df, node, model.get_cpds(node).evidence, STATES)
        expected = (strength * before[node] + counts) / (strength + counts.sum(axis=0))
        got = updated.get_cpds(node).get_values()
        assert np.abs(got - expected).max() < 1e-12, f"{node}: posterior mean differs"
        unseen = counts.sum(axis=0) == 0
        assert np.array_equal(got[:, unseen], before[node][:, unseen]), "unseen column changed"
        assert np.array_equal(model.get_cpds(node).get_values(), before[node]), "input modified"


def test_update_parameters_rejects_bad_input(rng):
    model = make_network([("A", "B")], {"A": 2, "B": 2}, rng)
    good = pd.DataFrame({"A": [0, 1], "B": [1, 1]})
    for strength in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(PGMError, match="prior_strength"):
            update_parameters(model, good, strength)
    with pytest.raises(UnknownStateError, match=r"column 'B' holds the value 7"):
        update_parameters(model, pd.DataFrame({"A": [0, 1], "B": [1, 7]}), 1.0)


# -- data handling -----------------------------------------------------------------------------


def test_data_errors_name_the_column_and_value():
    structure = BayesianNetwork([("A", "B")])
    with pytest.raises(PGMError, match=r"column 'B' holds missing values \(NaN\) at row 1"):
        estimate_parameters(structure, pd.DataFrame({"A": [0, 1], "B": [1.0, np.nan]}))
    with pytest.raises(PGMError, match="column 'A' holds missing values"):
        estimate_parameters(structure, pd.DataFrame({"A": ["x", None], "B": [1, 0]}))
    with pytest.raises(UnknownStateError, match="column 'A' holds the value 'z'"):
        estimate_parameters(
            structure, pd.DataFrame({"A": ["x", "z"], "B": [1, 0]}), state_names={"A": ["x", "y"]}
        )
    with pytest.raises(UnknownVariableError, match="no column 'B'"):
        estimate_parameters(structure, pd.DataFrame({"A": [0, 1]}))
    with pytest.raises(UnknownStateError, match="column 'B' holds the state index 2"):
        estimate_parameters(
            structure, np.array([[0, 1], [1, 2]]), state_names={"A": ["a", "b"], "B": ["u", "v"]}
        )
    with pytest.raises(TypeError, match="DataFrame or an ndarray"):
        chow_liu_tree([[0, 1]])


def test_data_kinds_give_the_same_estimates():
    ints = pd.DataFrame({"A": [0, 0, 1, 1, 1], "B": [1, 0, 1, 1, 0]})
    structure = BayesianNetwork([("A", "B")])
    reference = estimate_parameters(structure, ints)
    kinds = [
        (ints.astype(str), None),
        (ints.astype("category"), None),
        (ints.astype(float), None),
        (ints.to_numpy(), {"A": ["0", "1"], "B": ["0", "1"]}),
    ]
    for data, names in kinds:
        model = estimate_parameters(structure, data, state_names=names)
        for node in "AB":
            assert model.states(node) == ["0", "1"]
            np.testing.assert_allclose(
                model.get_cpds(node).get_values(), reference.get_cpds(node).get_values()
            )
    # a categorical column declares unobserved states; they get the prior's share
    cat = ints.assign(A=pd.Categorical(ints["A"], categories=[0, 1, 2]))
    model = estimate_parameters(structure, cat, prior="bdeu", equivalent_sample_size=3.0)
    assert model.states("A") == ["0", "1", "2"]
    np.testing.assert_allclose(model.get_cpds("A").get_values()[:, 0], [3, 4, 1] / np.float64(8))


# -- Chow-Liu ----------------------------------------------------------------------------------


@given(
    hnp.arrays(
        np.int64, st.tuples(st.integers(1, 30), st.integers(2, 4)), elements=st.integers(0, 2)
    )
)
def test_mutual_information_matches_brute_force(x):
    mi = mutual_information_matrix(pd.DataFrame(x))
    d = x.shape[1]
    for a in range(d):
        for b in range(d):
            expected = brute_mutual_information(x[:, a], x[:, b])
            assert abs(mi[a, b] - expected) < 1e-10, (
                f"I({a};{b}) = {mi[a, b]:.12g}, brute force {expected:.12g}"
            )


@given(
    hnp.arrays(
        np.int64, st.tuples(st.integers(2, 40), st.integers(2, 6)), elements=st.integers(0, 1)
    )
)
def test_chow_liu_is_a_maximum_spanning_tree(x):
    df = pd.DataFrame(x, columns=[f"v{i}" for i in range(x.shape[1])])
    tree = chow_liu_tree(df, root="v1")
    d = x.shape[1]
    edges = [(int(u[1:]), int(v[1:])) for u, v in tree.edges()]
    assert len(edges) == d - 1 and len(tree.topological_order()) == d
    assert tree.get_parents("v1") == [] and all(
        len(tree.get_parents(f"v{i}")) <= 1 for i in range(d)
    )
    mi = mutual_information_matrix(df)
    weight = sum(mi[u, v] for u, v in edges)
    # scipy's minimum spanning tree of (c - I) is a maximum spanning tree of I
    shifted = np.triu(mi.max() + 1.0 - mi, k=1)
    best = (d - 1) * (mi.max() + 1.0) - minimum_spanning_tree(shifted).sum()
    assert abs(weight - best) < 1e-9, f"tree weight {weight:.12g} < maximum {best:.12g}"


def test_chow_liu_recovers_a_simulated_tree(rng):
    edges = [("n0", "n1"), ("n0", "n2"), ("n1", "n3"), ("n1", "n4"), ("n2", "n5"), ("n5", "n6")]
    cards = {f"n{i}": 2 + i % 2 for i in range(7)}
    truth = make_network(edges, cards, rng, concentration=0.3)
    data = truth.simulate(20_000, rng)
    tree = chow_liu_tree(data, root="n0")
    assert set(tree.edges()) == set(edges), f"recovered {sorted(tree.edges())}"
    # the default root is the first column; edges then point away from it
    shuffled = chow_liu_tree(data[["n3", *[f"n{i}" for i in range(7) if i != 3]]])
    assert shuffled.get_parents("n3") == []
    assert {frozenset(e) for e in shuffled.edges()} == {frozenset(e) for e in edges}


# -- hill climbing -----------------------------------------------------------------------------


def closed_form_score(df, structure, states, score, ess):
    """BIC or BDeu summed over families, from hand counts and math.lgamma."""
    total, n = 0.0, len(df)
    for node in structure.nodes():
        counts = hand_counts(df, node, structure.get_parents(node), states)
        r, q = counts.shape
        for j in range(q):
            n_j = counts[:, j].sum()
            if score == "bdeu":
                total += math.lgamma(ess / q) - math.lgamma(ess / q + n_j)
            for k in range(r):
                if score == "bic" and counts[k, j] > 0:
                    total += counts[k, j] * math.log(counts[k, j] / n_j)
                elif score == "bdeu":
                    total += math.lgamma(ess / (q * r) + counts[k, j]) - math.lgamma(ess / (q * r))
        if score == "bic":
            total -= 0.5 * math.log(n) * q * (r - 1)
    return total


@given(small_data, st.sampled_from(["bic", "bdeu"]), st.floats(0.5, 20.0))
def test_scores_match_closed_forms(x, score, ess):
    df = pd.DataFrame(x, columns=["A", "B", "C"])
    got = structure_score(STRUCTURE, df, score, ess, state_names=STATES)
    expected = closed_form_score(df, STRUCTURE, STATES, score, ess)
    assert abs(got - expected) < 1e-9 * max(1.0, abs(expected)), f"{score}: {got} != {expected}"


@st.composite
def dags(draw, nodes):
    """A random DAG over ``nodes`` (edges respect a random order)."""
    order = draw(st.permutations(nodes))
    pairs = [(u, v) for i, u in enumerate(order) for v in order[i + 1 :]]
    edges = [pair for pair in pairs if draw(st.booleans())]
    net = BayesianNetwork()
    net.add_nodes_from(nodes)
    net.add_edges_from(edges)
    return net


@given(
    hnp.arrays(np.int64, st.tuples(st.integers(10, 60), st.just(4)), elements=st.integers(0, 1)),
    dags(list("ABCD")),
    st.sampled_from(["bic", "bdeu"]),
)
def test_hill_climb_first_move_is_the_best_single_move(x, start, score):
    x[:, 2] = np.where(x[:, 0] == x[:, 1], x[:, 2], 1 - x[:, 2])  # a v-structure A -> C <- B
    df = pd.DataFrame(x, columns=list("ABCD"))
    _, trace = hill_climb(df, score=score, start=start, max_iter=1, return_trace=True)
    trace = trace.scores
    best = max(
        structure_score(n, df, score=score) for n in single_moves(list("ABCD"), start.edges())
    )
    assert trace[0] == pytest.approx(structure_score(start, df, score=score), rel=1e-9)
    if best > trace[0] + 1e-4:
        assert trace[1] == pytest.approx(best, rel=1e-9), f"took {trace[1]}, best move {best}"
    else:
        assert len(trace) == 1, "moved although no move improves the score"


def single_moves(nodes, edges):
    """Every DAG one edge addition, removal or reversal away (brute force)."""
    edges = set(edges)
    for u, v in itertools.permutations(nodes, 2):
        if (u, v) in edges:
            candidates = [edges - {(u, v)}, (edges - {(u, v)}) | {(v, u)}]
        elif (v, u) not in edges:
            candidates = [edges | {(u, v)}]
        else:
            continue
        for cand in candidates:
            net = BayesianNetwork()
            net.add_nodes_from(nodes)
            try:
                net.add_edges_from(sorted(cand))
            except PGMError:  # the move closes a cycle
                continue
            yield net


def replay(nodes, start_edges, moves):
    """The networks after each move (building each one rejects cycles)."""
    edges, out = set(start_edges), []
    for op, u, v in moves:
        if op == "add":
            assert (u, v) not in edges, f"added an existing edge {u} -> {v}"
            edges.add((u, v))
        else:
            edges.remove((u, v))
            if op == "reverse":
                edges.add((v, u))
        net = BayesianNetwork()
        net.add_nodes_from(nodes)
        net.add_edges_from(sorted(edges))
        out.append(net)
    return out


def inverse(move):
    op, u, v = move
    return {"add": ("remove", u, v), "remove": ("add", u, v), "reverse": ("reverse", v, u)}[op]


@given(
    hnp.arrays(np.int64, st.tuples(st.integers(5, 60), st.just(4)), elements=st.integers(0, 2)),
    st.sampled_from(["bic", "bdeu"]),
)
def test_hill_climb_trace_rises_to_a_local_optimum(x, score):
    x[:, 1] = np.where(x[:, 0] > 0, x[:, 1], x[:, 0])  # some dependence to find
    df = pd.DataFrame(x, columns=list("ABCD"))
    model, trace = hill_climb(df, score=score, tabu_length=0, return_trace=True)
    assert len(model.topological_order()) == 4, "result is not a DAG"
    assert np.all(np.diff(trace.scores) > 0), f"score trace not increasing: {trace.scores}"
    assert len(trace.scores) == len(trace.moves) + 1
    empty = BayesianNetwork()
    empty.add_nodes_from(list("ABCD"))
    nets = [empty, *replay(list("ABCD"), [], trace.moves)]
    assert set(nets[-1].edges()) == set(model.edges()), "moves do not lead to the result"
    for net, recorded in zip(nets, trace.scores, strict=True):
        actual = structure_score(net, df, score=score)
        assert abs(recorded - actual) < 1e-8 * max(1.0, abs(actual)), (
            f"trace says {recorded}, the structure scores {actual}"
        )
    final = trace.scores[-1]
    for neighbour in single_moves(list("ABCD"), model.edges()):
        other = structure_score(neighbour, df, score=score)
        assert other <= final + 1e-4, f"a single move improves {final:.6g} to {other:.6g}"


def test_hill_climb_reverses_into_a_v_structure(rng):
    a, b = rng.integers(0, 2, 2000), rng.integers(0, 2, 2000)
    c = np.where(rng.random(2000) < 0.9, a ^ b, 1 - (a ^ b))
    df = pd.DataFrame({"A": a, "B": b, "C": c})
    start = BayesianNetwork([("A", "C"), ("C", "B")])
    model, trace = hill_climb(df, start=start, return_trace=True)
    assert trace.moves[0] == ("reverse", "C", "B"), f"first moves {trace.moves}"
    assert set(model.edges()) == {("A", "C"), ("B", "C")}


def test_hill_climb_finds_dependencies_and_honours_limits(rng):
    cards = {"A": 2, "B": 3, "C": 2, "D": 3, "E": 2, "F": 2}
    edges = [("A", "C"), ("B", "C"), ("C", "D"), ("D", "E"), ("B", "F"), ("F", "E")]
    truth = make_network(edges, cards, rng, concentration=0.2)
    data = truth.simulate(5_000, rng)
    model, trace = hill_climb(data, tabu_length=3, return_trace=True)
    skeleton = {frozenset(e) for e in model.edges()}
    assert {frozenset(e) for e in edges} <= skeleton, f"found {sorted(model.edges())}"
    assert np.all(np.diff(trace.scores) > 0)
    for i, move in enumerate(trace.moves):
        assert inverse(move) not in trace.moves[max(0, i - 3) : i], f"move {i} {move} is tabu"
    limited = hill_climb(data, max_indegree=1)
    assert max(len(limited.get_parents(n)) for n in limited.nodes()) <= 1
    start = BayesianNetwork([("E", "A")])
    _, trace_from_start = hill_climb(data, start=start, max_iter=0, return_trace=True)
    start.add_nodes_from(data.columns)
    assert trace_from_start.moves == []
    assert trace_from_start.scores[0] == pytest.approx(structure_score(start, data))
    with pytest.raises(PGMError, match="unknown score"):
        hill_climb(data, score="aic")


# 30 rows where BDeu hill climbing without a tabu list removes an edge it added five moves
# earlier (found by a seeded search); columns A..E
TABU_DATA = [
    "201111211200110020002221211110",
    "001111211220110021012211210110",
    "200031122002122211211021021202",
    "001111011001100101010111111110",
    "121220100120120110211200201212",
]


def test_tabu_list_forbids_undoing_recent_moves():
    df = pd.DataFrame(
        {c: [int(ch) for ch in col] for c, col in zip("ABCDE", TABU_DATA, strict=True)}
    )
    _, free = hill_climb(df, score="bdeu", tabu_length=0, return_trace=True)
    undone = [i for i, m in enumerate(free.moves) if inverse(m) in free.moves[:i]]
    assert undone, f"the data no longer exercise the tabu list: {free.moves}"
    for length in (5, 100):
        _, trace = hill_climb(df, score="bdeu", tabu_length=length, return_trace=True)
        for i, move in enumerate(trace.moves):
            recent = trace.moves[max(0, i - length) : i]
            assert inverse(move) not in recent, f"tabu {length}: move {i} {move} undoes {recent}"
        assert np.all(np.diff(trace.scores) > 0)
        assert trace.moves != free.moves
