"""Delta storage: versions, partition replacement, time travel, restore, and the pinning IO manager."""

import datetime as dt

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

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)


def _frame(day: dt.date, values: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": values,
            "ts": pd.to_datetime([f"{day} 10:00"] * len(values)),
            "name": [f"n{v}" for v in values],
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
