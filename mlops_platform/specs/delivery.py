"""Reference regression model: how many minutes will a food delivery take?

Each order is an event; its delivery time is its label and lands when the order is delivered, the
same day. ``drift`` lengthens distances and kitchen times (a busier season).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from mlops_platform.specs.base import Feature, ModelSpec, MonitoringPolicy, Source

if TYPE_CHECKING:
    import pandas as pd

CITIES = ("amsterdam", "berlin", "lisbon", "madrid", "paris")
CITY_SLOWNESS = (1.0, 1.1, 0.9, 1.2, 1.3)


def generate(day: dt.date, seed: int, drift: float, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders placed on ``day`` (08:00-21:00) and their delivery times, which land the same day."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed * 1_000_003 + day.toordinal())
    city_idx = rng.integers(0, len(CITIES), rows)
    seconds = rng.integers(8 * 3600, 21 * 3600, rows)
    event_ts = pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s")
    distance = np.clip(rng.gamma(2.0, 1.6 + 0.8 * drift, rows), 0.2, 25).round(2)
    items = rng.integers(1, 9, rows)
    prep = np.clip(rng.normal(12 + 4 * drift, 4, rows), 3, None).round(1)
    load = rng.uniform(0, 1, rows).round(3)
    orders = pd.DataFrame(
        {
            "order_id": [f"O{day:%Y%m%d}{i:07d}" for i in range(rows)],
            "event_ts": event_ts,
            "city": np.array(CITIES)[city_idx].astype(object),
            "distance_km": distance,
            "items": items.astype("int64"),
            "prep_minutes": prep,
            "courier_load": load,
        }
    )
    minutes = (
        prep
        + 3.5 * distance * np.array(CITY_SLOWNESS)[city_idx]
        + 0.6 * items
        + 12 * load**2
        + np.where((seconds // 3600 >= 18) & (seconds // 3600 < 20), 6.0, 0.0)
        + rng.normal(0, 3, rows)
    )
    minutes = np.clip(minutes, 5, 120).round(1)
    labels = pd.DataFrame(
        {
            "order_id": orders["order_id"],
            "event_ts": event_ts,
            "delivery_minutes": minutes,
            "label_ts": event_ts + pd.to_timedelta(minutes, unit="m"),
        }
    )
    return orders, labels


def _estimator():
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.1, random_state=0)


SPEC = ModelSpec(
    name="delivery_eta",
    description="Minutes from order to doorstep for a food delivery.",
    task="regression",
    source=Source(
        events={
            "order_id": "string",
            "event_ts": "timestamp",
            "city": "string",
            "distance_km": "float64",
            "items": "int64",
            "prep_minutes": "float64",
            "courier_load": "float64",
        },
        labels={
            "order_id": "string",
            "event_ts": "timestamp",
            "delivery_minutes": "float64",
            "label_ts": "timestamp",
        },
        label_delay_days=0,
        generator=generate,
    ),
    entity_key="order_id",
    event_timestamp="event_ts",
    label="delivery_minutes",
    label_timestamp="label_ts",
    features=(
        Feature(name="city", kind="categorical"),
        Feature(name="distance_km", kind="numeric"),
        Feature(name="items", kind="numeric"),
        Feature(name="prep_minutes", kind="numeric"),
        Feature(name="courier_load", kind="numeric"),
        Feature(
            name="hour_of_day",
            kind="numeric",
            compute=lambda raw: raw["event_ts"].dt.hour.astype("int64"),
            description="Local hour the order was placed.",
        ),
        Feature(
            name="is_weekend",
            kind="categorical",
            compute=lambda raw: (raw["event_ts"].dt.dayofweek >= 5).map({True: "yes", False: "no"}),
        ),
    ),
    estimator=_estimator,
    metric="mae",
    metric_threshold=6.0,
    regression_tolerance=0.5,
    monitoring=MonitoringPolicy(
        # Minutes, like the metric: the default 0.05 is sized for scores between 0 and 1.
        performance_tolerance=0.5,
        # One day is all weekend or all weekdays: against a reference of many days it always drifts.
        drift_exclude=("is_weekend",),
    ),
    training_window_days=30,
    retrain_cron="0 5 * * *",
    start_date=dt.date(2026, 9, 1),
    skops_trusted_types=(
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    ),
)
