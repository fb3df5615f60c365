"""bundlerec.forecast: windows, the LSTM forecaster, baselines, metrics, backtest and reorder.

Oracles: hand-computed windows and metrics, closed-form baselines, a learnable pattern the
model must beat seasonal naive on, and explicit edge cases (short, all-zero, one-sale series)
whose forecasts must be finite and non-negative.
"""

import numpy as np
import pandas as pd
import pytest

from bundlerec.data import DataError
from bundlerec.forecast import Forecaster, baselines, metrics
from bundlerec.forecast.backtest import backtest, to_table
from bundlerec.forecast.features import Features
from bundlerec.forecast.grid import Grid
from bundlerec.forecast.model import quantile_key
from bundlerec.forecast.reorder import read_stock, reorder_table

FAST = {"epochs": 3, "steps_per_epoch": 5, "batch_size": 32, "hidden": 8, "n_models": 1}


def grid_of(values, freq="D", start="2024-01-01", **covariates):
    values = np.asarray(values, dtype=np.float64)
    items = np.array([f"i{k}" for k in range(len(values))], dtype=object)
    return Grid(items, pd.Period(start, freq), freq, values, **covariates)


def test_windows_skip_the_periods_before_the_first_sale():
    y = np.array([[0, 0, 0, 2, 4, 6, 0, 8], [1, 1, 1, 1, 1, 1, 1, 1]], dtype=float)
    f = Features(grid_of(y), horizon=2, context=4)
    b = f.batch([0, 1], [6, 6])
    assert b.lengths.tolist() == [3, 4], "series 0 starts at its first sale (period 3)"
    # diff scaling: center = mean of the history, scale = mean |change| (the mean if constant)
    assert np.allclose(b.center, [4.0, 1.0]) and np.allclose(b.scale, [2.0, 1.0])
    assert np.allclose(b.x[0, :3, 0], [-1.0, 0.0, 1.0]) and not b.x[0, 3].any()
    assert np.allclose(b.target[0], [-2.0, 2.0]) and b.mask.tolist() == [[1, 1], [1, 1]]
    mean = Features(grid_of(y), horizon=2, context=4, scaling="mean").batch([0], [6])
    assert mean.center[0] == 0 and mean.scale[0] == 4.0
    assert np.allclose(mean.x[0, :3, 0], [0.5, 1.0, 1.5]) and np.allclose(mean.target, [[0, 2]])
    masked = f.batch([0], [6], end=7)
    assert masked.mask.tolist() == [[1, 0]], "targets at or after the cut are unknown"
    assert f.n_head == 2 * f.n_future + 7 + 2 and b.head.shape == (2, f.n_head)


def test_windows_carry_relative_price_and_promotion():
    y = np.ones((1, 6))
    price = np.array([[2.0, 2.0, 2.0, 2.0, 1.0, 2.0]])
    promo = np.array([[0, 0, 0, 0, 1.0, 0]])
    f = Features(grid_of(y, price=price, promo=promo), horizon=2, context=4)
    b = f.batch([0], [4])
    assert f.n_inputs == 1 + 4 + 2
    assert np.allclose(b.x[0, :, 5], 0.0), "constant history price: log ratio 0"
    future = b.head[0, : 2 * f.n_future].reshape(2, f.n_future)
    assert np.isclose(future[0, 4], np.log(0.5)) and future[0, 5] == 1.0


def test_quantile_keys():
    assert [quantile_key(q) for q in (0.5, 0.9, 0.1, 0.975)] == ["p50", "p90", "p10", "p97.5"]


def test_forecaster_learns_a_weekly_pattern_better_than_seasonal_naive(rng):
    t, h = 168, 14
    pattern = np.array([1, 1, 2, 2, 3, 8, 5.0])
    level = rng.uniform(2, 10, size=(12, 1))
    y = rng.poisson(level * np.tile(pattern, t // 7 + 2)[: t + h]).astype(float)
    train = grid_of(y[:, :t])
    model = Forecaster(h, (0.1, 0.5, 0.9), epochs=8, steps_per_epoch=12, n_models=1, seed=1)
    forecast = model.fit(train).predict()
    assert forecast.values.shape == (12, h, 3)
    p50, p90 = forecast.level(0.5), forecast.level(0.9)
    ours = metrics.mase(y[:, t:], p50, y[:, :t], 7)
    snaive = metrics.mase(
        y[:, t:], baselines.seasonal_naive(y[:, :t], h, 7, [0.5])[..., 0], y[:, :t], 7
    )
    assert ours < snaive, f"LSTM MASE {ours:.3f} vs seasonal naive {snaive:.3f}"
    assert 0.6 <= metrics.coverage(y[:, t:], p90) <= 1.0
    assert np.all(np.diff(forecast.values, axis=2) >= 0), "quantiles are sorted"
    assert min(model.best_epochs) >= 1 and len(model.history[0]) >= 1
    assert model.offsets_[1] == 0.0, "the median is not shifted by the calibration"


def test_calibration_offsets_make_each_level_cover_its_share():
    from bundlerec.forecast.features import Batch

    target = np.arange(100, dtype=np.float32).reshape(50, 2)
    mask = np.ones_like(target)
    mask[0, 1] = 0  # an unknown target does not count
    batch = Batch(None, None, None, None, None, None, target, mask)
    model = Forecaster(2, (0.1, 0.5, 0.9))
    offsets = model._offsets(np.full((50, 2, 3), 10.0), batch)
    known = np.delete(np.arange(100.0), 1)
    assert offsets[1] == 0.0
    for k, q in ((0, 0.1), (2, 0.9)):
        assert np.isclose(offsets[k], np.quantile(known - 10.0, q))
        assert abs(np.mean(known <= 10.0 + offsets[k]) - q) < 0.02


def test_edge_series_give_finite_non_negative_forecasts():
    y = np.zeros((4, 5))
    y[1, 2] = 1.0  # one sale
    y[2] = [3, 0, 4, 1, 2]  # shorter than a season
    # row 0 all zero; row 3 sells only in the last period
    y[3, 4] = 5.0
    forecast = Forecaster(7, **FAST).fit(grid_of(y)).predict()
    assert np.isfinite(forecast.values).all() and (forecast.values >= 0).all()
    assert not forecast.values[0].any(), "a series without any sale is forecast 0"
    frame = forecast.to_frame([0.5, 0.9])
    assert list(frame.columns) == ["item_id", "period", "p50", "p90"] and len(frame) == 28
    assert frame["period"].iloc[0] == "2024-01-06"


def test_forecaster_rejects_bad_settings():
    with pytest.raises(ValueError, match="horizon"):
        Forecaster(0)
    with pytest.raises(ValueError, match="quantiles"):
        Forecaster(3, (0.5, 1.0))
    with pytest.raises(ValueError, match="at least 2 periods"):
        Forecaster(3, **FAST).fit(grid_of([[1.0]]))
    with pytest.raises(RuntimeError, match="fit"):
        Forecaster(3).predict()
    forecast = Forecaster(2, **FAST).fit(grid_of([[1.0, 2.0, 3.0]])).predict()
    with pytest.raises(ValueError, match="n_models"):
        Forecaster(3, n_models=0)
    with pytest.raises(KeyError, match="0.3"):
        forecast.level(0.3)


def test_baselines_point_forecasts():
    y = np.array([[1, 2, 3, 4, 5, 6, 7, 8.0]])
    assert baselines.naive(y, 3, 4, [0.5])[0, :, 0].tolist() == [8, 8, 8]
    assert baselines.seasonal_naive(y, 6, 4, [0.5])[0, :, 0].tolist() == [5, 6, 7, 8, 5, 6]
    assert baselines.moving_average(y, 2, 4, [0.5])[0, :, 0].tolist() == [6.5, 6.5]
    flat = baselines.naive(np.full((1, 6), 3.0), 2, 1, [0.1, 0.5, 0.9])
    assert np.allclose(flat, 3.0), "a constant history has no error spread"
    short = baselines.seasonal_naive(np.array([[2.0, 5.0]]), 2, 7, [0.5])
    assert short[0, :, 0].tolist() == [5, 5], "shorter than a season: naive"


def test_metrics_by_hand():
    y = np.array([[2.0, 4.0], [0.0, 0.0]])
    f = np.array([[3.0, 4.0], [0.0, 1.0]])
    history = np.array([[1.0, 3.0, 2.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    assert np.allclose(metrics.mase_scale(history, 2), [1.0, np.nan], equal_nan=True)
    assert metrics.mase(y, f, history, 2) == pytest.approx(0.5)
    assert metrics.wape(y, f) == pytest.approx(2 / 6)
    assert metrics.smape(y, f) == pytest.approx((200 / 5 + 0 + 0 + 200) / 4)
    assert metrics.pinball(y, f, 0.9) == pytest.approx((0.1 * 1 + 0.1 * 1) / 4)
    assert metrics.coverage(y, f) == 1.0
    assert metrics.wape(np.zeros(2), np.zeros(2)) == 0.0
    late = np.array([[0.0, 0.0, 0.0, 1.0, 3.0, 2.0]])
    assert metrics.mase_scale(late, 1)[0] == pytest.approx(1.5), "leading zeros are skipped"


def test_backtest_scores_every_method_in_one_run(rng):
    y = rng.poisson(5, size=(3, 40)).astype(float)
    report = backtest(grid_of(y), 7, forecaster=FAST, use_ets=False)
    assert set(report["results"]) == {"lstm", "naive", "seasonal_naive", "moving_average"}
    for row in report["results"].values():
        assert np.isfinite([row[k] for k in ("mase", "wape", "smape", "pinball")]).all()
        assert 0 <= row["coverage_p90"] <= 1
    assert "seasonal_naive" in to_table(report)
    with pytest.raises(ValueError, match="holdout"):
        backtest(grid_of(y), 39)


def test_ets_peer_when_statsmodels_is_installed(rng):
    pytest.importorskip("statsmodels")
    t = np.arange(48)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, 48)
    out, missed = baselines.ets(np.stack([y, np.zeros(48)]), 12, 12, [0.1, 0.5, 0.9])
    assert missed == 1, "the all-zero series falls back to seasonal naive"
    truth = 10 + 3 * np.sin(2 * np.pi * np.arange(48, 60) / 12)
    assert np.abs(out[0, :, 1] - truth).mean() < 1.0
    assert (out[0, :, 0] < out[0, :, 1]).all() and (out[0, :, 1] < out[0, :, 2]).all()


def test_reorder_table(rng):
    forecast = Forecaster(4, **FAST).fit(grid_of(rng.poisson(3, (2, 30)))).predict()
    stock = read_stock(pd.DataFrame({"item_id": ["i1", "i0"], "on_hand": [0, 1000]}))
    table = reorder_table(forecast, stock, 2)
    p50, p90 = forecast.level(0.5), forecast.level(0.9)
    assert table["item_id"].tolist() == ["i1", "i0"]
    assert np.allclose(table["demand_p50"], p50[[1, 0], :2].sum(axis=1))
    assert np.allclose(table["demand_p90"], p90[[1, 0], :2].sum(axis=1))
    assert table["order"].iloc[0] == np.ceil(p90[1, :2].sum()) and table["order"].iloc[1] == 0
    assert table["days_of_cover"].iloc[0] == 0.0
    with pytest.raises(ValueError, match="lead time"):
        reorder_table(forecast, stock, 5)
    with pytest.raises(KeyError, match="zz"):
        reorder_table(forecast, read_stock(pd.DataFrame({"item_id": ["zz"], "on_hand": [1]})), 1)
    for bad, match in (({"item_id": ["i0"], "on_hand": [-1]}, "negative"),
                       ({"item_id": ["i0", "i0"], "on_hand": [1, 2]}, "more than once"),
                       ({"item_id": ["i0"]}, "on_hand")):  # fmt: skip
        with pytest.raises(DataError, match=match):
            read_stock(pd.DataFrame(bad))
