"""Automation conditions: features follow ingestion, training waits for its cron, gates hold promotion."""

import datetime as dt

import dagster as dg

from tests.conftest import day


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


def test_training_runs_first_time_then_only_on_its_cron(platform, churn) -> None:
    start = dg.evaluate_automation_conditions(defs=platform.defs, instance=platform.instance)
    platform.land(churn, days=16, rows=80)
    platform.ingest(churn, 16)
    result = dg.evaluate_automation_conditions(defs=platform.defs, instance=platform.instance, cursor=start.cursor)
    assert result.get_num_requested(dg.AssetKey(["churn", "training_set"])) == 1  # never trained yet
    platform.train(churn)
    cursor = result.cursor
    # New data after training: no retrain until the next 04:00 tick.
    platform.land(churn, days=1, rows=80, start=dt.date.fromisoformat(day(16)))
    platform.ingest(churn, 1, start_offset=16)
    now = dt.datetime.now()
    result = dg.evaluate_automation_conditions(
        defs=platform.defs, instance=platform.instance, cursor=cursor, evaluation_time=now
    )
    assert result.get_num_requested(dg.AssetKey(["churn", "training_set"])) == 0
    # The retraining cadence is the spec's own cron (Dagster's on_cron: once per tick, after new data).
    condition = platform.defs.resolve_asset_graph().get(dg.AssetKey(["churn", "training_set"])).automation_condition
    assert condition.get_label() == f"retrain on {churn.retrain_cron}"
    assert f"on_cron({churn.retrain_cron}, UTC)" in repr(condition)


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
