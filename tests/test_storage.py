"""Delta storage: versions, partition replacement, time travel, restore, and the pinning IO manager."""

import datetime as dt
import logging

import dagster as dg
import pandas as pd
import pytest

from mlops_platform.storage.delta import (
    RestoreTargetError,
    read_days_at_versions,
    read_table,
    restore_table,
    write_table,
)
from mlops_platform.storage.io_manager import DeltaIOManager, Lake, LineageError
from mlops_platform.text import TEXT

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)


def _frame(day: dt.date, values: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": values,
            "ts": pd.to_datetime([f"{day} 10:00"] * len(values)),
            "name": pd.Series([f"n{v}" for v in values], dtype=TEXT),
            "day": [day] * len(values),
        }
    )


def test_partition_writes_replace_only_their_day_and_return_their_version(tmp_path) -> None:
    uri = str(tmp_path / "t")
    first = write_table(uri, _frame(D1, [1, 2]), days=[D1])
    second = write_table(uri, _frame(D2, [3]), days=[D2])
    again = write_table(uri, _frame(D1, [1, 2]), days=[D1])
    assert (first.version, second.version, again.version) == (0, 1, 2)
    latest = read_table(uri, again.version)
    assert sorted(latest["id"]) == [1, 2, 3]  # re-writing D1 left no duplicates
    assert read_table(uri, 0)["id"].tolist() == [1, 2]  # time travel
    assert read_table(uri, again.version, days=[D2])["id"].tolist() == [3]


def test_dtypes_come_back_as_written(tmp_path) -> None:
    uri = str(tmp_path / "t")
    frame = _frame(D1, [1, 2])
    written = write_table(uri, frame, days=[D1])
    pd.testing.assert_frame_equal(read_table(uri, written.version), frame)


def test_a_partition_write_refuses_rows_of_other_days(tmp_path) -> None:
    uri = str(tmp_path / "t")
    with pytest.raises(ValueError, match=r"refusing to write rows for days \['2026-10-02'\]"):
        write_table(uri, pd.concat([_frame(D1, [1]), _frame(D2, [2])]), days=[D1])


def test_empty_partition_keeps_the_table_schema(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [1]), days=[D1])
    empty = pd.DataFrame(
        {
            "id": pd.Series(dtype="int64"),
            "ts": pd.Series(dtype="datetime64[ns]"),
            "name": pd.Series(dtype=object),
            "day": pd.Series(dtype=object),
        }
    )
    result = write_table(uri, empty, days=[D2])
    assert read_table(uri, result.version)["id"].tolist() == [1]


def test_each_day_is_read_at_its_own_version(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [1]), days=[D1])  # v0
    write_table(uri, _frame(D2, [2]), days=[D2])  # v1
    write_table(uri, _frame(D1, [9]), days=[D1])  # v2: a later rewrite of D1
    pinned = read_days_at_versions(uri, {D1: 0, D2: 1})
    assert pinned["id"].tolist() == [1, 2]


def test_restore_is_a_new_commit_and_loses_nothing(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [1]), days=[D1])
    write_table(uri, _frame(D1, [5, 6]), days=[D1])
    new_version = restore_table(uri, version=0)
    assert new_version == 2
    assert read_table(uri, 2)["id"].tolist() == [1]
    assert read_table(uri, 1)["id"].tolist() == [5, 6]
    with pytest.raises(RestoreTargetError, match=r"versions 0\.\.2; 7 is not one of them"):
        restore_table(uri, version=7)


def test_io_manager_records_versions_and_loads_the_recorded_one(tmp_path, instance) -> None:
    partitions = dg.DailyPartitionsDefinition(start_date="2026-10-01")
    lake = Lake(root_uri=str(tmp_path / "lake"))

    @dg.asset(partitions_def=partitions, io_manager_key="delta", key_prefix="m")
    def source(context: dg.AssetExecutionContext) -> pd.DataFrame:
        day = dt.date.fromisoformat(context.partition_key)
        return _frame(day, [day.day])

    @dg.asset(io_manager_key="delta", key_prefix="m", ins={"source": dg.AssetIn(source.key)})
    def combined(source: pd.DataFrame) -> pd.DataFrame:
        return source.assign(versions=str(source.attrs["delta_versions"]))

    resources = {"delta": DeltaIOManager(lake=lake)}
    for key in ("2026-10-01", "2026-10-02"):
        dg.materialize([source], partition_key=key, resources=resources, instance=instance)
    # A write that Dagster never recorded (another process, a crashed step) must not be read.
    write_table(lake.uri(source.key), _frame(D1, [99]), days=[D1])
    dg.materialize([source, combined], selection=[combined], resources=resources, instance=instance)
    result = read_table(lake.uri(combined.key), 0)
    assert sorted(result["id"]) == [1, 2]
    assert result["versions"].iloc[0] == str({"2026-10-01": 0, "2026-10-02": 1})
    record = instance.get_latest_materialization_event(combined.key)
    assert record.asset_materialization.metadata["delta_version"].value == 0
    assert record.asset_materialization.metadata["dagster/row_count"].value == 2


def test_io_manager_fails_clearly_without_a_recorded_upstream(tmp_path, instance) -> None:
    lake = Lake(root_uri=str(tmp_path / "lake"))

    @dg.asset(io_manager_key="delta")
    def upstream() -> pd.DataFrame:
        return _frame(D1, [1])

    @dg.asset(io_manager_key="delta")
    def downstream(upstream: pd.DataFrame) -> pd.DataFrame:
        return upstream

    with pytest.raises(LineageError, match="upstream has no recorded materialization"):
        dg.materialize(
            [upstream, downstream],
            selection=[downstream],
            resources={"delta": DeltaIOManager(lake=lake)},
            instance=instance,
        )


def test_a_stream_replaces_the_table_in_one_commit_and_keeps_dtypes(tmp_path) -> None:
    from mlops_platform.storage.delta import write_stream

    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [9]))
    frames = [_frame(D1, [1, 2]), _frame(D1, [])[["id", "ts", "name", "day"]], _frame(D2, [3])]
    frames[2]["name"] = None  # no value to infer a type from: takes the column's type in the others
    result = write_stream(uri, lambda: iter(frames))
    assert (result.version, result.rows) == (1, 3)
    table = read_table(uri, 1)
    assert sorted(table["id"]) == [1, 2, 3]
    assert table.dtypes.to_dict() == _frame(D1, [1]).dtypes.to_dict()
    assert read_table(uri, 0)["id"].tolist() == [9]


def test_a_stream_frame_that_does_not_fit_is_refused_naming_it_and_nothing_commits(tmp_path) -> None:
    from mlops_platform.storage.delta import write_stream

    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [9]))
    bad = _frame(D2, [3]).rename(columns={"name": "other"})
    with pytest.raises(ValueError, match=r"frame 1 of the stream .* has columns"):
        write_stream(uri, lambda: iter([_frame(D1, [1]), bad]))
    from deltalake import DeltaTable

    assert DeltaTable(uri).version() == 0


def test_a_filtered_read_loads_only_the_rows_and_columns_asked_for(tmp_path) -> None:
    from mlops_platform.storage.delta import PinnedDays, PinnedTable, plan_batches

    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [1, 2, 3]), days=[D1])
    write_table(uri, _frame(D2, [4, 5]), days=[D2])
    rows = read_table(uri, 1, where="id >= 2 AND id < 5", columns=["id", "day"])
    assert list(rows.columns) == ["id", "day"] and sorted(rows["id"]) == [2, 3, 4]
    pinned = PinnedDays(uri, {D1: 0, D2: 1})
    assert pinned.rows_by_day() == {D1: 3, D2: 2}
    assert [days for days, _ in pinned.batches(3)] == [[D1], [D2]]
    assert [days for days, _ in pinned.batches(10)] == [[D1, D2]]
    assert plan_batches({D1: 5, D2: 1}, 2) == [[D1], [D2]]  # a day larger than a batch is never split
    table = PinnedTable(uri, 1)
    assert table.count("id > 1") == 4
    assert sum(len(f) for f in table.batches(where="id > 1")) == 4


def test_a_stream_whose_frames_read_delta_writes_every_frame(tmp_path) -> None:
    """The training set's frames read Delta themselves (issue 13), while the stream is being written:
    every row of every frame is written, however many Arrow batches a frame spans."""
    from mlops_platform.storage.delta import STREAM_BATCH_ROWS, write_stream

    source, target = str(tmp_path / "source"), str(tmp_path / "target")
    write_table(source, _frame(D1, list(range(10))), days=[D1])

    def frames():
        for _ in range(3):  # each frame read from Delta, more rows than one Arrow batch over the stream
            frame = read_table(source, 0)
            yield pd.concat([frame] * (STREAM_BATCH_ROWS // 10 + 1), ignore_index=True)

    result = write_stream(target, frames)
    assert result.rows == 3 * 10 * (STREAM_BATCH_ROWS // 10 + 1)
    assert len(read_table(target, result.version)) == result.rows


# Run in a process of its own: a deadlock on the GIL would hang the test process itself.
_NUMERIC_STREAM = """
import datetime as dt, faulthandler, sys
import numpy as np, pandas as pd
from mlops_platform.storage.delta import read_table, write_stream, write_table
faulthandler.dump_traceback_later(float(sys.argv[3]), exit=True)
source, target = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
rows = {"x": rng.random(20_000), "n": rng.integers(0, 9, 20_000), "day": dt.date(2026, 10, 1)}
write_table(source, pd.DataFrame(rows))
def frames():
    for _ in range(3):
        yield read_table(source, 0)  # each frame read from Delta while the stream is being written
print(sum(write_stream(f"{target}{attempt}", frames).rows for attempt in range(5)))
"""


def test_a_stream_of_frames_read_from_delta_does_not_deadlock(tmp_path) -> None:
    """The 60-day training set hung (issue 13): delta-rs pulled the frames on a worker of its runtime,
    which then waited for a producer thread whose Delta read needed that same runtime. Before the fix
    this script hung within its first writes, every time."""
    import subprocess
    import sys

    limit = 240  # the write takes under a second; the limit only bounds a hang
    script = [sys.executable, "-c", _NUMERIC_STREAM, str(tmp_path / "source"), str(tmp_path / "target"), str(limit)]
    done = subprocess.run(script, capture_output=True, text=True, timeout=limit + 60)
    assert done.returncode == 0, f"the streamed write did not finish (stacks below):\n{done.stderr[-4000:]}"
    assert done.stdout.split()[-1] == str(5 * 3 * 20_000)


_FULL_DISK_STREAM = """
import datetime as dt, resource, signal, sys
import numpy as np, pandas as pd
from mlops_platform.storage.delta import read_table, write_stream, write_table
source, target = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
write_table(source, pd.DataFrame({"x": rng.random(20_000), "day": dt.date(2026, 10, 1)}))
# From here on no file may grow past 1 MB, as on a full disk: the first spilled frame (4 MB) cannot be written.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
write_stream(target, lambda: iter([pd.concat([read_table(source, 0)] * 25, ignore_index=True)]))
"""


def test_a_stream_that_cannot_be_spilled_fails_naming_the_setting_and_commits_nothing(tmp_path) -> None:
    import subprocess
    import sys

    target = tmp_path / "target"
    script = [sys.executable, "-c", _FULL_DISK_STREAM, str(tmp_path / "source"), str(target)]
    done = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"OSError: spilling the stream written to {target}") and "TMPDIR" in error, done.stderr
    assert not target.exists()


def _range_asset(batches, name: str = "ranged"):
    """A day-partitioned asset whose range run yields ``batches()`` as DayBatches."""
    from mlops_platform.storage.delta import DayBatches

    @dg.asset(
        name=name,
        partitions_def=dg.DailyPartitionsDefinition(start_date="2026-10-01"),
        io_manager_key="delta",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged() -> DayBatches:
        return DayBatches(batches())

    return ranged


def _range_run(asset, lake: Lake, instance, days: int, batch_rows: int = 1) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [asset],
        resources={"delta": DeltaIOManager(lake=lake, batch_rows=batch_rows)},
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": D1.isoformat(),
            "dagster/asset_partition_range_end": (D1 + dt.timedelta(days=days - 1)).isoformat(),
        },
        raise_on_error=False,
    )


def _commit_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("commit-")]


def test_a_commit_refused_in_the_background_fails_the_step_with_its_error(tmp_path, instance) -> None:
    lake = Lake(root_uri=str(tmp_path / "lake"))
    later = []

    def batches():
        yield [D1], _frame(D1, [1])
        # Day two changes the type of "id": its commit, running while day three is produced, is refused.
        yield [D2], _frame(D2, [2]).assign(id="two")
        later.append("day three produced")
        day3 = D2 + dt.timedelta(days=1)
        yield [day3], _frame(day3, [3])

    asset = _range_asset(batches)
    result = _range_run(asset, lake, instance, days=3)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert "SchemaConflict" in error.to_string() and "id" in error.to_string()
    # Nothing was recorded: a failed step never reports its days as written.
    assert instance.get_latest_materialization_event(asset.key) is None
    # Day one committed (unrecorded, so never read); the refused day and those after it did not.
    table = read_table(lake.uri(asset.key), 0)
    assert table["id"].tolist() == [1]
    assert _commit_threads() == []


def test_a_step_that_fails_while_a_commit_runs_waits_for_it_and_reports_its_own_error(tmp_path, instance) -> None:
    lake = Lake(root_uri=str(tmp_path / "lake"))
    big = 200_000

    def batches():
        yield [D1], _frame(D1, list(range(big)))
        raise RuntimeError("the landed file of day two is unreadable")

    asset = _range_asset(batches)
    result = _range_run(asset, lake, instance, days=2)
    assert not result.success
    assert "day two is unreadable" in result.get_step_failure_events()[0].event_specific_data.error.to_string()
    # The step returned only after the commit in flight finished: no writer outlives it.
    assert _commit_threads() == []
    assert len(read_table(lake.uri(asset.key), 0)) == big
    assert instance.get_latest_materialization_event(asset.key) is None


def test_a_commit_that_fails_while_the_step_fails_too_is_logged_not_lost(tmp_path, instance) -> None:
    lake = Lake(root_uri=str(tmp_path / "lake"))
    write_table(lake.uri(dg.AssetKey("ranged")), _frame(D1, [1]), days=[D1])  # "id" is a number in the table

    def batches():
        yield [D2], _frame(D2, [2]).assign(id="two")  # its commit is refused (SchemaConflict)
        raise RuntimeError("the landed file of day three is unreadable")

    asset = _range_asset(batches)
    result = _range_run(asset, lake, instance, days=3)
    assert not result.success
    # The step fails with its own error, and the refused commit is in the run's log with its reason.
    assert "day three is unreadable" in result.get_step_failure_events()[0].event_specific_data.error.to_string()
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and "in flight when the step failed" in entry.user_message
    ]
    assert len(warnings) == 1
    assert "2026-10-02" in warnings[0] and "SchemaConflict" in warnings[0] and "'id'" in warnings[0]
    assert _commit_threads() == []


def test_a_range_of_many_batches_commits_them_in_order_with_each_days_version(tmp_path, instance) -> None:
    lake = Lake(root_uri=str(tmp_path / "lake"))
    days = [D1 + dt.timedelta(days=i) for i in range(6)]

    def batches():
        for offset, day in enumerate(days):
            yield [day], _frame(day, [offset] * (offset + 1))

    asset = _range_asset(batches)
    result = _range_run(asset, lake, instance, days=6, batch_rows=3)  # days 1-2, 3, 4, 5, 6
    assert result.success
    records = instance.fetch_materializations(asset.key, limit=100).records
    versions = {r.partition_key: r.asset_materialization.metadata["delta_version"].value for r in records}
    assert [versions[d.isoformat()] for d in days] == [0, 0, 1, 2, 3, 4]
    for offset, day in enumerate(days):
        assert read_table(lake.uri(asset.key), versions[day.isoformat()], days=[day])["id"].tolist() == [offset] * (
            offset + 1
        )


def test_pinned_batches_read_ahead_give_the_days_in_order_and_stop_cleanly(tmp_path) -> None:
    import threading

    from mlops_platform.storage.delta import PinnedDays

    uri = str(tmp_path / "t")
    days = [D1 + dt.timedelta(days=i) for i in range(5)]
    pinned = {day: write_table(uri, _frame(day, [i, i]), days=[day]).version for i, day in enumerate(days)}
    source = PinnedDays(uri, pinned, batch_rows=4)  # two days a batch
    got = [(group, sorted(frame["id"])) for group, frame in source.batches()]
    assert got == [(days[0:2], [0, 0, 1, 1]), (days[2:4], [2, 2, 3, 3]), (days[4:], [4, 4])]
    # A consumer that stops after one batch leaves no reader running.
    stream = source.batches()
    next(stream)
    stream.close()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("read-")]


def _counting_scans(monkeypatch) -> list[int]:
    """The version of every scan PinnedDays makes."""
    from mlops_platform.storage import delta

    scans: list[int] = []
    real = delta.read_table

    def counted(uri, version, **kwargs):
        scans.append(version)
        return real(uri, version, **kwargs)

    monkeypatch.setattr(delta, "read_table", counted)
    return scans


def test_days_committed_one_by_one_are_read_in_one_scan(tmp_path, monkeypatch) -> None:
    from mlops_platform.storage.delta import PinnedDays

    uri = str(tmp_path / "t")
    days = [D1 + dt.timedelta(days=i) for i in range(4)]
    # A daily run commits each day: four versions.
    pinned = {day: write_table(uri, _frame(day, [i]), days=[day]).version for i, day in enumerate(days)}
    scans = _counting_scans(monkeypatch)
    frame = PinnedDays(uri, pinned).read()
    assert sorted(frame["id"]) == [0, 1, 2, 3]
    # Each day's files are unchanged in the newest pinned version: one scan there, not four.
    assert scans == [3]


def test_a_day_rewritten_after_its_pin_is_still_read_as_pinned(tmp_path, monkeypatch) -> None:
    from mlops_platform.storage.delta import PinnedDays

    uri = str(tmp_path / "t")
    d3 = D2 + dt.timedelta(days=1)
    v1 = write_table(uri, _frame(D1, [1]), days=[D1]).version
    v2 = write_table(uri, _frame(D2, [2]), days=[D2]).version
    # Day one is replaced by a write nobody recorded (another process, a crashed step) ...
    write_table(uri, _frame(D1, [99]), days=[D1])
    v4 = write_table(uri, _frame(d3, [3]), days=[d3]).version
    scans = _counting_scans(monkeypatch)
    frame = PinnedDays(uri, {D1: v1, D2: v2, d3: v4}).read()
    # ... so it is scanned at its pinned version; day two, unchanged since, joins day three's scan.
    assert sorted(frame["id"]) == [1, 2, 3]
    assert sorted(scans) == [v1, v4]
    # Only the days asked for are read, whatever scan they share.
    assert sorted(PinnedDays(uri, {D1: v1, D2: v2, d3: v4}).read([D2, d3])["id"]) == [2, 3]
