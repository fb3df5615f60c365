"""Pairwise co-purchase network: gradient by finite differences, exact inference against
brute-force enumeration of the joint and against pgm, fitting, saving."""

import io

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.cases import Cases
from bundlerec.models.pairwise import PairwiseNetwork, pseudo_likelihood
from bundlerec.prep import Interactions


def interactions(baskets, n_items):
    """Interactions with one shopper per basket (purchases), from lists of item codes."""
    rows = [(b, j) for b, items in enumerate(baskets) for j in items]
    basket = np.array([r[0] for r in rows], dtype=np.int64)
    item = np.array([r[1] for r in rows], dtype=np.int64)
    return Interactions(
        basket,
        item,
        basket,
        basket.copy(),
        np.full(basket.size, 3, np.int8),
        len(baskets),
        n_items,
    )


def random_network(rng, t, n_items=None, density=0.7, scale=1.5):
    """A fitted-looking network over items 0..t-1 with random biases and weights."""
    n_items = t if n_items is None else n_items
    pairs = np.array([(j, k) for j in range(t) for k in range(j + 1, t)], dtype=np.int64)
    edges = pairs[rng.random(len(pairs)) < density].reshape(-1, 2)
    return PairwiseNetwork.from_state(
        {
            "config": np.array([t, 1, 4, 100, n_items]),
            "l2": np.array(0.0),
            "items": np.arange(t),
            "bias": rng.normal(-1.0, 1.0, t),
            "edges": edges,
            "weights": rng.normal(0.0, scale, len(edges)),
            "prior": np.log(np.full(n_items, 0.01)),
        }
    )


def brute_force(net, evidence, candidates, bundle):
    """log P(bundle items = 1 | evidence = 1, network items outside candidates = 0), by
    enumerating all 2^T states of the whole network's joint."""
    t = net.items.size
    states = ((np.arange(1 << t)[:, None] >> np.arange(t)) & 1).astype(float)
    w = net.coupling
    log_joint = states @ net.bias + 0.5 * np.einsum("si,ij,sj->s", states, w, states)
    fixed = np.ones(t, dtype=bool)
    fixed[list(candidates)] = False
    value = np.zeros(t)
    value[list(evidence)] = 1.0
    consistent = (states[:, fixed] == value[fixed]).all(axis=1)
    p = np.exp(log_joint - log_joint.max()) * consistent
    inside = states[:, list(bundle)].all(axis=1) if bundle else np.ones(len(states), bool)
    return np.log(p[inside].sum() / p.sum())


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 12),
    t=st.integers(2, 6),
    l2=st.floats(0.0, 1.0),
)
def test_gradient_matches_finite_differences(seed, n, t, l2):
    rng = np.random.default_rng(seed)
    baskets = sp.csr_matrix((rng.random((n, t)) < 0.4).astype(float))
    pairs = np.array([(j, k) for j in range(t) for k in range(j + 1, t)], dtype=np.int64)
    edges = pairs[rng.random(len(pairs)) < 0.6].reshape(-1, 2)
    bias, weights = rng.normal(0, 1, t), rng.normal(0, 1, len(edges))
    _, gb, gw = pseudo_likelihood(bias, weights, edges, baskets, l2)
    theta = np.concatenate([bias, weights])
    eps = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += eps
        down[i] -= eps
        f_up = pseudo_likelihood(up[:t], up[t:], edges, baskets, l2)[0]
        f_down = pseudo_likelihood(down[:t], down[t:], edges, baskets, l2)[0]
        numeric[i] = (f_up - f_down) / (2 * eps)
    analytic = np.concatenate([gb, gw])
    err = np.abs(analytic - numeric).max()
    assert err < 1e-6, f"gradient differs from finite differences by {err:.2e}"


@given(seed=st.integers(0, 2**32 - 1), t=st.integers(3, 8), n_evidence=st.integers(0, 2))
def test_coherence_matches_brute_force_and_pgm(seed, t, n_evidence):
    rng = np.random.default_rng(seed)
    net = random_network(rng, t)
    perm = rng.permutation(t)
    evidence = sorted(perm[:n_evidence].tolist())
    candidates = sorted(perm[n_evidence : n_evidence + rng.integers(1, t - n_evidence + 1)])
    bundles = [
        tuple(
            rng.choice(
                candidates, size=rng.integers(1, min(3, len(candidates)) + 1), replace=False
            ).tolist()
        )
        for _ in range(6)
    ]
    expected = np.array([brute_force(net, evidence, candidates, b) for b in bundles])
    for method in ("enumerate", "pgm"):
        got = net.coherence(bundles, evidence, candidates=candidates, method=method)
        err = np.abs(got - expected).max()
        assert err < 1e-9, f"{method}: log P differs from brute force by {err:.2e}"


@given(seed=st.integers(0, 2**32 - 1), t=st.integers(2, 7))
def test_conditional_is_the_exact_full_conditional(seed, t):
    rng = np.random.default_rng(seed)
    net = random_network(rng, t, n_items=t + 2)
    evidence = sorted(rng.choice(t, size=rng.integers(0, t), replace=False).tolist())
    p = net.conditional(evidence)
    assert p.shape == (t + 2,) and p.dtype == np.float64
    for j in range(t):
        if j in evidence:
            assert p[j] == 1.0
            continue
        expected = np.exp(brute_force(net, evidence, [j], (j,)))
        assert abs(p[j] - expected) < 1e-12, f"item {j}: {p[j]} vs {expected}"
    np.testing.assert_allclose(p[t:], 0.01)


def basket_cases(context, lengths, n_items):
    """Cases with the given (n, L) context, lengths and catalogue size (nothing excluded)."""
    n = len(lengths)
    return Cases(
        np.zeros(n, np.int64),
        np.asarray(context, np.int64),
        np.asarray(lengths, np.int64),
        np.zeros((n, 1), np.int64),
        sp.csr_matrix((n, n_items), dtype=bool),
    )


def scattered_network(rng, t, n_items):
    """A random network whose t items are scattered over a catalogue of n_items codes."""
    net = random_network(rng, t, n_items)
    state = net.get_state() | {
        "items": np.sort(rng.choice(n_items, size=t, replace=False)),
        "prior": np.log(rng.uniform(0.001, 0.5, n_items)),
    }
    return PairwiseNetwork.from_state(state)


@given(
    seed=st.integers(0, 2**32 - 1),
    t=st.integers(2, 6),
    extra=st.integers(0, 4),
    grown=st.integers(0, 2),
    n=st.integers(0, 6),
)
def test_score_is_the_log_conditional_of_each_case(seed, t, extra, grown, n):
    """score(cases) against conditional() case by case; items outside the network below every
    network item; codes added after the fit (grown) outside it."""
    rng = np.random.default_rng(seed)
    n_items = t + extra
    net = scattered_network(rng, t, n_items)
    total = n_items + grown
    width = 4
    lengths = rng.integers(0, width + 1, size=n)
    context = np.where(
        np.arange(width)[None, :] < lengths[:, None], rng.integers(0, total, (n, width)), -1
    )
    cases = basket_cases(context, lengths, total)
    scores = net.score(cases)
    assert scores.shape == (n, total) and scores.dtype == np.float32
    outside = np.setdiff1d(np.arange(total), net.items)
    for row in range(n):
        known = [int(c) for c in context[row, : lengths[row]] if c < n_items]
        expected = np.log(net.conditional(known))
        np.testing.assert_allclose(scores[row, net.items], expected[net.items], rtol=1e-6)
        np.testing.assert_allclose(
            scores[row, outside],
            np.r_[net.prior, np.full(grown, net.prior.min())][outside] - 1e3,
            rtol=1e-6,
        )
        assert scores[row, outside].max(initial=-np.inf) < scores[row, net.items].min()
    with pytest.raises(ValueError, match="fitted on"):
        net.score(basket_cases(np.zeros((n, 0), np.int64), np.zeros(n, np.int64), n_items - 1))


def test_best_bundles_are_the_argmax_of_coherence(rng):
    net = random_network(rng, 9)
    cand = net.candidates([0], size=6)
    assert 0 not in cand and cand.size == 6
    pairs = [(int(a), int(b)) for i, a in enumerate(cand) for b in cand[i + 1 :]]
    scores = net.coherence(pairs, [0], candidates=cand)
    bundles, logp = net.best_bundles([0], size=2, k=3, candidates=cand)
    order = np.argsort(-scores, kind="stable")[:3]
    assert bundles == [pairs[i] for i in order]
    np.testing.assert_allclose(logp, scores[order])


@given(seed=st.integers(0, 2**32 - 1), t=st.integers(3, 7))
def test_dependence_is_the_joint_over_the_product_of_marginals(seed, t):
    rng = np.random.default_rng(seed)
    net = random_network(rng, t)
    candidates = list(range(1, t))
    table = net.dependence([0], candidates)
    assert table.shape == (1 << (t - 1),)
    for mask in range(table.size):
        bundle = [c for i, c in enumerate(candidates) if mask >> i & 1]
        joint = brute_force(net, [0], candidates, bundle)
        singles = sum(brute_force(net, [0], candidates, [j]) for j in bundle)
        assert abs(table[mask] - (joint - singles)) < 1e-8, (mask, table[mask], joint - singles)
    independent = PairwiseNetwork.from_state({**net.get_state(), "weights": 0.0 * net.weights})
    np.testing.assert_allclose(independent.dependence([0], candidates), 0.0, atol=1e-12)


def test_bundle_items_outside_network_and_evidence():
    net = random_network(np.random.default_rng(1), 5, n_items=7)
    base = net.coherence([(1,)], [0], candidates=[1, 2])
    # an evidence item in a bundle is certain; a non-network item adds its log prior
    both = net.coherence([(0, 1), (1, 6)], [0], candidates=[1, 2])
    np.testing.assert_allclose(both, [base[0], base[0] + np.log(0.01)])
    with pytest.raises(ValueError, match="candidates"):
        net.subset_log_probs([0], [0, 1])
    with pytest.raises(KeyError):
        net.conditional([7])


def test_fit_learns_a_planted_pair_and_keeps_frequent_pairs_only(rng):
    baskets = []
    for _ in range(400):
        b = set(np.flatnonzero(rng.random(6) < 0.2).tolist())
        if 0 in b:  # 0 and 1 bought together
            b.add(1)
        baskets.append(sorted(b | {5}) if rng.random() < 0.5 else sorted(b))
    net = PairwiseNetwork(n_top=6, min_count=3, l2=1e-3).fit(interactions(baskets, 7))
    assert net.items.tolist() == list(range(6))  # item 6 was never bought
    counts = np.zeros((6, 6))
    for b in baskets:
        for j in b:
            for k in b:
                counts[j, k] += j < k
    assert {tuple(e) for e in net.edges.tolist()} == set(zip(*np.nonzero(counts >= 3)))
    pair = net.coupling[0, 1]
    assert pair > 2.0 and pair == net.coupling.max(), net.coupling
    assert net.conditional([0])[1] > 0.9 > net.conditional([2])[1]
    # at the optimum the penalised pseudo-likelihood gradient vanishes (an empty basket has no
    # events, so it is not in the data)
    x = np.array([[j in b for j in range(6)] for b in baskets if b], dtype=float)
    x = sp.csr_matrix(x)
    _, gb, gw = pseudo_likelihood(net.bias, net.weights, net.edges, x, net.l2)
    assert max(np.abs(gb).max(), np.abs(gw).max()) < 1e-4


def test_state_round_trip_without_pickle(rng):
    baskets = [sorted(rng.choice(8, size=rng.integers(1, 5), replace=False)) for _ in range(60)]
    net = PairwiseNetwork(n_top=6, min_count=2, n_candidates=4).fit(interactions(baskets, 8))
    buffer = io.BytesIO()
    np.savez(buffer, **net.get_state())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as arrays:
        back = PairwiseNetwork.from_state(dict(arrays))
    anchor = [int(net.items[0])]
    np.testing.assert_array_equal(back.conditional(anchor), net.conditional(anchor))
    assert back.best_bundles(anchor, 2) == net.best_bundles(anchor, 2)
    bad = net.get_state() | {"bias": np.zeros(2)}
    with pytest.raises(ValueError, match="do not match"):
        PairwiseNetwork.from_state(bad)


def test_unfitted_and_bad_settings_raise():
    with pytest.raises(ValueError, match="not fitted"):
        PairwiseNetwork().conditional([0])
    with pytest.raises(ValueError, match="n_top"):
        PairwiseNetwork(n_top=1)
    with pytest.raises(ValueError, match="at least 2 items"):
        PairwiseNetwork().fit(interactions([[0], [0]], 3))
