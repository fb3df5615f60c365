"""The planner's bitset parts (pruning, folded roots, ordering), step merging and the planned
matrix products against naive oracles."""

from __future__ import annotations

from itertools import combinations
from unittest import mock

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
from hypothesis import assume, given

import kernels.cpu
import kernels.reference
import pgm
import pgm.compiled
from kernels.reference.factor import factor_contract
from kernels.reference.planning import COSTS as COSTS_BY_CODE
from kernels.reference.steps import matmul_layout
from pgm.ordering import HEURISTICS, bit_list, bitset_rows, greedy_order
from pgm.pruning import ancestor_sets, fold_roots, relevant_factors


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


def random_graph(rng: np.random.Generator, n: int, density: float) -> dict[int, set[int]]:
    """An undirected graph over ``0..n-1``, each edge present with probability ``density``."""
    graph: dict[int, set[int]] = {v: set() for v in range(n)}
    for a, b in combinations(range(n), 2):
        if rng.random() < density:
            graph[a].add(b)
            graph[b].add(a)
    return graph


@given(n=st.integers(8, 16), density=st.floats(0.1, 0.6), seed=st.integers(0, 2**32 - 1))
def test_greedy_min_fill_equals_recosting_on_larger_graphs(n, density, seed):
    rng = np.random.default_rng(seed)
    graph = random_graph(rng, n, density)
    bits = [as_bits(graph[v] | {v}) for v in range(n)]
    stage = as_bits(v for v in range(n) if rng.random() < 0.8)
    for v in range(n):
        assert COSTS_BY_CODE[HEURISTICS.index("min_fill")](v, bits, [2] * n) == defined_fill(
            v, graph
        ), f"fill of {v}"
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


def defined_cost(code: int, v: int, graph: dict, cards) -> int:
    """Cost ``code`` of eliminating ``v`` from its definition (see kernels.reference.planning)."""
    if code == 0:
        return len(graph[v])
    missing = [(a, b) for a, b in combinations(sorted(graph[v]), 2) if b not in graph[a]]
    return sum(1 if code == 1 else int(cards[a] * cards[b]) for a, b in missing)


@given(
    n=st.integers(1, 40),
    density=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**32 - 1),
)
def test_greedy_order_kernels_equal_recosting(n, density, seed):
    """Both twins of the ``greedy_order`` kernel (bitset rows over several bytes, two stages,
    each heuristic) equal a driver that re-costs every waiting variable after each pick."""
    rng = np.random.default_rng(seed)
    graph = random_graph(rng, n, density)
    cards = rng.integers(2, 6, n).astype(np.int64)
    roles = rng.integers(0, 3, n)  # stage 0, stage 1, or kept
    stages = [as_bits(np.flatnonzero(roles == k).tolist()) for k in (0, 1)]
    adj = bitset_rows([as_bits(graph[v] | {v}) for v in range(n)], n)
    rows = bitset_rows(stages, n)
    for code, name in enumerate(HEURISTICS):
        left, naive = {v: set(nb) for v, nb in graph.items()}, []
        for k in (0, 1):
            waiting = set(np.flatnonzero(roles == k).tolist())
            while waiting:
                v = min(waiting, key=lambda u: (defined_cost(code, u, left, cards), u))
                naive.append(v)
                waiting.discard(v)
                nbrs = left.pop(v)
                for a in nbrs:
                    left[a] = (left[a] | nbrs) - {a, v}
        for twin in (kernels.reference, kernels.cpu):
            order = twin.greedy_order(adj, rows, cards, code).tolist()
            assert order == naive, f"{twin.__name__} {name}: order {order} != re-costed {naive}"
        assert greedy_order([as_bits(graph[v] | {v}) for v in range(n)], stages, cards, name) == (
            naive
        ), f"pgm.ordering.greedy_order {name} differs from the re-costed order"


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
    assume(ve.probability_of_evidence(case) > 0)
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


@given(
    roles=st.lists(st.integers(0, 5), min_size=1, max_size=5),
    product=st.booleans(),
    sizes=st.lists(st.integers(1, 4), min_size=7, max_size=7),
    seed=st.integers(0, 2**32 - 1),
)
def test_planned_matmul_equals_einsum(roles, product, sizes, seed):
    """``matmul_layout`` + ``factor_contract`` against ``numpy.einsum`` on random two-operand
    specs. Role of each label: 0 batch, 1 contracted, 2 a-kept, 3 b-kept, 4 a-summed,
    5 b-summed; axis orders shuffled. Half the specs get a kept label on each side (a matrix
    product for sure), so few are filtered out."""
    roles = [*roles, 2, 3] if product else roles
    rng = np.random.default_rng(seed)
    labels = "abcdefg"[: len(roles)]
    sub_a = [c for c, r in zip(labels, roles, strict=False) if r in (0, 1, 2, 4)]
    sub_b = [c for c, r in zip(labels, roles, strict=False) if r in (0, 1, 3, 5)]
    out = [c for c, r in zip(labels, roles, strict=False) if r in (0, 2, 3)]
    sub_a, sub_b, out = ("".join(rng.permutation(x)) if x else "" for x in (sub_a, sub_b, out))
    size = dict(zip(labels, sizes, strict=False))
    layout = matmul_layout(sub_a, sub_b, out, size)
    is_product = 2 in roles and 3 in roles  # a kept label on each side
    assert (layout is not None) == is_product, (
        f"{sub_a},{sub_b}->{out}: layout {layout}, but a matrix product: {is_product}"
    )
    assume(is_product)
    a = rng.uniform(0.1, 1.0, [size[c] for c in sub_a])
    b = rng.uniform(0.1, 1.0, [size[c] for c in sub_b])
    perm = rng.permutation(a.ndim)  # the same values in another memory order (strided)
    a = np.ascontiguousarray(a.transpose(perm)).transpose(np.argsort(perm))
    got = factor_contract(a, b, layout)
    expected = np.einsum(f"{sub_a},{sub_b}->{out}", a, b)
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    diff = np.max(np.abs(got - expected), initial=0.0)
    assert diff <= 1e-12 * max(1.0, np.abs(expected).max()), f"{sub_a},{sub_b}->{out}: {diff}"


@given(parents=dags(max_vars=8), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_folded_roots_equal_the_unfolded_sum(parents, seed, data):
    """Each folded CPD is the sum over its roots of their CPDs times the child's (brute force
    over the roots' states), and a query that leaves a folded root hidden never orders it."""
    rng = np.random.default_rng(seed)
    bn = random_network(rng, parents)
    n = len(parents)
    cpds = bn.get_cpds()
    scopes = [tuple(int(v[1:]) for v in c.variables) for c in cpds]
    tables = [np.asarray(c.values, np.float64) for c in cpds]
    factors_of = [[f for f, s in enumerate(scopes) if v in s] for v in range(n)]
    folds = fold_roots(scopes, tables, factors_of)
    for c, (scope, table, roots) in folds.items():
        assert roots and not roots & ~as_bits(scopes[c]), f"roots {bin(roots)} of {c}"
        left = tuple(v for v in scopes[c] if not roots >> v & 1)
        assert scope == left, f"folded scope {scope} != {left}"
        for r in bit_list(roots):
            assert not parents[r] and factors_of[r] == sorted([r, c]), f"{r} is not foldable"
        expected = np.zeros(table.shape)
        for states in np.ndindex(*[tables[r].shape[0] for r in bit_list(roots)]):
            at = dict(zip(bit_list(roots), states, strict=True))
            index = tuple(at.get(v, slice(None)) for v in scopes[c])
            weight = np.prod([tables[r][s] for r, s in at.items()])
            expected += weight * tables[c][index]
        diff = np.max(np.abs(table - expected))
        assert diff <= 1e-12, f"folded CPD of X{c} differs from the brute sum by {diff:.3e}"
    if folds:
        c = data.draw(st.sampled_from(sorted(folds)))
        plan = pgm.VariableElimination(bn).plan([f"X{c}"])
        hidden = {f"X{r}" for r in bit_list(folds[c][2])}
        assert not hidden & set(plan.order), f"folded roots {hidden} ordered: {plan.order}"


def brute_posterior(bn, target, evidence: dict) -> np.ndarray:
    """``P(target | evidence)`` (evidence as state indices) from the full joint table."""
    names = bn.nodes()
    index = {v: i for i, v in enumerate(names)}
    args = []
    for cpd in bn.get_cpds():
        args += [np.asarray(cpd.values), [index[v] for v in cpd.variables]]
    joint = np.einsum(*args, list(range(len(names))))
    picked = joint[tuple([evidence.get(v, slice(None)) for v in names])]
    kept = [v for v in names if v not in evidence]
    marginal = picked.sum(axis=tuple(i for i, v in enumerate(kept) if v != target))
    return marginal / marginal.sum()


@given(parents=dags(max_vars=7), seed=st.integers(0, 2**32 - 1))
def test_engines_share_bounded_prepared_factors_per_model_version(parents, seed):
    """One-off engines reuse the prepared factors of the model's compiled form; the cache stays
    within its bound (evicting does not change answers), and a new model version starts it
    afresh (a replaced CPD is seen)."""
    rng = np.random.default_rng(seed)
    bn = random_network(rng, parents)
    names = bn.nodes()
    cards = [len(bn.states(v)) for v in names]
    queries = []
    for _ in range(4):
        picked = rng.permutation(len(names))[: int(rng.integers(1, len(names) + 1))]
        evidence = {names[j]: int(rng.integers(cards[j])) for j in picked[1:]}
        queries.append((names[picked[0]], evidence))
    with mock.patch.object(pgm.compiled, "_PREPARED_MAX", 3):
        for version in range(2):
            for target, evidence in queries:
                got = pgm.VariableElimination(bn).query([target], evidence).values
                want = brute_posterior(bn, target, evidence)
                np.testing.assert_allclose(
                    got,
                    want,
                    rtol=1e-9,
                    atol=1e-12,
                    err_msg=f"P({target} | {evidence}) on model version {version}",
                )
                size = len(pgm.compiled._COMPILED[bn].prepared_cache)
                assert size <= 3, f"{size} prepared factors cached, above the bound of 3"
            j = int(rng.integers(len(names)))
            cpd = bn.get_cpds(names[j])
            values = rng.dirichlet(np.ones(cards[j]), size=cpd.get_values().shape[1]).T
            evidence_cards = [cards[names.index(v)] for v in cpd.variables[1:]]
            bn.add_cpds(
                pgm.TabularCPD(names[j], cards[j], values, cpd.variables[1:], evidence_cards)
            )
    first = pgm.VariableElimination(bn).plan([queries[0][0]], queries[0][1])
    again = pgm.VariableElimination(bn).plan([queries[0][0]], queries[0][1])
    assert all(a is b for a, b in zip(first.inputs, again.inputs, strict=True)), (
        "a second engine on the same model version prepared its factors again"
    )
