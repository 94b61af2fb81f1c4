"""Retraining driven by failed monitoring checks, behind the spec's guard: cooldown, cap, consecutive days.

One sensor per spec reads the new evaluations of ``<model>/drift``'s ``no_drift`` check (and of
``<model>/performance``'s check when the policy says so). A failure at or above the policy's severity
requests the training job with the reason in the run tag ``mlops/retrain_reason`` (the model asset copies
it to its MLflow run as ``mlops.retrain_reason``); the evaluation, champion gates then decide as always.
A trigger the guard refuses is consumed and the tick says why (cooldown until when, cap reached, not yet
the required consecutive days, that day already retrained). A day that requested a retrain does not request
another when its check is evaluated again (performance is re-evaluated as its labels land; the model it
judges is the one that was already replaced). The cursor (stored in the instance) keeps the last evaluation
seen per check, the times of the retrains requested and the days that requested them, so the guard
survives restarts of the daemon and of the code location.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import dagster as dg

from mlops_platform.profiles.metrics import Metric, MetricsSink
from mlops_platform.specs.base import ModelSpec

RETRAIN_REASON_TAG = "mlops/retrain_reason"
TRIGGER_TAG = "mlops/trigger"
NO_DRIFT_CHECK = "no_drift"
PERFORMANCE_CHECK = "performance_within_tolerance"
# The decisions of a failed check that may request a retrain, by policy level.
RETRAIN_DECISIONS = {"warn": ("warn", "error"), "error": ("error",)}
HISTORY = 200
# Days remembered per check as having requested a retrain (the cursor stays small).
TRIGGERED_DAYS = 60


def utcnow() -> dt.datetime:
    """The sensor's clock (a function so a test can move time forward)."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Failure:
    record_id: int
    check: str
    partition: str | None
    decision: str
    description: str


@dataclass(frozen=True)
class Evaluation:
    record_id: int
    partition: str | None
    passed: bool
    decision: str
    description: str


def _evaluations(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> list[Evaluation]:
    """The check's newest completed evaluations, oldest first (the partition is the record's)."""
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=HISTORY)
    found = []
    for record in records:
        evaluation = record.event.asset_check_evaluation if record.event is not None else None
        if evaluation is not None:
            partition = record.partition or evaluation.partition
            if partition is None:  # a check evaluated without its own partition: the run's partition
                run = instance.get_run_by_id(record.run_id)
                partition = run.tags.get("dagster/partition") if run is not None else None
            found.append(
                Evaluation(
                    record.id,
                    partition,
                    evaluation.passed,
                    _decision(evaluation),
                    evaluation.description or "",
                )
            )
    return sorted(found, key=lambda e: e.record_id)


def _decision(evaluation: Any) -> str:
    value = evaluation.metadata.get("decision")
    return str(value.value) if value is not None else ("ok" if evaluation.passed else "error")


def _consecutive(evaluations: list[Evaluation], partition: str | None, days: int, decisions: tuple) -> bool:
    """Whether the newest evaluation of each of the ``days`` days ending at ``partition`` failed."""
    if days <= 1:
        return True
    if partition is None:
        return False
    latest = {e.partition: e for e in evaluations}
    day = dt.date.fromisoformat(partition)
    for back in range(days):
        key = (day - dt.timedelta(days=back)).isoformat()
        evaluation = latest.get(key)
        if evaluation is None or evaluation.passed or evaluation.decision not in decisions:
            return False
    return True


def build_retraining_sensor(spec: ModelSpec, train_job: Any, *, send_metrics: bool = False) -> dg.SensorDefinition:
    """The guarded retraining sensor of ``spec``, requesting ``train_job`` (training set to champion).

    ``send_metrics``: the sensor takes the ``metrics`` resource (the profile's sink) and sends each
    decision on a failed check as ``retrain_decision`` = 1 with dimensions model, check and decision
    (``requested``, ``cooldown``, ``cap``, ``waiting``); a sink failure is a warning in the tick's log."""
    policy = spec.monitoring
    decisions = RETRAIN_DECISIONS[policy.retrain_on]
    checks = {NO_DRIFT_CHECK: dg.AssetCheckKey(dg.AssetKey([spec.name, "drift"]), NO_DRIFT_CHECK)}
    if policy.retrain_on_performance:
        checks[PERFORMANCE_CHECK] = dg.AssetCheckKey(dg.AssetKey([spec.name, "performance"]), PERFORMANCE_CHECK)

    sensor_args: dict[str, Any] = dict(
        name=f"{spec.name}_retraining",
        job=train_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Retrains {spec.name} when a monitoring check fails ({policy.retrain_on} or worse): at most "
            f"{policy.max_retrains} per {policy.window_hours:g} h, {policy.cooldown_hours:g} h apart"
            + (f", after {policy.consecutive_days} consecutive drifted days" if policy.consecutive_days > 1 else "")
            + "."
        ),
    )

    def decided(
        context: dg.SensorEvaluationContext, metrics: MetricsSink | None, check: str, decision: str, result: Any
    ) -> Any:
        if metrics is not None:
            dimensions = {"model": spec.name, "check": check, "decision": decision}
            metrics.record([Metric("retrain_decision", 1.0, dimensions)], context.log)
        return result

    def evaluate(context: dg.SensorEvaluationContext, metrics: MetricsSink | None):
        state = json.loads(context.cursor) if context.cursor else {}
        seen: dict[str, int] = state.get("seen", {})
        retrains: list[str] = state.get("retrains", [])
        triggered: dict[str, list[str]] = state.get("triggered", {})
        now = utcnow()
        failures: list[Failure] = []
        waiting: list[str] = []
        for name, key in checks.items():
            history = _evaluations(context.instance, key)
            for evaluation in history:
                if evaluation.record_id <= seen.get(name, 0):
                    continue
                seen[name] = evaluation.record_id
                decision = evaluation.decision
                if evaluation.passed or decision not in decisions:
                    continue
                if evaluation.partition is not None and evaluation.partition in triggered.get(name, []):
                    waiting.append(
                        f"{name} {decision} on {evaluation.partition}: retrain not requested, that day already "
                        "requested one (its re-evaluation judges the model that retrain replaced)"
                    )
                    continue
                if name == NO_DRIFT_CHECK and not _consecutive(
                    history, evaluation.partition, policy.consecutive_days, decisions
                ):
                    waiting.append(
                        f"{name} {decision} on {evaluation.partition}: retrain not requested, the policy needs "
                        f"{policy.consecutive_days} consecutive failed days and the days before did not all fail"
                    )
                    continue
                failures.append(
                    Failure(evaluation.record_id, name, evaluation.partition, decision, evaluation.description)
                )
        window_start = now - dt.timedelta(hours=policy.window_hours)
        recent = [t for t in retrains if dt.datetime.fromisoformat(t) > window_start]

        def save(retrain_times: list[str]) -> None:
            state = {"seen": seen, "retrains": retrain_times, "triggered": triggered}
            context.update_cursor(json.dumps(state, sort_keys=True))

        if not failures and waiting:
            save(recent)
            return decided(
                context, metrics, waiting[-1].split(" ", 1)[0], "waiting", dg.SkipReason("; ".join(waiting[-3:]))
            )
        if not failures:
            save(recent)
            return dg.SkipReason(f"no new failed monitoring check of {spec.name} at {policy.retrain_on} or worse")
        newest = max(failures, key=lambda f: f.record_id)
        what = f"{newest.check} {newest.decision} on {newest.partition}"
        if recent:
            last = max(dt.datetime.fromisoformat(t) for t in recent)
            until = last + dt.timedelta(hours=policy.cooldown_hours)
            if now < until:
                save(recent)
                return decided(
                    context,
                    metrics,
                    newest.check,
                    "cooldown",
                    dg.SkipReason(
                        f"{what}: retrain skipped, cooldown until {until.isoformat(timespec='minutes')} "
                        f"(last monitoring-triggered retrain at {last.isoformat(timespec='minutes')}, "
                        f"cooldown {policy.cooldown_hours:g} h)"
                    ),
                )
        if len(recent) >= policy.max_retrains:
            first = min(dt.datetime.fromisoformat(t) for t in recent)
            save(recent)
            return decided(
                context,
                metrics,
                newest.check,
                "cap",
                dg.SkipReason(
                    f"{what}: retrain skipped, cap reached: {len(recent)} of {policy.max_retrains} retrains in "
                    f"the last {policy.window_hours:g} h; the next is allowed after "
                    f"{(first + dt.timedelta(hours=policy.window_hours)).isoformat(timespec='minutes')}"
                ),
            )
        reason = f"{spec.name}/{newest.check} {newest.decision} on {newest.partition}: {newest.description}"[:500]
        if newest.partition is not None:
            days = [d for d in triggered.get(newest.check, []) if d != newest.partition]
            triggered[newest.check] = [*days, newest.partition][-TRIGGERED_DAYS:]
        save([*recent, now.isoformat()])
        context.log.info(f"requesting a retrain of {spec.name}: {reason}")
        request = dg.RunRequest(
            run_key=f"retrain:{newest.check}:{newest.record_id}",
            tags={RETRAIN_REASON_TAG: reason, TRIGGER_TAG: "monitoring"},
        )
        return decided(context, metrics, newest.check, "requested", request)

    if send_metrics:

        @dg.sensor(**sensor_args)
        def retraining_with_metrics(context: dg.SensorEvaluationContext, metrics: MetricsSink):
            return evaluate(context, metrics)

        return retraining_with_metrics

    @dg.sensor(**sensor_args)
    def retraining(context: dg.SensorEvaluationContext):
        return evaluate(context, None)

    return retraining
