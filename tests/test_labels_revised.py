"""Issue 14 bug 9: a label revised on a later day replaces the earlier one in the training set.

Dedupe in the ingest works within a day; across days the newest label of an (entity, event time)
wins, by label time and then by the day it landed, and the training set's metadata counts the
superseded labels.
"""

import datetime as dt

import pandas as pd
import pytest

from mlops_platform.ml.dataset import build_training_set, latest_labels, point_in_time_join
from tests.conftest import START, Platform, day

EVENT = pd.Timestamp("2026-10-01 09:00")


def _features(churn, ids: list[str]) -> pd.DataFrame:
    events, _ = churn.source.generator(START, 1, 0.0, len(ids))
    events = events.assign(customer_id=ids, event_ts=pd.Series([EVENT] * len(ids), dtype="datetime64[ns]").to_numpy())
    from mlops_platform.ml.features import compute_features

    return compute_features(events, churn)


def _label(customer: str, churned: int, landed: str, event=EVENT) -> dict:
    label_ts = pd.Timestamp(landed)
    return {
        "customer_id": customer,
        "event_ts": event,
        "churned": churned,
        "label_ts": label_ts,
        "day": label_ts.date(),
    }


def _labels(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame.astype({"event_ts": "datetime64[ns]", "label_ts": "datetime64[ns]"})


def test_the_newest_label_of_an_event_wins_across_days(churn) -> None:
    labels = _labels(
        [
            _label("C1", 1, "2026-10-16 08:00"),  # revised below: superseded
            _label("C2", 0, "2026-10-15 08:00"),
            _label("C1", 0, "2026-10-15 08:00"),  # the first label (older, listed out of order)
            _label("C1", 0, "2026-10-17 08:00"),  # the newest revision wins
            _label("C3", 1, "2026-10-15 08:00"),
            _label("C3", 0, "2026-10-15 08:00", event=EVENT + pd.Timedelta(hours=1)),  # another event
        ]
    )
    built = build_training_set(_features(churn, ["C1", "C2", "C3"]), labels, churn)
    frame = built.frame.sort_values(["customer_id", "event_ts"], ignore_index=True)
    assert frame[["customer_id", "churned"]].values.tolist() == [["C1", 0], ["C2", 0], ["C3", 1], ["C3", 0]]
    assert frame.loc[0, "label_ts"] == pd.Timestamp("2026-10-17 08:00")
    assert built.labels_superseded == 2
    assert built.labels_in_window == 4 and built.labels_without_features == 0
    assert len(point_in_time_join(_features(churn, ["C1", "C2", "C3"]), labels, churn)) == 4


def test_at_the_same_label_time_the_later_landing_day_wins(churn) -> None:
    labels = _labels([_label("C1", 1, "2026-10-16 08:00"), _label("C1", 0, "2026-10-16 08:00")])
    labels.loc[0, "day"] = dt.date(2026, 10, 17)  # same label time, landed a day later
    winners, superseded = latest_labels(labels.iloc[::-1].reset_index(drop=True), churn)
    assert winners["churned"].tolist() == [1] and superseded.tolist() == [1]


def test_no_revision_supersedes_nothing(churn) -> None:
    labels = _labels([_label("C1", 1, "2026-10-16 08:00"), _label("C2", 0, "2026-10-16 08:00")])
    built = build_training_set(_features(churn, ["C1", "C2"]), labels, churn)
    assert built.labels_superseded == 0 and len(built.frame) == 2


def ingest_range(platform: Platform, spec, first: int, last: int) -> None:
    """raw, labels and features of days ``first..last`` in one range run (one commit per table)."""
    import dagster as dg

    tags = {"dagster/asset_partition_range_start": day(first), "dagster/asset_partition_range_end": day(last)}
    selection = dg.AssetSelection.assets(*[dg.AssetKey([spec.name, n]) for n in ("raw", "labels", "features")])
    result = dg.materialize(
        platform.assets, selection=selection, resources=platform.resources, instance=platform.instance, tags=tags
    )
    assert result.success


@pytest.mark.slow  # ~30-70 s on a busy 2-core machine: several Dagster runs
def test_a_label_revised_on_a_later_day_trains_once_with_its_new_value(settings, instance, churn) -> None:
    from mlops_platform.storage.delta import read_table

    platform = Platform(settings, instance, [churn])
    # Labels land 14 days after their events: days 14 and 15 label the events of days 0 and 1.
    platform.land(churn, days=16, rows=150)
    ingest_range(platform, churn, 0, 15)
    # Day 16's file revises every label that landed on day 15 (same customer and event), flipping it.
    first = platform.latest_metadata(churn, "labels", day(15))
    day15 = read_table(str(first["delta_uri"]), int(first["delta_version"]), days=[dt.date.fromisoformat(day(15))])
    revised = day15.drop(columns=["day", "source_file"], errors="ignore").assign(
        churned=1 - day15["churned"], label_ts=day15["label_ts"] + pd.Timedelta(days=1)
    )
    folder = settings.landing_root / churn.name / day(16)
    folder.mkdir(parents=True, exist_ok=True)
    revised.to_csv(folder / "labels-revision.csv", index=False)
    platform.ingest(churn, 1, start_offset=16)
    platform.run(churn, ["training_set"])  # the flipped labels make a poor model: the join is the point
    meta = platform.latest_metadata(churn, "training_set")
    assert meta["labels_superseded"] == len(day15)
    stored = read_table(str(meta["delta_uri"]), int(meta["delta_version"]))
    assert not stored.duplicated(["customer_id", "event_ts"]).any()
    merged = stored.merge(revised, on=["customer_id", "event_ts"], suffixes=("", "_revised"))
    assert len(merged) > 0 and (merged["churned"] == merged["churned_revised"]).all()
