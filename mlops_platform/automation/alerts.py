"""Alerts: a webhook notifier and the sensors that feed it (failed runs, failed checks, stale assets).

The notifier posts one JSON document per alert to MLOPS_ALERT_WEBHOOK_URL (a secret: it reaches the
resource as a ``dagster.EnvVar``), either the platform's own document (``json``) or a Slack-compatible
message (``slack``: ``text`` plus ``blocks``, what Slack's incoming webhooks and most chat tools accept).
A delivery that fails (connection refused, timeout, a 5xx, 408 or 429) is retried with exponential
backoff; after the last attempt the failure is logged as a warning and the tick carries on: nothing
else waits for the webhook.

Three sensors, running from the start, each skipping (saying why) while no webhook is configured:

- ``mlops_alert_run_failures``: Dagster's run failure sensor; one alert per failed run.
- ``mlops_alert_checks``: every asset check of the definitions (the promotion gates, files_valid,
  no_drift, performance_within_tolerance, serves_champion). A check's state is its newest completed
  evaluation (any partition): failing alerts once, then stays quiet for ``repeat_hours`` however many
  ticks or failed evaluations follow (it reminds once per window while still failing); passing again
  sends one recovery message.
- ``mlops_alert_freshness``: the freshness states Dagster's freshness daemon records for each asset with
  a freshness policy; FAIL alerts (one per window), PASS after a failure recovers.

The dedupe state is the sensor cursor (stored in the instance), so it survives restarts. An alert that
could not be delivered stays owed and is tried again at the next tick.
"""

import datetime as dt
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dagster as dg
from dagster._time import get_current_datetime

from mlops_platform.settings import ALERT_WEBHOOK_VAR

# How long a failure that is still failing stays quiet before one reminder.
REPEAT_HOURS = 24.0
SOURCE = "mlops-platform"
# HTTP answers worth retrying; other 4xx mean the request itself is wrong and would fail again.
RETRYABLE = frozenset({408, 425, 429})
COMPLETED = ("SUCCEEDED", "FAILED", "EXECUTION_FAILED")


@dataclass(frozen=True)
class Alert:
    """One message: ``status`` is ``failing`` or ``recovered``; ``subject`` names the run, check or asset."""

    kind: Literal["run", "check", "freshness"]
    subject: str
    status: Literal["failing", "recovered"]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def document(self, fmt: str, at: dt.datetime) -> dict[str, Any]:
        """The JSON body posted to the webhook in format ``fmt`` (``json`` or ``slack``)."""
        if fmt == "slack":
            icon = ":red_circle:" if self.status == "failing" else ":large_green_circle:"
            title = f"{icon} {SOURCE}: {self.kind} {self.subject} {self.status}"
            lines = [f"*{title}*", self.summary]
            lines += [f"• {k}: {v}" for k, v in self.details.items() if v is not None]
            return {
                "text": f"{title}: {self.summary}",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}}],
            }
        return {
            "source": SOURCE,
            "kind": self.kind,
            "subject": self.subject,
            "status": self.status,
            "summary": self.summary,
            "details": self.details,
            "at": at.isoformat(),
        }


class Notifier(dg.ConfigurableResource):
    """Posts alerts to a webhook. ``webhook_url`` unset: nothing is sent and the sensors say so."""

    webhook_url: str | None = None
    format: Literal["json", "slack"] = "json"
    timeout_seconds: float = 5.0
    attempts: int = 4
    backoff_seconds: float = 0.5

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url)

    def send(self, alert: Alert, log: Any = None) -> bool:
        """Deliver ``alert``; True once the webhook answered 2xx. Retries with backoff, then logs and
        returns False (never raises for a delivery failure: an alert must not fail anything else)."""
        import httpx

        if not self.webhook_url:
            return False
        body = alert.document(self.format, get_current_datetime())
        problem = "not attempted"
        for attempt in range(1, max(self.attempts, 1) + 1):
            try:
                response = httpx.post(self.webhook_url, json=body, timeout=self.timeout_seconds)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in RETRYABLE:
                    break
            if attempt < self.attempts:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        # The URL is a secret: the message names the variable, never the value.
        message = (
            f"alert not delivered to {ALERT_WEBHOOK_VAR} after {attempt} attempt(s) ({problem}): "
            f"{alert.kind} {alert.subject} {alert.status}"
        )
        if log is not None:
            log.warning(message)
        return False


NOT_CONFIGURED = f"{ALERT_WEBHOOK_VAR} is not set: alerts are off (set it to a webhook URL to receive them)"


@dataclass
class Watch:
    """What a sensor remembers about one subject: failing since when, last alert delivered, quiet ticks."""

    failing: bool = False
    since: str | None = None
    alerted_at: str | None = None
    suppressed: int = 0
    recovery_owed: bool = False

    @classmethod
    def load(cls, raw: dict[str, Any]) -> "Watch":
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


def load_watches(cursor: str | None) -> dict[str, Watch]:
    if not cursor:
        return {}
    return {subject: Watch.load(raw) for subject, raw in json.loads(cursor).get("watches", {}).items()}


def dump_watches(watches: dict[str, Watch]) -> str:
    kept = {s: w.__dict__ for s, w in watches.items() if w.failing or w.recovery_owed}
    return json.dumps({"watches": kept}, sort_keys=True)


def due(watch: Watch, failing: bool | None, now: dt.datetime, repeat_hours: float) -> str | None:
    """What to send for a subject whose current state is ``failing`` (None: unknown, keep the state):
    ``failing`` (the first alert or the reminder of a new window), ``recovered``, or None (stay quiet).
    Updates ``watch`` as if the alert were delivered; ``delivered`` settles the rest."""
    if failing is None:
        return "recovered" if watch.recovery_owed else None
    if failing:
        watch.recovery_owed = False
        if not watch.failing:
            watch.failing, watch.since, watch.alerted_at, watch.suppressed = True, now.isoformat(), None, 0
            return "failing"
        if watch.alerted_at is None:
            return "failing"  # the first alert was not delivered yet
        if now - dt.datetime.fromisoformat(watch.alerted_at) >= dt.timedelta(hours=repeat_hours):
            return "failing"
        watch.suppressed += 1
        return None
    if watch.failing:
        # A failure nobody heard of needs no recovery message.
        watch.recovery_owed = watch.alerted_at is not None
        watch.failing = False
    return "recovered" if watch.recovery_owed else None


def delivered(watch: Watch, status: str, now: dt.datetime) -> None:
    if status == "failing":
        watch.alerted_at, watch.suppressed = now.isoformat(), 0
    else:
        watch.recovery_owed, watch.alerted_at, watch.since = False, None, None


@dataclass
class Observation:
    """The current state of one subject as a sensor sees it."""

    subject: str
    failing: bool | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def notify(
    context: dg.SensorEvaluationContext,
    notifier: Notifier,
    kind: Literal["check", "freshness"],
    observations: Iterable[Observation],
    repeat_hours: float,
) -> dg.SkipReason:
    """Compare ``observations`` with the cursor, send what is due, save the cursor; the tick's summary."""
    now = get_current_datetime()
    watches = load_watches(context.cursor)
    sent: list[str] = []
    deferred: list[str] = []
    quiet = 0
    webhook_down = False
    for seen in observations:
        watch = watches.setdefault(seen.subject, Watch())
        status = due(watch, seen.failing, now, repeat_hours)
        if status is None:
            quiet += 1 if watch.failing else 0
            continue
        if webhook_down:  # one unreachable webhook per tick is enough waiting; the rest is owed
            deferred.append(f"{seen.subject} {status}")
            continue
        details = dict(seen.details)
        if status == "failing" and watch.since:
            details["failing_since"] = watch.since
        if status == "failing" and watch.suppressed:
            details["repeats_since_last_alert"] = watch.suppressed
        alert = Alert(kind=kind, subject=seen.subject, status=status, summary=seen.summary, details=details)  # type: ignore[arg-type]
        if notifier.send(alert, context.log):
            delivered(watch, status, now)
            sent.append(f"{seen.subject} {status}")
        else:
            webhook_down = True
            deferred.append(f"{seen.subject} {status}")
    context.update_cursor(dump_watches(watches))
    parts = []
    if sent:
        parts.append(f"sent {len(sent)} alert(s): {', '.join(sent)[:400]}")
    if deferred:
        parts.append(f"{len(deferred)} alert(s) not delivered, retried next tick: {', '.join(deferred)[:400]}")
    if quiet:
        parts.append(f"{quiet} still failing, already alerted within {repeat_hours:g} h")
    return dg.SkipReason("; ".join(parts) or f"no {kind} alert due")


def _check_observation(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> Observation:
    subject = f"{key.asset_key.to_user_string()}:{key.name}"
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=5)
    for record in records:  # newest first
        status = record.status.value
        if status not in COMPLETED:
            continue
        evaluation = record.event.asset_check_evaluation if record.event is not None else None
        if status == "EXECUTION_FAILED" or evaluation is None:
            return Observation(
                subject, True, f"check {subject} could not run (run {record.run_id})", {"run_id": record.run_id}
            )
        severity = getattr(evaluation.severity, "value", None)
        description = (evaluation.description or "")[:500]
        details = {"run_id": record.run_id or None, "partition": record.partition, "severity": severity}
        if evaluation.passed:
            return Observation(subject, False, f"check {subject} passes again: {description}".rstrip(": "), details)
        return Observation(subject, True, f"check {subject} failed: {description}".rstrip(": "), details)
    return Observation(subject, None, "")


def build_alert_sensors(
    check_keys: Sequence[dg.AssetCheckKey],
    freshness_keys: Sequence[dg.AssetKey],
    repeat_hours: float = REPEAT_HOURS,
) -> list[dg.SensorDefinition]:
    """The three alert sensors over ``check_keys`` and the assets with a freshness policy."""
    checks, fresh = list(check_keys), list(freshness_keys)

    @dg.run_failure_sensor(
        name="mlops_alert_run_failures",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description=f"One alert per failed run to {ALERT_WEBHOOK_VAR} (skips while it is unset).",
    )
    def alert_run_failures(context: dg.RunFailureSensorContext, notifier: Notifier):
        if not notifier.configured:
            return dg.SkipReason(NOT_CONFIGURED)
        run = context.dagster_run
        steps = []
        for event in context.get_step_failure_events():
            error = getattr(event.event_specific_data, "error", None)
            while error is not None and error.cause is not None:  # the user's exception, not Dagster's wrapper
                error = error.cause
            cause = error.message.strip() if error is not None else "failed"
            steps.append(f"{event.step_key}: {cause}")
        error = "; ".join(steps) or context.failure_event.message or "no error recorded"
        assets = sorted(key.to_user_string() for key in run.asset_selection or ())
        alert = Alert(
            kind="run",
            subject=run.job_name,
            status="failing",
            summary=f"run {run.run_id} of {run.job_name} failed: {error[:500]}",
            details={
                "run_id": run.run_id,
                "assets": ", ".join(assets)[:500] or None,
                "partition": run.tags.get("dagster/partition"),
                "trigger": run.tags.get("mlops/trigger"),
            },
        )
        if not notifier.send(alert, context.log):
            return dg.SkipReason(f"run {run.run_id} failed; the alert was not delivered (logged)")
        return None

    @dg.sensor(
        name="mlops_alert_checks",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description=(
            f"One alert per failed asset check per {repeat_hours:g} h and a recovery message when it passes again, "
            f"to {ALERT_WEBHOOK_VAR} (skips while it is unset)."
        ),
    )
    def alert_checks(context: dg.SensorEvaluationContext, notifier: Notifier):
        if not notifier.configured:
            return dg.SkipReason(NOT_CONFIGURED)
        observations = (_check_observation(context.instance, key) for key in checks)
        return notify(context, notifier, "check", observations, repeat_hours)

    @dg.sensor(
        name="mlops_alert_freshness",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description=(
            f"One alert per asset whose freshness FAILs (as the freshness daemon records it) per {repeat_hours:g} h, "
            f"and a recovery message when it passes again, to {ALERT_WEBHOOK_VAR} (skips while it is unset)."
        ),
    )
    def alert_freshness(context: dg.SensorEvaluationContext, notifier: Notifier):
        if not notifier.configured:
            return dg.SkipReason(NOT_CONFIGURED)
        records = context.instance.get_freshness_state_records(fresh)
        observations = []
        for key in fresh:
            record = records.get(key)
            state = record.freshness_state.value if record is not None else None
            failing = {"FAIL": True, "PASS": False}.get(state) if state else None
            since = record.updated_at.isoformat() if record is not None else None
            what = "is stale (freshness FAIL)" if failing else "is fresh again"
            observations.append(
                Observation(key.to_user_string(), failing, f"{key.to_user_string()} {what}", {"state_since": since})
            )
        return notify(context, notifier, "freshness", observations, repeat_hours)

    return [alert_run_failures, alert_checks, alert_freshness]


def alerted_keys(assets: Iterable[Any]) -> tuple[list[dg.AssetCheckKey], list[dg.AssetKey]]:
    """(every asset check, every asset with a freshness policy) among the definitions' ``assets``."""
    checks: list[dg.AssetCheckKey] = []
    fresh: list[dg.AssetKey] = []
    for definition in assets:
        checks.extend(spec.key for spec in getattr(definition, "check_specs", ()))
        if isinstance(definition, dg.AssetsDefinition) and not isinstance(definition, dg.AssetChecksDefinition):
            fresh.extend(spec.key for spec in definition.specs if spec.freshness_policy is not None)
    return sorted(set(checks), key=str), sorted(set(fresh), key=str)
