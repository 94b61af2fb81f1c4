"""The mlops-platform command: simulate lands files; bad arguments get a clear error."""

import datetime as dt
import os
import subprocess
import sys

import pandas as pd


def _cli(*args, home):
    env = {**os.environ, "MLOPS_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "mlops_platform", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_simulate_lands_parquet_events_and_csv_labels(tmp_path) -> None:
    done = _cli(
        "simulate", "--model", "delivery_eta", "--days", "2", "--start", "2026-10-01", "--rows", "30", home=tmp_path
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "landing" / "delivery_eta" / "2026-10-02"
    events = pd.read_parquet(next(folder.glob("events-*.parquet")))
    labels = pd.read_csv(next(folder.glob("labels-*.csv")))
    assert len(events) == 30 and len(labels) == 30
    assert (pd.to_datetime(events["event_ts"]).dt.date == dt.date(2026, 10, 2)).all()
    assert not list(folder.glob(".*"))  # no partial files left behind


def test_simulate_drift_shifts_the_distribution(tmp_path) -> None:
    _cli("simulate", "--model", "churn", "--days", "1", "--start", "2026-10-01", home=tmp_path / "a")
    _cli("simulate", "--model", "churn", "--days", "1", "--start", "2026-10-01", "--drift", "1", home=tmp_path / "b")
    base = pd.read_parquet(next((tmp_path / "a/landing/churn/2026-10-01").glob("events-*")))
    drifted = pd.read_parquet(next((tmp_path / "b/landing/churn/2026-10-01").glob("events-*")))
    assert drifted["usage_hours_30d"].mean() < base["usage_hours_30d"].mean() - 10
    assert drifted["support_calls_30d"].mean() > base["support_calls_30d"].mean() + 1


def test_errors_name_what_was_wrong(tmp_path) -> None:
    unknown = _cli("simulate", "--model", "nope", "--days", "1", home=tmp_path)
    assert unknown.returncode == 2 and "no model spec named 'nope'" in unknown.stderr
    early = _cli("simulate", "--model", "churn", "--days", "1", "--start", "2020-01-01", home=tmp_path)
    assert early.returncode == 2 and "partitions start on 2026-09-01" in early.stderr
    bad_date = _cli("simulate", "--model", "churn", "--days", "1", "--start", "yesterday", home=tmp_path)
    assert bad_date.returncode == 2 and "'yesterday' is not a date" in bad_date.stderr
    profile = subprocess.run(
        [sys.executable, "-m", "mlops_platform", "specs"],
        env={**os.environ, "MLOPS_PROFILE": "moon"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert profile.returncode == 2 and "MLOPS_PROFILE='moon'" in profile.stderr
