"""Compaction and vacuum: the retention arithmetic, and a table maintained on local disk.

The job that collects the protected versions runs against the servers in suite.py.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlops_platform.storage.delta import append_table, read_table
from mlops_platform.storage.maintenance import (
    DEFAULT_MIN_RETENTION_HOURS,
    log_retention_needed,
    maintain_table,
    parse_interval,
    retention_hours,
)

NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


def _times(*hours_ago: float) -> dict[int, dt.datetime]:
    """Commit times of versions 0, 1, ... given how many hours ago each was committed."""
    return {v: NOW - dt.timedelta(hours=h) for v, h in enumerate(hours_ago)}


def test_retention_reaches_back_to_the_commit_after_the_oldest_protected_version() -> None:
    times = _times(500, 400, 300, 200, 0.5)  # versions 0..4
    # Version 1's files can have been removed from version 2 on (300 h ago): keep 300 h, plus margin.
    assert retention_hours(times, [1, 3], latest=4, now=NOW, minimum_hours=0) == 301
    # Protecting only version 3: its files can go from version 4 on, 0.5 h ago.
    assert retention_hours(times, [3], latest=4, now=NOW, minimum_hours=0) == 2
    # The latest version's files are not tombstoned: only the floor applies.
    assert retention_hours(times, [4], latest=4, now=NOW, minimum_hours=0) == 0
    assert retention_hours(times, [], latest=4, now=NOW) == DEFAULT_MIN_RETENTION_HOURS
    # Never below the floor.
    assert retention_hours(times, [3], latest=4, now=NOW, minimum_hours=168) == 168


def test_log_retention_is_raised_only_for_versions_older_than_it() -> None:
    times = {0: NOW - dt.timedelta(days=60), 1: NOW - dt.timedelta(days=2)}
    thirty = parse_interval("interval 30 days")
    assert thirty == dt.timedelta(days=30) == parse_interval(None)
    assert log_retention_needed(times, [1], NOW, thirty) is None
    raised = log_retention_needed(times, [0, 1], NOW, thirty)
    assert raised is not None and raised >= dt.timedelta(days=60)
    assert parse_interval("interval 2 weeks") == dt.timedelta(days=14)


def _grow(uri: str, appends: int) -> list[int]:
    return [append_table(uri, pd.DataFrame({"batch": [n] * 10, "row": range(10)})).version for n in range(appends)]


def _data_files(path) -> set[str]:
    return {p.name for p in path.glob("*.parquet")}


def test_maintenance_compacts_and_keeps_a_protected_version_readable(tmp_path) -> None:
    uri = str(tmp_path / "t")
    versions = _grow(uri, 6)
    pinned = versions[2]
    expected = read_table(uri, pinned)
    result = maintain_table(uri, [pinned, versions[-1]], minimum_retention_hours=0)
    assert result.files_compacted == 6 and result.files_written == 1
    assert result.version_after == versions[-1] + 1  # the compaction commit
    assert result.retention_hours >= 1
    pd.testing.assert_frame_equal(read_table(uri, pinned), expected)
    latest = read_table(uri, result.version_after)
    assert sorted(latest["batch"].unique()) == list(range(6)) and len(latest) == 60


def test_maintenance_vacuums_what_nothing_protects(tmp_path) -> None:
    uri = str(tmp_path / "t")
    _grow(uri, 4)
    before = _data_files(tmp_path / "t")
    # Nothing pinned and no floor: the four small files go once compaction replaced them.
    result = maintain_table(uri, [], minimum_retention_hours=0)
    after = _data_files(tmp_path / "t")
    assert result.files_vacuumed == 4 and len(after) == 1 and not after & before
    assert len(read_table(uri, result.version_after)) == 40
    with pytest.raises(Exception):  # noqa: B017 - the old version's files are gone, whatever delta-rs calls that
        read_table(uri, 1)
