"""Reference classification model: will a subscription customer churn within 14 days?

The synthetic source is a daily snapshot of active customers; whether each one churned becomes known
14 days later, so labels land two weeks after their events. ``drift`` moves usage down, charges and
support calls up, and strengthens the price effect on churn.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from mlops_platform.specs.base import Feature, ModelSpec, Source

if TYPE_CHECKING:
    import pandas as pd

LABEL_DELAY_DAYS = 14
CUSTOMERS = 50_000
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
PAYMENTS = ("card", "debit", "invoice")


def _day_seed(seed: int, day: dt.date) -> int:
    return seed * 1_000_003 + day.toordinal()


def _events(day: dt.date, seed: int, drift: float, rows: int) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(_day_seed(seed, day))
    ids = rng.choice(CUSTOMERS, size=rows, replace=rows > CUSTOMERS)
    # Stable per-customer attributes: derived from the id, so a customer keeps its plan and region.
    plan_idx = ids % 3
    region_idx = (ids // 3) % 4
    payment_idx = (ids // 12) % 3
    tenure = (ids * 7919) % 72 + 1
    seconds = rng.integers(0, 86_400, size=rows)
    charges = 20 + 25 * plan_idx + rng.normal(0, 5, rows) + 15 * drift
    return pd.DataFrame(
        {
            "customer_id": "C" + pd.Series(ids).astype(str),
            "event_ts": pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s"),
            "tenure_months": tenure.astype("int64"),
            "plan": np.array(PLANS)[plan_idx].astype(object),
            "region": np.array(REGIONS)[region_idx].astype(object),
            "payment_method": np.array(PAYMENTS)[payment_idx].astype(object),
            "monthly_charges": charges.round(2),
            "support_calls_30d": rng.poisson(1.0 + 2.0 * drift, rows).astype("int64"),
            "usage_hours_30d": np.clip(rng.normal(40 - 15 * drift, 12, rows), 0, None).round(1),
            "days_since_last_login": rng.geometric(0.25, rows).astype("int64") - 1,
        }
    )


def _labels_for(events: pd.DataFrame, seed: int, day: dt.date, drift: float) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(_day_seed(seed, day) + 17)
    logit = (
        -2.0
        + 0.9 * events["support_calls_30d"]
        - 0.06 * events["usage_hours_30d"]
        + (0.03 + 0.02 * drift) * (events["monthly_charges"] - 45)
        - 0.03 * events["tenure_months"]
        + 0.12 * events["days_since_last_login"]
        + 0.6 * (events["payment_method"] == "invoice")
    )
    churned = rng.random(len(events)) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": events["customer_id"],
            "event_ts": events["event_ts"],
            "churned": churned.astype("int64"),
            "label_ts": events["event_ts"] + pd.Timedelta(days=LABEL_DELAY_DAYS),
        }
    )


def generate(day: dt.date, seed: int, drift: float, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events of ``day`` and the labels that land on ``day`` (for the events of 14 days before)."""
    events = _events(day, seed, drift, rows)
    labelled_day = day - dt.timedelta(days=LABEL_DELAY_DAYS)
    labels = _labels_for(_events(labelled_day, seed, drift, rows), seed, labelled_day, drift)
    return events, labels


def _estimator():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, C=1.0)


SPEC = ModelSpec(
    name="churn",
    description="Probability that a subscription customer churns within 14 days of a snapshot.",
    task="classification",
    source=Source(
        events={
            "customer_id": "string",
            "event_ts": "timestamp",
            "tenure_months": "int64",
            "plan": "string",
            "region": "string",
            "payment_method": "string",
            "monthly_charges": "float64",
            "support_calls_30d": "int64",
            "usage_hours_30d": "float64",
            "days_since_last_login": "int64",
        },
        labels={
            "customer_id": "string",
            "event_ts": "timestamp",
            "churned": "int64",
            "label_ts": "timestamp",
        },
        label_delay_days=LABEL_DELAY_DAYS,
        generator=generate,
    ),
    entity_key="customer_id",
    event_timestamp="event_ts",
    label="churned",
    label_timestamp="label_ts",
    features=(
        Feature(name="tenure_months", kind="numeric"),
        Feature(name="plan", kind="categorical"),
        Feature(name="region", kind="categorical"),
        Feature(name="payment_method", kind="categorical"),
        Feature(name="monthly_charges", kind="numeric"),
        Feature(name="support_calls_30d", kind="numeric"),
        Feature(name="usage_hours_30d", kind="numeric"),
        Feature(name="days_since_last_login", kind="numeric"),
        Feature(
            name="charges_per_usage_hour",
            kind="numeric",
            compute=lambda raw: raw["monthly_charges"] / (raw["usage_hours_30d"] + 1.0),
            description="Price paid per hour of use.",
        ),
        Feature(
            name="is_new_customer",
            kind="categorical",
            compute=lambda raw: (raw["tenure_months"] < 6).map({True: "yes", False: "no"}),
            description="Fewer than six months of tenure.",
        ),
    ),
    estimator=_estimator,
    metric="roc_auc",
    metric_threshold=0.7,
    regression_tolerance=0.02,
    training_window_days=60,
    retrain_cron="0 4 * * *",
    start_date=dt.date(2026, 9, 1),
)
