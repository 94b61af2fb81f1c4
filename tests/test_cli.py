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


def _first_line(done: subprocess.CompletedProcess) -> str:
    return done.stderr.strip().splitlines()[0] if done.stderr.strip() else ""


def test_registry_export_bad_arguments_exit_2_with_one_line(tmp_path) -> None:
    existing = tmp_path / "backup.tar"
    existing.write_text("keep me")
    to_file = _cli("registry", "export", "--to", str(existing), home=tmp_path / "home")
    assert to_file.returncode == 2, to_file.stderr
    assert _first_line(to_file) == f"error: --to {existing}: is an existing file; give a folder (new or existing)"
    assert existing.read_text() == "keep me"
    unknown = _cli("registry", "export", "--to", str(tmp_path / "out"), "--model", "nope", home=tmp_path / "home")
    assert unknown.returncode == 2, unknown.stderr
    assert _first_line(unknown) == "error: --model 'nope': no such registered model; known: none"
    assert "Traceback" not in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1


def test_rollback_without_a_champion_is_one_line_exit_1(tmp_path) -> None:
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "mlops_platform", "rollback", "--model", "churn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: rollback of churn refused: model 'churn' has no champion to roll back"
    ]


def test_simulate_bad_numbers_name_their_flag(tmp_path) -> None:
    cases = {
        ("--drift", "-5"): "argument --drift: -5 must be a finite number from 0",
        ("--drift", "nan"): "argument --drift: nan must be a finite number from 0",
        ("--rows", "0"): "argument --rows: 0 must be at least 1",
        ("--days", "x"): "argument --days: 'x' is not a whole number",
    }
    for (flag, value), message in cases.items():
        args = ["simulate", "--model", "churn", "--days", "1", "--start", "2026-10-01", flag, value]
        done = _cli(*args, home=tmp_path)
        assert done.returncode == 2, (flag, value, done.stderr)
        assert message in done.stderr.strip().splitlines()[-1], done.stderr
    far = _cli("simulate", "--model", "churn", "--days", "100000", home=tmp_path)
    assert far.returncode == 2
    assert _first_line(far).startswith("error: --days 100000 reaches back to ")
    assert "before churn's first partition (2026-09-01): give at most --days " in _first_line(far)
    assert not (tmp_path / "landing").exists() or not any((tmp_path / "landing").rglob("*.parquet"))


def test_delta_restore_targets_the_table_lacks_are_bad_arguments(tmp_path) -> None:
    from mlops_platform.storage.delta import write_table

    uri = str(tmp_path / "table")
    frame = pd.DataFrame({"day": [dt.date(2026, 10, 1)], "id": [1]})
    write_table(uri, frame, days=[dt.date(2026, 10, 1)])
    write_table(uri, frame.assign(id=2), days=[dt.date(2026, 10, 1)])
    cases = {
        ("--version", "-1"): "argument --version: -1 is not a table version",
        ("--version", "7"): "error: --version 7: ",
        ("--version", "1"): "is at version 1 already: nothing to restore",
        ("--timestamp", "2000-01-01T00:00:00Z"): "was committed at or before 2000-01-01T00:00:00+00:00",
        ("--timestamp", "2999-01-01T00:00:00Z"): "is at version 1 already: nothing to restore",
    }
    for (flag, value), message in cases.items():
        done = _cli("delta", "restore", "--table", uri, flag, value, home=tmp_path)
        assert done.returncode == 2, (flag, value, done.stderr)
        assert message in done.stderr, (flag, value, done.stderr)
    from deltalake import DeltaTable

    assert DeltaTable(uri).version() == 1  # none of them committed anything
    done = _cli("delta", "restore", "--table", uri, "--version", "0", home=tmp_path)
    assert done.returncode == 0 and "as new version 2" in done.stdout
