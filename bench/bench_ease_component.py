"""Cost of the fusion's EASE component (issue 12): fit, saved size and serving, with and without.

On the 50,000-item model of ``bench/bench_serving.py`` (the same construction, fitted once per
session, not timed): one shopper's top-10, one shopper's fused scores over the whole catalogue
and 5 bundles of 3 under a budget, each timed with the fitted fusion (``with``) and with the same
fusion less the EASE component's two weights (``without``: ``Fusion`` skips a component whose
weights are 0, so it costs exactly what a three-component fusion costs) and with EASE given the
sequence model's two weights (``forced``: what serving costs where EASE has a weight; this shop's
fit may give it none). ``extra_info`` records
the component's fit time (K = 5,000 kept items of 50,000, single run), its stored entries and the
model directory's ``arrays.npz`` size with and without it. On the demo shop (``bundlerec demo``'s
data, leave-last-out training part) ``Recommender.fit`` is timed with the default settings and
with ``ease=None``.

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 BENCH_THREADS=1 python -m pytest
bench/bench_ease_component.py --benchmark-columns=min,median,max -p no:cacheprovider``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from bundlerec.datasets import synthetic_shop
from bundlerec.models.baselines import EASE
from bundlerec.models.fusion import SHARE, Fusion
from bundlerec.prep import split_leave_last_out
from bundlerec.recommender import EASE_DEFAULTS, Recommender


@pytest.fixture(scope="module")
def measured_model(big_model, tmp_path_factory):
    """The shared 50k-item model (bench/conftest.py) with the EASE component's fit time, stored
    entries and saved sizes in ``ease_info``."""
    model = big_model
    sizes = {}
    for label in ("with", "without"):
        if label == "without":
            model.ease, ease = None, model.ease
        path = tmp_path_factory.mktemp(label) / "model"
        model.save(path)
        sizes[label] = (path / "arrays.npz").stat().st_size
    model.ease = ease
    start = time.perf_counter()
    EASE(**EASE_DEFAULTS).fit(model.history)
    model.ease_info = {
        "ease_fit_s": round(time.perf_counter() - start, 2),
        "ease_entries": int(ease.weights_.nnz),
        "ease_weights": {k: v for k, v in model.fusion.weights.items() if k.startswith("ease")},
        "arrays_npz_bytes": sizes,
    }
    return model


def _variant(model: Recommender, label: str) -> Fusion:
    """The fitted fusion (``with``), a copy without the EASE component's weights (``without``)
    or with the sequence model's weights for it (``forced``)."""
    if label == "with":
        return model.fusion
    fusion = Fusion(model.fusion.components)
    weights = model.fusion.weights
    fusion.weights = {k: v for k, v in weights.items() if k.removesuffix(SHARE) != "ease"}
    if label == "forced":
        fusion.weights["ease"] = weights.get("sequence", 0.0)
        fusion.weights["ease" + SHARE] = weights.get("sequence" + SHARE, 0.0)
    fusion.bias = model.fusion.bias
    return fusion


def _serve(benchmark, model, label, call, rounds=None):
    users = np.asarray(model.users.classes_, dtype=object)[:200]
    state = {"i": 0}

    def one():
        state["i"] = (state["i"] + 1) % len(users)
        return call(users[state["i"]])

    kept, model.fusion = model.fusion, _variant(model, label)
    try:
        one()
        benchmark.extra_info.update(model.ease_info, catalogue=model.history.n_items)
        if rounds is None:
            return benchmark(one)
        return benchmark.pedantic(one, rounds=rounds, iterations=1)
    finally:
        model.fusion = kept


@pytest.mark.parametrize("label", ["with", "without", "forced"])
def test_top10_one_shopper(benchmark, measured_model, label):
    result = _serve(
        benchmark, measured_model, label, lambda u: measured_model.recommend_items(u, k=10)
    )
    assert len(result) == 10


@pytest.mark.parametrize("label", ["with", "without", "forced"])
def test_fused_scores_one_shopper(benchmark, measured_model, label):
    def scores(user):
        codes = measured_model._user_codes([user])
        return measured_model.fusion.score(measured_model._serving_cases(codes, [], []))

    result = _serve(benchmark, measured_model, label, scores)
    assert result.shape == (1, measured_model.history.n_items)


@pytest.mark.parametrize("label", ["with", "without"])
def test_five_bundles_of_three_under_budget(benchmark, measured_model, label):
    def bundles(user):
        return measured_model.recommend_bundles(user, k=5, size=3, budget=80.0)

    result = _serve(benchmark, measured_model, label, bundles, rounds=20)
    assert all(b["total_price"] <= 80.0 for b in result["bundles"])


@pytest.mark.parametrize("ease", [EASE_DEFAULTS, None], ids=["with", "without"])
def test_fit_demo_shop(benchmark, threads, ease):
    events, items, users = synthetic_shop(seed=0)
    train, _ = split_leave_last_out(events)

    def fit():
        return Recommender(task="next-item", seed=0, ease=ease).fit(train, items, users)

    model = benchmark.pedantic(fit, rounds=2, iterations=1)
    benchmark.extra_info["fusion_weights"] = model.fusion.weights
    assert (model.ease is None) == (ease is None)
