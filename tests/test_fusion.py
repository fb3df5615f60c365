"""Tests of the fusion (bundlerec.models.fusion).

Oracles: brute-force ranks and grid enumeration, :func:`bundlerec.evaluation.evaluate` for the
"never worse than its best component on validation" guarantee, and the calibration identity of a
logistic regression with an intercept (predicted probabilities sum to the number of targets).
"""

from __future__ import annotations

import threading
from math import comb

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from scipy.stats import rankdata

from bundlerec import parallel
from bundlerec.cases import Cases
from bundlerec.evaluation import evaluate
from bundlerec.metrics import reliability_table, top_k
from bundlerec.models import fusion
from bundlerec.models.fusion import SHARE, Fusion, log_rank, log_share, simplex_grid


class _Fixed:
    """A scorer that returns row ``user`` of a fixed (n, I) matrix for each case."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def score(self, cases: Cases) -> np.ndarray:
        return self.scores[cases.users].astype(np.float32)


def _cases(targets: np.ndarray, exclude: np.ndarray) -> Cases:
    n = targets.size
    return Cases(
        users=np.arange(n, dtype=np.int64),
        context=np.full((n, 1), -1, dtype=np.int64),
        lengths=np.zeros(n, dtype=np.int64),
        targets=targets.reshape(n, 1).astype(np.int64),
        exclude=sp.csr_matrix(exclude),
    )


def _problem(rng: np.random.Generator, n: int = 60, items: int = 25):
    """Targets, two noisy views of a latent preference, and a few excluded non-targets."""
    target = rng.integers(items, size=n)
    signal = np.zeros((n, items))
    signal[np.arange(n), target] = 1.0
    a = signal * 1.5 + rng.normal(size=(n, items))
    b = signal * 1.0 + rng.normal(size=(n, items)) + rng.normal(size=items)
    exclude = rng.random((n, items)) < 0.1
    exclude[np.arange(n), target] = False
    return target, a, b, exclude


@given(
    hnp.arrays(np.float64, (3, 7), elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0])),
    hnp.arrays(bool, (3, 7)),
)
def test_log_rank_matches_brute_force_ranks(scores, allowed):
    got = log_rank(scores, allowed)
    for r in range(3):
        for i in range(7):
            if not allowed[r, i]:
                assert got[r, i] < -np.log(allowed[r].sum() + 0.5 - 1e-9) or allowed[r].all()
                continue
            others = scores[r][allowed[r]]
            rank = 1 + (others > scores[r, i]).sum() + ((others == scores[r, i]).sum() - 1) / 2
            assert got[r, i] == pytest.approx(-np.log(rank)), f"row {r} item {i}: {got[r]}"


@given(
    st.sampled_from([np.float32, np.float64]),
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(0, 2**32 - 1),
)
def test_log_rank_equals_scipy_rankdata_exactly(dtype, n, n_items, seed):
    rng = np.random.default_rng(seed)
    values = np.array([-np.inf, -1.5, -0.0, 0.0, 0.25, 3.0, np.inf, 1e30, -1e-30])
    scores = np.where(
        rng.random((n, n_items)) < 0.5,
        rng.choice(values, (n, n_items)),
        rng.normal(size=(n, n_items)),
    ).astype(dtype)
    allowed = rng.random((n, n_items)) < 0.8
    expected = -np.log(rankdata(-np.where(allowed, scores.astype(np.float64), -np.inf), axis=1))
    got = log_rank(scores, allowed)
    diff = np.abs(got - expected)
    assert np.array_equal(got, expected), f"max |difference| {diff.max()} at {diff.argmax()}"


def test_log_rank_in_row_blocks_equals_one_block(rng, monkeypatch):
    scores = np.round(rng.normal(size=(9, 50)), 1).astype(np.float32)
    allowed = rng.random(scores.shape) < 0.9
    whole = log_rank(scores, allowed)
    monkeypatch.setattr(fusion, "_BLOCK", 1)  # one row per block
    assert np.array_equal(log_rank(scores, allowed), whole), "row blocks change the ranks"


def test_zero_weight_component_is_not_scored(rng):
    target, a, b, exclude = _problem(rng)
    cases = _cases(target, exclude)

    class _Refuses:
        def score(self, cases: Cases) -> np.ndarray:
            raise AssertionError("a component of weight 0 was scored")

    fused = Fusion({"a": _Fixed(a), "b": _Fixed(b)}).fit(cases)
    fused.weights = {"a": fused.weights["a"], "b": 0.0}
    expected = fused.score(cases)
    skipping = Fusion({"a": _Fixed(a), "b": _Refuses()})
    skipping.weights, skipping.bias = dict(fused.weights), fused.bias
    z = log_rank(_Fixed(a).score(cases), ~exclude)
    oracle = 1 / (1 + np.exp(-(fused.weights["a"] * z + fused.bias)))
    np.testing.assert_allclose(expected, oracle, rtol=1e-6, err_msg="weighted log-rank formula")
    assert np.array_equal(skipping.score(cases), expected), "skipping changed the scores"


@given(st.integers(1, 4), st.integers(1, 8))
def test_simplex_grid_enumerates_every_mixture_once(m, resolution):
    grid = simplex_grid(m, resolution)
    assert grid.shape == (comb(resolution + m - 1, m - 1), m)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0, err_msg="a mixture does not sum to 1")
    steps = grid * resolution
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9, err_msg="off the grid")
    assert len({tuple(np.round(s).astype(int)) for s in steps}) == len(grid), "repeated mixture"
    np.testing.assert_array_equal(grid[:m], np.eye(m), err_msg="vertices do not come first")


def _fused64(fusion: Fusion, scores: dict[str, np.ndarray], allowed: np.ndarray) -> np.ndarray:
    """float64 fused logit minus bias from ``fusion.weights``, by brute force."""
    out = np.zeros(allowed.shape)
    for name, s in scores.items():
        out += fusion.weights.get(name, 0.0) * log_rank(s, allowed)
        out += fusion.weights.get(name + SHARE, 0.0) * log_share(s, allowed)
    return out


def _ndcg_ties_against(fused: np.ndarray, allowed: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-case NDCG@10 of one target, every allowed item scoring >= it ranked above it."""
    out = np.zeros(target.size)
    for r, t in enumerate(target):
        above = sum(1 for i in np.flatnonzero(allowed[r]) if i != t and fused[r, i] >= fused[r, t])
        out[r] = 1 / np.log2(above + 2) if above < 10 else 0.0
    return out


@given(st.integers(0, 2**32 - 1))
def test_fusion_never_ranks_worse_than_its_best_component_on_validation(seed):
    """Rank-only: at least the best component; a step towards the joint weights: kept only
    within 2 SE of rank-only."""
    rng = np.random.default_rng(seed)
    target, a, b, exclude = _problem(rng)
    cases = _cases(target, exclude)
    scores, allowed = {"a": a, "b": b}, ~exclude
    components = {"a": _Fixed(a), "b": _Fixed(b)}
    rank_only = Fusion(components, resolution=10, seed=seed, log_shares=False).fit(cases)
    weights = np.array(list(rank_only.weights.values()))
    assert set(rank_only.weights) == {"a", "b"}, f"weights {rank_only.weights}"
    assert (weights >= 0).all() and weights.sum() > 0, f"weights {rank_only.weights}"
    fused = _fused64(rank_only, scores, allowed)
    models = {"a": _Fixed(a), "b": _Fixed(b), "fused": _Fixed(fused)}
    report = evaluate(models, cases, ks=(10,)).results
    best = max(report["a"]["ndcg@10"], report["b"]["ndcg@10"])
    assert report["fused"]["ndcg@10"] >= best - 1e-12, (
        f"fusion NDCG@10 {report['fused']['ndcg@10']:.4f} < best component {best:.4f} "
        f"(weights {rank_only.weights})"
    )
    joint = Fusion(components, resolution=10, seed=seed).fit(cases)
    v = joint.validation
    rank_ndcg = _ndcg_ties_against(fused, allowed, target)
    assert v["ndcg_rank"] == pytest.approx(rank_ndcg.mean(), abs=1e-12), v
    if v["joint"]:
        assert any(key.endswith(SHARE) for key in joint.weights), joint.weights
        joint_ndcg = _ndcg_ties_against(_fused64(joint, scores, allowed), allowed, target)
        diff = joint_ndcg - rank_ndcg
        assert v["joint"] in (1.0, 0.75, 0.5, 0.25), v
        if v["joint"] == 1.0:
            assert v["ndcg_joint"] == pytest.approx(joint_ndcg.mean(), abs=1e-9), v
        assert diff.mean() >= -2 * diff.std() / np.sqrt(diff.size) - 1e-12, v
    else:
        assert joint.weights == rank_only.weights and joint.bias == rank_only.bias, v


def test_fusion_probabilities_are_calibrated_and_state_is_weights_and_bias(rng):
    target, a, b, exclude = _problem(rng, n=80)
    cases = _cases(target, exclude)
    fusion = Fusion({"a": _Fixed(a), "b": _Fixed(b)}, n_negatives=400, seed=1).fit(cases)
    probs = fusion.score(cases)
    assert probs.dtype == np.float32 and probs.shape == a.shape
    total = float(probs.astype(np.float64).sum(axis=1).mean())
    assert abs(total - 1.0) < 0.1, f"probabilities sum to {total:.3f} per case, expected ~1"
    restored = Fusion({"a": _Fixed(a), "b": _Fixed(b)})
    restored.weights, restored.bias = dict(fusion.weights), fusion.bias
    np.testing.assert_array_equal(restored.score(cases), probs, err_msg="state round trip")


def test_fusion_bad_input_raises_naming_the_problem(rng):
    target, a, _, exclude = _problem(rng, n=5)
    cases = _cases(target, exclude)
    with pytest.raises(ValueError, match="at least one component"):
        Fusion({})
    with pytest.raises(ValueError, match="not fitted"):
        Fusion({"a": _Fixed(a)}).score(cases)
    with pytest.raises(ValueError, match=r"component 'short' returned scores of shape \(5, 3\)"):
        Fusion({"short": _Fixed(a[:, :3])}).fit(cases)
    with pytest.raises(ValueError, match="resolution"):
        simplex_grid(2, 0)


def _full_top(fused: Fusion, cases: Cases, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The full path: rank the whole catalogue, then ``metrics.top_k``."""
    probs = fused.score(cases)
    items = top_k(probs, k, exclude=cases.exclude)
    return items, np.where(items >= 0, np.take_along_axis(probs, items, axis=1), np.nan)


def _assert_same_top(got: tuple, expected: tuple, what: str) -> None:
    rows = np.flatnonzero((got[0] != expected[0]).any(axis=1))
    assert rows.size == 0, (
        f"{what}: {rows.size} row(s) differ, first row {rows[0]}: "
        f"got {got[0][rows[0]]} ({got[1][rows[0]]}), expected {expected[0][rows[0]]} "
        f"({expected[1][rows[0]]})"
        if rows.size
        else ""
    )
    np.testing.assert_array_equal(got[1], expected[1], err_msg=f"{what}: probabilities differ")


@st.composite
def _tied_problem(draw):
    """Scores drawn from few values (many ties, +-inf), exclusions, (m, 2) log-rank and
    log-share weights (rarely < 0)."""
    seed = draw(st.integers(0, 2**32 - 1))
    n, n_items, m = draw(st.integers(1, 6)), draw(st.integers(1, 40)), draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    values = np.array([-np.inf, -2.0, -0.5, 0.0, 0.0, 1.0, 3.0, np.inf])
    scores = [
        np.where(
            rng.random((n, n_items)) < rng.random(),
            rng.choice(values, (n, n_items)),
            rng.normal(size=(n, n_items)).round(int(rng.integers(0, 3))),
        )
        for _ in range(m)
    ]
    exclude = rng.random((n, n_items)) < draw(st.sampled_from([0.0, 0.2, 0.9]))
    weights = rng.choice([0.0, 0.3, 1.0, 2.5, -0.5], size=(m, 2), p=[0.2, 0.2, 0.2, 0.3, 0.1])
    k = draw(st.integers(1, n_items + 2))
    return scores, exclude, weights, float(rng.normal() * 3), k


def _state(names: list[str], weights: np.ndarray) -> dict[str, float]:
    """The ``Fusion.weights`` dict of (M, 2) log-rank and log-share ``weights``."""
    state = {name: float(w) for name, w in zip(names, weights[:, 0])}
    state.update({name + SHARE: float(v) for name, v in zip(names, weights[:, 1])})
    return state


@given(_tied_problem(), st.integers(1, 8))
def test_fast_top_k_equals_full_path(problem, depth):
    scores, exclude, weights, bias, k = problem
    names = [f"c{i}" for i in range(len(scores))]
    fused = Fusion({name: _Fixed(s) for name, s in zip(names, scores)})
    fused.weights, fused.bias = _state(names, weights), bias
    cases = _cases(np.zeros(exclude.shape[0]), exclude)
    got = fused.top_k(cases, k, depth=depth)
    _assert_same_top(got, _full_top(fused, cases, k), f"k={k}, depth={depth}")


@given(_tied_problem(), st.integers(1, 20))
def test_certified_rows_are_exact(problem, depth):
    scores, exclude, weights, bias, k = problem
    weights = np.abs(weights)  # the certificate needs non-negative weights
    depth = min(depth, exclude.shape[1])
    allowed = ~exclude
    keys = [fusion._keys(s.astype(np.float32), allowed) for s in scores]
    lse = [fusion._row_lse(s.astype(np.float32), allowed) for s in scores]
    items, probs, ok = fusion._certified_top(keys, lse, allowed, weights, bias, k, depth)
    names = [f"c{i}" for i in range(len(scores))]
    fused = Fusion({name: _Fixed(s) for name, s in zip(names, scores)})
    fused.weights, fused.bias = _state(names, weights), bias
    cases = _cases(np.zeros(exclude.shape[0]), exclude)
    full_items, full_probs = _full_top(fused, cases, k)
    _assert_same_top(
        (items[ok], probs[ok]),
        (full_items[ok], full_probs[ok]),
        f"certified rows, k={k}, depth={depth}",
    )


@settings(max_examples=10)
@given(_tied_problem(), st.integers(1, 8))
def test_fast_top_k_on_threaded_row_blocks_equals_full_path(problem, depth):
    """Blocks of 2 rows on 3 threads (rows certified in different rounds included)."""
    scores, exclude, weights, bias, k = problem
    names = [f"c{i}" for i in range(len(scores))]
    fused = Fusion({name: _Fixed(s) for name, s in zip(names, scores)})
    fused.weights, fused.bias = _state(names, weights), bias
    cases = _cases(np.zeros(exclude.shape[0]), exclude)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fusion, "_BLOCK", 2 * exclude.shape[1])
        mp.setattr(parallel.corenn, "get_num_threads", lambda: 3)
        got = fused.top_k(cases, k, depth=depth)
    _assert_same_top(got, _full_top(fused, cases, k), f"threaded, k={k}, depth={depth}")


def test_map_blocks_keeps_block_order_and_uses_threads(monkeypatch):
    monkeypatch.setattr(parallel.corenn, "get_num_threads", lambda: 2)
    seen = set()
    barrier = threading.Barrier(2, timeout=10)  # both threads must be inside fn at once

    def fn(block):
        seen.add(threading.get_ident())
        if block[0] < 4:
            barrier.wait()
        return block.sum()

    got = parallel.map_blocks(fn, np.arange(10), 2)
    assert got == [1, 5, 9, 13, 17], f"block results out of order: {got}"
    assert len(seen) == 2, f"ran on {len(seen)} thread(s), expected 2"
    monkeypatch.setattr(parallel.corenn, "get_num_threads", lambda: 1)
    assert parallel.map_blocks(lambda b: b.tolist(), np.arange(3), 2) == [[0, 1], [2]]


def test_fast_top_k_certifies_rows_without_ranking_the_catalogue(rng, monkeypatch):
    n, n_items = 8, 400
    a = rng.normal(size=(n, n_items))
    b = np.where(rng.random((n, n_items)) < 0.9, 0.0, rng.normal(size=(n, n_items)))
    exclude = rng.random((n, n_items)) < 0.1
    fused = Fusion({"a": _Fixed(a), "b": _Fixed(b)})
    fused.weights, fused.bias = {"a": 1.0, "a" + SHARE: 0.5, "b": 0.2}, -3.0
    allowed = ~exclude
    keys = [fusion._keys(s.astype(np.float32), allowed) for s in (a, b)]
    lse = [fusion._row_lse(s.astype(np.float32).astype(np.float64), allowed) for s in (a, b)]
    weights = np.array([[1.0, 0.5], [0.2, 0.0]])
    _, _, ok = fusion._certified_top(keys, lse, allowed, weights, -3.0, 10, 100)
    assert ok.all(), f"only {ok.sum()} of {n} rows certified from the 100 best items"
    cases = _cases(np.zeros(n), exclude)
    calls = []
    full = fusion._log_rank_of_keys
    monkeypatch.setattr(fusion, "_log_rank_of_keys", lambda key: calls.append(1) or full(key))
    got = fused.top_k(cases, 10, depth=100)
    assert not calls, "the fast path fell back to ranking the whole catalogue"
    monkeypatch.undo()
    _assert_same_top(got, _full_top(fused, cases, 10), "k=10")


def test_fast_top_k_bad_input_zero_weights_and_nan_scores(rng):
    target, a, _, exclude = _problem(rng, n=5)
    cases = _cases(target, exclude)
    fused = Fusion({"a": _Fixed(a)})
    with pytest.raises(ValueError, match="not fitted"):
        fused.top_k(cases, 3)
    fused.weights, fused.bias = {"a": 0.0}, -1.0
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fused.top_k(cases, 0)
    with pytest.raises(ValueError, match="depth must be at least 1"):
        fused.top_k(cases, 3, depth=0)
    _assert_same_top(fused.top_k(cases, 30), _full_top(fused, cases, 30), "zero weights")
    a[1, 4] = np.nan  # a broken component: that row takes the full path
    fused.weights = {"a": 1.0}
    got = fused.top_k(cases, 4, depth=1)
    _assert_same_top(got, _full_top(fused, cases, 4), "NaN scores")


def _peaked_problem(rng: np.random.Generator, n: int, items: int = 30):
    """A sequence-like scorer whose logits are the true log-probabilities of the target.

    Each case draws a temperature: some cases are sharply peaked, others flat, so the true
    probability of the top item varies from case to case while its rank is always 1.
    """
    base = rng.normal(size=(n, items))
    sharp = rng.choice([0.3, 1.0, 3.0], size=n)
    logits = base * sharp[:, None]
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    target = (rng.random((n, 1)) > prob.cumsum(axis=1)).sum(axis=1).clip(0, items - 1)
    return target, logits, prob


def test_probabilities_differ_between_shoppers_at_equal_rank(rng):
    target, logits, _ = _peaked_problem(rng, 3000)
    exclude = np.zeros(logits.shape, dtype=bool)
    cases = _cases(target, exclude)
    fused = Fusion({"seq": _Fixed(logits)}, seed=0).fit(cases)
    assert fused.validation["joint"] == 1.0, fused.validation
    assert fused.weights.get("seq" + SHARE, 0) > 0, fused.weights
    items, probs = fused.top_k(cases, 3)
    assert ((probs >= 0) & (probs <= 1)).all()
    all_probs = fused.score(cases)
    assert ((all_probs >= 0) & (all_probs <= 1)).all()
    # Rank 1 of a peaked shopper beats rank 1 of a flat one.
    top1 = probs[:, 0]
    spread = float(top1.max() - top1.min())
    assert spread > 0.3, f"top-1 probabilities span only {spread:.3f} across shoppers"
    rank_only = Fusion({"seq": _Fixed(logits)}, seed=0, log_shares=False).fit(cases)
    flat = rank_only.top_k(cases, 3)[1][:, 0]
    assert np.ptp(flat) == 0, "rank-only fusion: one probability per rank"


def test_probabilities_are_calibrated_where_the_truth_is_known(rng):
    """The component's logits are the true log-probabilities: the fused top items must be
    calibrated on fresh cases (ECE of the top-3 items against their outcomes)."""
    target, logits, _ = _peaked_problem(rng, 3000)
    exclude = np.zeros(logits.shape, dtype=bool)
    fused = Fusion({"seq": _Fixed(logits)}, seed=0).fit(_cases(target, exclude))
    target, logits, prob = _peaked_problem(rng, 4000)
    fused.components = {"seq": _Fixed(logits)}
    items, probs = fused.top_k(_cases(target, np.zeros(logits.shape, dtype=bool)), 3)
    hit = items == target[:, None]
    table = reliability_table(probs.ravel(), hit.ravel())
    assert table.ece() < 0.03, f"ECE {table.ece():.4f}\n{table.to_table()}"
    truth = np.take_along_axis(prob, items, axis=1)
    gap = float(np.abs(probs - truth).mean())
    assert gap < 0.05, f"mean |fused - true probability| {gap:.4f}"


def test_log_share_is_a_floored_log_softmax_over_allowed_items():
    scores = np.array([[0.0, np.log(3.0), 5.0, -np.inf], [np.inf, np.inf, 0.0, 1.0]])
    allowed = np.array([[True, True, False, True], [True, True, True, False]])
    got = log_share(scores, allowed)
    np.testing.assert_allclose(got[0, :2], np.log([0.25, 0.75]))
    assert got[0, 3] == fusion._FLOOR
    np.testing.assert_array_equal(got[1, :3], [0.0, 0.0, fusion._FLOOR])  # +inf: certain
    assert (log_share(scores, np.zeros_like(allowed)) == fusion._FLOOR).all()


def test_state_round_trip_with_log_shares_and_old_rank_only_state(rng):
    target, a, b, exclude = _problem(rng, n=80)
    cases = _cases(target, exclude)
    components = {"a": _Fixed(a), "b": _Fixed(b)}
    fitted = Fusion(components, seed=1).fit(cases)
    fitted.weights["a" + SHARE] = fitted.weights.get("a" + SHARE, 0.0) + 0.3  # force one in
    restored = Fusion(components)
    restored.weights, restored.bias = dict(fitted.weights), fitted.bias
    np.testing.assert_array_equal(restored.score(cases), fitted.score(cases))
    np.testing.assert_array_equal(restored.top_k(cases, 5)[1], fitted.top_k(cases, 5)[1])
    old = Fusion(components)  # a rank-only state saved before the log-shares existed
    old.weights, old.bias = {"a": 0.7, "b": 0.2}, -2.0
    expected = expit(-2.0 + 0.7 * log_rank(a, ~exclude) + 0.2 * log_rank(b, ~exclude))
    np.testing.assert_allclose(old.score(cases), expected, rtol=1e-6)
    old.weights = {"a": 0.7, "c" + SHARE: 1.0}
    with pytest.raises(ValueError, match="name no component"):
        old.score(cases)
    with pytest.raises(ValueError, match="may not end in"):
        Fusion({"x" + SHARE: _Fixed(a)})


@given(_tied_problem(), st.integers(1, 6))
def test_prefixes_are_prefixes_of_the_full_ranking(problem, k):
    """Each yield: the next items of the full ranking (probability down, ties by code) with
    :meth:`Fusion.score`'s probabilities, twice as many as before; the last may be the whole
    catalogue in code order."""
    scores, exclude, weights, bias, _ = problem
    scores, exclude = [s[:1] for s in scores], exclude[:1]
    names = [f"c{i}" for i in range(len(scores))]
    fused = Fusion({name: _Fixed(s) for name, s in zip(names, scores)})
    fused.weights, fused.bias = _state(names, weights), bias
    cases = _cases(np.zeros(1), exclude)
    full = fused.score(cases)[0]
    n_items = full.size
    ranking = sorted(np.flatnonzero(~exclude[0]), key=lambda j: (-full[j], j))
    yields = list(fused.prefixes(cases, k))
    for i, (items, probs) in enumerate(yields):
        np.testing.assert_array_equal(probs, full[items], err_msg=f"yield {i}")
        if i + 1 == len(yields) and items.tolist() == list(range(n_items)):
            break  # the last yield may be the whole catalogue
        assert items.tolist() == ranking[: items.size], f"yield {i}: not a prefix"
        assert items.size == min(k << i, len(ranking)), f"yield {i}: {items.size} items"


def test_prefixes_read_the_best_items_only(rng):
    n_items = 4000
    scores = [rng.normal(size=(1, n_items)), rng.normal(size=(1, n_items))]
    exclude = rng.random((1, n_items)) < 0.1
    fused = Fusion({"a": _Fixed(scores[0]), "b": _Fixed(scores[1])})
    fused.weights, fused.bias = {"a": 1.0, "b": 0.5, "b" + SHARE: 0.3}, -2.0
    cases = _cases(np.zeros(1), exclude)
    first = next(fused.prefixes(cases, 8))
    assert first[0].size == 8, "the first prefix took the whole catalogue"
    _assert_same_top((first[0][None], first[1][None]), _full_top(fused, cases, 8), "first")
    with pytest.raises(ValueError, match="one case"):
        next(fused.prefixes(_cases(np.zeros(2), exclude[[0, 0]]), 8))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        next(fused.prefixes(cases, 0))


def test_prefixes_look_deeper_when_the_best_items_prove_nothing():
    """Item 4 is third in both components, below items that are first in one and last in the
    other: it is the fused best, although neither component's two best items hold it."""
    n_items = 40
    a = -np.arange(n_items, dtype=float)  # a ranks 0, 1, 4, ...
    a[[2, 3]] = -100.0
    a[4] = -1.5
    b = a.copy()  # b ranks 2, 3, 4, ...
    b[[0, 1, 2, 3]] = [-100.0, -101.0, 0.0, -1.0]
    fused = Fusion({"a": _Fixed(a[None]), "b": _Fixed(b[None])})
    fused.weights, fused.bias = {"a": 1.0, "b": 1.0}, 0.0
    cases = _cases(np.zeros(1), np.zeros((1, n_items), dtype=bool))
    items, probs = next(fused.prefixes(cases, 1))
    _assert_same_top((items[None], probs[None]), _full_top(fused, cases, 1), "top-1")
    assert items.tolist() == [4]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 40),
    st.integers(2, 30),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_grid_ndcg_equals_mixing_every_item(m, n, n_items, resolution, seed):
    """The pruned grid search of ``Fusion.fit`` gives every mixture exactly the mean NDCG@10
    of mixing the log-ranks of every item (ties in the scores, exclusions, few items)."""
    rng = np.random.default_rng(seed)
    allowed = rng.random((n, n_items)) < 0.8
    targets = rng.integers(0, n_items, n)
    allowed[np.arange(n), targets] = True
    scores = rng.integers(0, 4, (m, n, n_items)).astype(np.float32)  # many ties
    z = np.stack([log_rank(s, allowed) for s in scores])
    grid = simplex_grid(m, resolution)
    got = fusion._grid_ndcg(grid, z, allowed, targets)
    want = [fusion._ndcg_cases(fusion._mix(c, z), allowed, targets).mean() for c in grid]
    np.testing.assert_array_equal(got, want)
