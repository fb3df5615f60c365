"""The command line on CSV files: train, evaluate (table and JSON), recommend, errors."""

import json

import pytest

from bundlerec.cli import main
from bundlerec.datasets import synthetic_shop
from bundlerec.prep import split_leave_last_out

MODELS = {
    "sequence",
    "copurchase",
    "fusion",
    "popularity",
    "cooccurrence",
    "itemknn",
    "transition",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    events, items, users = synthetic_shop(n_users=120, n_items=50, n_days=20, seed=5)
    train, test = split_leave_last_out(events)
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    items.to_csv(root / "items.csv", index=False)
    users.to_parquet(root / "users.parquet")
    code = main(
        [
            "train",
            "--events",
            str(root / "train.csv"),
            "--items",
            str(root / "items.csv"),
            "--users",
            str(root / "users.parquet"),
            "--out",
            str(root / "model"),
            "--epochs",
            "2",
            "--n-top",
            "25",
            "--quiet",
        ]
    )
    assert code == 0
    return root, train


def test_evaluate_json_has_the_contract_shape(trained, capsys):
    root, _ = trained
    capsys.readouterr()
    code = main(
        [
            "evaluate",
            "--model",
            str(root / "model"),
            "--events",
            str(root / "test.csv"),
            "--protocol",
            "next-item",
            "--format",
            "json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "next-item" and out["n_cases"] > 0
    assert set(out["results"]) == MODELS
    for metrics in out["results"].values():
        for k in (5, 10, 20):
            for name in ("precision", "recall", "ndcg", "f1", "hitrate"):
                assert 0.0 <= metrics[f"{name}@{k}"] <= 1.0


def test_evaluate_basket_completion_table(trained, capsys, tmp_path):
    root, _ = trained
    # Held-out baskets of other shoppers (unknown to the model) over the same catalogue.
    other, _, _ = synthetic_shop(n_users=30, n_items=50, n_days=5, seed=6)
    other.to_csv(tmp_path / "baskets.csv", index=False)
    capsys.readouterr()
    code = main(
        [
            "evaluate",
            "--model",
            str(root / "model"),
            "--events",
            str(tmp_path / "baskets.csv"),
            "--protocol",
            "basket-completion",
            "--k",
            "5",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "recall@5" in out and "fusion" in out and "transition" not in out


def test_recommend_json(trained, capsys):
    root, train = trained
    user = train["user_id"].iloc[0]
    capsys.readouterr()
    code = main(
        [
            "recommend",
            "--model",
            str(root / "model"),
            "--user",
            str(user),
            "--k",
            "2",
            "--size",
            "2",
            "--budget",
            "100",
            "--format",
            "json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["user"] == str(user)
    assert set(out) == {"user", "bundles", "notes"}
    for b in out["bundles"]:
        assert set(b) == {"items", "total_price", "score", "probability", "explanation"}
        assert b["total_price"] <= 100
        assert {"item_id", "category", "price"} <= set(b["items"][0])


def test_unknown_anchor_is_an_error_naming_it(trained, capsys):
    root, train = trained
    code = main(
        ["recommend", "--model", str(root / "model"), "--user", "x", "--anchor", "ghost-item"]
    )
    assert code == 2
    assert "ghost-item" in capsys.readouterr().err


def test_missing_column_is_named(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("user_id,timestamp\nu1,1\n")
    code = main(["train", "--events", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "m")])
    assert code == 2
    assert "item_id" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
