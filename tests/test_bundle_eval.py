"""The bundle protocol: metrics on held-out baskets, ECE by hand, the CLI's bundle table."""

import json
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.bundle_eval import anchor_plus_two, evaluate_bundles, expected_calibration_error
from bundlerec.cli import main
from bundlerec.datasets import synthetic_shop
from bundlerec.prep import clean, split_baskets
from bundlerec.recommender import Recommender

METHODS = {"bundlerec", "popularity", "cooccurrence", "ease", "rules"}
PLUS_TWO = METHODS | {"cooc_top2", "frequent_triple"}
METRICS = {"coverage", "precision", "hit", "ece", "mean_probability", "outcome_rate"}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    events, items, users = synthetic_shop(n_users=200, n_items=60, n_days=30, seed=4)
    train, test = split_baskets(clean(events), 0.2, 0)
    train, test = (part.drop(columns="basket") for part in (train, test))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(
            task="basket-completion",
            sequence={"dim": 8, "hidden": 16, "epochs": 1, "patience": None},
            network={"n_top": 25},
        ).fit(train, items, users)
    root = tmp_path_factory.mktemp("bundle_eval")
    model.save(root / "model")
    test.to_csv(root / "test.csv", index=False)
    return model, test, root


@given(p=st.lists(st.floats(0, 1), min_size=1, max_size=40), seed=st.integers(0, 100))
def test_ece_matches_its_definition(p, seed):
    p = np.array(p)
    y = np.random.default_rng(seed).random(p.size) < 0.5
    bins = [min(int(v * 10), 9) for v in p]
    want = (
        sum(
            abs(
                sum(p[i] for i in range(p.size) if bins[i] == b)
                - sum(y[i] for i in range(p.size) if bins[i] == b)
            )
            for b in range(10)
        )
        / p.size
    )
    assert expected_calibration_error(p, y) == pytest.approx(want, abs=1e-12)


def test_protocol_reports_every_method_with_bounded_metrics(fitted):
    model, test, _ = fitted
    result = evaluate_bundles(model, test, size=3, seed=0, max_cases=60)
    assert result["protocol"] == "bundle" and 0 < result["n_cases"] <= 60
    assert set(result["results"]) == METHODS
    for values in result["results"].values():
        assert set(values) == METRICS
        assert all(0.0 <= values[m] <= 1.0 for m in METRICS), values
        assert values["precision"] <= values["hit"] + 1e-12
    plus_two = result["anchor_plus_2"]
    assert set(plus_two["results"]) == PLUS_TWO and 0 < plus_two["n_cases"] <= 60
    assert all(0.0 <= v <= 1.0 for v in plus_two["results"].values()), plus_two
    json.dumps(result)


def test_anchor_plus_two_alone_matches_the_bundle_run_and_counts_by_hand(fitted, monkeypatch):
    model, test, _ = fitted
    alone = anchor_plus_two(model, test, seed=3, max_cases=40)
    assert (
        alone["results"]
        == evaluate_bundles(model, test, seed=3, max_cases=40)["anchor_plus_2"]["results"]
    )
    # every method proposing the rest of the basket itself scores 1
    from bundlerec import bundle_eval

    def perfect(model, held, rows, size, cap, baselines):
        picks = [tuple(held.cases.context[r, :2]) for r in rows]
        return {"oracle": [bundle_eval.Bundle(p, 0.0, 0.0, 0.0) for p in picks]}

    monkeypatch.setattr(bundle_eval, "_method_bundles", perfect)
    result = anchor_plus_two(model, test, seed=3, max_cases=40)
    assert result["results"]["oracle"] == 1.0


def test_bundlerec_alone_scores_as_in_the_full_run(fitted):
    model, test, _ = fitted
    full = evaluate_bundles(model, test, seed=3, max_cases=40)
    alone = evaluate_bundles(model, test, seed=3, max_cases=40, baselines=False)
    assert list(alone["results"]) == ["bundlerec"]
    assert alone["results"]["bundlerec"] == full["results"]["bundlerec"]
    assert alone["anchor_plus_2"]["results"] == {
        "bundlerec": full["anchor_plus_2"]["results"]["bundlerec"]
    }


def test_cli_bundle_protocol_prints_the_table(fitted, capsys):
    _, _, root = fitted
    capsys.readouterr()
    args = ["evaluate", "--model", str(root / "model"), "--events", str(root / "test.csv")]
    assert main([*args, "--protocol", "bundle", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "protocol: bundle" in out and all(name in out for name in METHODS)
