"""Text columns are Arrow-backed (``mlops_platform.text.TEXT``) from the landed file to Delta and back."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_platform.ml.dataset import assign_split, point_in_time_join
from mlops_platform.ml.features import compute_features
from mlops_platform.ml.training import sample_keys
from mlops_platform.ml.validation import conform, read_landed_file
from mlops_platform.specs import get_spec
from mlops_platform.storage.delta import read_table, write_table
from mlops_platform.text import TEXT, as_text, object_values, objects

DAY = dt.date(2026, 10, 1)
SCHEMA = {"customer_id": "string", "event_ts": "timestamp", "plan": "string", "n": "int64"}


def _landed(tmp_path, suffix: str):
    frame = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "event_ts": ["2026-10-01T01:00:00", "2026-10-01T02:00:00", "2026-10-01T03:00:00"],
            "plan": ["basic", None, "premium"],
            "n": [1, 2, 3],
        }
    )
    path = tmp_path / f"events-1{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_landed_text_is_arrow_text_through_delta_and_back(tmp_path, suffix):
    landed = read_landed_file(_landed(tmp_path, suffix))
    frame = conform(landed, SCHEMA, day=DAY, day_column="event_ts", key_columns=("customer_id",))
    assert frame["customer_id"].dtype == TEXT and frame["plan"].dtype == TEXT
    assert frame["plan"].isna().tolist() == [False, True, False]  # a missing value is NaN, not "None"
    frame["day"] = [DAY] * 3
    uri = str(tmp_path / "table")
    result = write_table(uri, frame, days=[DAY])
    back = read_table(uri, result.version)
    assert back["customer_id"].dtype == TEXT and back["plan"].dtype == TEXT
    assert back["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert back["plan"].isna().tolist() == [False, True, False]
    assert back["n"].dtype == "int64"


def test_a_table_written_with_object_text_takes_arrow_text_partitions(tmp_path):
    """Tables written before text was Arrow-backed (object columns, Arrow ``string``) keep working."""
    uri = str(tmp_path / "table")
    old = pd.DataFrame({"customer_id": pd.Series(["C1"], dtype=object), "day": [DAY]})
    write_table(uri, old, days=[DAY])
    later = DAY + dt.timedelta(days=1)
    new = pd.DataFrame({"customer_id": pd.Series(["C2"], dtype=TEXT), "day": [later]})
    result = write_table(uri, new, days=[later])
    assert result.added_columns == ()
    back = read_table(uri, result.version).sort_values("day")
    assert back["customer_id"].tolist() == ["C1", "C2"] and back["customer_id"].dtype == TEXT


def test_splits_and_sample_keys_are_the_same_for_arrow_text_and_object_ids():
    """A model trained before the change and one trained after put each entity in the same split."""
    ids = pd.Series([f"C{i}" for i in range(2_000)], dtype=object)
    assert assign_split(ids).tolist() == assign_split(ids.astype(TEXT)).tolist()
    np.testing.assert_array_equal(sample_keys(ids), sample_keys(ids.astype(TEXT)))


def test_objects_gives_python_strings_with_nan_for_missing_and_leaves_other_columns():
    frame = pd.DataFrame({"t": pd.Series(["a", None, "a"], dtype=TEXT), "x": [1.0, 2.0, 3.0]})
    converted = objects(frame)
    assert converted["t"].dtype == object and converted["x"].dtype == "float64"
    assert converted["t"][0] == "a" and isinstance(converted["t"][0], str)
    assert np.isnan(converted["t"][1])
    assert frame["t"].dtype == TEXT  # the input is not changed
    assert object_values(frame["x"]) is frame["x"]


def test_as_text_converts_text_only():
    assert as_text(pd.Series(["a", None], dtype=object)).dtype == TEXT
    assert as_text(pd.Series([None, None], dtype=object)).dtype == TEXT
    codes = pd.Series([1, 2], dtype=object)  # a categorical feature coded as integers stays integers
    assert as_text(codes).tolist() == [1, 2] and as_text(codes).dtype == object


def test_features_keep_text_as_arrow_text_and_integer_coded_categories_as_they_are():
    spec = get_spec("churn")
    raw = pd.DataFrame(
        {
            "customer_id": pd.Series(["C1", "C2"], dtype=TEXT),
            "event_ts": pd.to_datetime(["2026-10-01 01:00", "2026-10-01 02:00"]),
            "tenure_months": [3, 12],
            "plan": pd.Series(["basic", "premium"], dtype=TEXT),
            "region": pd.Series(["north", "south"], dtype=TEXT),
            "payment_method": pd.Series(["card", "invoice"], dtype=TEXT),
            "monthly_charges": [20.0, 70.0],
            "support_calls_30d": [0, 2],
            "usage_hours_30d": [10.0, 0.0],
            "days_since_last_login": [1, 5],
        }
    )
    features = compute_features(raw, spec)
    assert features["customer_id"].dtype == TEXT
    assert features["plan"].dtype == TEXT
    assert features["is_new_customer"].dtype == TEXT  # computed by the spec's function as object text
    assert features["is_new_customer"].tolist() == ["yes", "no"]


def test_the_point_in_time_join_takes_text_keys_of_either_dtype(churn_landed_frames):
    features, labels = churn_landed_frames
    spec = get_spec("churn")
    expected = point_in_time_join(features, labels, spec)
    mixed = point_in_time_join(objects(features), labels, spec)  # a caller's own features, as objects
    pd.testing.assert_frame_equal(objects(mixed), objects(expected))  # the same rows and values
    assert len(expected) > 0 and mixed["customer_id"].dtype == TEXT


@pytest.fixture
def churn_landed_frames():
    spec = get_spec("churn")
    day = dt.date(2026, 10, 1)
    events, labels = spec.source.generator(day, 1, 0.0, 200)
    labels = labels.assign(event_ts=events["event_ts"], customer_id=events["customer_id"])
    labels["label_ts"] = pd.Timestamp(day) + pd.Timedelta(hours=23, minutes=59)
    events = conform(events, spec.source.events, day=day, day_column="event_ts", key_columns=("customer_id",))
    labels = conform(labels, spec.source.labels, day=day, day_column="label_ts", key_columns=("customer_id",))
    labels["day"] = day
    return compute_features(events, spec), labels


def test_a_parquet_file_with_categorical_columns_is_read_as_its_values(tmp_path):
    """pandas writes ``astype("category")`` columns dictionary-encoded; they were quarantined as
    "expected text, found categorical values"."""
    frame = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "event_ts": pd.to_datetime(["2026-10-01 01:00", "2026-10-01 02:00", "2026-10-01 03:00"]),
            "plan": pd.Categorical(["basic", None, "basic"]),
            "n": pd.Categorical([1, 2, 2]),
        }
    )
    path = tmp_path / "events-1.parquet"
    frame.to_parquet(path)
    typed = conform(read_landed_file(path), SCHEMA, day=DAY, day_column="event_ts", key_columns=("customer_id",))
    assert typed["plan"].dtype == TEXT and typed["plan"].isna().tolist() == [False, True, False]
    assert typed["n"].dtype == "int64" and typed["n"].tolist() == [1, 2, 2]
