"""Scale (issue 13): range runs that write batch by batch, the out-of-core training set, the train sample."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from mlops_platform.ml.dataset import StreamedTrainingSet, build_training_set
from mlops_platform.ml.features import compute_features
from mlops_platform.ml.training import sample_keys, sample_train_split
from mlops_platform.storage.delta import PinnedDays, read_table, write_table
from mlops_platform.storage.io_manager import DeltaIOManager
from tests.conftest import START, day


def _land_tables(
    tmp_path, spec, days: int, rows: int, revise: bool = False, customers: int | None = None, gaps: int = 0
) -> tuple[PinnedDays, PinnedDays]:
    """Features and labels of ``days`` days as Delta tables, one commit per day (so each day has its own
    version), from the spec's generator; with ``revise``, some labels land again, changed, a day later;
    with ``customers``, ids fold into that many entities (which come back day after day); with
    ``gaps``, every ``gaps``-th day has no features (its labels find their entity's rows of earlier days)."""
    features_uri, labels_uri = str(tmp_path / "features"), str(tmp_path / "labels")
    feature_versions, label_versions = {}, {}
    previous = None
    for offset in range(days):
        current = START + dt.timedelta(days=offset)
        events, labels = spec.source.generator(current, 7, 0.0, rows)
        if customers:
            for frame in (events, labels):
                frame[spec.entity_key] = "C" + (frame[spec.entity_key].str[1:].astype(int) % customers).astype(str)
        events = events.drop_duplicates(subset=[spec.entity_key, spec.event_timestamp])
        labels = labels.drop_duplicates(subset=[spec.entity_key, spec.event_timestamp])
        features = compute_features(events, spec)
        if not (gaps and offset % gaps == gaps - 1):
            feature_versions[current] = write_table(features_uri, features, days=[current]).version
        if revise and previous is not None and len(previous):
            # The first 20 labels of yesterday land again today with the other outcome.
            again = previous.head(20).copy()
            again[spec.label] = 1 - again[spec.label] if spec.task == "classification" else again[spec.label] + 1
            stamp = pd.Timestamp(current) + pd.Timedelta(hours=1)
            again[spec.label_timestamp] = stamp
            labels = pd.concat([labels, again], ignore_index=True)
        labels["day"] = labels[spec.label_timestamp].dt.date
        label_versions[current] = write_table(labels_uri, labels, days=[current]).version
        previous = labels
    return PinnedDays(features_uri, feature_versions), PinnedDays(labels_uri, label_versions)


def _collect(stream: StreamedTrainingSet) -> pd.DataFrame:
    """The stream's rows in the in-memory set's order (a table is a set: the order is not part of it)."""
    rows = pd.concat(list(stream()), ignore_index=True)
    return rows.sort_values(["event_ts", rows.columns[0]], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize(
    ("spec_name", "revise", "customers", "gaps"),
    [("churn", False, None, 0), ("churn", True, 40, 3), ("delivery", False, None, 0), ("delivery", True, 25, 2)],
)
def test_the_out_of_core_training_set_has_the_rows_and_split_of_the_in_memory_one(
    tmp_path, request, spec_name, revise, customers, gaps
) -> None:
    spec = request.getfixturevalue(spec_name)
    days = spec.source.label_delay_days + 8
    features, labels = _land_tables(tmp_path, spec, days=days, rows=300, revise=revise, customers=customers, gaps=gaps)
    expected = build_training_set(features.read(), labels.read(), spec)
    # A small batch size forces many batches: the state carried between them must give the same join.
    streamed = StreamedTrainingSet(features, labels, spec, batch_rows=500)
    got = _collect(streamed)
    assert len(expected.frame) > 100
    pd.testing.assert_frame_equal(got, expected.frame)
    assert (streamed.window_start, streamed.window_end) == (expected.window_start, expected.window_end)
    assert streamed.labels_in_window == expected.labels_in_window
    assert streamed.labels_superseded == expected.labels_superseded
    assert streamed.labels_without_features == expected.labels_without_features
    if revise:
        assert streamed.labels_superseded > 0
    if gaps:  # labels of a day without features: the second pass joins them with earlier rows
        assert streamed.labels_matched_late > 0
    counts = expected.frame["split"].value_counts().to_dict()
    assert streamed.split_rows == {name: counts.get(name, 0) for name in ("train", "validation", "test")}
    # Called again (a commit retried after a lost race), the stream starts from scratch.
    pd.testing.assert_frame_equal(_collect(streamed), got)
    assert streamed.labels_in_window == expected.labels_in_window


class _CountingDays:
    """A DaySource that records the days each read asked for."""

    def __init__(self, source: PinnedDays) -> None:
        self.source, self.reads = source, []

    def rows_by_day(self):
        return self.source.rows_by_day()

    def read(self, days=None, *, where=None, columns=None):
        self.reads.append(tuple(sorted(days)) if days is not None else None)
        return self.source.read(days, where=where, columns=columns)


def test_features_that_fit_one_batch_are_read_once_even_with_labels_left_unmatched(tmp_path, churn) -> None:
    features, labels = _land_tables(tmp_path, churn, days=churn.source.label_delay_days + 8, rows=300, gaps=3)
    # Labels of an entity first seen on a day without features find no row and stay unmatched.
    counting = _CountingDays(features)
    streamed = StreamedTrainingSet(counting, labels, churn)  # the default batch holds every day
    got = _collect(streamed)
    expected = build_training_set(features.read(), labels.read(), churn)
    pd.testing.assert_frame_equal(got, expected.frame)
    assert streamed.labels_without_features == expected.labels_without_features > 0
    # A second pass has no earlier batch to look in: reading the features again would be waste.
    assert len(counting.reads) == 1, counting.reads


def test_a_window_with_no_labels_is_refused_naming_the_spec(tmp_path, churn) -> None:
    features, labels = _land_tables(tmp_path, churn, days=2, rows=50)
    empty = PinnedDays(labels.uri, {})
    with pytest.raises(ValueError, match="'churn': no labels have landed yet"):
        StreamedTrainingSet(features, empty, churn)


def test_the_train_sample_is_deterministic_bounded_and_drawn_by_entity(churn) -> None:
    events, _ = churn.source.generator(START, 3, 0.0, 5_000)
    frame = compute_features(events, churn).drop_duplicates(subset=["customer_id", "event_ts"])
    spec = churn.model_copy(update={"max_training_rows": 1_000})
    chunks = [frame.iloc[i : i + 700] for i in range(0, len(frame), 700)]
    first = sample_train_split(lambda: iter(chunks), len(frame), spec)
    # The same rows in another order and other batches give the same sample.
    shuffled = frame.sample(frac=1.0, random_state=3)
    again = sample_train_split(lambda: iter([shuffled.iloc[:2_000], shuffled.iloc[2_000:]]), len(frame), spec)
    assert first.rows_used == again.rows_used == 1_000
    assert first.rows_available == len(frame)
    pd.testing.assert_frame_equal(first.frame, again.frame)
    # Whole entities first: every entity but the one at the boundary keeps all its rows.
    keys = sample_keys(first.frame["customer_id"])
    inside = frame[sample_keys(frame["customer_id"]) < keys.max()]
    assert set(inside["customer_id"]) <= set(first.frame["customer_id"])
    assert len(inside) <= 1_000
    unlimited = sample_train_split(lambda: iter(chunks), len(frame), churn)
    assert unlimited.rows_used == len(frame) and "all rows" in unlimited.rule


def test_max_training_rows_is_validated(churn) -> None:
    with pytest.raises(ValueError, match="max_training_rows"):
        type(churn).model_validate({**dict(churn), "max_training_rows": 0})
    assert churn.max_training_rows is None  # unlimited by default


def test_a_range_run_commits_batch_by_batch_and_records_each_days_version(platform, churn) -> None:
    platform.land(churn, days=3, rows=100)
    resources = dict(platform.resources)
    io_manager = resources["delta_io_manager"]
    # Batches of one row: every day is read and committed alone, as a day of a million rows would be.
    resources["delta_io_manager"] = DeltaIOManager(lake=io_manager.lake, batch_rows=1, read_batch_rows=1)
    selection = dg.AssetSelection.assets(*[dg.AssetKey(["churn", n]) for n in ("raw", "labels", "features")])
    span = {"dagster/asset_partition_range_start": day(0), "dagster/asset_partition_range_end": day(2)}

    def run() -> None:
        result = dg.materialize(
            platform.assets, selection=selection, resources=resources, instance=platform.instance, tags=span
        )
        assert result.success

    run()
    versions = [int(platform.latest_metadata(churn, "features", day(i))["delta_version"]) for i in range(3)]
    assert versions == [0, 1, 2]
    meta = platform.latest_metadata(churn, "features", day(1))
    assert meta["delta_commits"] == 3 and meta["dagster/row_count"] == 300
    for offset, version in enumerate(versions):
        rows = read_table(str(meta["delta_uri"]), version, days=[START + dt.timedelta(days=offset)])
        assert len(rows) == 100
    raw = platform.latest_metadata(churn, "raw", day(2))
    assert sorted(raw["files_ingested"]) == [day(0), day(1), day(2)]
    # Re-running the range replaces each day: no row is doubled.
    run()
    meta = platform.latest_metadata(churn, "features", day(2))
    table = read_table(str(meta["delta_uri"]), int(meta["delta_version"]))
    assert table.groupby("day").size().to_dict() == {START + dt.timedelta(days=i): 100 for i in range(3)}


def test_max_training_rows_trains_on_a_recorded_sample(settings, instance, delivery) -> None:
    from tests.conftest import Platform

    spec = delivery.model_copy(update={"max_training_rows": 150})
    platform = Platform(settings, instance, specs=[spec])
    platform.land(spec, days=3, rows=200)
    span = {"dagster/asset_partition_range_start": day(0), "dagster/asset_partition_range_end": day(2)}
    selection = dg.AssetSelection.assets(*[dg.AssetKey([spec.name, n]) for n in ("raw", "labels", "features")])
    ingested = dg.materialize(
        platform.assets, selection=selection, resources=platform.resources, instance=instance, tags=span
    )
    assert ingested.success
    assert platform.run(spec, ["training_set", "model"]).success
    training = platform.latest_metadata(spec, "training_set")
    meta = platform.latest_metadata(spec, "model")
    assert meta["rows_trained_on"] == 150
    assert meta["rows_train_split"] == training["rows_train"] > 150
    run = platform.resources["registry"].client().get_run(meta["mlflow_run_id"])
    assert run.data.params["rows_train"] == "150"
    assert run.data.params["rows_train_available"] == str(training["rows_train"])
    assert run.data.params["max_training_rows"] == "150"
    assert "smallest entity-hash sample keys" in run.data.tags["mlops.train_sample"]
