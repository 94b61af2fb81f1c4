"""Automation conditions: features follow ingestion, training waits for its cron, gates hold promotion."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd

from mlops_platform.simulate import simulate
from tests.conftest import START, day


def _requested(platform, cursor=None):
    result = dg.evaluate_automation_conditions(defs=platform.defs, instance=platform.instance, cursor=cursor)
    return result, {
        key.to_user_string(): sorted(result.get_requested_partitions(key))
        for key in platform.defs.resolve_asset_graph().get_all_asset_keys()
        if result.get_num_requested(key)
    }


def test_features_follow_each_ingested_day_and_nothing_runs_without_data(platform, churn) -> None:
    first, requested = _requested(platform)
    assert requested == {}
    platform.land(churn, days=2, rows=50)
    for offset in (0, 1):
        platform.run(churn, ["raw", "labels"], partition_key=day(offset))
    _, requested = _requested(platform, first.cursor)
    assert requested["churn/features"] == [day(0), day(1)]
    assert "churn/predictions" not in requested  # no features yet, no champion


def _at(offset: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day(offset)), dt.time(hour, minute, second), tzinfo=dt.UTC)


def _training_requested(platform, cursor, when):
    result = dg.evaluate_automation_conditions(
        defs=platform.defs, instance=platform.instance, cursor=cursor, evaluation_time=when
    )
    return result.cursor, result.get_num_requested(dg.AssetKey(["churn", "training_set"]))


def test_training_runs_first_time_then_only_at_its_cron_tick(platform, churn) -> None:
    cursor, _ = _training_requested(platform, None, _at(16, 0))
    platform.land(churn, days=16, rows=80)
    platform.ingest(churn, 16)
    cursor, requested = _training_requested(platform, cursor, _at(16, 0, 1))
    assert requested == 1  # never trained, labels landed, features written
    platform.train(churn)
    # New data at 00:01 after training: not trained then, but at the 04:00 tick, once.
    platform.land(churn, days=1, rows=80, start=dt.date.fromisoformat(day(16)))
    platform.ingest(churn, 1, start_offset=16)
    for when in (_at(17, 0, 1), _at(17, 3, 59)):
        cursor, requested = _training_requested(platform, cursor, when)
        assert requested == 0, when
    cursor, requested = _training_requested(platform, cursor, _at(17, 4, 0, 30))
    assert requested == 1
    platform.train(churn)
    for when in (_at(17, 4, 1), _at(17, 12), _at(18, 4, 0, 30)):  # no new data since: the next tick passes
        cursor, requested = _training_requested(platform, cursor, when)
        assert requested == 0, when
    condition = platform.defs.resolve_asset_graph().get(dg.AssetKey(["churn", "training_set"])).automation_condition
    assert condition.get_label() == f"retrain on {churn.retrain_cron}"
    assert f"cron_schedule='{churn.retrain_cron}'" in repr(condition)


def test_first_training_waits_for_labels_with_features(platform, churn) -> None:
    """Churn's labels land 14 days after their events: the labels of the first landed days are for events
    that were never landed, so a training set would be empty; the first training waits for real labels."""
    cursor, _ = _training_requested(platform, None, _at(0, 0))
    platform.land(churn, days=14, rows=200)
    for offset in range(14):
        platform.ingest(churn, 1, start_offset=offset)
        cursor, requested = _training_requested(platform, cursor, _at(offset + 1, 0, 2))
        assert requested == 0, f"training requested after day {day(offset)} with no usable label"
    platform.land(churn, days=1, rows=200, start=dt.date.fromisoformat(day(14)))
    platform.run(churn, ["raw", "labels"], partition_key=day(14))
    cursor, requested = _training_requested(platform, cursor, _at(15, 0, 1))
    assert requested == 0  # day 14's features are not written yet: training now would race them
    platform.run(churn, ["features"], partition_key=day(14))
    cursor, requested = _training_requested(platform, cursor, _at(15, 0, 2))
    assert requested == 1
    assert platform.train(churn).success


def test_simulate_one_day_at_a_time_lands_that_days_labels(platform, churn, settings) -> None:
    """``simulate --days 1 --start DAY`` lands the labels of DAY, though their events are 14 days older."""
    target = dt.date.fromisoformat(day(3))
    landed = simulate(churn, settings.landing_root, start=target, days=1, rows=40)[0]
    labels = [f for f in landed.files if Path(f).name.startswith("labels-")]
    assert len(labels) == 1
    frame = pd.read_csv(labels[0], parse_dates=["event_ts", "label_ts"])
    assert len(frame) == 40
    assert set(frame["label_ts"].dt.date) == {target}
    assert set(frame["event_ts"].dt.date) == {target - dt.timedelta(days=14)}
    # The same files as landing the range at once.
    together = simulate(churn, settings.landing_root / "range", start=START, days=4, rows=40)[3]
    assert pd.read_csv(together.files[1]).equals(pd.read_csv(labels[0]))


def test_promotion_and_scoring_conditions(platform, churn) -> None:
    champion = dg.AssetKey(["churn", "champion"])
    graph = platform.defs.resolve_asset_graph()
    condition = graph.get(champion).automation_condition
    assert "evaluation passed its gates" in str(condition.get_label())
    predictions = graph.get(dg.AssetKey(["churn", "predictions"]))
    assert predictions.automation_condition.get_label() == "follows upstream"
    assert graph.get(dg.AssetKey(["churn", "raw"])).freshness_policy is not None
    assert graph.get(dg.AssetKey(["churn", "features"])).freshness_policy is not None
    assert predictions.freshness_policy is not None


def test_training_runs_carry_the_stage_tag_the_run_coordinator_limits(platform) -> None:
    """deploy/helm limits runs tagged mlops-platform/stage=training: every path that trains must tag its runs."""
    import yaml

    from mlops_platform.assets.common import STAGE_TAG, TRAINING_TAGS

    values = yaml.safe_load((Path(__file__).parents[1] / "deploy/helm/dagster/values.yaml").read_text())
    limited = {(t["key"], t.get("value")) for t in values["concurrency"]["runs"]["tagConcurrencyLimits"]}
    assert (STAGE_TAG, TRAINING_TAGS[STAGE_TAG]) in limited

    graph = platform.defs.resolve_asset_graph()
    everything = graph.get_all_asset_keys()
    stages = ("training_set", "model", "evaluation", "champion")
    trainers = {k for k in everything if k.path[-1] in stages}
    training = platform.defs.resolve_sensor_def("mlops_training")
    automation = platform.defs.resolve_sensor_def("mlops_automation")
    assert training.asset_selection.resolve(graph) == trainers
    assert training.run_tags == TRAINING_TAGS
    assert automation.asset_selection.resolve(graph) == everything - trainers  # each asset evaluated once
    assert STAGE_TAG not in automation.run_tags
    for spec in ("churn", "delivery_eta"):
        assert platform.defs.resolve_job_def(f"{spec}_train").tags == TRAINING_TAGS  # also what retraining runs
        retraining = platform.defs.resolve_sensor_def(f"{spec}_retraining")
        assert retraining.job_name == f"{spec}_train"
