"""``bundlerec forecast`` end to end on small files: CSV and JSON output, the reorder table,
the backtest, the plot, and bad input turned into one error line with exit code 2."""

import json

import numpy as np
import pandas as pd
import pytest

from bundlerec.cli import main
from bundlerec.forecast.synthetic import synthetic_sales

QUICK = ["--epochs", "1", "--ensemble", "1", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    events, stock, _ = synthetic_sales(n_items=30, n_days=70, seed=3)
    events.to_csv(root / "sales.csv", index=False)
    stock[["item_id", "on_hand"]].to_csv(root / "stock.csv", index=False)
    return root


def run(capsys, *argv):
    code = main(["forecast", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_documented_shape_and_a_reorder_table(files, capsys):
    code, out, err = run(
        capsys, "--events", str(files / "sales.csv"), "--horizon", "3", "--freq", "W",
        "--quantiles", "0.5,0.9", "--stock", str(files / "stock.csv"), "--lead-time", "2",
        "--format", "json", *QUICK,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"freq", "horizon", "forecasts", "reorder"}
    assert result["freq"] == "W" and result["horizon"] == 3
    rows = result["forecasts"]
    assert len(rows) == 30 * 3
    assert set(rows[0]) == {"item_id", "period", "p50", "p90"}
    assert all(0 <= r["p50"] <= r["p90"] for r in rows)
    assert pd.to_datetime(rows[0]["period"]).weekday() == 0, "weeks are labelled by Monday"
    reorder = result["reorder"]
    assert len(reorder) == 30
    assert set(reorder[0]) == {
        "item_id", "lead_time", "demand_p50", "demand_p90", "on_hand", "order", "days_of_cover",
    }  # fmt: skip
    assert all(
        r["order"] == max(0, np.ceil(r["demand_p90"] - r["on_hand"] - 1e-9)) for r in reorder
    )


def test_csv_to_files_and_a_plot(files, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out_csv, plot = tmp_path / "f.csv", tmp_path / "f.png"
    code, out, err = run(
        capsys, "--events", str(files / "sales.csv"), "--horizon", "5", "--quantiles", "0.1,0.5",
        "--out", str(out_csv), "--plot", str(plot), "--plot-items", "i0001,i0002", *QUICK,
    )  # fmt: skip
    assert code == 0, err
    assert out == ""
    frame = pd.read_csv(out_csv)
    assert list(frame.columns) == ["item_id", "period", "p10", "p50"] and len(frame) == 150
    assert (frame["p10"] <= frame["p50"]).all() and frame.notna().all().all()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_runs_every_method(files, capsys):
    code, out, err = run(
        capsys, "--events", str(files / "sales.csv"), "--freq", "W", "--evaluate",
        "--holdout", "2", "--format", "json", "--no-ets", *QUICK,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert {"lstm", "naive", "seasonal_naive", "moving_average"} <= set(report["results"])
    assert report["holdout"] == 2 and report["series"] == 30


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--horizon", "3", "--stock", "S"], "--stock needs --lead-time"),
        (["--horizon", "3", "--stock", "S", "--lead-time", "2"], "--reorder-out"),
        (["--evaluate"], "--holdout"),
        ([], "--horizon"),
        (["--horizon", "2", "--stock", "S", "--lead-time", "5", "--format", "json"], "lead time"),
    ],
)
def test_usage_errors_are_one_line(files, capsys, extra, message):
    extra = [str(files / "stock.csv") if a == "S" else a for a in extra]
    code, out, err = run(capsys, "--events", str(files / "sales.csv"), *extra, *QUICK)
    assert code == 2 and message in err and out == "", err
    assert len(err.strip().splitlines()) == 1


def test_undefined_metrics_are_null_in_json(tmp_path, capsys):
    path = tmp_path / "flat.csv"
    days = pd.date_range("2024-01-01", periods=20, freq="D").strftime("%Y-%m-%d")
    pd.DataFrame({"item_id": "a", "timestamp": days, "quantity": 2.0}).to_csv(path, index=False)
    code, out, err = run(
        capsys, "--events", str(path), "--evaluate", "--holdout", "3", "--format", "json",
        "--no-ets", *QUICK,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["results"]["lstm"]["mase"] is None, "a constant history has no MASE scale"
    assert report["results"]["naive"]["wape"] == 0.0
    assert any("constant history" in note for note in report["notes"])


def test_plot_without_matplotlib_fails_before_training(files, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    from bundlerec.forecast import Forecaster

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking for matplotlib")

    monkeypatch.setattr(Forecaster, "fit", no_training)
    code, out, err = run(
        capsys, "--events", str(files / "sales.csv"), "--horizon", "2", "--plot", "x.png", *QUICK
    )
    assert code == 2 and "bundlerec[plot]" in err


def test_bad_quantities_are_reported(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    pd.DataFrame(
        {"item_id": ["a", "a"], "timestamp": ["2024-01-01", "2024-01-02"], "quantity": [1, -3]}
    ).to_csv(path, index=False)
    code, out, err = run(capsys, "--events", str(path), "--horizon", "2", *QUICK)
    assert code == 2 and "negative quantity" in err


def test_bad_levels_are_refused_by_the_parser(files, capsys):
    with pytest.raises(SystemExit):
        main(["forecast", "--events", str(files / "sales.csv"), "--horizon", "2",
              "--quantiles", "0.5,1.5"])  # fmt: skip
    assert "strictly between 0 and 1" in capsys.readouterr().err


def test_an_unwritable_out_fails_before_training(files, capsys, monkeypatch, tmp_path):
    """Checked by writing there, not by permission bits (root writes anywhere but a read-only
    file system such as /sys)."""
    import os
    import tempfile
    from pathlib import Path

    from bundlerec.forecast import Forecaster

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    for place in (locked, Path("/sys")):
        try:
            os.rmdir(tempfile.mkdtemp(dir=place))
        except OSError:
            break
    else:
        pytest.skip("no unwritable directory on this machine")

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the destination")

    monkeypatch.setattr(Forecaster, "fit", no_training)
    code, out, err = run(
        capsys, "--events", str(files / "sales.csv"), "--horizon", "2",
        "--out", str(place / "f.csv"), *QUICK,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(place) in err
