"""The command line on CSV files: train, evaluate (table and JSON), recommend, errors."""

import json
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bundlerec.cli import main
from bundlerec.datasets import synthetic_shop
from bundlerec.prep import split_leave_last_out

MODELS = {
    "sequence",
    "copurchase",
    "pairwise",
    "fusion",
    "popularity",
    "cooccurrence",
    "itemknn",
    "ease",
    "rules",
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


def test_a_saved_model_is_readable_by_a_service_running_as_another_user(trained):
    """The model directory and every file in it are ordinary (0o755 / 0o644), not the private
    modes of the temporary files they were written through."""
    root, _ = trained
    model = root / "model"
    assert stat.S_IMODE(model.stat().st_mode) == 0o755
    files = sorted(model.iterdir())
    assert {f.name for f in files} >= {"arrays.npz", "meta.json", "network.bif"}
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) & 0o044 == 0o044, file.name


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
    assert len(out["bundles"]) >= 1, out["notes"]
    for b in out["bundles"]:
        assert set(b) == {
            "items",
            "anchor",
            "total_price",
            "lift",
            "baskets_together",
            "p_any_companion",
            "expected_revenue",
            "probability",
            "score",
            "explanation",
        }
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


# -- destinations: nothing of the user's is ever lost -------------------------------------------
def _no_training(monkeypatch):
    """Make any training attempt fail loudly: destination checks must come first."""
    from bundlerec.recommender import Recommender

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the destination was checked")

    monkeypatch.setattr(Recommender, "fit", refuse)


def test_train_refuses_a_folder_of_user_files(trained, tmp_path, capsys, monkeypatch):
    root, _ = trained
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "sales.csv").write_text("precious,data\n1,2\n")
    _no_training(monkeypatch)
    code = main(["train", "--events", str(root / "train.csv"), "--out", str(folder), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "not a bundlerec model directory" in err and str(folder) in err
    assert len(err.strip().splitlines()) == 1
    assert (folder / "sales.csv").read_text() == "precious,data\n1,2\n"


def test_train_refuses_a_file(trained, tmp_path, capsys, monkeypatch):
    root, _ = trained
    target = tmp_path / "d"
    target.write_text("keep me")
    _no_training(monkeypatch)
    code = main(["train", "--events", str(root / "train.csv"), "--out", str(target), "--quiet"])
    assert code == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_train_refuses_the_current_directory(trained, tmp_path, capsys, monkeypatch):
    root, _ = trained
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    _no_training(monkeypatch)
    code = main(["train", "--events", str(root / "train.csv"), "--out", ".", "--quiet"])
    assert code == 2
    assert "current directory" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def _unwritable_dir(tmp_path):
    """A directory this process cannot create entries in (root ignores modes: use /sys)."""
    import os
    import tempfile

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    for candidate in (locked, Path("/sys")):
        try:
            os.rmdir(tempfile.mkdtemp(dir=candidate))
        except OSError:
            return candidate
    pytest.skip("no unwritable directory on this machine")


def test_unwritable_destination_fails_before_training(trained, tmp_path, capsys, monkeypatch):
    root, _ = trained
    _no_training(monkeypatch)
    out = _unwritable_dir(tmp_path) / "model"
    code = main(["train", "--events", str(root / "train.csv"), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot write there" in err and len(err.strip().splitlines()) == 1


def test_split_checks_its_outputs_first(trained, tmp_path, capsys):
    root, _ = trained
    out = _unwritable_dir(tmp_path)
    code = main(
        [
            "split",
            "--events",
            str(root / "test.csv"),
            "--protocol",
            "next-item",
            "--train",
            str(out / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
        ]
    )
    assert code == 2
    assert "bundlerec split: error:" in capsys.readouterr().err
    assert not (tmp_path / "test.csv").exists()


def test_train_replaces_an_existing_model(trained, tmp_path, capsys):
    root, _ = trained
    out = tmp_path / "model"
    args = ["train", "--events", str(root / "train.csv"), "--out", str(out), "--quiet"]
    args += ["--epochs", "1", "--n-top", "10"]
    assert main(args) == 0
    first = (out / "meta.json").read_text()
    assert main([*args[:-4], "--epochs", "1", "--n-top", "12"]) == 0
    assert (out / "meta.json").read_text() != first
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary left behind


def test_missing_input_file_is_one_line(trained, capsys):
    root, _ = trained
    code = main(
        ["evaluate", "--model", str(root / "model"), "--events", "nope.csv"]
        + ["--protocol", "next-item"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("bundlerec evaluate: error:") and "nope.csv" in err
    assert len(err.strip().splitlines()) == 1


def test_evaluate_accepts_any_positive_k(trained, capsys):
    root, _ = trained
    capsys.readouterr()
    args = ["evaluate", "--model", str(root / "model"), "--events", str(root / "test.csv")]
    code = main([*args, "--protocol", "next-item", "--k", "7", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "recall@7" in out and "ndcg@7" in out


def test_ctrl_c_exits_130_quietly(monkeypatch, capsys):
    from bundlerec import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_demo", interrupted)
    assert main(["demo", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip() == "bundlerec demo: interrupted"


def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal sends it. A shell without job control starts
    background jobs with SIGINT ignored, which children inherit (and then Python installs no
    KeyboardInterrupt handler): tests run that way must not depend on it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bundlerec.cli", *args], preexec_fn=_default_sigint, **popen
    )


def test_closed_output_pipe_ends_quietly(trained, tmp_path):
    root, train = trained
    proc = _cli(
        "recommend",
        "--model",
        str(root / "model"),
        "--user",
        str(train["user_id"].iloc[0]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before anything is written, as with `| head -c 0`
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_sigint_during_training_exits_130_and_keeps_the_old_model(trained, tmp_path):
    root, _ = trained
    events, items, users = synthetic_shop(seed=1)  # big enough that an epoch takes a while
    events.to_csv(tmp_path / "events.csv", index=False)
    model = tmp_path / "model"
    shutil.copytree(root / "model", model)
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = _cli(
            "train",
            "--events",
            str(tmp_path / "events.csv"),
            "--out",
            str(model),
            "--epochs",
            "40",
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline = time.monotonic() + 300
        while "epoch 1/" not in log.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    text = log.read_text()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "interrupted" in text
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "model", "stderr.txt"]


def test_train_reads_arff_baskets(tmp_path, capsys):
    """README promises ARFF: train takes the basket file directly (no split step needed)."""
    source = Path(__file__).parent / "data" / "basket.arff"
    arff = tmp_path / "baskets.arff"
    # Repeat the five baskets so every item has training and validation rows.
    header, _, rows = source.read_text().partition("@data")
    arff.write_text(header + "@data" + rows * 20)
    code = main(
        ["train", "--events", str(arff), "--out", str(tmp_path / "m"), "--quiet"]
        + ["--task", "basket-completion", "--epochs", "1", "--n-top", "5"]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "m" / "meta.json").is_file()


def test_slash_dates_follow_dayfirst(tmp_path, capsys):
    rows = ["user_id,item_id,timestamp"] + [
        f"u{u},i{(u + d) % 7},{d + 1:02d}/03/2024" for u in range(30) for d in range(13)
    ]
    (tmp_path / "e.csv").write_text("\n".join(rows) + "\n")
    args = ["split", "--events", str(tmp_path / "e.csv"), "--protocol", "next-item"]
    args += ["--train", str(tmp_path / "tr.csv"), "--test", str(tmp_path / "te.csv")]
    assert main(args) == 2  # 13/03/2024 cannot be month-first: refused, not guessed per row
    assert "--dayfirst" in capsys.readouterr().err
    assert main([*args, "--dayfirst"]) == 0
    test = pd.read_csv(tmp_path / "te.csv")
    assert len(test) == 30
    assert (pd.to_datetime(test["timestamp"], unit="s") == pd.Timestamp("2024-03-13")).all()


def test_empty_events_file_is_named(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    code = main(["train", "--events", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "empty.csv" in err and len(err.strip().splitlines()) == 1


def test_demo_runs_end_to_end(tmp_path, capsys, monkeypatch):
    """README's main job: the evaluation table, five shoppers' bundles and a widget example."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--quiet", "--out", "model"]) == 0
    out = capsys.readouterr().out
    assert "protocol: next-item" in out and "fusion" in out
    assert out.count("bundles for shopper") == 6
    assert "bought together with" in out and "anchor" in out
    assert (tmp_path / "model" / "meta.json").is_file() and "demo finished" in out


# -- pseudonymised models: --key-file ----------------------------------------------------------

KEY = b"a-cli-pseudonym-key-of-32-bytes!"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, trained):
    root, train = trained
    keyed = tmp_path_factory.mktemp("keyed")
    (keyed / "key").write_bytes(KEY + b"\n")
    (keyed / "other-key").write_bytes(b"another-key-of-at-least-16-bytes")
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
            str(keyed / "model"),
            "--epochs",
            "1",
            "--n-top",
            "20",
            "--key-file",
            str(keyed / "key"),
            "--quiet",
        ]
    )
    assert code == 0
    return keyed, sorted(set(train["user_id"].astype(str)))


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("bundlerec "), err
    for word in words:
        assert word in err, err


def test_train_with_a_key_file_writes_no_raw_shopper_id(keyed):
    from bundlerec.privacy import Pseudonymizer

    path, shoppers = keyed
    files = [p for p in (path / "model").rglob("*") if p.is_file()]
    blob = b"".join(p.read_bytes() for p in files)
    assert KEY not in blob
    found = [u for u in shoppers if u.encode() in blob]
    assert not found, f"raw shopper ids in the model directory: {found[:5]}"
    assert Pseudonymizer(KEY).pseudonym(shoppers[0]).encode() in blob


def test_recommend_needs_the_models_key(keyed, capsys, monkeypatch):
    from bundlerec.privacy import KEY_ENV

    monkeypatch.delenv(KEY_ENV, raising=False)
    path, shoppers = keyed
    base = ["recommend", "--model", str(path / "model"), "--user", shoppers[2], "--k", "1"]
    capsys.readouterr()
    assert main([*base, "--format", "json", "--key-file", str(path / "key")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bundles"] and not any("unknown shopper" in n for n in result["notes"])
    assert main(base) == 2
    _one_line_error(capsys, "pseudonyms", "--key-file")
    assert main([*base, "--key-file", str(path / "other-key")]) == 2
    _one_line_error(capsys, "another key")
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    assert main([*base, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == result


def test_a_key_for_a_model_of_raw_ids_is_refused(trained, keyed, capsys):
    root, train = trained
    path, _ = keyed
    user = str(train["user_id"].iloc[0])
    args = ["recommend", "--model", str(root / "model"), "--user", user]
    assert main([*args, "--key-file", str(path / "key")]) == 2
    _one_line_error(capsys, "raw shopper ids")


def test_evaluate_hashes_the_held_out_shoppers(trained, keyed, capsys):
    root, _ = trained
    path, _ = keyed
    capsys.readouterr()
    args = ["evaluate", "--model", str(path / "model"), "--events", str(root / "test.csv")]
    args += ["--protocol", "next-item", "--format", "json", "--quiet"]
    assert main([*args, "--key-file", str(path / "key")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_cases"] == pd.read_csv(root / "test.csv")["user_id"].nunique()
    assert main(args) == 2
    _one_line_error(capsys, "pseudonyms")


def test_audience_of_a_model_of_pseudonyms_maps_back_with_the_key(keyed, capsys):
    from bundlerec.privacy import Pseudonymizer
    from bundlerec.recommender import Recommender

    path, shoppers = keyed
    item = str(Recommender.load(path / "model", Pseudonymizer(KEY)).items.classes_[0])
    capsys.readouterr()
    args = ["audience", "--model", str(path / "model"), "--items", item, "--top", "5"]
    assert main([*args, "--key-file", str(path / "key")]) == 0
    captured = capsys.readouterr()
    users = [r["user_id"] for r in json.loads(captured.out)["users"]]
    assert "pseudonyms" in captured.err
    back = {Pseudonymizer(KEY).pseudonym(u): u for u in shoppers}
    assert len(users) == 5 and all(u in back for u in users)
    assert main([*args, "--key-file", str(path / "other-key")]) == 2
    _one_line_error(capsys, "another key")


def test_update_folds_pseudonymised_store_events_and_checks_a_given_key(keyed, tmp_path, capsys):
    from bundlerec.privacy import Pseudonymizer
    from bundlerec.recommender import Recommender
    from bundlerec.store import EventStore

    path, shoppers = keyed
    model_dir = tmp_path / "model"
    shutil.copytree(path / "model", model_dir)
    model = Recommender.load(model_dir, Pseudonymizer(KEY))
    t0 = int(model.history.timestamp.max()) + 10_000
    item = str(model.items.classes_[0])
    with EventStore(tmp_path / "events.db") as store:
        store.append(
            [
                {
                    "user_id": Pseudonymizer(KEY).pseudonym(shoppers[1]),
                    "item_id": item,
                    "event": "purchase",
                    "timestamp": t0,
                }
            ]
        )
    args = ["update", "--model", str(model_dir), "--store", str(tmp_path / "events.db")]
    assert main([*args, "--key-file", str(path / "other-key")]) == 2
    _one_line_error(capsys, "another key")
    assert main([*args, "--key-file", str(path / "key")]) == 0
    again = Recommender.load(model_dir, Pseudonymizer(KEY))
    assert len(again.history) == len(model.history) + 1
    assert len(again.users.classes_) == len(model.users.classes_)


def test_batch_takes_the_key_from_the_environment(keyed, tmp_path, capsys, monkeypatch):
    from bundlerec.batch import jobs
    from bundlerec.privacy import KEY_ENV

    path, shoppers = keyed
    pd.DataFrame({"user_id": shoppers[:4]}).to_csv(tmp_path / "users.csv", index=False)
    args = ["batch", "--model", str(path / "model"), "--task", "items", "--k", "3", "--quiet"]
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setattr(jobs, "_models", {})
    assert main([*args, "--users", str(tmp_path / "users.csv"), "--out", str(tmp_path / "a")]) == 2
    _one_line_error(capsys, "pseudonyms", KEY_ENV)
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    monkeypatch.setattr(jobs, "_models", {})  # a process loads the model once: as a new CLI run
    assert main([*args, "--users", "all", "--out", str(tmp_path / "b")]) == 2
    _one_line_error(capsys, "--users all")
    assert main([*args, "--users", str(tmp_path / "users.csv"), "--out", str(tmp_path / "c")]) == 0
    table = pd.read_parquet(tmp_path / "c")
    assert sorted(set(table["user_id"])) == shoppers[:4] and len(table) == 12
