"""Issue 14 bug 7: a spec that gains a column evolves its Delta tables; a lost or retyped column is refused.

Partition writes merge a new column into the table schema (older partitions read it as null, and
time travel to older versions still shows the old schema); the change is in the output metadata.
A column the write lacks, or whose type changed, is refused with a message naming the table and the
columns, as a permanent error (never retried).
"""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest
from deltalake import DeltaTable

from mlops_platform.assets.common import is_transient
from mlops_platform.ml.dataset import point_in_time_join
from mlops_platform.ml.features import compute_features
from mlops_platform.specs.base import Feature
from mlops_platform.storage.delta import SchemaConflict, append_table, read_days_at_versions, read_table, write_table
from mlops_platform.storage.errors import StorageError
from mlops_platform.storage.io_manager import DeltaIOManager, Lake
from mlops_platform.text import TEXT
from tests.conftest import Platform, day
from tests.test_labels_revised import ingest_range

D1, D2, D3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)


def _frame(day: dt.date, ids: list[int], **extra) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "id": ids,
            "ts": pd.to_datetime([f"{day} 10:00"] * len(ids)),
            "name": [f"n{i}" for i in ids],
            "day": [day] * len(ids),
        }
    )
    return frame.assign(**extra)


def test_a_new_column_evolves_the_schema_and_older_partitions_read_it_as_null(tmp_path) -> None:
    uri = str(tmp_path / "t")
    first = write_table(uri, _frame(D1, [1, 2]), days=[D1])
    assert first.added_columns == ()
    second = write_table(uri, _frame(D2, [3], score=[0.5], note=["x"]), days=[D2])
    assert second.added_columns == ("score", "note")
    latest = read_table(uri, second.version).sort_values("id", ignore_index=True)
    assert latest["id"].tolist() == [1, 2, 3]
    assert latest["score"].isna().tolist() == [True, True, False]
    assert latest["note"].isna().tolist() == [True, True, False] and latest["note"].iloc[2] == "x"
    assert latest["score"].dtype == "float64"
    # Time travel is untouched: the version before the change has the old columns only.
    assert list(read_table(uri, first.version).columns) == ["id", "ts", "name", "day"]
    # Rewriting an old day without the new columns is a write of the older shape: refused below, but
    # rewriting it with them (as null) works and changes nothing else.
    third = write_table(uri, _frame(D1, [1, 2], score=[None, 1.0], note=[None, "y"]), days=[D1])
    assert third.added_columns == ()
    pinned = read_days_at_versions(uri, {D1: first.version, D2: second.version})
    assert sorted(pinned["id"]) == [1, 2, 3]
    assert pinned.loc[pinned["id"] == 3, "score"].tolist() == [0.5]


def test_appends_evolve_the_schema_too(tmp_path) -> None:
    uri = str(tmp_path / "t")
    append_table(uri, pd.DataFrame({"x": [1]}))
    result = append_table(uri, pd.DataFrame({"x": [2], "y": ["b"]}))
    assert result.added_columns == ("y",)
    y = read_table(uri, result.version).sort_values("x")["y"]
    assert y.isna().tolist() == [True, False] and y.iloc[1] == "b"


def test_a_removed_column_is_refused_naming_the_table_and_the_column(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [1], score=[0.5]), days=[D1])
    with pytest.raises(SchemaConflict) as caught:
        write_table(uri, _frame(D2, [2]), days=[D2])
    message = str(caught.value)
    assert uri in message and "'score'" in message and "missing" in message
    assert caught.value.removed == ("score",)
    # Permanent: a StorageError (the IO manager fails the step without retries), never transient.
    assert isinstance(caught.value, StorageError) and not is_transient(caught.value)
    assert DeltaTable(uri).version() == 0  # nothing was committed


@pytest.mark.parametrize(
    ("old", "new", "old_type", "new_type"),
    [
        ([1], ["1"], "long", "string"),  # int -> text
        ([1.5], [2], None, None),  # int into a float column is lossless: allowed
        ([1], [1.5], "long", "double"),  # float into an int column would truncate
        (["a"], [True], "string", "boolean"),
    ],
)
def test_a_retyped_column_is_refused_unless_lossless(tmp_path, old, new, old_type, new_type) -> None:
    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [1], value=old), days=[D1])
    if old_type is None:
        result = write_table(uri, _frame(D2, [2], value=new), days=[D2])
        assert sorted(read_table(uri, result.version)["value"].tolist()) == sorted([*old, *new])
        return
    with pytest.raises(SchemaConflict) as caught:
        write_table(uri, _frame(D2, [2], value=new), days=[D2])
    message = str(caught.value)
    assert uri in message and f"'value' is {old_type} in the table, {new_type} in the write" in message
    assert caught.value.retyped == ("value",)


def test_an_all_null_column_takes_the_table_type(tmp_path) -> None:
    uri = str(tmp_path / "t")
    write_table(uri, _frame(D1, [1], note=["a"]), days=[D1])
    result = write_table(uri, _frame(D2, [2], note=[None]), days=[D2])
    assert result.added_columns == ()
    note = read_table(uri, result.version).sort_values("id")["note"]
    assert note.iloc[0] == "a" and note.isna().tolist() == [False, True]
    assert note.dtype == TEXT  # the table's type (text), not a column of nulls


def _evolving_assets(columns: dict[str, list]):
    partitions = dg.DailyPartitionsDefinition(start_date="2026-10-01")

    @dg.asset(
        partitions_def=partitions,
        io_manager_key="delta",
        key_prefix="m",
        retry_policy=dg.RetryPolicy(max_retries=2),
    )
    def table(context: dg.AssetExecutionContext) -> pd.DataFrame:
        d = dt.date.fromisoformat(context.partition_key)
        return pd.DataFrame({**columns, "day": [d] * len(next(iter(columns.values())))})

    return table


def test_the_io_manager_records_added_columns_and_fails_removed_ones_without_retry(tmp_path, instance) -> None:
    resources = {"delta": DeltaIOManager(lake=Lake(root_uri=str(tmp_path / "lake")))}
    v1 = _evolving_assets({"id": [1], "plan": ["basic"]})
    dg.materialize([v1], partition_key="2026-10-01", resources=resources, instance=instance)
    v2 = _evolving_assets({"id": [2], "plan": ["basic"], "tenure": [3.0]})
    dg.materialize([v2], partition_key="2026-10-02", resources=resources, instance=instance)
    record = instance.get_latest_materialization_event(v2.key)
    metadata = record.asset_materialization.metadata
    assert metadata["schema_added_columns"].value == ["tenure"]
    # A write that adds nothing says nothing about the schema.
    dg.materialize([v2], partition_key="2026-10-03", resources=resources, instance=instance)
    assert (
        "schema_added_columns" not in instance.get_latest_materialization_event(v2.key).asset_materialization.metadata
    )

    v3 = _evolving_assets({"id": [4], "tenure": ["long"]})  # plan removed, tenure retyped
    result = dg.materialize(
        [v3], partition_key="2026-10-04", resources=resources, instance=instance, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.step_failure_data.error)
    assert "m/table" in text and "'plan'" in text and "'tenure' is double in the table, string in the write" in text
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


# --- the whole family: a spec that gains a computed feature and a landed column -----------------------


def _with_loyalty(churn):
    """churn plus a landed column ``loyalty_points`` (passed through) and a computed feature."""
    generator = churn.source.generator

    def generate(day, seed, drift, rows):
        events, labels = generator(day, seed, drift, rows)
        return events.assign(loyalty_points=(events["tenure_months"] * 10).astype("int64")), labels

    source = churn.source.model_copy(
        update={"events": {**churn.source.events, "loyalty_points": "int64"}, "generator": generate}
    )
    features = (
        *churn.features,
        Feature(name="loyalty_points", kind="numeric"),
        Feature(name="calls_per_tenure", kind="numeric", compute=lambda r: r["support_calls_30d"] / r["tenure_months"]),
    )
    return churn.model_copy(update={"source": source, "features": features})


@pytest.mark.slow  # ~30-70 s on a busy 2-core machine: several Dagster runs
def test_a_spec_that_gains_columns_keeps_writing_and_training(settings, instance, churn) -> None:
    before = Platform(settings, instance, [churn])
    # Labels land 14 days after their events: day 15's labels are the first with features (days 0, 1).
    before.land(churn, days=15, rows=150)
    ingest_range(before, churn, 0, 14)
    evolved = _with_loyalty(churn)
    after = Platform(settings, instance, [evolved])
    after.land(evolved, days=1, rows=150, start=dt.date.fromisoformat(day(15)))
    after.ingest(evolved, 1, start_offset=15)
    assert after.latest_metadata(evolved, "raw", day(15))["schema_added_columns"] == ["loyalty_points"]
    assert after.latest_metadata(evolved, "features", day(15))["schema_added_columns"] == [
        "loyalty_points",
        "calls_per_tenure",
    ]
    # An older day recomputed with the new spec reads its raw partition at the version recorded before
    # the column existed: the landed column is null there, the computed feature is computed.
    after.run(evolved, ["features"], partition_key=day(0))
    features = after.latest_metadata(evolved, "features", day(0))
    assert "schema_added_columns" not in features
    table = read_table(str(features["delta_uri"]), int(features["delta_version"]), days=[dt.date.fromisoformat(day(0))])
    assert table["loyalty_points"].isna().all() and table["calls_per_tenure"].notna().all()
    assert after.run(evolved, ["training_set", "model"]).success
    assert after.latest_metadata(evolved, "training_set")["rows_train"] > 0


def test_features_of_a_column_older_partitions_lack_are_null(churn) -> None:
    evolved = _with_loyalty(churn)
    events, labels = churn.source.generator(D1, 1, 0.0, 50)  # landed before loyalty_points existed
    features = compute_features(events.assign(day=D1), evolved)
    assert features["loyalty_points"].isna().all() and features["loyalty_points"].dtype == "float64"
    old_features = compute_features(events, churn)  # features written before both new features
    joined = point_in_time_join(old_features, labels.assign(day=D1), evolved)
    assert {"loyalty_points", "calls_per_tenure"} <= set(joined.columns)
    assert joined["calls_per_tenure"].isna().all()


def test_a_computed_feature_that_needs_a_missing_column_still_fails(churn) -> None:
    events, _ = churn.source.generator(D1, 1, 0.0, 20)
    broken = churn.model_copy(
        update={"features": (*churn.features, Feature(name="x", kind="numeric", compute=lambda r: r["nope"]))}
    )
    with pytest.raises(KeyError, match="nope"):
        compute_features(events, broken)
