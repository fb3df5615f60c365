"""Variable elimination against brute-force enumeration of the joint distribution."""

from __future__ import annotations

import functools
import gzip
import itertools
from pathlib import Path

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import pgm
from pgm.ordering import greedy_order
from pgm.plans import Plan

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ORDERS = ["min_fill", "min_degree", "weighted_min_fill"]


# -- strategies and oracles --------------------------------------------------------------------
@st.composite
def networks(draw, max_vars: int = 8, max_parents: int = 3) -> pgm.BayesianNetwork:
    """A random DAG over shuffled names with positive random CPTs."""
    n = draw(st.integers(2, max_vars))
    names = draw(st.permutations([f"V{i}" for i in range(n)]))
    cards = draw(st.lists(st.integers(2, 4), min_size=n, max_size=n))
    parents = []
    for j in range(n):
        cand = (
            draw(st.lists(st.integers(0, j - 1), max_size=max_parents, unique=True)) if j else []
        )
        parents.append(sorted(cand))
    bn = pgm.BayesianNetwork()
    bn.add_nodes_from(names)
    bn.add_edges_from([(names[p], names[j]) for j in range(n) for p in parents[j]])
    for j in range(n):
        cols = int(np.prod([cards[p] for p in parents[j]]))
        raw = draw(hnp.arrays(np.float64, (cards[j], cols), elements=st.floats(0.01, 1.0)))
        bn.add_cpds(
            pgm.TabularCPD(
                names[j],
                cards[j],
                raw / raw.sum(axis=0),
                [names[p] for p in parents[j]],
                [cards[p] for p in parents[j]],
            )
        )
    return bn


def joint_table(model) -> tuple[list, np.ndarray]:
    """Unnormalised joint over the model's variables (node order), by enumerating every row."""
    if isinstance(model, pgm.BayesianNetwork):
        factors = [(c.variables, np.asarray(c.values)) for c in model.get_cpds()]
        names = model.nodes()
    else:
        factors = [(f.variables, np.asarray(f.values)) for f in model.get_factors()]
        names = [n for n in model.nodes() if any(n in f.variables for f in model.get_factors())]
    cards = [model.get_cardinality(n) for n in names]
    rows = np.indices(cards).reshape(len(cards), -1)  # (n_vars, n_rows)
    p = np.ones(rows.shape[1])
    for scope, table in factors:
        p = p * table[tuple(rows[names.index(v)] for v in scope)]
    return names, p.reshape(cards)


def brute_posterior(model, query, evidence) -> tuple[np.ndarray, float]:
    """``P(query | evidence)`` with axes sorted by ``str`` and ``P(evidence)``."""
    names, joint = joint_table(model)
    index = [slice(None)] * len(names)
    for var, state in evidence.items():
        index[names.index(var)] = state
    kept = [n for n in names if n not in evidence]
    sliced = joint[tuple(index)]
    drop = tuple(i for i, n in enumerate(kept) if n not in query)
    marg = sliced.sum(axis=drop)
    rest = [n for n in kept if n in query]
    marg = marg.transpose([rest.index(v) for v in sorted(query, key=str)])
    z = float(marg.sum())
    return marg / z, z


def split_query(data, model, max_query: int = 2, max_evidence: int = 3):
    names = model.nodes()
    chosen = data.draw(st.permutations(names))
    nq = data.draw(st.integers(1, min(max_query, len(names) - 1)))
    ne = data.draw(st.integers(0, min(max_evidence, len(names) - nq)))
    evidence = {
        v: data.draw(st.integers(0, model.get_cardinality(v) - 1)) for v in chosen[nq : nq + ne]
    }
    return list(chosen[:nq]), evidence


def assert_close(actual, expected, atol=1e-10, what="posterior"):
    diff = np.max(np.abs(np.asarray(actual) - np.asarray(expected)), initial=0.0)
    assert diff <= atol, f"{what} differs from the oracle by {diff:.3e} (> {atol:.0e})"


# -- queries on random networks ----------------------------------------------------------------
@given(model=networks(), data=st.data())
def test_query_matches_enumeration_for_every_order(model, data):
    query, evidence = split_query(data, model)
    expected, p_e = brute_posterior(model, query, evidence)
    ve = pgm.VariableElimination(model)
    explicit = data.draw(
        st.permutations([n for n in model.nodes() if n not in query + list(evidence)])
    )
    for order in [*ORDERS, list(explicit)]:
        joint = ve.query(query, evidence, elimination_order=order)
        assert joint.variables == sorted(query, key=str)
        assert_close(joint.values, expected, what=f"joint with order {order}")
        assert abs(joint.values.sum() - 1) < 1e-12, f"posterior sums to {joint.values.sum()}"
        marginals = ve.query(query, evidence, joint=False, elimination_order=order)
        for var, factor in marginals.items():
            assert_close(
                factor.values, brute_posterior(model, [var], evidence)[0], what=f"P({var}|e)"
            )
    assert_close(ve.probability_of_evidence(evidence), p_e, atol=1e-12, what="P(evidence)")


@given(model=networks(), data=st.data())
def test_map_query_matches_brute_force_argmax(model, data):
    query, evidence = split_query(data, model, max_query=3)
    ve = pgm.VariableElimination(model)
    # marginal MAP over `query`: the returned assignment attains the largest posterior entry
    posterior, _ = brute_posterior(model, query, evidence)
    found = ve.map_query(query, evidence)
    at = posterior[tuple(int(found[v]) for v in sorted(query, key=str))]
    assert at >= posterior.max() - 1e-12, f"MAP value {at} < best {posterior.max()}"
    # MPE over every unobserved variable
    names, joint = joint_table(model)
    mpe = ve.map_query(evidence=evidence)
    full = {**{k: int(v) for k, v in mpe.items()}, **evidence}
    assert set(full) == set(names)
    index = [slice(None)] * len(names)
    for var, state in evidence.items():
        index[names.index(var)] = state
    best = joint[tuple(index)].max()
    value = joint[tuple(full[n] for n in names)]
    assert value >= best * (1 - 1e-12), f"MPE value {value} < best {best}"


@given(
    model=networks(max_vars=6),
    data=st.data(),
    n_cases=st.integers(0, 6),
)
def test_batch_query_equals_looped_query(model, data, n_cases):
    query, evidence = split_query(data, model, max_query=2, max_evidence=2)
    columns = {
        v: data.draw(
            hnp.arrays(np.int64, n_cases, elements=st.integers(0, model.get_cardinality(v) - 1))
        )
        for v in evidence
    }
    ve = pgm.VariableElimination(model)
    as_names = {v: np.array(model.states(v), dtype=object)[c] for v, c in columns.items()}
    for cols in (columns, as_names):
        out = ve.batch_query(query, cols)
        for var in query:
            expect_rows = 1 if not evidence else n_cases
            assert out[var].shape == (expect_rows, model.get_cardinality(var))
            for i in range(expect_rows):
                case = {v: int(c[i]) for v, c in columns.items()}
                assert_close(out[var][i], ve.query([var], case).values, what=f"case {i} of {var}")


def masked_columns(data, model, evidence_vars, n_cases):
    """Index columns with some entries ``-1`` (not observed in that case)."""
    return {
        v: data.draw(
            hnp.arrays(np.int64, n_cases, elements=st.integers(-1, model.get_cardinality(v) - 1))
        )
        for v in evidence_vars
    }


@given(model=networks(max_vars=6), data=st.data(), n_cases=st.integers(1, 5))
def test_partially_observed_batches_equal_per_case_queries(model, data, n_cases):
    query, evidence = split_query(data, model, max_query=2, max_evidence=4)
    columns = masked_columns(data, model, evidence, n_cases)
    ve = pgm.VariableElimination(model, single_cases=0)  # every batch through a batch plan
    posterior = ve.batch_query(query, columns)
    p_e = ve.batch_probability_of_evidence(columns)
    singly = pgm.VariableElimination(model).batch_probability_of_evidence(columns)
    assert_close(singly, p_e, atol=1e-12, what="P(e) by single queries")
    # state names with None for "not observed" give the same answers
    as_names = {
        v: np.array([None if i < 0 else model.states(v)[i] for i in c], dtype=object)
        for v, c in columns.items()
    }
    assert_close(ve.batch_probability_of_evidence(as_names), p_e, atol=0, what="P(e) by names")
    rows = n_cases if evidence else 1  # no columns: one case without evidence
    assert p_e.shape == (rows,), f"P(e) has shape {p_e.shape}, expected ({rows},)"
    for i in range(rows):
        case = {v: int(c[i]) for v, c in columns.items() if c[i] >= 0}
        if brute_posterior(model, [], case)[1] == 0:
            continue
        expected_p, z = brute_posterior(model, query[:1], case)
        assert_close(p_e[i], z, atol=1e-12, what=f"P(e) of case {i} vs enumeration")
        assert_close(posterior[query[0]][i], expected_p, what=f"case {i} vs enumeration")
        for var in query:
            looped = ve.query([var], case).values
            assert_close(posterior[var][i], looped, what=f"case {i} of {var} vs query")


@functools.cache
def hub_tree(n: int = 100, hub_children: int = 70) -> pgm.BayesianNetwork:
    """A binary tree: nodes 1..hub_children hang under node 0, later nodes under random ones."""
    rng = np.random.default_rng(7)
    parent = [-1] + [0] * hub_children
    parent += [int(rng.integers(0, i)) for i in range(hub_children + 1, n)]
    bn = pgm.BayesianNetwork()
    bn.add_nodes_from([f"T{i}" for i in range(n)])
    bn.add_edges_from([(f"T{p}", f"T{i}") for i, p in enumerate(parent) if p >= 0])
    bn.add_cpds(pgm.TabularCPD("T0", 2, rng.dirichlet([1, 1])[:, None]))
    for i, p in enumerate(parent[1:], start=1):
        cpt = rng.dirichlet([0.5, 0.5], size=2).T
        bn.add_cpds(pgm.TabularCPD(f"T{i}", 2, cpt, [f"T{p}"], [2]))
    return bn


@given(
    j=st.sampled_from([0, 1, 2, 17, 41, 66, 99]),
    states=hnp.arrays(np.int64, (3, 100), elements=st.integers(0, 1)),
)
def test_all_but_one_observed_is_the_markov_blanket_closed_form(j, states):
    """P(X_j | all others) = P(X_j | pa_j) prod_c P(x_c | pa_c), normalised: one einsum would
    take over 70 operands at the hub T0 (numpy takes at most 64)."""
    bn = hub_tree()
    ve = pgm.VariableElimination(bn)
    target = f"T{j}"
    others = {f"T{i}": states[:, i] for i in range(100) if i != j}
    got = ve.batch_query([target], others)[target]
    children = bn.get_children(target)
    plan = ve.plan([target], list(others))
    assert plan.n_factors == 1 + len(children), f"{plan.n_factors} factors kept"
    assert plan.n_constants == 99 - len(children), f"{plan.n_constants} constants"
    for case in range(3):
        x = dict(zip([f"T{i}" for i in range(100)], states[case].tolist(), strict=True))
        cpd = bn.get_cpds(target).get_values()
        expected = cpd[:, x[bn.get_parents(target)[0]]] if bn.get_parents(target) else cpd[:, 0]
        for c in children:
            expected = expected * bn.get_cpds(c).get_values()[x[c], :]
        assert_close(got[case], expected / expected.sum(), what=f"P({target} | rest), case {case}")
        single = ve.query([target], {k: int(v[case]) for k, v in others.items()})
        assert_close(single.values, got[case], what="query vs batch_query")
    p_all = ve.batch_probability_of_evidence(
        {f"T{i}": states[:, i] for i in range(100)}
    )  # the full joint: the product of every CPD entry
    joint = np.ones(3)
    for i in range(100):
        cpd = bn.get_cpds(f"T{i}")
        col = states[:, bn.nodes().index(cpd.evidence[0])] if cpd.evidence else 0
        joint = joint * cpd.get_values()[states[:, i], col]
    assert_close(p_all / joint, np.ones(3), atol=1e-9, what="P(full assignment) ratio")


def test_plan_is_reused_for_new_evidence_values_and_rebuilt_on_mutation(rng):
    bn = chain_network(rng, 5)
    ve = pgm.VariableElimination(bn)
    plan = ve.plan(["X4"], ["X0", "X2"])
    assert isinstance(plan, Plan) and plan.evidence == ("X0", "X2")
    before = ve.query(["X4"], {"X0": 0, "X2": 1})
    ve.query(["X4"], {"X0": 1, "X2": 0})
    assert ve.plan(["X4"], ["X2", "X0"]) is plan
    # X0 is separated from X4 by X2; the barren X1..X3 chain upstream of X0 is pruned
    assert ve.plan(["X4"], ["X2"]).order == ("X3",)
    assert ve.plan(["X1"], []).n_factors == 1, "the root X0 was not summed into X1's CPD"
    assert ve.plan(["X1"], [], elimination_order=["X0"]).order == ()
    bn.add_cpds(pgm.TabularCPD("X4", 2, [[0.5, 0.5], [0.5, 0.5]], ["X3"], [2]))
    assert ve.plan(["X4"], ["X0", "X2"]) is not plan
    after = ve.query(["X4"], {"X0": 0, "X2": 1})
    assert_close(after.values, [0.5, 0.5], atol=1e-15)
    assert not before.allclose(after)


def test_engines_on_one_model_share_its_compiled_form_until_it_changes(rng, monkeypatch):
    bn = chain_network(rng, 4)
    first = pgm.VariableElimination(bn).query(["X3"], {"X0": 1})
    checks = []
    monkeypatch.setattr(bn, "check_model", lambda: checks.append(1) or True)
    again = pgm.VariableElimination(bn).query(["X3"], {"X0": 1})
    assert not checks, "a new engine on an unchanged model checked and compiled it again"
    assert first.allclose(again)
    bn.add_cpds(pgm.TabularCPD("X3", 2, [[0.25, 0.25], [0.75, 0.75]], ["X2"], [2]))
    changed = pgm.VariableElimination(bn).query(["X3"], {"X0": 1})
    assert checks, "the changed model was not checked again"
    assert_close(changed.values, [0.25, 0.75], atol=1e-15)


def chain_network(rng: np.random.Generator, n: int) -> pgm.BayesianNetwork:
    names = [f"X{i}" for i in range(n)]
    bn = pgm.BayesianNetwork(list(zip(names[:-1], names[1:], strict=True)))
    bn.add_cpds(pgm.TabularCPD("X0", 2, rng.dirichlet([1, 1])[:, None]))
    for a, b in zip(names[:-1], names[1:], strict=True):
        bn.add_cpds(pgm.TabularCPD(b, 2, rng.dirichlet([1, 1], size=2).T, [a], [2]))
    return bn


def test_plan_reports_width_and_refuses_large_tables():
    n = 12
    bn = pgm.BayesianNetwork([(f"A{i}", "C") for i in range(n)])
    for i in range(n):
        bn.add_cpds(pgm.TabularCPD(f"A{i}", 2, [[0.5], [0.5]]))
    bn.add_cpds(
        pgm.TabularCPD("C", 2, np.full((2, 2**n), 0.5), [f"A{i}" for i in range(n)], [2] * n)
    )
    plan = pgm.VariableElimination(bn).plan(["A0"], ["C"])
    assert plan.induced_width == n - 1 and plan.max_table_size == 2**n
    with pytest.raises(pgm.TableSizeError, match="max_table_size=1000"):
        pgm.VariableElimination(bn, max_table_size=1000).query(["A0"], {"C": 1})


# -- bad input ---------------------------------------------------------------------------------
def deterministic_network() -> pgm.BayesianNetwork:
    bn = pgm.BayesianNetwork([("A", "B"), ("B", "C")])
    bn.add_cpds(
        pgm.TabularCPD("A", 2, [[1.0], [0.0]], state_names={"A": ["no", "yes"]}),
        pgm.TabularCPD("B", 2, [[0.3, 0.6], [0.7, 0.4]], ["A"], [2], {"A": ["no", "yes"]}),
        pgm.TabularCPD("C", 2, [[0.2, 0.9], [0.8, 0.1]], ["B"], [2]),
    )
    return bn


def test_zero_probability_evidence_is_named():
    ve = pgm.VariableElimination(deterministic_network())
    with pytest.raises(pgm.ZeroProbabilityError, match="'A': 'yes'") as err:
        ve.query(["C"], {"A": "yes"})
    assert err.value.case is None
    with pytest.raises(pgm.ZeroProbabilityError, match="case 2"):
        ve.batch_query(["C"], {"A": ["no", "no", "yes", "no"]})
    with pytest.raises(pgm.ZeroProbabilityError):
        ve.map_query(["C"], {"A": 1})
    assert ve.probability_of_evidence({"A": "yes"}) == 0.0


def test_unobserved_entries_edge_cases():
    ve = pgm.VariableElimination(deterministic_network())
    p_e = ve.batch_probability_of_evidence({"A": np.array(["yes", None, "no"], dtype=object)})
    assert_close(p_e, [0.0, 1.0, 1.0], atol=1e-15, what="P(A) with a missing entry")
    got = ve.batch_query(["C"], {"A": [-1, 0], "B": [1, -1]})["C"]
    assert_close(got[0], ve.query(["C"], {"B": 1}).values, what="case 0 (A unobserved)")
    assert_close(got[1], ve.query(["C"], {"A": 0}).values, what="case 1 (B unobserved)")
    with pytest.raises(pgm.ZeroProbabilityError, match="case 1") as err:
        ve.batch_query(["C"], {"A": [-1, 1], "B": [0, -1]})
    assert err.value.case == 1
    empty = ve.batch_query(["C"], {"A": np.zeros(0, np.int64), "B": np.zeros(0, np.int64)})
    assert empty["C"].shape == (0, 2), f"empty batch gave shape {empty['C'].shape}"
    assert ve.batch_probability_of_evidence({"B": np.zeros(0, np.int64)}).shape == (0,)
    with pytest.raises(pgm.UnknownStateError, match="unknown state None"):
        ve.query(["C"], {"A": None})  # a single query simply omits what it does not observe
    with pytest.raises(pgm.PGMError, match="non-integral"):
        ve.batch_query(["C"], {"A": [0.5, 1.0]})


def test_unknown_names_are_reported():
    ve = pgm.VariableElimination(deterministic_network())
    with pytest.raises(pgm.UnknownVariableError, match="'Q'"):
        ve.query(["Q"])
    with pytest.raises(pgm.UnknownVariableError, match="'Q'"):
        ve.query(["C"], {"Q": 0})
    with pytest.raises(pgm.UnknownStateError, match="'maybe'"):
        ve.query(["C"], {"A": "maybe"})
    with pytest.raises(pgm.UnknownStateError, match="row 1"):
        ve.batch_query(["C"], {"B": [0, 5]})
    with pytest.raises(pgm.PGMError, match="both queried and observed"):
        ve.query(["C"], {"C": 0})
    with pytest.raises(pgm.PGMError, match="misses"):
        ve.query(["C"], {}, elimination_order=["A"])
    with pytest.raises(pgm.PGMError, match="unknown elimination heuristic"):
        ve.query(["C"], {}, elimination_order="fastest")


# -- Markov networks ---------------------------------------------------------------------------
@given(
    n=st.integers(2, 6),
    data=st.data(),
)
def test_markov_network_partition_function_and_marginals(n, data):
    names = [f"M{i}" for i in range(n)]
    cards = data.draw(st.lists(st.integers(2, 3), min_size=n, max_size=n))
    cliques = data.draw(
        st.lists(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True), max_size=6)
    )
    mn = pgm.MarkovNetwork()
    mn.add_nodes_from(names)
    factors = [pgm.Factor([v], [cards[i]], np.ones(cards[i])) for i, v in enumerate(names)]
    for clique in cliques:
        shape = [cards[i] for i in clique]
        values = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.1, 3.0)))
        mn.add_edges_from(itertools.combinations([names[i] for i in clique], 2))
        factors.append(pgm.Factor([names[i] for i in clique], shape, values))
    mn.add_factors(*factors)
    _, joint = joint_table(mn)
    z = joint.sum()
    assert abs(mn.partition_function() - z) <= 1e-10 * z, f"Z {mn.partition_function()} != {z}"
    query = [names[data.draw(st.integers(0, n - 1))]]
    got = pgm.VariableElimination(mn).query(query).values
    assert_close(got, brute_posterior(mn, query, {})[0], what="Markov marginal")


@given(
    weights=hnp.arrays(np.float64, (5, 5), elements=st.floats(-2, 2)),
    biases=hnp.arrays(np.float64, 5, elements=st.floats(-2, 2)),
)
def test_ising_partition_function_closed_form(weights, biases):
    w = np.triu(weights, 1)
    w = w + w.T
    mn = pgm.MarkovNetwork.from_ising(w, biases)
    xs = np.array(list(itertools.product([0, 1], repeat=5)), dtype=np.float64)
    energy = -0.5 * np.einsum("ri,ij,rj->r", xs, w, xs) - xs @ biases
    z = np.exp(-energy).sum()
    assert abs(mn.partition_function() - z) <= 1e-10 * z
    x = xs[7].astype(int)
    got = mn.energy({f"x{i}": int(x[i]) for i in range(5)})
    assert abs(got - energy[7]) < 1e-10, f"energy {got} != {energy[7]}"
    p1 = (np.exp(-energy) * xs[:, 2]).sum() / z
    got_p1 = pgm.VariableElimination(mn).query(["x2"]).values[1]
    assert abs(got_p1 - p1) < 1e-10, f"P(x2=1) {got_p1} != {p1}"


@given(seed=st.integers(0, 2**32 - 1))
def test_large_steps_split_pairwise_stay_exact(seed):
    """Eliminating A from phi(A,B) phi(B,C) phi(C,A) phi(A,D) spans 24^4 > 2^14 entries: the
    plan splits it into pairwise products (some through numpy's BLAS path)."""
    rng = np.random.default_rng(seed)
    card = 24
    mn = pgm.MarkovNetwork([("A", "B"), ("B", "C"), ("C", "A"), ("A", "D")])
    for a, b in [("A", "B"), ("B", "C"), ("C", "A"), ("A", "D")]:
        mn.add_factors(pgm.Factor([a, b], [card, card], rng.uniform(0.1, 1.0, (card, card))))
    ve = pgm.VariableElimination(mn)
    plan = ve.plan(["B"], [], elimination_order=["A", "C", "D"])
    products = [step for step in plan.steps[:-1] if step.var is None]  # the last is P(B)
    assert products, f"the A step was not split: {plan.steps}"
    assert any(step.gemm for step in plan.steps), "no step took the planned matmul path"
    got = ve.query(["B"], elimination_order=["A", "C", "D"]).values
    _, joint = joint_table(mn)
    expected = joint.sum(axis=(0, 2, 3))
    assert_close(got, expected / expected.sum(), atol=1e-12, what="P(B) with pairwise steps")


# -- optional oracle on a published network ----------------------------------------------------
def test_alarm_against_pyagrum(tmp_path):
    """Optional: pyAgrum and the shared bnlearn alarm network are not in a clone alone."""
    gum = pytest.importorskip("pyagrum", reason="pyAgrum is not installed (optional oracle)")
    path = DATA / "bif" / "alarm.bif.gz"
    if not path.exists():
        pytest.skip(f"optional: the shared bnlearn network {path} is absent")
    text = gzip.decompress(path.read_bytes()).decode()
    (tmp_path / "alarm.bif").write_text(text)
    ours = pgm.VariableElimination(pgm.read_bif(text))
    ref = gum.loadBN(str(tmp_path / "alarm.bif"))
    ie = gum.LazyPropagation(ref)
    evidence = {"HRBP": "HIGH", "CO": "LOW", "BP": "LOW"}
    ie.setEvidence(evidence)
    ie.makeInference()
    for target in ["HYPOVOLEMIA", "LVFAILURE", "ANAPHYLAXIS"]:
        theirs = ie.posterior(target)
        labels = [theirs.variable(0).label(i) for i in range(theirs.variable(0).domainSize())]
        mine = ours.query([target], evidence)
        expected = [theirs[{target: s}] for s in mine.state_names[target]]
        assert sorted(labels) == sorted(mine.state_names[target])
        # read_bif renormalises the published columns (they sum to 1 only within ~3e-7)
        assert_close(mine.values, expected, atol=1e-6, what=f"P({target}|e) vs pyAgrum")


def defined_cost(name: str, v: int, graph: dict, cards: list) -> int:
    """The cost of eliminating ``v`` by its definition, on a graph of neighbour sets."""
    from itertools import combinations

    missing = [(a, b) for a, b in combinations(sorted(graph[v]), 2) if b not in graph[a]]
    return {
        "min_degree": len(graph[v]),
        "min_fill": len(missing),
        "weighted_min_fill": sum(cards[a] * cards[b] for a, b in missing),
    }[name]


def as_bitsets(graph: dict, n: int) -> list[int]:
    """Closed neighbourhoods as ints (bit v of entry v set), the form pgm.ordering takes."""
    return [sum(1 << u for u in graph[v] | {v}) for v in range(n)]


@given(
    n=st.integers(1, 9),
    data=st.data(),
)
def test_greedy_costs_match_their_definitions(n, data):
    from itertools import combinations

    from kernels.reference.planning import COSTS as by_code
    from pgm.ordering import HEURISTICS

    COSTS = dict(zip(HEURISTICS, by_code, strict=True))

    pairs = [p for p in combinations(range(n), 2) if data.draw(st.booleans())]
    cards = data.draw(st.lists(st.integers(2, 4), min_size=n, max_size=n))
    adj = {v: set() for v in range(n)}
    for a, b in pairs:
        adj[a].add(b)
        adj[b].add(a)
    bits = as_bitsets(adj, n)
    for v in range(n):
        for name, cost in COSTS.items():
            expected = defined_cost(name, v, adj, cards)
            assert cost(v, bits, cards) == expected, f"{name} of {v}: {adj}"
    for name in COSTS:  # the incremental driver equals re-costing everything
        graph = {v: set(nb) for v, nb in adj.items()}
        naive = []
        while len(naive) < n:
            v = min(graph, key=lambda u: (defined_cost(name, u, graph, cards), u))
            naive.append(v)
            nbrs = graph.pop(v)
            for a in nbrs:
                graph[a] = (graph[a] | nbrs) - {a, v}
        order = greedy_order(bits, [(1 << n) - 1], cards, name)
        assert order == naive, f"{name}: incremental order {order} != re-costed order {naive}"
        assert bits == as_bitsets(adj, n), "greedy_order modified its input graph"
