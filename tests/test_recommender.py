"""Recommender end to end on a small synthetic shop: fit, recommend, bundles, update, save/load."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bundlerec.data import load_events
from bundlerec.datasets import synthetic_shop
from bundlerec.models.baselines import EASE
from bundlerec.prep import clean, split_leave_last_out
from bundlerec.recommender import EASE_DEFAULTS, ModelDirError, Recommender

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}


@pytest.fixture(scope="module")
def shop():
    events, items, users = synthetic_shop(n_users=150, n_items=60, n_days=30, seed=3)
    train, test = split_leave_last_out(events)
    return train, test, items, users


def _fit(shop) -> Recommender:
    """A fresh small Recommender trained on the shop's training events."""
    train, _, items, users = shop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Recommender(sequence=SMALL_SEQ, network={"n_top": 30}, verbose=False).fit(
            train, items, users
        )


@pytest.fixture(scope="module")
def model(shop):
    return _fit(shop)


def test_scorers_share_one_interface(model, shop):
    _, test, _, _ = shop
    cases = model.cases(test, "next-item")
    names = set(model.scorers())
    assert names == {
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
    for name, scorer in model.scorers().items():
        s = scorer.score(cases)
        assert s.shape == (len(cases.users), model.history.n_items), name
        assert np.isfinite(s).all(), name


def test_recommend_items_excludes_history_and_named_exclusions(model):
    user = model.users.classes_[0]
    code = 0
    ids = np.asarray(model.items.classes_, dtype=object)
    bought = set(ids[model.history.item[model.history.user == code]])
    extra = next(i for i in model.items.classes_ if i not in bought)
    recs = model.recommend_items(user, k=10, exclude=[extra])
    ids = [r["item_id"] for r in recs]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert not (set(ids) & bought) and extra not in ids
    scores = [r["score"] for r in recs]
    assert scores == sorted(scores, reverse=True)


def test_bundles_respect_constraints_and_explain(model):
    user = model.users.classes_[1]
    result = model.recommend_bundles(user, k=3, size=3, budget=80.0, max_per_category=1)
    json.dumps(result)  # the result is plain JSON
    assert result["user"] == str(user)
    assert len(result["bundles"]) == 3, result["notes"]
    for b in result["bundles"]:
        assert len(b["items"]) == 3
        assert b["total_price"] <= 80.0 + 1e-9
        cats = [i["category"] for i in b["items"]]
        assert len(set(cats)) == 3
        assert 0.0 <= b["probability"] <= 1.0
        assert len(b["explanation"]) == 3
        for e in b["explanation"]:
            assert (e["because"] is None) == ("note" in e)
            assert e["because"] is None or e["ratio"] >= 1.1  # no x1.00-style reasons


def test_unknown_user_gets_bundles_and_a_note(model):
    result = model.recommend_bundles("nobody-like-this", k=2, size=2)
    assert any("unknown shopper" in n for n in result["notes"])
    assert len(result["bundles"]) >= 1


def test_unknown_anchor_is_named(model):
    with pytest.raises(KeyError, match="no-such-item"):
        model.recommend_bundles(model.users.classes_[0], anchor=["no-such-item"])


def test_anchors_lead_each_bundle_and_the_cart_is_never_repeated(model):
    anchor = model.items.classes_[int(model.network.items[0])]
    cart = [model.items.classes_[int(model.network.items[1])]]
    user = model.users.classes_[2]
    result = model.recommend_bundles(user, k=2, size=3, anchor=[anchor], cart=cart, budget=150)
    assert len(result["bundles"]) == 2, result["notes"]
    for b in result["bundles"]:
        ids = [i["item_id"] for i in b["items"]]
        assert ids[0] == anchor and len(ids) == 3 and len(set(ids)) == 3  # size counts it
        assert cart[0] not in ids
        assert b["anchor"] == [anchor]
        assert b["total_price"] == pytest.approx(sum(i["price"] for i in b["items"]))
        assert b["total_price"] <= 150
        assert b["explanation"][0]["note"] == "anchor"
        assert 0.0 <= b["p_any_companion"] <= 1.0 and b["expected_revenue"] >= 0.0
        assert b["lift"] is None or b["lift"] >= 0.0
        assert b["baskets_together"] >= 0
    with pytest.raises(ValueError, match="size counts"):
        model.recommend_bundles(user, size=1, anchor=[anchor])


def test_save_load_round_trip_gives_identical_scores(model, shop, tmp_path):
    _, test, _, _ = shop
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    cases = model.cases(test, "next-item")
    for name in ("sequence", "copurchase", "fusion", "itemknn"):
        np.testing.assert_array_equal(
            model.scorers()[name].score(cases), loaded.scorers()[name].score(cases), err_msg=name
        )


def _companions(result):
    return [tuple(i["item_id"] for i in b["items"][1:]) for b in result["bundles"]]


def test_bundles_of_an_unknown_shopper_move_with_the_anchor(model):
    popular = np.argsort(-np.bincount(model.history.item, minlength=model.history.n_items))
    anchors = [str(model.items.classes_[j]) for j in popular[:5]]
    tops = {a: _companions(model.recommend_bundles("nobody", k=1, anchor=[a]))[0] for a in anchors}
    assert len(set(tops.values())) >= 3, tops
    bundle = model.recommend_bundles("nobody", k=1, anchor=anchors[:1])["bundles"][0]
    assert 0.0 < bundle["probability"] <= bundle["p_any_companion"] <= 1.0


def test_save_load_round_trip_keeps_bundles_and_an_old_dir_falls_back(model, tmp_path):
    import corenn

    user = str(model.users.classes_[0])
    anchor = str(model.items.classes_[int(np.bincount(model.history.item).argmax())])
    asks = [{}, {"anchor": [anchor]}, {"anchor": [anchor], "budget": 80.0}]
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.pairwise is not None and loaded.bundle_config == model.bundle_config
    for ask in asks:
        assert loaded.recommend_bundles(user, **ask) == model.recommend_bundles(user, **ask)
    # a directory saved before the pairwise network (and EASE): no arrays under their
    # prefixes, no settings
    arrays = corenn.load(tmp_path / "m" / "arrays.npz")
    del arrays["pairwise"], arrays["ease"]
    corenn.save(arrays, tmp_path / "m" / "arrays.npz")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    del meta["config"]["pairwise"], meta["config"]["bundle"], meta["config"]["ease"]
    weights = meta["fusion"]["weights"]  # nor a fusion weight for them
    weights = {k: v for k, v in weights.items() if not k.startswith(("pairwise", "ease"))}
    meta["fusion"]["weights"] = weights
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    old = Recommender.load(tmp_path / "m")
    assert old.pairwise is None and list(old.fusion.components) == ["sequence", "copurchase"]
    loaded.pairwise = None  # today's objective: fused relevance + co-purchase coherence
    del loaded.fusion.components["ease"]
    loaded.fusion.weights = weights
    for ask in asks:
        result = old.recommend_bundles(user, **ask)
        assert result == loaded.recommend_bundles(user, **ask) and result["bundles"]


def test_pairwise_and_ease_components_round_trip(model, shop, tmp_path):
    _, test, _, _ = shop
    cases = model.cases(test, "next-item")
    assert list(model.fusion.components) == ["sequence", "copurchase", "pairwise", "ease"]
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.fusion.weights == model.fusion.weights
    assert loaded.ease_config == model.ease_config == dict(EASE_DEFAULTS)
    for name in ("pairwise", "fusion"):
        np.testing.assert_array_equal(
            loaded.scorers()[name].score(cases), model.scorers()[name].score(cases), name
        )
    np.testing.assert_array_equal(loaded.ease.score(cases), model.ease.score(cases))


def test_ease_component_is_the_baseline_fitted_on_the_fit_part(model, shop):
    """The fusion's EASE component scores as the EASE baseline fitted on the events the other
    components learn from (the validation events held out), within float32 sums: the saved
    component keeps ``EASE_DEFAULTS["keep"]`` = 200 >= 60 entries per row, all of them here."""
    train, test, _, _ = shop
    cases = model.cases(test, "next-item")
    fit_part, _ = split_leave_last_out(clean(load_events(train), window=model.window))
    baseline = EASE().fit(model._encode(fit_part))
    want = baseline.score(cases)
    np.testing.assert_allclose(model.ease.score(cases), want, rtol=1e-5, atol=1e-6)
    fused = model.fusion.components["ease"].score(cases)
    np.testing.assert_allclose(fused, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.baselines["ease"].score(cases), want)  # the whole history's


def test_ease_none_leaves_ease_out_of_the_fusion(shop, tmp_path):
    train, test, items, users = shop
    model = Recommender(sequence=SMALL_SEQ, network={"n_top": 30}, ease=None, verbose=False)
    model.fit(train, items, users)
    assert model.ease is None and "ease" not in model.fusion.weights
    assert list(model.fusion.components) == ["sequence", "copurchase", "pairwise"]
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.ease is None and loaded.ease_config is None
    cases = model.cases(test, "next-item")
    np.testing.assert_array_equal(loaded.fusion.score(cases), model.fusion.score(cases))


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "name, weighted",
    [("model_before_pairwise_fusion", ("pairwise",)), ("model_before_ease_component", ())],
)
def test_model_saved_before_a_component_scores_unchanged(name, weighted, tmp_path):
    """A model directory written by the code before the pairwise network, or before EASE, was
    a fusion component (tests/data, with the fusion scores that code gave;
    model_before_ease_component was written at commit a0573ae by a synthetic shop of 40
    shoppers and 30 items, seed 5, leave-last-out) loads with no EASE and no weight for what
    was not a component, scores as then, and saves and loads again unchanged."""
    old_dir = DATA / name
    old = Recommender.load(old_dir / "model")
    assert old.pairwise is not None and old.ease is None and old.ease_config is None
    assert not {"ease", *weighted} & set(old.fusion.weights)
    assert list(old.fusion.components) == ["sequence", "copurchase", "pairwise"]
    cases = old.cases(old_dir / "test.csv", "next-item")
    expected = np.load(old_dir / "fusion_scores.npy", allow_pickle=False)
    np.testing.assert_allclose(old.fusion.score(cases), expected, rtol=1e-6, atol=1e-9)
    shutil.copytree(old_dir / "model", tmp_path / "m")
    old.save(tmp_path / "m")
    again = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(again.fusion.score(cases), expected, rtol=1e-6, atol=1e-9)


def test_unknown_bundle_setting_is_named():
    with pytest.raises(ValueError, match="smothing"):
        Recommender(bundle={"smothing": 1.0})


def test_corrupt_model_dir_raises_and_save_is_atomic(model, tmp_path):
    model.save(tmp_path / "m")
    (tmp_path / "m" / "arrays.npz").write_bytes(b"not a zip file")
    with pytest.raises(ModelDirError, match="arrays.npz|m"):
        Recommender.load(tmp_path / "m")
    (tmp_path / "m" / "meta.json").write_text('{"format": "other"}')
    with pytest.raises(ModelDirError, match="format"):
        Recommender.load(tmp_path / "m")
    with pytest.raises(ModelDirError, match="meta.json"):
        Recommender.load(tmp_path / "nowhere")


def test_update_with_empty_frame_changes_nothing(model, shop):
    _, test, _, _ = shop
    cases = model.cases(test, "next-item")
    before = {n: s.score(cases) for n, s in model.scorers().items()}
    model.update(pd.DataFrame(columns=["user_id", "item_id", "timestamp"]))
    for name, scorer in model.scorers().items():
        np.testing.assert_array_equal(before[name], scorer.score(cases), err_msg=name)


def test_update_with_pair_purchases_raises_its_coherence(shop):
    train, _, items, users = shop
    model = _fit(shop)
    a, b = (int(j) for j in model.network.items[-2:])
    before = model.network.coherence([(a, b)])[0]
    ids = model.items.classes_
    t0 = int(train["timestamp"].max()) + 10
    shoppers = model.users.classes_[:40]
    new = pd.DataFrame(
        {
            "user_id": np.repeat(shoppers, 2),
            "item_id": [ids[a], ids[b]] * len(shoppers),
            "timestamp": t0 + np.arange(2 * len(shoppers)),
            "basket_id": np.repeat([f"new{k}" for k in range(len(shoppers))], 2),
        }
    )
    model.update(new, epochs=1)
    after = model.network.coherence([(a, b)])[0]
    assert after > before + 0.5, (before, after)


def test_update_brings_in_new_items_and_shoppers(shop):
    train, _, items, users = shop
    model = _fit(shop)
    n_items, n_users = model.history.n_items, model.history.n_users
    known_item = model.items.classes_[0]
    t0 = int(train["timestamp"].max()) + 10
    new = pd.DataFrame(
        {
            "user_id": ["newcomer", "newcomer", model.users.classes_[0]],
            "item_id": ["brand-new-item", known_item, "brand-new-item"],
            "timestamp": [t0, t0 + 5, t0 + 7],
        }
    )
    new_items = pd.DataFrame(
        {
            "item_id": ["brand-new-item"],
            "category": [items["category"][0]],
            "brand": ["never-seen-brand"],
            "price": [9.5],
        }
    )
    new_users = pd.DataFrame(
        {"user_id": ["newcomer"], "age_band": [users["age_band"][0]], "region": ["atlantis"]}
    )
    model.update(new, items=new_items, users=new_users, epochs=1)
    assert model.history.n_items == n_items + 1 and model.history.n_users == n_users + 1
    j = model.history.n_items - 1
    assert model.items.classes_[j] == "brand-new-item"
    assert model.catalogue.price[j] == 9.5
    assert model.catalogue.category[j] == items["category"][0]
    recs = model.recommend_items("newcomer", k=5)
    assert len(recs) == 5 and all(np.isfinite(r["score"]) for r in recs)
    result = model.recommend_bundles("newcomer", k=1, size=2)
    assert not any("unknown shopper" in n for n in result["notes"])
    # the new item is scored like any other, from its attributes
    cases = model._serving_cases(np.array([1]), [], [])
    for name, scorer in model.scorers().items():
        s = scorer.score(cases)
        assert s.shape == (1, n_items + 1) and np.isfinite(s[0, j]), name


def test_fusion_learns_from_recommendable_targets_only(shop):
    """Most next-item targets repeat a history item (excluded): the fusion must still learn."""
    train, _, items, users = shop
    model = _fit(shop)
    assert max(model.fusion.weights.values()) > 0, model.fusion.weights
    scores = [r["score"] for r in model.recommend_items(model.users.classes_[3], k=10)]
    assert len(set(scores)) > 1, "fused scores are constant: the ranking is by item code"


def test_every_test_row_of_a_user_is_a_target(model, shop):
    _, test, _, _ = shop
    user = test["user_id"].iloc[0]
    extra = test[test["user_id"] == user].assign(
        timestamp=lambda f: f["timestamp"] + 60, item_id=model.items.classes_[1]
    )
    both = pd.concat([test, extra], ignore_index=True)
    cases = model.cases(both, "next-item")
    row = int(np.flatnonzero(cases.users == model.users.transform([user])[0])[0])
    assert sorted(t for t in cases.targets[row] if t >= 0) == sorted(
        model.items.transform(
            [test[test["user_id"] == user]["item_id"].iloc[0], model.items.classes_[1]]
        ).tolist()
    )
    assert model.cases(both, "next-item", horizon=1).targets.shape[1] == 1


def test_fit_prints_nothing_by_default_and_only_to_stderr_when_verbose(shop, capsys, caplog):
    train, _, items, users = shop
    config = {**SMALL_SEQ, "patience": 1, "epochs": 3}
    capsys.readouterr()
    with caplog.at_level("INFO", logger="bundlerec"):
        Recommender(sequence=config, network={"n_top": 20}).fit(train, items, users)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    assert any("epoch 1/3" in r.getMessage() for r in caplog.records), "no epoch log record"
    Recommender(sequence=config, network={"n_top": 20}, verbose=True).fit(train, items, users)
    loud = capsys.readouterr()
    assert loud.out == ""
    assert "epoch 1/3" in loud.err and "co-purchase" in loud.err


def test_save_never_replaces_a_users_folder_or_file(model, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "orders.csv").write_text("a,b\n")
    with pytest.raises(ModelDirError, match="not a bundlerec model directory"):
        model.save(folder)
    assert [p.name for p in folder.iterdir()] == ["orders.csv"]
    afile = tmp_path / "notes.txt"
    afile.write_text("keep")
    with pytest.raises(ModelDirError, match="is a file"):
        model.save(afile)
    assert afile.read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    model.save(empty)
    assert Recommender.load(empty).fitted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mine", "notes.txt"]


def test_category_column_of_the_events_reaches_the_catalogue(shop):
    """Without an items file, the events' category column gives the items their category."""
    train, _, items, _ = shop
    with_category = train.merge(items[["item_id", "category"]], on="item_id")
    model = Recommender(sequence=SMALL_SEQ, network={"n_top": 20}).fit(with_category)
    truth = items.set_index("item_id")["category"]
    ids = list(model.items.classes_)
    assert list(model.catalogue.category) == [truth[i] for i in ids]
    assert "category" in model.catalogue.features  # the item tower sees it too


def test_explanations_equal_one_query_per_piece_of_evidence(model):
    """The batched explanation picks the piece a naive loop of single queries picks."""
    from bundlerec.explain import MIN_RATIO, explain_bundle
    from bundlerec.models.copurchase import item_node

    net = model.network
    user = 3
    bundle = tuple(int(j) for j in net.items[:3])
    got = explain_bundle(net, model.items, model.user_state, bundle, user, [int(net.items[5])])
    for j, record in zip(bundle, got):
        evidence = net.evidence([int(net.items[5])], user)
        evidence.update({item_node(o): "1" for o in bundle if o != j})
        node = item_node(j)

        def p(ev, node=node):
            return float(net.engine.query([node], evidence=ev or None).get_value(**{node: "1"}))

        full = p(evidence)
        ratios = [full / p({k: v for k, v in evidence.items() if k != var}) for var in evidence]
        best = max(ratios)
        if best < MIN_RATIO:
            assert record["because"] is None and record["note"] == "popular choice"
        else:
            assert record["ratio"] == pytest.approx(best, rel=1e-9)


def test_bundles_from_a_prefix_of_the_ranking_equal_those_of_the_whole_catalogue(
    model, monkeypatch
):
    """The search reads a prefix of the shopper's fused ranking where it settles the bundles
    (Fusion.prefixes): the answers are those of ranking the whole catalogue, to the bit."""
    from bundlerec import recommender as rec

    ids = list(model.items.classes_)
    asks = [
        {"k": 3, "size": 3, "budget": 80.0},
        {"k": 5, "size": 2},
        {"k": 2, "size": 4, "max_per_category": 2, "exclude": [ids[0], ids[5]]},
        {"k": 3, "size": 3, "objective": "revenue"},
        {"k": 3, "size": 3, "budget": 25.0},
    ]
    users = [*model.users.classes_[:6], "nobody"]
    settled = []
    compose = rec.compose_bundles
    # Pools small enough for a prefix of the 60 items (at most 8: Fusion.prefixes ranks the
    # whole catalogue rather than half of it) to settle some searches.
    monkeypatch.setitem(model.bundle_config, "pool", 4)

    def spy(*args, **kwargs):
        out = compose(*args, n_candidates=4, **kwargs)
        unknown = kwargs["unknown"]
        settled.append(out is not None and unknown is not None and unknown.any())
        return out

    monkeypatch.setattr(rec, "compose_bundles", spy)

    def answers(prefix):
        monkeypatch.setattr(rec, "_PREFIX", prefix)
        return [json.dumps(model.recommend_bundles(u, **ask)) for u in users for ask in asks]

    for lam in (0.0, 0.5):  # without and with the pairwise dependence term
        monkeypatch.setitem(model.bundle_config, "dependence", lam)
        settled.clear()
        whole = answers(10**9)  # more than the catalogue: the fusion ranks every item
        assert not any(settled)
        for prefix in (1, 4):
            assert answers(prefix) == whole, f"prefix {prefix}, lambda {lam}"
        assert any(settled), f"no search was settled by a prefix, lambda {lam}"
    # The dependence pool (the 4 most relevant network items) is unsettled by 3 known items.
    n = model.history.n_items
    unknown = np.ones(n, dtype=bool)
    unknown[model.pairwise.items[:3]] = False
    everything = np.ones(n, dtype=bool)
    assert model._dependence([], np.zeros(n), everything, unknown) is None
    unknown[model.pairwise.items[:4]] = False
    assert model._dependence([], np.zeros(n), everything, unknown) is not None
