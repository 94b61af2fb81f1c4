"""Pure ML functions, tested directly: validation, features, point-in-time join, split, metrics, gates."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlops_platform.ml.dataset import assign_split, point_in_time_join, window_bounds
from mlops_platform.ml.features import DAY_COLUMN, compute_features
from mlops_platform.ml.metrics import regression_gate, score, threshold_gate
from mlops_platform.ml.training import train
from mlops_platform.ml.validation import InvalidFile, conform
from mlops_platform.text import TEXT

DAY = dt.date(2026, 10, 20)


def _events(churn, rows=400, day=DAY):
    events, _ = churn.source.generator(day, 1, 0.0, rows)
    return events


def test_conform_types_a_csv_frame(churn) -> None:
    events = _events(churn, 5)
    as_text = events.astype(str)
    typed = conform(as_text, churn.source.events, day=DAY, day_column="event_ts", key_columns=("customer_id",))
    # Text comes out as Arrow-backed text, every other column as the generator typed it.
    expected = events.astype({c: TEXT for c, kind in churn.source.events.items() if kind == "string"})
    assert typed.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(typed, expected)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["plan"]), r"missing columns \['plan'\]"),
        (lambda f: f.assign(extra=1), r"unexpected columns \['extra'\]"),
        (lambda f: f.assign(tenure_months="many"), "'tenure_months' is not int64"),
        (lambda f: f.assign(event_ts="yesterday"), "'event_ts' is not timestamp"),
        (lambda f: f.iloc[0:0], "no rows"),
        (lambda f: f.assign(customer_id=None), "have no 'customer_id'"),
        (lambda f: f.assign(event_ts=pd.Timestamp("2026-10-19 12:00")), "outside 2026-10-20"),
    ],
)
def test_conform_names_what_is_wrong(churn, mutate, message) -> None:
    with pytest.raises(InvalidFile, match=message):
        conform(
            mutate(_events(churn, 5)), churn.source.events, day=DAY, day_column="event_ts", key_columns=("customer_id",)
        )


def test_features_are_keyed_and_derived(churn) -> None:
    events = _events(churn, 50)
    features = compute_features(events, churn)
    assert list(features.columns) == ["customer_id", "event_ts", *churn.feature_names, DAY_COLUMN]
    expected = events["monthly_charges"] / (events["usage_hours_30d"] + 1.0)
    assert features["charges_per_usage_hour"].tolist() == pytest.approx(expected.tolist())
    assert set(features["is_new_customer"]) <= {"yes", "no"}
    assert (features[DAY_COLUMN] == DAY).all()


def test_split_is_deterministic_by_entity_and_roughly_70_10_20() -> None:
    ids = pd.Series([f"C{i}" for i in range(20_000)])
    first, second = assign_split(ids), assign_split(ids.sample(frac=1, random_state=3).sort_index())
    assert first.equals(second)
    shares = first.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.02)
    assert shares["validation"] == pytest.approx(0.1, abs=0.02)
    assert shares["test"] == pytest.approx(0.2, abs=0.02)
    # The same entity always lands in the same split, whatever else is in the frame.
    assert assign_split(pd.Series(["C7"])).iloc[0] == first.iloc[7]


def test_point_in_time_join_never_uses_later_features(churn) -> None:
    t0 = pd.Timestamp("2026-10-01 10:00")
    features = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B"],
            "event_ts": [t0, t0 + pd.Timedelta(days=2), t0 + pd.Timedelta(days=5)],
            **{name: [1.0, 2.0, 3.0] for name in churn.feature_names},
        }
    )
    labels = pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "event_ts": [t0 + pd.Timedelta(days=1), t0 + pd.Timedelta(days=1)],
            "churned": [1, 0],
            "label_ts": [t0 + pd.Timedelta(days=15)] * 2,
        }
    )
    joined = point_in_time_join(features, labels, churn)
    # A's label at day 1 gets the day-0 features, not the day-2 ones; B has none before its event.
    assert joined["customer_id"].tolist() == ["A"]
    assert joined["monthly_charges"].tolist() == [1.0]


def test_window_covers_the_newest_label_days(churn) -> None:
    labels = pd.DataFrame({"label_ts": pd.to_datetime(["2026-09-01", "2026-12-01"])})
    start, end = window_bounds(labels, churn)
    assert end == dt.date(2026, 12, 1)
    assert (end - start).days == churn.training_window_days - 1
    with pytest.raises(ValueError, match="no labels have landed"):
        window_bounds(labels.iloc[0:0], churn)


def test_training_learns_the_signal_and_metrics_score_it(churn) -> None:
    frames = [churn.source.generator(DAY + dt.timedelta(days=d), 1, 0.0, 1500) for d in range(15)]
    features = compute_features(pd.concat([f[0] for f in frames], ignore_index=True), churn)
    labels = pd.concat([f[1] for f in frames], ignore_index=True)
    labels = labels[labels["event_ts"] >= pd.Timestamp(DAY)]
    data = point_in_time_join(features, labels, churn)
    model = train(data, churn)
    auc = score(model, data[data["split"] == "test"], churn)
    assert 0.75 < auc <= 1.0
    assert threshold_gate(auc, churn).passed


def test_gates_respect_metric_direction(churn, delivery) -> None:
    assert not threshold_gate(0.65, churn).passed  # roc_auc must reach 0.7
    assert threshold_gate(5.0, delivery).passed  # mae must stay at or below 6
    assert not threshold_gate(6.5, delivery).passed
    assert regression_gate(0.80, None, churn).passed
    assert regression_gate(0.79, 0.80, churn).passed  # within 0.02
    assert not regression_gate(0.70, 0.80, churn).passed
    assert regression_gate(4.2, 4.0, delivery).passed  # mae worse by 0.2 <= 0.5
    assert not regression_gate(5.0, 4.0, delivery).passed


def test_day_of_and_within_days_agree_with_pandas_at_every_edge() -> None:
    """The fast calendar-day helpers give what ``.dt.date`` and a date comparison give: the last
    nanosecond of a day, midnight, a missing stamp, an empty column, a non-default index."""
    from mlops_platform.ml.days import day_of, within_days

    stamps = pd.Series(
        pd.to_datetime(
            [
                "2026-10-19 23:59:59.999999999",
                "2026-10-20 00:00:00",
                None,
                "2026-10-20 23:59:59.999999999",
                "2026-10-21",
            ],
            format="ISO8601",
        ),
        index=[10, 11, 12, 13, 14],
    )
    days = day_of(stamps)
    assert days.index.tolist() == stamps.index.tolist()
    assert days.tolist() == [dt.date(2026, 10, 19), DAY, None, DAY, dt.date(2026, 10, 21)]
    assert days.dropna().tolist() == stamps.dt.date.dropna().tolist()
    assert within_days(stamps, DAY, DAY).tolist() == [False, True, False, True, False]
    assert within_days(stamps, dt.date(2026, 10, 19), DAY).tolist() == [True, True, False, True, False]
    empty = stamps.iloc[:0]
    assert day_of(empty).tolist() == [] and within_days(empty, DAY, DAY).tolist() == []


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("2026-10-20T02:30+02:00", "2026-10-20 00:30"),
        ("2026-10-20 02:30:00+02", "2026-10-20 00:30"),  # PostgreSQL's text form of a timestamptz
        ("2026-10-20 02:30:00.25-03", "2026-10-20 05:30:00.25"),
        ("2026-10-20T02:30:00z", "2026-10-20 02:30"),  # RFC 3339 allows a lower-case z
        ("2026-10-20T02:30:00 UTC", "2026-10-20 02:30"),
        ("2026-10-20 02:30:00 +02:00", "2026-10-20 00:30"),
        ("2026-10-20 02:30:00.5Z", "2026-10-20 02:30:00.5"),
        ("2026-10-20T02:30:00+0200", "2026-10-20 00:30"),
        (" 2026-10-20T02:30:00-02:00 ", "2026-10-20 04:30"),
    ],
)
def test_every_offset_form_is_converted_and_a_mix_with_bare_stamps_is_refused(churn, stamp, utc) -> None:
    events = _events(churn, 4).astype(str)

    def conformed(stamps):
        return conform(
            events.assign(event_ts=stamps),
            churn.source.events,
            day=DAY,
            day_column="event_ts",
            key_columns=("customer_id",),
        )

    assert conformed([stamp] * 4)["event_ts"].tolist() == [pd.Timestamp(utc)] * 4
    with pytest.raises(InvalidFile, match="1 values have no UTC offset while 3 have one"):
        conformed([stamp] * 3 + ["2026-10-20 02:30:00"])
