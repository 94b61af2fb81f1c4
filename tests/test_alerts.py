"""Alerts: the notifier against a real loopback webhook, and the three alert sensors' dedupe and recovery."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.test_utils import freeze_time
from dagster._time import get_current_datetime

from mlops_platform.automation.alerts import NOT_CONFIGURED, Alert, Notifier, build_alert_sensors
from mlops_platform.settings import ALERT_WEBHOOK_VAR, Settings, SettingsError, resources_for

DRIFT = dg.AssetCheckKey(dg.AssetKey(["churn", "drift"]), "no_drift")
GATE = dg.AssetCheckKey(dg.AssetKey(["churn", "evaluation"]), "meets_threshold")
RAW = dg.AssetKey(["churn", "raw"])


class Webhook:
    """A loopback HTTP server that records every JSON document posted to it and answers ``status``."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.attempts = 0
        self.status = 200
        self.lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with webhook.lock:
                    webhook.attempts += 1
                    status = webhook.status
                    if status < 300:
                        webhook.received.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    server = Webhook()
    try:
        yield server
    finally:
        server.close()


class Log:
    """Collects the warnings a notifier logs."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def _sensors(checks=(DRIFT, GATE), fresh=(RAW,)) -> dict[str, dg.SensorDefinition]:
    return {s.name: s for s in build_alert_sensors(list(checks), list(fresh))}


class Ticker:
    """Evaluates one sensor tick after another, carrying the cursor as the daemon does."""

    def __init__(self, sensor: dg.SensorDefinition, instance: dg.DagsterInstance, notifier: Notifier):
        self.sensor, self.instance, self.notifier, self.cursor = sensor, instance, notifier, None

    def tick(self) -> str | None:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"notifier": self.notifier}
        )
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor if data.cursor is not None else self.cursor
        return data.skip_message


def _evaluate(instance: dg.DagsterInstance, key: dg.AssetCheckKey, passed: bool, description: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=key.asset_key, check_name=key.name, passed=passed, description=description)
    )


def _fast(url: str, **kwargs) -> Notifier:
    return Notifier(webhook_url=url, backoff_seconds=0.01, timeout_seconds=2, **kwargs)


def test_an_alert_storm_sends_one_alert_then_one_recovery(instance, webhook) -> None:
    ticker = Ticker(_sensors()["mlops_alert_checks"], instance, _fast(webhook.url))
    for tick in range(100):
        _evaluate(instance, DRIFT, False, f"age drifted (tick {tick})")
        message = ticker.tick()
    assert len(webhook.received) == 1
    alert = webhook.received[0]
    assert (alert["source"], alert["kind"], alert["subject"], alert["status"]) == (
        "mlops-platform",
        "check",
        "churn/drift:no_drift",
        "failing",
    )
    assert alert["summary"] == "check churn/drift:no_drift failed: age drifted (tick 0)"
    assert "1 still failing, already alerted within 24 h" in (message or "")

    _evaluate(instance, DRIFT, True, "no column drifted")
    assert "sent 1 alert(s): churn/drift:no_drift recovered" in (ticker.tick() or "")
    assert ticker.tick() == "no check alert due"
    assert [a["status"] for a in webhook.received] == ["failing", "recovered"]
    assert webhook.received[1]["summary"] == "check churn/drift:no_drift passes again: no column drifted"


def test_a_failure_still_failing_after_the_window_reminds_once(instance, webhook) -> None:
    ticker = Ticker(_sensors()["mlops_alert_checks"], instance, _fast(webhook.url))
    start = get_current_datetime()
    with freeze_time(start):
        _evaluate(instance, GATE, False, "roc_auc 0.61 below 0.70")
        ticker.tick()
        for _ in range(3):
            _evaluate(instance, GATE, False, "roc_auc 0.61 below 0.70")
            ticker.tick()
    with freeze_time(start + dt_hours(23)):
        ticker.tick()
    assert len(webhook.received) == 1
    with freeze_time(start + dt_hours(25)):
        ticker.tick()
        ticker.tick()
    assert [a["status"] for a in webhook.received] == ["failing", "failing"]
    assert webhook.received[1]["details"]["repeats_since_last_alert"] == 4


def dt_hours(hours: float):
    import datetime as dt

    return dt.timedelta(hours=hours)


def test_a_webhook_answering_500_is_retried_then_logged_and_the_alert_stays_owed(instance, webhook) -> None:
    webhook.status = 500
    ticker = Ticker(_sensors()["mlops_alert_checks"], instance, _fast(webhook.url, attempts=3))
    _evaluate(instance, DRIFT, False, "drifted")
    _evaluate(instance, GATE, False, "below threshold")
    message = ticker.tick() or ""
    # Three attempts for the first alert; the second is not sent to a webhook known to be down this tick.
    assert webhook.attempts == 3
    assert "2 alert(s) not delivered, retried next tick" in message
    webhook.status = 200
    assert "sent 2 alert(s)" in (ticker.tick() or "")
    assert sorted(a["subject"] for a in webhook.received) == [
        "churn/drift:no_drift",
        "churn/evaluation:meets_threshold",
    ]
    ticker.tick()
    assert len(webhook.received) == 2


def test_a_webhook_that_is_down_fails_the_delivery_only_with_a_warning() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/secret-token-in-path"
    log = Log()
    started = time.monotonic()
    sent = _fast(url, attempts=3).send(Alert("check", "churn/drift:no_drift", "failing", "drifted"), log)
    assert sent is False
    assert time.monotonic() - started >= 0.03  # backoff 0.01 s, then 0.02 s
    assert len(log.warnings) == 1
    assert log.warnings[0].startswith(f"alert not delivered to {ALERT_WEBHOOK_VAR} after 3 attempt(s) (ConnectError")
    assert "secret-token" not in log.warnings[0]


def test_a_client_error_is_not_retried(webhook) -> None:
    webhook.status = 404
    log = Log()
    assert _fast(webhook.url).send(Alert("run", "churn_train", "failing", "boom"), log) is False
    assert webhook.attempts == 1
    assert "HTTP 404" in log.warnings[0]


def test_the_slack_format_is_text_and_blocks(webhook) -> None:
    assert _fast(webhook.url, format="slack").send(
        Alert("freshness", "churn/raw", "failing", "churn/raw is stale (freshness FAIL)", {"state_since": "x"})
    )
    document = webhook.received[0]
    assert set(document) == {"text", "blocks"}
    assert document["text"].startswith(":red_circle: mlops-platform: freshness churn/raw failing")
    assert "• state_since: x" in document["blocks"][0]["text"]["text"]


def test_freshness_failures_alert_once_and_recover(instance, webhook) -> None:
    ticker = Ticker(_sensors()["mlops_alert_freshness"], instance, _fast(webhook.url))
    assert ticker.tick() == "no freshness alert due"  # no state recorded yet

    def record(previous: FreshnessState, new: FreshnessState) -> None:
        # What Dagster's freshness daemon writes when an asset's state changes.
        instance.report_runless_asset_event(
            FreshnessStateChange(key=RAW, previous_state=previous, new_state=new, state_change_timestamp=time.time())
        )

    record(FreshnessState.PASS, FreshnessState.WARN)
    ticker.tick()
    assert webhook.received == []  # a warning is not a failure
    record(FreshnessState.WARN, FreshnessState.FAIL)
    for _ in range(5):
        ticker.tick()
    assert [(a["subject"], a["status"]) for a in webhook.received] == [("churn/raw", "failing")]
    assert webhook.received[0]["summary"] == "churn/raw is stale (freshness FAIL)"
    record(FreshnessState.FAIL, FreshnessState.PASS)
    ticker.tick()
    ticker.tick()
    assert [a["status"] for a in webhook.received] == ["failing", "recovered"]


def test_a_failed_run_alerts_with_its_id_and_error(instance, webhook) -> None:
    @dg.asset
    def broken() -> None:
        raise ValueError("the lake is on fire")

    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    sensor = _sensors()["mlops_alert_run_failures"]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
        resources={"notifier": _fast(webhook.url)},
    ).for_run_failure()
    sensor(context)
    assert len(webhook.received) == 1
    alert = webhook.received[0]
    assert (alert["kind"], alert["status"], alert["details"]["run_id"]) == ("run", "failing", result.run_id)
    assert alert["summary"] == (
        f"run {result.run_id} of __ephemeral_asset_job__ failed: broken: ValueError: the lake is on fire"
    )


def test_without_a_webhook_every_alert_sensor_skips_saying_why(instance) -> None:
    _evaluate(instance, DRIFT, False, "drifted")
    for name in ("mlops_alert_checks", "mlops_alert_freshness"):
        ticker = Ticker(_sensors()[name], instance, Notifier())
        assert ticker.tick() == NOT_CONFIGURED
        assert ticker.cursor is None
    assert NOT_CONFIGURED.startswith(f"{ALERT_WEBHOOK_VAR} is not set")


def test_the_webhook_is_a_validated_secret_setting(tmp_path, monkeypatch) -> None:
    with pytest.raises(SettingsError, match=f"{ALERT_WEBHOOK_VAR} must be an http:// or https:// URL"):
        Settings.from_env({"MLOPS_HOME": str(tmp_path), ALERT_WEBHOOK_VAR: "hooks.slack.com/x"})
    with pytest.raises(SettingsError, match="MLOPS_ALERT_FORMAT='teams' is not an alert format"):
        Settings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_ALERT_FORMAT": "teams"})
    url = "https://hooks.example.com/services/T0/B0/secret"
    settings = Settings.from_env({"MLOPS_HOME": str(tmp_path), ALERT_WEBHOOK_VAR: url, "MLOPS_ALERT_FORMAT": "slack"})
    notifier = resources_for(settings)["notifier"]
    assert isinstance(notifier.webhook_url, dg.EnvVar) and notifier.webhook_url.env_var_name == ALERT_WEBHOOK_VAR
    assert notifier.format == "slack"
    assert resources_for(Settings(home=tmp_path))["notifier"].webhook_url is None
    # The EnvVar is resolved when a tick initialises the resource.
    monkeypatch.setenv(ALERT_WEBHOOK_VAR, url)
    with dg.build_resources({"notifier": notifier}) as built:
        assert built.notifier.webhook_url == url
