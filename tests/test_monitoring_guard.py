"""The retraining guard and the monitoring assets' automation on their own (fast).

The guard: reported check evaluations, a moved clock, the sensor's decisions. The automation: reported
materializations of the upstreams, Dagster's own evaluation of the drift and performance conditions.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from mlops_platform.automation import retraining
from mlops_platform.automation.retraining import RETRAIN_REASON_TAG, build_retraining_sensor
from mlops_platform.specs.base import MonitoringPolicy
from tests.conftest import day

T0 = dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)


def _report(instance, spec, check: str, asset: str, partition: str, decision: str, run_id: str | None = None) -> None:
    """Record a check evaluation as a run would (``run_id``), or runless (one per check and partition)."""
    evaluation = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey([spec.name, asset]),
        check_name=check,
        passed=decision == "ok",
        severity=dg.AssetCheckSeverity.ERROR if decision == "error" else dg.AssetCheckSeverity.WARN,
        metadata={"decision": decision},
        description=f"{decision} on {partition}",
        partition=partition,
    )
    if run_id is None:
        instance.report_runless_asset_event(evaluation)
        return
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
        event_specific_data=evaluation,
        job_name=f"{spec.name}_monitoring",
    )
    instance.report_dagster_event(event, run_id=run_id)


def _tick(sensor, instance, cursor, monkeypatch, now):
    monkeypatch.setattr(retraining, "utcnow", lambda: now)
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    return data, data.cursor


@pytest.fixture
def train_job():
    return dg.define_asset_job("churn_train", selection=dg.AssetSelection.assets(dg.AssetKey(["churn", "model"])))


def test_cooldown_then_cap_then_window_reopens(churn, instance, train_job, monkeypatch) -> None:
    spec = churn.model_copy(update={"monitoring": MonitoringPolicy(cooldown_hours=24, max_retrains=2, window_hours=72)})
    sensor = build_retraining_sensor(spec, train_job)
    cursor = None
    data, cursor = _tick(sensor, instance, cursor, monkeypatch, T0)
    assert "no new failed monitoring check" in data.skip_message
    decisions = []
    for hours, partition in (
        (0, "2026-10-01"),
        (12, "2026-10-02"),
        (25, "2026-10-03"),
        (50, "2026-10-04"),
        (80, "2026-10-05"),
    ):
        _report(instance, spec, "no_drift", "drift", partition, "error")
        # A restart between ticks: a new sensor object (a reloaded code location), only the stored cursor kept.
        sensor = build_retraining_sensor(spec, train_job)
        data, cursor = _tick(sensor, instance, cursor, monkeypatch, T0 + dt.timedelta(hours=hours))
        decisions.append(data.run_requests[0].tags[RETRAIN_REASON_TAG] if data.run_requests else data.skip_message)
    assert decisions[0].startswith("churn/no_drift error on 2026-10-01: error on 2026-10-01")
    assert "cooldown until 2026-11-02T06:00+00:00" in decisions[1]
    assert decisions[2].startswith("churn/no_drift error on 2026-10-03")
    assert "cap reached: 2 of 2 retrains in the last 72 h" in decisions[3]
    assert "next is allowed after 2026-11-04T06:00+00:00" in decisions[3]
    assert decisions[4].startswith("churn/no_drift error on 2026-10-05")  # T0 + 80 h: the first left the window


def test_warnings_no_data_and_passes_do_not_retrain_by_default(churn, instance, train_job, monkeypatch) -> None:
    sensor = build_retraining_sensor(churn, train_job)
    _report(instance, churn, "no_drift", "drift", "2026-10-01", "warn")
    _report(instance, churn, "no_drift", "drift", "2026-10-02", "no_data")
    _report(instance, churn, "no_drift", "drift", "2026-10-03", "ok")
    _report(instance, churn, "performance_within_tolerance", "performance", "2026-10-03", "pending")
    # Labels that match no prediction are a data problem, not a worse model.
    _report(instance, churn, "performance_within_tolerance", "performance", "2026-10-04", "unmatched")
    data, _ = _tick(sensor, instance, None, monkeypatch, T0)
    assert not data.run_requests and "at error or worse" in data.skip_message
    warn_policy = churn.model_copy(update={"monitoring": MonitoringPolicy(retrain_on="warn")})
    data, _ = _tick(build_retraining_sensor(warn_policy, train_job), instance, None, monkeypatch, T0)
    assert data.run_requests and "no_drift warn on 2026-10-01" in data.run_requests[0].tags[RETRAIN_REASON_TAG]


def test_a_failed_performance_check_retrains(churn, instance, train_job, monkeypatch) -> None:
    sensor = build_retraining_sensor(churn, train_job)
    _report(instance, churn, "performance_within_tolerance", "performance", "2026-10-01", "error")
    data, _ = _tick(sensor, instance, None, monkeypatch, T0)
    tags = data.run_requests[0].tags
    assert tags[RETRAIN_REASON_TAG] == "churn/performance_within_tolerance error on 2026-10-01: error on 2026-10-01"
    assert tags["mlops/trigger"] == "monitoring"
    off = churn.model_copy(update={"monitoring": MonitoringPolicy(retrain_on_performance=False)})
    data, _ = _tick(build_retraining_sensor(off, train_job), instance, None, monkeypatch, T0)
    assert not data.run_requests


def test_two_consecutive_days_rule(churn, instance, train_job, monkeypatch) -> None:
    spec = churn.model_copy(update={"monitoring": MonitoringPolicy(consecutive_days=2)})
    sensor = build_retraining_sensor(spec, train_job)
    _report(instance, spec, "no_drift", "drift", "2026-10-01", "error")
    _report(instance, spec, "no_drift", "drift", "2026-10-02", "ok")
    _report(instance, spec, "no_drift", "drift", "2026-10-03", "error")
    data, cursor = _tick(sensor, instance, None, monkeypatch, T0)
    assert not data.run_requests and "needs 2 consecutive failed days" in data.skip_message
    _report(instance, spec, "no_drift", "drift", "2026-10-04", "error")
    data, _ = _tick(sensor, instance, cursor, monkeypatch, T0)
    assert "no_drift error on 2026-10-04" in data.run_requests[0].tags[RETRAIN_REASON_TAG]


def test_policy_refuses_error_below_warn() -> None:
    with pytest.raises(ValueError, match=r"drift_error_threshold 0\.05 is below drift_warn_threshold 0\.1"):
        MonitoringPolicy(drift_error_threshold=0.05)


def test_a_day_that_retrained_does_not_retrain_again_when_re_evaluated(churn, instance, train_job, monkeypatch) -> None:
    spec = churn.model_copy(update={"monitoring": MonitoringPolicy(cooldown_hours=1)})
    sensor = build_retraining_sensor(spec, train_job)
    _report(instance, spec, "performance_within_tolerance", "performance", "2026-10-01", "error", "run-1")
    data, cursor = _tick(sensor, instance, None, monkeypatch, T0)
    assert data.run_requests
    # Its labels' second day lands: the same day is evaluated again by another run, past the cooldown.
    _report(instance, spec, "performance_within_tolerance", "performance", "2026-10-01", "error", "run-2")
    data, cursor = _tick(sensor, instance, cursor, monkeypatch, T0 + dt.timedelta(days=1))
    assert not data.run_requests and "2026-10-01: retrain not requested, that day already requested one" in (
        data.skip_message or ""
    )
    _report(instance, spec, "performance_within_tolerance", "performance", "2026-10-02", "error")
    data, _ = _tick(sensor, instance, cursor, monkeypatch, T0 + dt.timedelta(days=1))
    assert "performance_within_tolerance error on 2026-10-02" in data.run_requests[0].tags[RETRAIN_REASON_TAG]


def test_drift_runs_once_per_scored_day_and_performance_when_its_labels_land(platform, churn) -> None:
    drift, performance = dg.AssetKey(["churn", "drift"]), dg.AssetKey(["churn", "performance"])
    graph = platform.defs.resolve_asset_graph()
    assert graph.get(drift).automation_condition.get_label() == "follows upstream"
    assert graph.get(performance).automation_condition.get_label() == "scored, or labels landed"
    delay = churn.source.label_delay_days
    cursor = None

    def landed(name: str, offset: int) -> None:
        platform.instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=dg.AssetKey(["churn", name]), partition=day(offset))
        )

    def requested() -> dict[str, list[str]]:
        nonlocal cursor
        result = dg.evaluate_automation_conditions(defs=platform.defs, instance=platform.instance, cursor=cursor)
        cursor = result.cursor
        return {k.path[-1]: sorted(result.get_requested_partitions(k)) for k in (drift, performance)}

    assert requested() == {"drift": [], "performance": []}
    landed("features", 3)
    landed("labels", 3 + delay)  # the day's labels before the day was scored: nothing to judge yet
    assert requested() == {"drift": [], "performance": []}
    landed("predictions", 3)
    assert requested() == {"drift": [day(3)], "performance": [day(3)]}
    assert requested() == {"drift": [], "performance": []}  # requested once, not on every tick
    landed("labels", 4 + delay)  # the day's late labels (past midnight) re-judge it once
    assert requested() == {"drift": [], "performance": [day(3)]}
    landed("labels", 5 + delay)  # other days' labels do not touch it
    landed("labels", 2)
    assert requested() == {"drift": [], "performance": []}
    landed("features", 3)  # re-ingested and re-scored: drift again
    landed("predictions", 3)
    assert requested() == {"drift": [day(3)], "performance": [day(3)]}
