"""Audiences: every shopper scored at once, exact top N, against a per-shopper oracle; the CLI;
the time-split evaluation."""

import json
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import expit, logsumexp

from bundlerec import cli
from bundlerec.audience import HORIZON_DAYS, expected_purchases, top_shoppers
from bundlerec.audience_eval import evaluate_audiences, item_metrics
from bundlerec.datasets import synthetic_shop
from bundlerec.prep import split_global_time
from bundlerec.recommender import Recommender

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}


@pytest.fixture(scope="module")
def shop():
    events, items, users = synthetic_shop(n_users=150, n_items=60, n_days=30, seed=3)
    return split_global_time(events, test_share=0.3), items, users


@pytest.fixture(scope="module")
def model(shop):
    (train, _), items, users = shop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recommender(sequence=SMALL_SEQ, network={"n_top": 30}).fit(train, items, users)


def _oracle(model, j):
    """(U,) calibrated probability of item j, one shopper at a time from the model's scores."""
    a, c = model.audience_calibration
    out = []
    for u in range(len(model.users.classes_)):
        s = model.sequence.score(model._serving_cases(np.array([u]), [], []))[0].astype(float)
        out.append(expit(a + c * (s[j] - logsumexp(s))))
    return np.array(out)


def test_item_audience_matches_the_per_shopper_oracle(model):
    j = 5
    item = str(model.items.classes_[j])
    got = model.audience([item], n=10_000, horizon_days=None)
    assert got["items"] == [item]
    want = _oracle(model, j)
    h = model.history
    owners = set(h.user[(h.item == j) & (h.event == 3)].tolist())
    expected = [u for u in range(want.size) if u not in owners]
    assert len(got["users"]) == len(expected), "owners are left out, everyone else is scored"
    codes = model.users.transform([r["user_id"] for r in got["users"]])
    probs = np.array([r["probability"] for r in got["users"]])
    np.testing.assert_allclose(probs, want[codes], rtol=2e-4, atol=1e-7)
    assert (np.diff(probs) <= 0).all(), "best first"
    assert not owners & set(codes.tolist())


def test_top_n_is_the_head_of_the_full_ranking_and_min_probability_cuts(model):
    item = str(model.items.classes_[7])
    full = model.audience(item, n=10_000)["users"]
    top = model.audience(item, n=12)["users"]
    assert top == full[:12]
    cut = full[20]["probability"]
    kept = model.audience(item, n=10_000, min_probability=cut)["users"]
    assert kept and all(r["probability"] >= cut for r in kept)
    assert len(kept) == sum(r["probability"] >= cut for r in full)


def test_bundle_category_and_brand_audiences(model):
    a, b = (str(model.items.classes_[j]) for j in (3, 4))
    want = _oracle(model, 3) * _oracle(model, 4)  # both bought, taken as independent
    both = model.audience([a, b], n=10_000, horizon_days=None)
    codes = model.users.transform([r["user_id"] for r in both["users"]])
    probs = np.array([r["probability"] for r in both["users"]])
    np.testing.assert_allclose(probs, want[codes], rtol=5e-4, atol=1e-9)
    category = str(model.catalogue.category[3])
    members = np.flatnonzero(model.catalogue.category == category)
    result = model.audience(category=category, n=5, horizon_days=None)
    assert result["category"] == category
    assert result["items"] == [str(model.items.classes_[j]) for j in members]
    # Any of the category: the sum of the single-item probabilities (owners included).
    u = model.users.code(result["users"][0]["user_id"])
    single = _oracle(model, members[0])[u]
    assert result["users"][0]["probability"] >= single
    brand = model.audience(brand="food-brand-1", n=3)
    assert brand["brand"] == "food-brand-1" and len(brand["users"]) == 3


def _purchases(model, days):
    h = model.history
    bought = h.event == 3
    return expected_purchases(h.user[bought], h.timestamp[bought], len(model.users.classes_), days)


def test_audiences_default_to_buying_within_the_horizon(model):
    j = 5
    item = str(model.items.classes_[j])
    default = model.audience(item, n=10_000)
    assert default == model.audience(item, n=10_000, horizon_days=HORIZON_DAYS)
    codes = model.users.transform([r["user_id"] for r in default["users"]])
    probs = np.array([r["probability"] for r in default["users"]])
    want = -np.expm1(-_purchases(model, HORIZON_DAYS) * _oracle(model, j))
    np.testing.assert_allclose(probs, want[codes], rtol=5e-4, atol=1e-9)
    week = model.audience(item, n=10_000, horizon_days=7)
    assert week != default, "the horizon changes the answer"
    for bad in (0.0, -3.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="horizon_days"):
            model.audience(item, horizon_days=bad)


@given(arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 5)), st.integers(1, 60))
def test_expected_purchases_keep_the_mean_and_the_order_of_the_counts(counts, days):
    """Counts ``c_u`` over the last ``days`` days (every purchase inside the window): the
    Gamma-Poisson ``m_u`` have the counts' mean and never reverse their order."""
    user = np.repeat(np.arange(counts.size), counts)
    timestamp = np.full(user.size, 10**9)
    m = expected_purchases(user, timestamp, counts.size, days)
    assert m.shape == counts.shape and (m >= 0).all()
    np.testing.assert_allclose(m.mean(), counts.mean(), rtol=1e-9, atol=1e-12)
    order = np.argsort(counts, kind="stable")
    assert (np.diff(m[order]) >= -1e-12).all()


def test_audience_errors(model):
    with pytest.raises(KeyError, match="no-such"):
        model.audience(["no-such"])
    with pytest.raises(KeyError, match="category"):
        model.audience(category="spaceships")
    with pytest.raises(KeyError, match="brand"):
        model.audience(brand="acme")
    with pytest.raises(ValueError, match="exactly one"):
        model.audience(["i0001"], category="pasta")
    with pytest.raises(ValueError, match="n must"):
        model.audience(["i0001"], n=0)
    with pytest.raises(ValueError, match="min_probability"):
        model.audience(["i0001"], min_probability=1.5)


@given(
    arrays(np.float64, st.integers(0, 60), elements=st.sampled_from([0.1, 0.2, 0.5, -np.inf])),
    st.integers(1, 70),
)
def test_top_shoppers_is_exact_with_ties_to_the_lower_code(scores, n):
    codes, probs = top_shoppers(scores, n)
    ranked = sorted((-s, u) for u, s in enumerate(scores) if np.isfinite(s))[:n]
    assert codes.tolist() == [u for _, u in ranked]
    assert probs.tolist() == [-s for s, _ in ranked]


def test_save_load_keeps_audiences(model, tmp_path):
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    item = str(model.items.classes_[2])
    assert loaded.audience(item, n=20) == model.audience(item, n=20)


def test_cli_audience_json_csv_and_errors(model, tmp_path, capsys):
    model.save(tmp_path / "m")
    item = str(model.items.classes_[2])
    assert (
        cli.main(["audience", "--model", str(tmp_path / "m"), "--items", item, "--top", "4"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out == json.loads(json.dumps(model.audience(item, n=4)))
    args = ["audience", "--model", str(tmp_path / "m"), "--category", "pasta", "--top", "3"]
    assert cli.main([*args, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "user_id,probability" and len(lines) == 4
    assert cli.main([*args, "--out", str(tmp_path / "a.csv")]) == 0
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == "user_id,probability"
    code = cli.main(["audience", "--model", str(tmp_path / "m"), "--items", "nope"])
    assert code == 2 and "nope" in capsys.readouterr().err
    base = ["audience", "--model", str(tmp_path / "m"), "--items", item, "--top", "4"]
    for flags, horizon in (
        (["--next-purchase"], None),
        (["--horizon-days", "7"], 7.0),
        ([], HORIZON_DAYS),
    ):
        assert cli.main([*base, *flags]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out == json.loads(json.dumps(model.audience(item, n=4, horizon_days=horizon)))
    with pytest.raises(SystemExit):
        cli.main([*base, "--next-purchase", "--horizon-days", "7"])


def test_item_metrics_oracles():
    bought = np.array([True, False, True, False, False])
    perfect = item_metrics(bought.astype(float), bought, 2)
    assert perfect == (1.0, 1.0, 1.0)
    flat = item_metrics(np.zeros(5), bought, 2)  # ties: first codes, AUC one half
    assert flat == (0.5, 0.5, 0.5)
    assert item_metrics(-bought.astype(float), bought, 2)[2] == 0.0


def test_evaluate_audiences_runs_all_methods(model, shop):
    (_, test), _, _ = shop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate_audiences(model, test, n=10, min_buyers=2, horizons=(7.0,))
    assert result["n_items"] > 0 and set(result["results"]) == {
        "bundlerec",
        "bundlerec_next",
        "bundlerec_7d",
        "most_active",
        "itemknn_reversed",
    }
    for values in result["results"].values():
        assert all(0.0 <= v <= 1.0 for v in values.values())
    with pytest.raises(ValueError, match="new buyers"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate_audiences(model, test, min_buyers=10_000)


def test_events_refresh_only_the_touched_shoppers_rows_of_the_index(model, tmp_path, monkeypatch):
    import pandas as pd

    model.save(tmp_path / "m")
    live = Recommender.load(tmp_path / "m")
    index = live._audience_index()
    shoppers = [str(live.users.classes_[k]) for k in (3, 40)]
    t0 = int(live.history.timestamp.max()) + 10_000
    items = [str(live.items.classes_[j]) for j in (1, 2, 7)]
    events = pd.DataFrame(
        {
            "user_id": [shoppers[0], shoppers[1], "newcomer"],
            "item_id": items,
            "timestamp": [t0, t0 + 60, t0 + 120],
            "event": "purchase",
        }
    )
    live.update(events)
    rows = []
    vectors = live.sequence.user_vectors
    monkeypatch.setattr(
        live.sequence, "user_vectors", lambda cases: rows.append(len(cases)) or vectors(cases)
    )
    refreshed = live._audience_index()
    assert sum(rows) == 3, "only the two shoppers with events and the newcomer are recomputed"
    assert refreshed.vectors.shape[0] == index.vectors.shape[0] + 1
    live._audience = None  # the whole index, built from scratch
    whole = live._audience_index()
    np.testing.assert_allclose(refreshed.vectors, whole.vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(refreshed.log_norm, whole.log_norm, rtol=1e-6, atol=1e-6)
    assert (refreshed.owners != whole.owners).nnz == 0
    got = live.audience([items[0]], n=20)
    live._audience = refreshed
    assert live.audience([items[0]], n=20) == got
    assert shoppers[0] not in [r["user_id"] for r in got["users"]], "a buyer now: left out"
