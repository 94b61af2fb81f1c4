"""Adding a model is writing one spec: a third spec's family appears and materializes, nothing else changes."""

import datetime as dt

import dagster as dg

from mlops_platform.specs import Feature, ModelSpec, Source, discover_specs
from tests.conftest import Platform, day


def _generate(day_: dt.date, seed: int, drift: float, rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed * 7919 + day_.toordinal())
    amount = rng.lognormal(3 + drift, 1.0, rows).round(2)
    foreign = rng.random(rows) < 0.2
    merchant = rng.choice(["grocery", "travel", "electronics", "fuel"], rows)
    ts = pd.Timestamp(day_) + pd.to_timedelta(rng.integers(0, 86_400, rows), unit="s")
    logit = -4 + 0.015 * amount + 1.5 * foreign + 1.0 * (merchant == "electronics")
    fraud = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    ids = [f"T{day_:%Y%m%d}{i:06d}" for i in range(rows)]
    events = pd.DataFrame(
        {"txn_id": ids, "event_ts": ts, "amount": amount, "is_foreign": foreign, "merchant": merchant.astype(object)}
    )
    labels = pd.DataFrame({"txn_id": ids, "event_ts": ts, "is_fraud": fraud, "label_ts": ts + pd.Timedelta(hours=1)})
    labels = labels[labels["label_ts"].dt.date == day_]
    return events, labels


def _estimator():
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=4, random_state=0)


FRAUD = ModelSpec(
    name="card_fraud",
    description="Is a card transaction fraudulent?",
    task="classification",
    source=Source(
        events={
            "txn_id": "string",
            "event_ts": "timestamp",
            "amount": "float64",
            "is_foreign": "bool",
            "merchant": "string",
        },
        labels={"txn_id": "string", "event_ts": "timestamp", "is_fraud": "int64", "label_ts": "timestamp"},
        label_delay_days=0,
        generator=_generate,
    ),
    entity_key="txn_id",
    event_timestamp="event_ts",
    label="is_fraud",
    label_timestamp="label_ts",
    features=(
        Feature(name="amount", kind="numeric"),
        Feature(name="merchant", kind="categorical"),
        Feature(name="foreign", kind="numeric", compute=lambda raw: raw["is_foreign"].astype("float64")),
    ),
    estimator=_estimator,
    metric="roc_auc",
    metric_threshold=0.6,
    regression_tolerance=0.05,
    training_window_days=10,
    start_date=dt.date(2026, 9, 1),
    skops_trusted_types=("sklearn.tree._tree.Tree",),  # the spec author vouches for tree models
)


def test_a_third_spec_gets_its_whole_family_and_materializes(settings, instance) -> None:
    platform = Platform(settings, instance, specs=[*discover_specs(), FRAUD])
    graph = platform.defs.resolve_asset_graph()
    names = ("raw", "labels", "features", "training_set", "model", "evaluation", "champion", "predictions")
    assert {dg.AssetKey(["card_fraud", n]) for n in names} <= set(graph.get_all_asset_keys())
    assert graph.get(dg.AssetKey(["card_fraud", "model"])).group_name == "card_fraud"
    platform.defs.resolve_sensor_def("card_fraud_landing_sensor")
    platform.defs.resolve_job_def("card_fraud_rollback")

    platform.land(FRAUD, days=5, rows=400)
    platform.ingest(FRAUD, 5)
    assert platform.train(FRAUD).success
    platform.run(FRAUD, ["predictions"], partition_key=day(4))
    assert platform.resources["registry"].alias_version("card_fraud", "champion") == "1"
    assert platform.latest_metadata(FRAUD, "predictions", day(4))["dagster/row_count"] == 400
