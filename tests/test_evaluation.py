"""evaluate() and Report: hand-checked numbers, batching, JSON shape and exclusion."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.cases import Cases
from bundlerec.evaluation import Report, evaluate
from bundlerec.metrics import (
    coverage,
    f1_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    top_k,
)


class Fixed:
    """A scorer that looks its rows up by user code in a fixed (U, I) score table."""

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float32)

    def score(self, cases):
        return self.table[cases.users]


def make_cases(exclude, targets):
    """Cases for users 0..n-1 whose context is exactly their excluded items."""
    exclude = np.asarray(exclude, dtype=bool)
    n = exclude.shape[0]
    lengths = exclude.sum(axis=1)
    context = np.full((n, max(1, int(lengths.max()))), -1, dtype=np.int64)
    rows, cols = np.nonzero(exclude)
    context[rows, np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)] = cols
    return Cases(
        users=np.arange(n, dtype=np.int64),
        context=context,
        lengths=lengths.astype(np.int64),
        targets=np.asarray(targets, dtype=np.int64),
        exclude=sp.csr_matrix(exclude),
    )


def metric_keys(ks):
    names = ("precision", "recall", "f1", "ndcg", "hitrate", "coverage")
    return {f"{m}@{k}" for k in ks for m in names} | {"mrr"}


def assert_results_close(got, want, atol=1e-12):
    assert got.keys() == want.keys(), f"metric names differ: {got.keys() ^ want.keys()}"
    for key in want:
        assert abs(got[key] - want[key]) <= atol, f"{key}: got {got[key]}, want {want[key]}"


# Two cases over four items. Case 0 excludes item 0 and ranks 1 (.8), 3 (.5), 2 (.1);
# targets {1, 2}. Case 1 excludes item 2 and ranks 1 (.3), 0 (.2), 3 (.1); target {3}.
HAND = make_cases([[1, 0, 0, 0], [0, 0, 1, 0]], [[1, 2], [3, -1]])
HAND_SCORES = [[0.9, 0.8, 0.1, 0.5], [0.2, 0.3, 0.4, 0.1]]


def test_evaluate_by_hand():
    report = evaluate({"fixed": Fixed(HAND_SCORES)}, HAND, ks=(2, 1), protocol="toy")
    assert (report.protocol, report.n_cases) == ("toy", 2)
    # @1: case 0 list [1] hits (P 1, R 1/2, F1 2/3, NDCG 1); case 1 list [1] misses
    # @2: case 0 list [1 3] (P 1/2, R 1/2, F1 1/2, NDCG 1 / (1 + 1/log2 3)); case 1 [1 0] misses
    # MRR: case 0 target 1 at rank 1, case 1 target 3 at rank 3
    want = {
        "precision@1": 1 / 2,
        "recall@1": 1 / 4,
        "f1@1": 1 / 3,
        "ndcg@1": 1 / 2,
        "hitrate@1": 1 / 2,
        "coverage@1": 1 / 4,
        "precision@2": 1 / 4,
        "recall@2": 1 / 4,
        "f1@2": 1 / 4,
        "ndcg@2": 0.5 / (1 + 1 / np.log2(3)),
        "hitrate@2": 1 / 2,
        "coverage@2": 3 / 4,
        "mrr": (1 + 1 / 3) / 2,
    }
    assert_results_close(report.results["fixed"], want)


def test_json_has_the_contract_shape():
    report = evaluate({"a": Fixed(HAND_SCORES), "b": Fixed(np.zeros((2, 4)))}, HAND)
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {"protocol", "n_cases", "results"}
    assert data["protocol"] == "unspecified" and data["n_cases"] == 2
    assert list(data["results"]) == ["a", "b"]
    for name, values in data["results"].items():
        assert set(values) == metric_keys((5, 10, 20)), f"{name}: {sorted(values)}"
        assert all(type(v) is float and 0 <= v <= 1 for v in values.values()), values


def test_table_marks_the_best():
    report = Report(
        "next-item",
        3,
        {
            "pop": {k: 0.1 for k in metric_keys((10,))},
            "knn": {k: 0.2 if k != "mrr" else 0.05 for k in metric_keys((10,))},
        },
    )
    lines = report.to_table(10).splitlines()
    assert "next-item" in lines[0] and "3" in lines[0]
    assert lines[1].split() == [
        "model",
        *[f"{m}@10" for m in ("precision", "recall", "f1", "ndcg", "hitrate", "coverage")],
        "mrr",
    ]
    pop, knn = lines[2].split(), lines[3].split()
    assert pop[0] == "pop" and knn[0] == "knn"
    assert pop[1:] == ["0.1000"] * 6 + ["0.1000*"], pop
    assert knn[1:] == ["0.2000*"] * 6 + ["0.0500"], knn
    with pytest.raises(KeyError, match="precision@5"):
        report.to_table(5)


def test_excluded_items_are_never_recommended():
    # the model scores exactly the excluded items highest and the targets are among them
    exclude = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 1, 1], [1, 0, 1, 0, 1]], dtype=bool)
    cases = make_cases(exclude, [[0, 1], [3, -1], [4, 2]])
    adversarial = Fixed(exclude * 10.0 + np.arange(5) / 10)
    results = evaluate({"adversarial": adversarial}, cases, ks=(1, 5)).results["adversarial"]
    for key, value in results.items():
        if not key.startswith("coverage"):
            assert value == 0, f"{key} = {value}: an excluded target was recommended"
    # case 0 recommends 4 at @1, case 1 recommends 2, case 2 recommends 3
    assert results["coverage@1"] == 3 / 5


@given(st.integers(1, 7), st.integers(1, 9), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_batches_match_one_pass(n, n_items, batch_size, seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(n, n_items)), 1).astype(np.float32)  # ties happen
    exclude = rng.random((n, n_items)) < 0.3
    targets = rng.integers(-1, n_items, size=(n, 3))
    targets[:, 0] = rng.integers(0, n_items, size=n)
    cases = make_cases(exclude, targets)
    ks = (1, 3)
    got = evaluate({"m": Fixed(scores)}, cases, ks=ks, batch_size=batch_size).results["m"]
    lists = top_k(scores, 3, exclude)
    functions = {
        "precision": precision_at_k,
        "recall": recall_at_k,
        "f1": f1_at_k,
        "ndcg": ndcg_at_k,
        "hitrate": hit_rate_at_k,
    }
    want = {
        f"{m}@{k}": float(fn(lists, targets, k).mean()) for k in ks for m, fn in functions.items()
    }
    want |= {f"coverage@{k}": coverage(lists[:, :k], n_items) for k in ks}
    want["mrr"] = float(reciprocal_rank(scores, targets, exclude).mean())
    assert_results_close(got, want)


class WrongShape:
    def score(self, cases):
        return np.zeros((len(cases.users), 3), dtype=np.float32)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: evaluate({}, HAND), "at least one scorer"),
        (lambda: evaluate({"m": Fixed(HAND_SCORES)}, HAND, ks=(0, 5)), "positive integers"),
        (lambda: evaluate({"m": Fixed(HAND_SCORES)}, HAND, batch_size=0), "batch_size"),
        (lambda: evaluate({"bad": WrongShape()}, HAND), "'bad' returned scores of shape"),
        (
            lambda: evaluate({"m": Fixed(HAND_SCORES)}, make_cases(np.eye(2, 4), [[1], [-1]])),
            "1 case\\(s\\) have no target",
        ),
    ],
)
def test_bad_input_is_named(call, words):
    with pytest.raises(ValueError, match=words):
        call()
