"""Pseudonyms of shopper ids: keyed, never the key in a model, refused with the wrong key."""

import hashlib
import hmac
import re
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundlerec.datasets import synthetic_shop
from bundlerec.model_dir import ModelDirError
from bundlerec.privacy import KEY_ENV, Pseudonymizer, load_key
from bundlerec.recommender import Recommender

KEY = b"a-key-of-at-least-sixteen-bytes"


@given(st.text(max_size=40), st.text(max_size=40))
def test_pseudonyms_are_hmac_sha256_and_distinct(a, b):
    p = Pseudonymizer(KEY)
    assert p.pseudonym(a) == hmac.new(KEY, a.encode(), hashlib.sha256).hexdigest()
    assert (p.pseudonym(a) == p.pseudonym(b)) == (a == b)
    assert p.pseudonym(a) != Pseudonymizer(KEY + b"!").pseudonym(a)


def test_keys_come_from_a_file_or_the_environment(tmp_path, monkeypatch):
    (tmp_path / "key").write_bytes(KEY + b"\n")
    assert load_key(tmp_path / "key").check == Pseudonymizer(KEY).check
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    assert load_key().check == Pseudonymizer(KEY).check
    monkeypatch.delenv(KEY_ENV)
    assert load_key() is None
    with pytest.raises(ValueError, match="5 bytes long"):
        Pseudonymizer(b"short")
    assert KEY.decode() not in repr(Pseudonymizer(KEY))


@pytest.fixture(scope="module")
def pseudonymised(tmp_path_factory):
    events, items, users = synthetic_shop(n_users=120, n_items=60, n_days=30, seed=5)
    seq = {"dim": 8, "hidden": 8, "epochs": 1, "batch_size": 128, "patience": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=seq, network={"n_top": 20})
        model.fit(events, items, users, pseudonymizer=Pseudonymizer(KEY))
    path = tmp_path_factory.mktemp("p") / "model"
    model.save(path)
    return model, path, sorted(set(events["user_id"]))


def test_a_model_of_pseudonyms_holds_no_raw_id_nor_the_key(pseudonymised):
    model, path, shoppers = pseudonymised
    assert all(re.fullmatch("[0-9a-f]{64}", u) for u in model.users.classes_)
    blob = b"".join(p.read_bytes() for p in path.iterdir())
    assert KEY not in blob
    for user in shoppers[:20]:
        assert f'"{user}"'.encode() not in blob
    # the attributes of the users table followed their shoppers
    assert len(model.users.classes_) == len(shoppers)


def test_loading_needs_the_right_key_to_take_raw_ids(pseudonymised):
    model, path, shoppers = pseudonymised
    user = shoppers[3]
    again = Recommender.load(path, Pseudonymizer(KEY))
    assert again.recommend_items(user, 5) == model.recommend_items(user, 5)
    assert "unknown shopper" not in " ".join(again.recommend_bundles(user, k=1)["notes"])
    with pytest.raises(ModelDirError, match="another key"):
        Recommender.load(path, Pseudonymizer(KEY + b"x"))
    keyless = Recommender.load(path)
    frame = {"user_id": [user], "item_id": [model.items.classes_[0]], "timestamp": [10**9]}
    import pandas as pd

    with pytest.raises(ValueError, match="pseudonyms"):
        keyless.update(pd.DataFrame(frame))
    keyless.update(
        pd.DataFrame({**frame, "user_id": [Pseudonymizer(KEY).pseudonym(user)]}),
        pseudonymised=True,
    )
    assert len(keyless.users.classes_) == len(model.users.classes_)


def test_a_model_of_raw_ids_refuses_a_key(tmp_path, pseudonymised):
    model, path, _ = pseudonymised
    model.key_check = None  # as if fitted without a key
    model.save(tmp_path / "raw")
    with pytest.raises(ModelDirError, match="raw shopper ids"):
        Recommender.load(tmp_path / "raw", Pseudonymizer(KEY))


def test_every_entry_taking_shopper_ids_hashes_them(pseudonymised, monkeypatch):
    _, path, shoppers = pseudonymised
    monkeypatch.delenv(KEY_ENV, raising=False)
    model = Recommender.load(path, Pseudonymizer(KEY))
    some = shoppers[:6]
    batch = model.recommend_items_batch(some, k=4)
    for user, row in zip(some, batch):
        assert row.tolist() == [r["item_id"] for r in model.recommend_items(user, 4)]
    assert (model._user_codes(some) >= 0).all()
    import pandas as pd

    t0 = int(model.history.timestamp.max()) + 10
    held = pd.DataFrame(
        {"user_id": some, "item_id": [model.items.classes_[1]] * 6, "timestamp": t0}
    )
    cases = model.cases(held, "next-item")
    assert (cases.users >= 0).all() and len(cases) == len(some)
    assert model.forget(some[0]) > 0 and model._user_code(some[0]) == -1


def test_a_model_of_pseudonyms_without_its_key_refuses_raw_ids(pseudonymised, monkeypatch):
    _, path, shoppers = pseudonymised
    monkeypatch.delenv(KEY_ENV, raising=False)
    keyless = Recommender.load(path)
    for call in (
        lambda: keyless.recommend_items(shoppers[0], 3),
        lambda: keyless.recommend_items_batch(shoppers[:2], 3),
        lambda: keyless.recommend_bundles(shoppers[0], k=1),
        lambda: keyless.forget(shoppers[0]),
    ):
        with pytest.raises(ValueError, match="pseudonyms"):
            call()
    # the environment variable holds the key: loading takes it
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    assert Recommender.load(path).recommend_items(shoppers[0], 3) == Recommender.load(
        path, Pseudonymizer(KEY)
    ).recommend_items(shoppers[0], 3)
    monkeypatch.setenv(KEY_ENV, "some-other-key-of-16-bytes")
    with pytest.raises(ModelDirError, match="another key"):
        Recommender.load(path)


def test_audiences_of_a_model_of_pseudonyms_are_pseudonyms(pseudonymised):
    _, path, shoppers = pseudonymised
    model = Recommender.load(path, Pseudonymizer(KEY))
    got = model.audience([model.items.classes_[2]], n=10)
    back = {Pseudonymizer(KEY).pseudonym(u): u for u in shoppers}
    assert got["users"] and all(r["user_id"] in back for r in got["users"])
