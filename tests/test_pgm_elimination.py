"""The planner's bitset parts (pruning, ordering) and step merging against naive oracles."""

from __future__ import annotations

from itertools import combinations

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
from hypothesis import given

import pgm
from pgm.ordering import COSTS, bit_list, greedy_order
from pgm.pruning import ancestor_sets, relevant_factors


@st.composite
def dags(draw, max_vars: int = 10) -> list[list[int]]:
    """Parent lists of a random DAG over ``0..n-1`` (parents have smaller ids)."""
    n = draw(st.integers(1, max_vars))
    return [
        sorted(draw(st.lists(st.integers(0, j - 1), max_size=3, unique=True))) if j else []
        for j in range(n)
    ]


def random_network(rng: np.random.Generator, parents: list[list[int]], max_card: int = 3):
    """A Bayesian network over ``X0..`` with the given parents and random positive CPTs."""
    names = [f"X{i}" for i in range(len(parents))]
    cards = [int(c) for c in rng.integers(2, max_card + 1, len(parents))]
    bn = pgm.BayesianNetwork()
    bn.add_nodes_from(names)
    bn.add_edges_from([(names[p], names[j]) for j, ps in enumerate(parents) for p in ps])
    for j, ps in enumerate(parents):
        cols = int(np.prod([cards[p] for p in ps]))
        values = rng.dirichlet(np.ones(cards[j]), size=cols).T
        evidence = [names[p] for p in ps]
        bn.add_cpds(pgm.TabularCPD(names[j], cards[j], values, evidence, [cards[p] for p in ps]))
    return bn


def naive_relevant(parents, query, observed) -> set[int]:
    """CPDs a posterior needs, with sets: the ancestral set of query and evidence, then the
    CPDs that share an unobserved variable with the query's part of the moral graph."""
    keep, stack = set(query) | set(observed), list(query) + list(observed)
    while stack:
        for u in parents[stack.pop()]:
            if u not in keep:
                keep.add(u)
                stack.append(u)
    scopes = {f: ({f} | set(parents[f])) - set(observed) for f in keep}
    reached, grew = set(query), True
    while grew:
        grew = False
        for scope in scopes.values():
            if scope & reached and not scope <= reached:
                reached |= scope
                grew = True
    return {f for f, scope in scopes.items() if scope & reached}


def as_bits(ids) -> int:
    return sum(1 << v for v in set(ids))


@given(parents=dags(), data=st.data())
def test_ancestor_sets_and_relevant_factors_match_set_walks(parents, data):
    n = len(parents)
    ancestors = ancestor_sets(parents)
    for v in range(n):
        expected, stack = {v}, [v]
        while stack:
            for u in parents[stack.pop()]:
                if u not in expected:
                    expected.add(u)
                    stack.append(u)
        assert bit_list(ancestors[v]) == sorted(expected), f"ancestors of {v}"
    chosen = data.draw(st.permutations(range(n)))
    nq = data.draw(st.integers(1, n))
    query, observed = chosen[:nq], chosen[nq : nq + data.draw(st.integers(0, n - nq))]
    scopes = [as_bits([j, *ps]) for j, ps in enumerate(parents)]
    factors_of = [[f for f in range(n) if scopes[f] >> v & 1] for v in range(n)]
    q, e = as_bits(query), as_bits(observed)
    factors, constants = relevant_factors(scopes, factors_of, ancestors, q, e, q | e, True)
    assert set(factors) == naive_relevant(parents, query, observed), "kept factors differ"
    assert all(not scopes[f] & ~e for f in constants), "a constant has an unobserved variable"


def defined_fill(v: int, graph: dict) -> int:
    return sum(b not in graph[a] for a, b in combinations(sorted(graph[v]), 2))


@given(n=st.integers(8, 16), density=st.floats(0.1, 0.6), seed=st.integers(0, 2**32 - 1))
def test_greedy_min_fill_equals_recosting_on_larger_graphs(n, density, seed):
    rng = np.random.default_rng(seed)
    graph = {v: set() for v in range(n)}
    for a, b in combinations(range(n), 2):
        if rng.random() < density:
            graph[a].add(b)
            graph[b].add(a)
    bits = [as_bits(graph[v] | {v}) for v in range(n)]
    stage = as_bits(v for v in range(n) if rng.random() < 0.8)
    for v in range(n):
        assert COSTS["min_fill"](v, bits, [2] * n) == defined_fill(v, graph), f"fill of {v}"
    naive, left = [], set(bit_list(stage))
    while left:  # re-cost every remaining variable after each elimination
        v = min(left, key=lambda u: (defined_fill(u, graph), u))
        naive.append(v)
        left.discard(v)
        nbrs = graph.pop(v)
        for a in nbrs:
            graph[a] = (graph[a] | nbrs) - {a, v}
    order = greedy_order(bits, [stage], [2] * n, "min_fill")
    assert order == naive, f"incremental order {order} != re-costed order {naive}"


@given(parents=dags(max_vars=9), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_merged_single_query_equals_unmerged_batch(parents, seed, data):
    """A single query defers and merges small steps; a batch of one case does not: the two
    plans differ and must give the same posterior (and both must match P(evidence))."""
    rng = np.random.default_rng(seed)
    bn = random_network(rng, parents, max_card=4)
    n = len(parents)
    chosen = data.draw(st.permutations(range(n)))
    target = f"X{chosen[0]}"
    observed = [f"X{j}" for j in chosen[1 : 1 + data.draw(st.integers(0, n - 1))]]
    case = {v: int(rng.integers(bn.get_cardinality(v))) for v in observed}
    ve = pgm.VariableElimination(bn)
    if ve.probability_of_evidence(case) <= 0:
        return
    single = ve.query([target], case).values
    batch = ve.batch_query([target], {v: [s] for v, s in case.items()})[target][0]
    diff = np.max(np.abs(single - batch))
    assert diff <= 1e-12, f"merged plan differs from the unmerged one by {diff:.3e}"
    merged = ve.plan([target], observed)
    assert len(merged.steps) <= len(merged.order) + 1, "merging added steps"


@given(states=hnp.arrays(np.int64, 3, elements=st.integers(0, 1)))
def test_models_with_more_variables_than_letters(states):
    """A 70-variable chain: variables beyond the 51 einsum letters are renamed per step."""
    rng = np.random.default_rng(3)
    n = 70
    names = [f"C{i}" for i in range(n)]
    bn = pgm.BayesianNetwork(list(zip(names[:-1], names[1:], strict=True)))
    prior = rng.dirichlet([1, 1])
    moves = [rng.dirichlet([1, 1], size=2).T for _ in range(n - 1)]  # moves[i][b, a]
    bn.add_cpds(pgm.TabularCPD(names[0], 2, prior[:, None]))
    for i, m in enumerate(moves):
        bn.add_cpds(pgm.TabularCPD(names[i + 1], 2, m, [names[i]], [2]))
    evidence = {"C5": int(states[0]), "C60": int(states[1])}
    ve = pgm.VariableElimination(bn)
    got = ve.query(["C65"], evidence).values
    forward = np.eye(2)[evidence["C5"]]
    for m in moves[5:60]:
        forward = m @ forward
    expected = np.eye(2)[evidence["C60"]]
    for m in moves[60:65]:
        expected = m @ expected
    diff = np.max(np.abs(got - expected / expected.sum()))
    assert diff <= 1e-12, f"P(C65 | C5, C60) differs from the chain product by {diff:.3e}"
    p_e = ve.probability_of_evidence(evidence)
    start = prior
    for m in moves[:5]:
        start = m @ start
    want = start[evidence["C5"]] * forward[evidence["C60"]]
    assert abs(p_e - want) <= 1e-12, f"P(evidence) {p_e} != {want}"
    pair = (expected / expected.sum())[None, :] * moves[65]  # P(C66, C65 | C60), [c66, c65]
    best = np.unravel_index(np.argmax(pair), pair.shape)
    found = ve.map_query(["C65", "C66"], evidence)
    at = pair[int(found["C66"]), int(found["C65"])]
    assert at >= pair[best] - 1e-12, f"MAP value {at} < best {pair[best]}"
