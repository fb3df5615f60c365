"""Batch jobs on a real Dask LocalCluster (2 worker processes): scoring shoppers in partitions,
counting baskets per partition, training from the cluster's counts, and a worker killed mid-job.

Every cluster result is compared with the single-process path on the same input.
"""

import os
import signal
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from bundlerec.batch import jobs
from bundlerec.batch.cluster import connect
from bundlerec.batch.counting import (
    count_interactions,
    count_parquet,
    item_vocabulary,
    shopper_partitions,
)
from bundlerec.catalogue import user_features
from bundlerec.cli import main
from bundlerec.datasets import synthetic_shop
from bundlerec.lift import BasketStatistics
from bundlerec.models.copurchase import basket_matrix
from bundlerec.prep import Encoder, clean, to_interactions
from bundlerec.recommender import Recommender

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 1, "batch_size": 128, "patience": None}


@pytest.fixture(scope="module")
def shop():
    return synthetic_shop(n_users=120, n_items=50, n_days=20, seed=4)


@pytest.fixture(scope="module")
def model_dir(shop, tmp_path_factory):
    events, items, users = shop
    path = tmp_path_factory.mktemp("batch") / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Recommender(sequence=SMALL_SEQ, network={"n_top": 20}).fit(events, items, users).save(path)
    return path


@pytest.fixture(scope="module")
def client():
    with connect(workers=2) as client:
        client.wait_for_workers(2)
        yield client


@pytest.fixture(scope="module")
def train(shop):
    events, _, users = shop
    events = clean(events)
    ids = Encoder().fit(events["user_id"])
    interactions = to_interactions(events, ids, Encoder().fit(events["item_id"]))
    return interactions, user_features(users, ids)[0]


def _shoppers(model_dir) -> list[str]:
    return [*Recommender.load(model_dir).users.classes_, "a-newcomer"]


def test_items_on_the_cluster_equal_the_single_process_path(model_dir, client, tmp_path):
    users = _shoppers(model_dir)
    here = jobs.run_batch(model_dir, users, "items", tmp_path / "here", k=7, partition_size=25)
    there = jobs.run_batch(
        model_dir, users, "items", tmp_path / "there", k=7, client=client, partition_size=25
    )
    assert (here.n_parts, there.n_parts) == (5, 5)
    local, cluster = pd.read_parquet(tmp_path / "here"), pd.read_parquet(tmp_path / "there")
    pd.testing.assert_frame_equal(local, cluster)
    # ... and both equal the library call on all shoppers at once, in shopper order.
    top = Recommender.load(model_dir).recommend_items_batch(users, 7)
    expected = [(u, r + 1, i) for u, row in zip(users, top) for r, i in enumerate(row) if i]
    assert list(local.itertuples(index=False, name=None)) == expected
    assert there.n_rows == len(expected) and there.n_inputs == len(users)


def test_bundles_on_the_cluster_equal_the_single_process_path(model_dir, client, tmp_path):
    users = _shoppers(model_dir)[::10]
    kwargs = {"k": 2, "partition_size": 4, "size": 3}
    jobs.run_batch(model_dir, users, "bundles", tmp_path / "here", **kwargs)
    jobs.run_batch(model_dir, users, "bundles", tmp_path / "there", client=client, **kwargs)
    local, cluster = pd.read_parquet(tmp_path / "here"), pd.read_parquet(tmp_path / "there")
    pd.testing.assert_frame_equal(local, cluster)
    model = Recommender.load(model_dir)
    first = model.recommend_bundles(users[0], k=2, size=3)["bundles"]
    rows = local[local["user_id"] == users[0]]
    assert [list(x) for x in rows["items"]] == [[i["item_id"] for i in b["items"]] for b in first]
    assert np.allclose(rows["probability"], [b["probability"] for b in first])


def test_audiences_on_the_cluster_equal_the_single_process_path(model_dir, shop, client, tmp_path):
    items = shop[1]
    campaigns = [
        {"campaign_id": "duo", "items": f"{items.item_id[0]},{items.item_id[1]}", "n": 15},
        {"campaign_id": "one", "items": items.item_id[2], "min_probability": 0.0},
        {"campaign_id": "cat", "category": items.category[0], "brand": float("nan")},
    ]
    jobs.run_batch(model_dir, campaigns, "audience", tmp_path / "here", k=10)
    result = jobs.run_batch(
        model_dir, campaigns, "audience", tmp_path / "there", k=10, client=client
    )
    local, cluster = pd.read_parquet(tmp_path / "here"), pd.read_parquet(tmp_path / "there")
    pd.testing.assert_frame_equal(local, cluster)
    assert result.n_parts == 3 and local["campaign_id"].unique().tolist() == ["duo", "one", "cat"]
    model = Recommender.load(model_dir)
    direct = model.audience([items.item_id[0], items.item_id[1]], n=15)["users"]
    duo = local[local["campaign_id"] == "duo"]
    assert duo["user_id"].tolist() == [u["user_id"] for u in direct]
    assert duo["probability"].tolist() == [u["probability"] for u in direct]
    assert duo["rank"].tolist() == list(range(1, len(direct) + 1))
    assert local.groupby("campaign_id").size().to_dict() == {"duo": 15, "one": 10, "cat": 10}
    timed = [
        {"campaign_id": "week", "items": items.item_id[2], "horizon_days": 7.0},
        {"campaign_id": "next", "items": items.item_id[2], "next_purchase": "true"},
        {"campaign_id": "month", "items": items.item_id[2], "horizon_days": float("nan")},
    ]
    jobs.run_batch(model_dir, timed, "audience", tmp_path / "timed", k=5)
    got = pd.read_parquet(tmp_path / "timed")
    for name, horizon in (("week", 7.0), ("next", None), ("month", 30.0)):
        want = model.audience([items.item_id[2]], n=5, horizon_days=horizon)["users"]
        rows = got[got["campaign_id"] == name]
        assert rows["probability"].tolist() == [u["probability"] for u in want]
    with pytest.raises(ValueError, match="exactly one of items, category, brand"):
        jobs.run_batch(model_dir, [{"campaign_id": "x"}], "audience", tmp_path / "x")
    with pytest.raises(ValueError, match="distinct"):
        jobs.run_batch(model_dir, campaigns[:1] * 2, "audience", tmp_path / "x")


def test_the_model_is_loaded_once_per_worker(model_dir, client, tmp_path):
    client.run(lambda: jobs._models.clear())
    jobs.run_batch(
        model_dir, _shoppers(model_dir), "items", tmp_path / "out", client=client, partition_size=5
    )
    loaded = client.run(lambda: len(jobs._models))
    assert sorted(loaded.values()) == [1, 1]  # 25 tasks, one model per worker process


def test_output_is_published_whole_or_not_at_all(model_dir, tmp_path, monkeypatch):
    users = _shoppers(model_dir)
    out = tmp_path / "out"
    jobs.run_batch(model_dir, users, "items", out, k=3, partition_size=40)
    before = sorted(p.name for p in out.iterdir())
    real = jobs.score_partition
    calls = []

    def fail_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args)

    monkeypatch.setattr(jobs, "score_partition", fail_third)
    with pytest.raises(OSError, match="disk full"):
        jobs.run_batch(model_dir, users, "items", out, k=5, partition_size=20)
    # The earlier complete output is untouched, and no temporary directory is left behind.
    assert sorted(p.name for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    monkeypatch.undo()
    jobs.run_batch(model_dir, users, "items", out, k=5, partition_size=20)
    assert len(pd.read_parquet(out)) == 5 * len(users)  # a finished job replaces it


def test_destinations_that_are_not_batch_outputs_are_refused(model_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a batch output"):
        jobs.run_batch(model_dir, ["u00001"], "items", tmp_path / "mine")
    with pytest.raises(ValueError, match="is a file"):
        jobs.run_batch(model_dir, ["u00001"], "items", tmp_path / "mine" / "notes.txt")
    with pytest.raises(ValueError, match="task must be one of"):
        jobs.run_batch(model_dir, ["u00001"], "songs", tmp_path / "x")
    with pytest.raises(ValueError, match="not a model directory"):
        jobs.run_batch(tmp_path / "mine", ["u00001"], "items", tmp_path / "x")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_the_half_written_part_of_a_killed_worker_is_not_published(
    model_dir, tmp_path, monkeypatch
):
    """A worker killed while writing a part leaves its temporary file behind (no cleanup runs
    on SIGKILL); the rerun writes the part, and the published directory holds the parts and the
    manifest only, readable as one Parquet dataset."""
    score = jobs.score_partition
    calls = []

    def dies_once(model, inputs, task, k, target, options):
        calls.append(target)
        if len(calls) == 1:  # what a killed first attempt leaves: half a file
            with open(f"{target}.0123abcd.tmp", "wb") as half:
                half.write(b"PAR1 half a part")
        return score(model, inputs, task, k, target, options)

    monkeypatch.setattr(jobs, "score_partition", dies_once)
    users = _shoppers(model_dir)
    result = jobs.run_batch(model_dir, users, "items", tmp_path / "out", k=3, partition_size=40)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(
        [f"part-{n:05d}.parquet" for n in range(result.n_parts)] + [jobs.MANIFEST]
    )
    assert len(pd.read_parquet(tmp_path / "out")) == result.n_rows


def test_a_worker_killed_mid_job_changes_nothing(model_dir, client, tmp_path):
    users = _shoppers(model_dir) * 40  # 4840 shoppers, 48 partitions
    jobs.run_batch(model_dir, users, "items", tmp_path / "here", k=5, partition_size=100)
    pids = list(client.run(os.getpid).values())
    state = {}

    def kill_when_a_part_is_in():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tmps = [p for p in tmp_path.iterdir() if p.name.startswith(".there.tmp.")]
            parts = [f for t in tmps for f in t.glob("part-*.parquet")]
            if parts:
                state["parts_at_kill"] = len(parts)
                os.kill(pids[0], signal.SIGKILL)
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_when_a_part_is_in)
    killer.start()
    result = jobs.run_batch(
        model_dir, users, "items", tmp_path / "there", k=5, client=client, partition_size=100
    )
    killer.join()
    assert 0 < state["parts_at_kill"] < result.n_parts  # the kill came mid-job
    assert not [p for p in (tmp_path / "there").iterdir() if p.suffix == ".tmp"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "here"), pd.read_parquet(tmp_path / "there")
    )
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


def test_counts_on_the_cluster_equal_counting_at_once(train, client):
    interactions, features = train
    whole = BasketStatistics.from_interactions(interactions, features)
    for stats in (
        count_interactions(interactions, features, partitions=3),
        count_interactions(interactions, features, client=client, partitions=5),
    ):
        assert stats.n_baskets == whole.n_baskets == interactions.n_baskets
        assert stats.attributes == whole.attributes
        assert (stats.gram != whole.gram).nnz == 0
    baskets = basket_matrix(interactions)
    assert np.array_equal(whole.item_counts, np.asarray(baskets.sum(axis=0)).ravel())
    items = whole.gram[: interactions.n_items, : interactions.n_items].toarray()
    assert np.array_equal(items, (baskets.T @ baskets).toarray())
    region = features["region"]
    owners = np.zeros(baskets.shape[0], dtype=np.int64)
    owners[interactions.basket] = interactions.user
    cols = whole.columns("region")
    assert np.array_equal(whole.gram.diagonal()[cols], np.bincount(region[owners], minlength=4))


def test_partitions_hold_whole_shoppers(train):
    interactions, _ = train
    parts = shopper_partitions(interactions, 7)
    assert sum(len(p) for p in parts) == len(interactions)
    seen = [set(p.user.tolist()) for p in parts]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    assert len(shopper_partitions(interactions, 10_000)) == interactions.n_users
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        shopper_partitions(interactions, 0)


def test_adding_statistics_of_other_columns_is_refused(train):
    interactions, features = train
    with pytest.raises(ValueError, match="different columns"):
        _ = BasketStatistics.from_interactions(interactions) + BasketStatistics.from_interactions(
            interactions, features
        )
    with pytest.raises(ValueError, match="codes >= 0"):
        BasketStatistics.from_interactions(interactions, {"region": features["region"] - 1})


def test_a_parquet_dataset_is_counted_file_by_file(shop, client, tmp_path):
    events = shop[0]
    owner = events["user_id"].str[-1].astype(int) % 3  # each file holds whole shoppers
    for k in range(3):
        events[owner == k].to_parquet(tmp_path / f"part-{k}.parquet")
    vocabulary = Encoder().fit(events["item_id"])
    whole = clean(events)
    expected = BasketStatistics.from_interactions(
        to_interactions(whole, Encoder().fit(whole["user_id"]), vocabulary)
    )
    assert item_vocabulary(sorted(map(str, tmp_path.iterdir()))).classes_ == vocabulary.classes_
    for stats, items in (count_parquet(tmp_path), count_parquet(tmp_path, client=client)):
        assert items.classes_ == vocabulary.classes_
        assert stats.n_baskets == expected.n_baskets
        assert (stats.gram != expected.gram).nnz == 0
    with pytest.raises(FileNotFoundError):
        count_parquet([tmp_path / "absent.parquet"], client=client)


def test_train_on_the_cluster_matches_local_training(shop, client, tmp_path):
    events, items, users = shop
    for name, frame in (("events", events), ("items", items), ("users", users)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    common = [
        "train",
        *("--events", str(tmp_path / "events.csv"), "--items", str(tmp_path / "items.csv")),
        *("--users", str(tmp_path / "users.csv"), "--epochs", "1", "--n-top", "20", "--quiet"),
    ]
    scheduler = client.scheduler.address
    assert main([*common, "--out", str(tmp_path / "here")]) == 0
    assert main([*common, "--out", str(tmp_path / "there"), "--engine", "dask",
                 "--scheduler", scheduler]) == 0  # fmt: skip
    here, there = Recommender.load(tmp_path / "here"), Recommender.load(tmp_path / "there")
    a, b = here.network, there.network
    assert np.array_equal(a.items, b.items) and a.n_rows == b.n_rows
    assert np.allclose(a.prior, b.prior)
    # Both are maximum spanning trees of the same mutual information (an exact tie may pick
    # another edge: test_fit_counts_...), and a node with the same parent has the same CPT.
    assert len(a.model.edges()) == len(b.model.edges())
    for node in a.model.nodes():
        ca, cb = a.model.get_cpds(node), b.model.get_cpds(node)
        if ca.evidence == cb.evidence:
            assert np.allclose(ca.get_values(), cb.get_values())
    assert main([*common, "--out", str(tmp_path / "x"), "--scheduler", scheduler]) == 2


def test_batch_command(model_dir, tmp_path, capsys):
    pd.DataFrame({"user_id": ["u00003", "u00007", "nobody"]}).to_csv(
        tmp_path / "who.csv", index=False
    )
    out = tmp_path / "out"
    args = ["batch", "--model", str(model_dir), "--task", "items", "--k", "4", "--quiet"]
    assert main([*args, "--users", str(tmp_path / "who.csv"), "--out", str(out)]) == 0
    assert "3 shoppers, 12 rows in 1 part(s)" in capsys.readouterr().out
    frame = pd.read_parquet(out)
    assert frame["user_id"].tolist() == ["u00003"] * 4 + ["u00007"] * 4 + ["nobody"] * 4
    assert main([*args, "--users", "all", "--out", str(out), "--partition-size", "50"]) == 0
    assert len(list(out.glob("part-*.parquet"))) == 3
    assert main([*args, "--users", "all", "--out", str(tmp_path / "who.csv")]) == 2
    assert "is a file" in capsys.readouterr().err
    pd.DataFrame({"campaign_id": ["c1", "c2"], "items": ["i0001", "i0002,i0003"]}).to_csv(
        tmp_path / "campaigns.csv", index=False
    )
    audience = ["batch", "--model", str(model_dir), "--task", "audience", "--quiet"]
    campaigns = ["--campaigns", str(tmp_path / "campaigns.csv")]
    assert main([*audience, *campaigns, "--users", "all", "--out", str(tmp_path / "a")]) == 0
    assert "2 campaigns, " in capsys.readouterr().out
    assert pd.read_parquet(tmp_path / "a")["campaign_id"].unique().tolist() == ["c1", "c2"]
    assert main([*audience, *campaigns, "--users", "who.csv", "--out", str(tmp_path / "b")]) == 2
    assert "--users all" in capsys.readouterr().err
