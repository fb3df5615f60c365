"""Ranking metrics: hand-checked examples, a brute-force oracle and hypothesis properties."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bundlerec.bundle_eval import expected_calibration_error
from bundlerec.metrics import (
    coverage,
    f1_at_k,
    hit_rate_at_k,
    hits,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    reliability_table,
    top_k,
)

PER_CASE = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "f1": f1_at_k,
    "ndcg": ndcg_at_k,
    "hitrate": hit_rate_at_k,
}


def assert_close(name, got, want, atol=1e-12):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = np.abs(got - want)
    worst = np.unravel_index(err.argmax(), err.shape) if err.size else None
    assert err.max(initial=0.0) <= atol, (
        f"{name}: max abs difference {err.max():.3g} at {worst}\n got  {got}\n want {want}"
    )


# --- hand-checked examples -------------------------------------------------------------------

SCORES = np.array([[0.1, 0.5, 0.5, 0.2, -np.inf], [1, 1, 1, 1, 1]], dtype=np.float32)
EXCLUDE = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 0, 0, 0, 1]], dtype=bool))


def test_top_k_by_hand():
    # row 0: 0.5 (items 1, 2 tied -> 1 first), 0.2 (3), 0.1 (0), -inf (4)
    np.testing.assert_array_equal(top_k(SCORES, 3), [[1, 2, 3], [0, 1, 2]])
    # item 1 excluded in row 0; items 0, 4 excluded in row 1 leave only 3 recommendable items
    got = top_k(SCORES, 6, EXCLUDE)
    np.testing.assert_array_equal(got, [[2, 3, 0, 4, -1, -1], [1, 2, 3, -1, -1, -1]])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(top_k(SCORES, 2, EXCLUDE.toarray()), got[:, :2])


REC = np.array([[3, 1, 4, 0], [2, 0, 1, -1], [7, 8, 9, 6]])
TARGETS = np.array([[1, 0, -1], [5, -1, -1], [9, 9, -1]])  # duplicated 9 counts once


def test_list_metrics_by_hand():
    # relevance: row 0 [0 1 0 1] of |T| = 2; row 1 no hit; row 2 [0 0 1 0] of |T| = 1
    np.testing.assert_array_equal(hits(REC, TARGETS), [[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]])
    log3, log5 = np.log2(3), np.log2(5)
    want = {
        ("precision", 2): [1 / 2, 0, 0],
        ("precision", 4): [2 / 4, 0, 1 / 4],
        ("recall", 2): [1 / 2, 0, 0],
        ("recall", 4): [1, 0, 1],
        ("f1", 2): [1 / 2, 0, 0],
        ("f1", 4): [2 * 0.5 * 1 / 1.5, 0, 2 * 0.25 * 1 / 1.25],
        ("ndcg", 2): [(1 / log3) / (1 + 1 / log3), 0, 0],
        ("ndcg", 4): [(1 / log3 + 1 / log5) / (1 + 1 / log3), 0, (1 / 2) / 1],
        ("hitrate", 1): [0, 0, 0],
        ("hitrate", 2): [1, 0, 0],
        ("hitrate", 4): [1, 0, 1],
    }
    for (name, k), value in want.items():
        assert_close(f"{name}@{k}", PER_CASE[name](REC, TARGETS, k), value)


def test_reciprocal_rank_and_coverage_by_hand():
    targets = np.array([[4, -1], [0, 3]])
    # no exclusion: row 0 order 1 2 3 0 4 -> item 4 at rank 5; row 1 item 0 at rank 1
    assert_close("rr", reciprocal_rank(SCORES, targets), [1 / 5, 1])
    # excluded: row 0 order 2 3 0 4 -> rank 4; row 1 target 0 excluded, order 1 2 3 -> 3 at rank 3
    assert_close("rr excluded", reciprocal_rank(SCORES, targets, EXCLUDE), [1 / 4, 1 / 3])
    # every target excluded -> 0
    assert_close("rr none", reciprocal_rank(SCORES, np.array([[1], [4]]), EXCLUDE), [0, 0])
    assert coverage(np.array([[0, 1], [1, 2], [-1, -1]]), 5) == 3 / 5


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: top_k(np.array([[0.0, np.nan]]), 1), ValueError, "NaN"),
        (lambda: top_k(SCORES, 0), ValueError, "positive integer"),
        (lambda: top_k(SCORES, 2, np.zeros((2, 3), bool)), ValueError, "shape"),
        (lambda: top_k(SCORES.astype(complex), 2), TypeError, "real numeric"),
        (lambda: recall_at_k(REC, np.array([[1], [-1], [2]]), 2), ValueError, "no target"),
        (lambda: recall_at_k(REC, TARGETS, 5), ValueError, "exceeds"),
        (lambda: recall_at_k(REC, TARGETS.astype(float), 2), TypeError, "integer"),
        (lambda: reciprocal_rank(SCORES, np.array([[9], [0]])), ValueError, "n_items"),
        (lambda: coverage(REC, 5), ValueError, "n_items"),
    ],
)
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


# --- brute-force oracle and properties -----------------------------------------------------


@st.composite
def ranking_problems(draw):
    """Scores with many ties and -inf, an exclusion mask, targets (>= 1 per case) and k."""
    n = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 12))
    values = st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.5, -np.inf])
    scores = draw(hnp.arrays(np.float32, (n, n_items), elements=values))
    exclude = draw(hnp.arrays(np.bool_, (n, n_items)))
    m = draw(st.integers(1, 4))
    targets = draw(hnp.arrays(np.int64, (n, m), elements=st.integers(-1, n_items - 1)))
    targets[:, 0] = draw(hnp.arrays(np.int64, n, elements=st.integers(0, n_items - 1)))
    k = draw(st.integers(1, n_items + 2))
    return scores, exclude, targets, k


def brute_force(scores, exclude, targets, k):
    """Per-case loops over Python sets: the definitions, written the slow way."""
    out = {name: [] for name in (*PER_CASE, "rr")}
    lists = []
    for s, ex, t in zip(scores, exclude, targets, strict=True):
        ranking = sorted((j for j in range(s.size) if not ex[j]), key=lambda j: (-s[j], j))
        lists.append(ranking[:k] + [-1] * (k - len(ranking[:k])))
        wanted = {int(j) for j in t if j >= 0}
        rel = [j in wanted for j in ranking[:k]]
        p, r = sum(rel) / k, sum(rel) / len(wanted)
        out["precision"].append(p)
        out["recall"].append(r)
        out["f1"].append(0.0 if p + r == 0 else 2 * p * r / (p + r))
        dcg = sum(x / np.log2(i + 2) for i, x in enumerate(rel))
        out["ndcg"].append(dcg / sum(1 / np.log2(i + 2) for i in range(min(len(wanted), k))))
        out["hitrate"].append(float(any(rel)))
        first = [pos for pos, j in enumerate(ranking) if j in wanted]
        out["rr"].append(1 / (first[0] + 1) if first else 0.0)
    return np.array(lists, dtype=np.int64).reshape(len(lists), k), out


@given(ranking_problems())
def test_metrics_match_brute_force(problem):
    scores, exclude, targets, k = problem
    want_lists, want = brute_force(scores, exclude, targets, k)
    lists = top_k(scores, k, sp.csr_matrix(exclude))
    np.testing.assert_array_equal(lists, want_lists, err_msg=f"top_k differs, k={k}")
    for name, fn in PER_CASE.items():
        assert_close(f"{name}@{k}", fn(lists, targets, k), want[name], atol=1e-9)
    assert_close("reciprocal rank", reciprocal_rank(scores, targets, exclude), want["rr"])


@given(ranking_problems())
def test_properties_range_monotone_prefix(problem):
    scores, exclude, targets, _ = problem
    n_items = scores.shape[1]
    lists = top_k(scores, n_items, exclude)
    assert not exclude[np.arange(len(lists))[:, None], lists][lists >= 0].any(), (
        "an excluded item was recommended"
    )
    previous = {name: np.zeros(len(lists)) for name in ("recall", "hitrate")}
    for k in range(1, n_items + 1):
        np.testing.assert_array_equal(
            top_k(scores, k, exclude), lists[:, :k], err_msg=f"top_k({k}) is not a prefix"
        )
        for name, fn in PER_CASE.items():
            value = fn(lists, targets, k)
            assert ((value >= 0) & (value <= 1 + 1e-12)).all(), f"{name}@{k} outside [0, 1]"
            if name in previous:
                drop = previous[name] - value
                assert drop.max() <= 0, f"{name}@{k} decreased by {drop.max()} from @{k - 1}"
                previous[name] = value
    assert 0 <= coverage(lists, n_items) <= 1


@given(ranking_problems())
def test_perfect_ranking_scores_one(problem):
    scores, _, targets, _ = problem
    n_items = scores.shape[1]
    # the targets get the highest scores and nothing is excluded
    ideal = np.zeros_like(scores)
    rows = np.arange(len(targets))[:, None]
    ideal[rows, np.maximum(targets, 0)] = np.where(targets >= 0, 1.0, 0.0)
    n_targets = np.array([len({int(j) for j in t if j >= 0}) for t in targets])
    lists = top_k(ideal, n_items)
    for k in range(1, n_items + 1):
        assert_close(f"ndcg@{k}", ndcg_at_k(lists, targets, k), np.ones(len(lists)))
        assert_close(f"hitrate@{k}", hit_rate_at_k(lists, targets, k), np.ones(len(lists)))
        full = k >= n_targets
        assert_close(f"recall@{k}", recall_at_k(lists, targets, k)[full], np.ones(full.sum()))
        short = k <= n_targets
        assert_close(
            f"precision@{k}", precision_at_k(lists, targets, k)[short], np.ones(short.sum())
        )
    assert_close("rr", reciprocal_rank(ideal, targets), np.ones(len(lists)))


@st.composite
def _predictions(draw):
    n = draw(st.integers(1, 60))
    p = draw(
        hnp.arrays(
            np.float64,
            n,
            elements=st.one_of(
                st.floats(0, 1), st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
            ),
        )
    )
    y = draw(hnp.arrays(bool, n))
    return p, y, draw(st.integers(1, 12))


@given(_predictions())
def test_reliability_table_matches_a_loop_over_bins(case):
    p, y, n_bins = case
    table = reliability_table(p, y, n_bins)
    edges = np.linspace(0, 1, n_bins + 1)
    np.testing.assert_array_equal(table.edges, edges)
    for b in range(n_bins):
        upper = p <= 1 if b == n_bins - 1 else p < edges[b + 1]
        members = [i for i in range(p.size) if edges[b] <= p[i] and upper[i]]
        assert table.count[b] == len(members), f"bin {b}: {table.count[b]} != {len(members)}"
        if not members:
            assert np.isnan(table.mean_predicted[b]) and np.isnan(table.observed_rate[b])
            continue
        mean_p = sum(p[i] for i in members) / len(members)
        rate = sum(int(y[i]) for i in members) / len(members)
        assert table.mean_predicted[b] == pytest.approx(mean_p, rel=1e-12, abs=1e-15), b
        assert table.observed_rate[b] == pytest.approx(rate, rel=1e-12), b
    assert table.count.sum() == p.size
    ece = (
        sum(
            abs(table.mean_predicted[b] - table.observed_rate[b]) * table.count[b]
            for b in range(n_bins)
            if table.count[b]
        )
        / p.size
    )
    assert table.ece() == pytest.approx(ece, rel=1e-9, abs=1e-15)


@given(_predictions())
def test_reliability_ece_equals_the_bundle_protocol_ece_away_from_edges(case):
    p, y, n_bins = case
    near_edge = np.abs(p * n_bins - np.round(p * n_bins)) < 1e-9
    p = np.where(near_edge & (p < 1), p + 0.5 / n_bins, p)  # move off the edges (both agree)
    p = np.minimum(p, 1.0)
    got = reliability_table(p, y, n_bins).ece()
    expected = expected_calibration_error(p, y.astype(float), n_bins)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_reliability_table_edge_cases_and_bad_input():
    table = reliability_table(np.array([0.0, 1.0, 1.0]), np.array([0, 1, 0]), n_bins=2)
    np.testing.assert_array_equal(table.count, [1, 2])
    np.testing.assert_array_equal(table.observed_rate, [0.0, 0.5])
    assert table.ece() == pytest.approx((0 + 2 * 0.5) / 3)
    assert "[0.50, 1.00)" in table.to_table()
    with pytest.raises(ValueError, match="at least one prediction"):
        reliability_table(np.array([]), np.array([]))
    with pytest.raises(ValueError, match=r"\[0, 1\], got 1.5"):
        reliability_table(np.array([0.2, 1.5]), np.array([0, 1]))
    with pytest.raises(ValueError, match="0/1 or bool"):
        reliability_table(np.array([0.2]), np.array([2]))
    with pytest.raises(ValueError, match="one shape"):
        reliability_table(np.array([0.2]), np.array([1, 0]))
    with pytest.raises(ValueError, match="n_bins"):
        reliability_table(np.array([0.2]), np.array([1]), n_bins=0)
