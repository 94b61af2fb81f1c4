"""Metrics sinks: the platform's monitoring figures in the cloud's own monitoring service.

One contract (``MetricsSink.put``), one class per service, chosen by the profile (``Profile.metrics_sink``):

- ``LocalMetricsSink``: nothing leaves the machine (the Dagster UI holds every figure as metadata).
- ``CloudWatchSink``: ``PutMetricData`` through boto3, credentials from its default chain.
- ``CloudMonitoringSink``: Google Cloud Monitoring custom metrics (``custom.googleapis.com/...``), the
  ``projects.timeSeries.create`` REST call with a token from google-auth's default credentials.
  (The google-cloud-monitoring client is not a dependency; its REST API is the documented contract.)
- ``AzureMonitorSink``: Azure Monitor custom metrics, the regional ingestion REST endpoint
  (``https://<region>.monitoring.azure.com/<resource id>/metrics``) with a token from azure-identity.
  (azure-monitor-ingestion sends logs, not metrics; no official client sends custom metrics.)

Figures are gauges named by ``Metric.name`` with a few low-cardinality dimensions (model, column,
metric, decision). A sink creates its client when it first sends, never at import or construction.
Callers send through ``record``: a failure to send is a warning in the step's log, never a failed step.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dagster as dg

NAMESPACE = "mlops-platform"
# What one request may carry: CloudWatch 1000 metric data, Cloud Monitoring 200 time series.
CLOUDWATCH_BATCH = 500
GCP_BATCH = 200


class MetricsSinkError(RuntimeError):
    """The monitoring service refused the figures or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class Metric:
    """One gauge value: ``name`` (letters, digits, ``_``), its dimensions and when it was measured."""

    name: str
    value: float
    dimensions: dict[str, str] = field(default_factory=dict)
    timestamp: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c == "_" for c in self.name):
            raise ValueError(f"metric name {self.name!r}: letters, digits and '_' only")

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)


class MetricsSink(dg.ConfigurableResource):
    """The contract (resource key ``metrics``).

    ``put(metrics)`` sends every figure or raises ``MetricsSinkError`` naming the service and the cause
    (nothing is half-reported silently: a batch the service refused is an error). Sending the same
    figures twice records the same gauge values twice at their timestamps (a service keeps the last
    or aggregates them; nothing accumulates). An empty list sends nothing. ``kind`` names the service.
    """

    kind: ClassVar[str] = "none"

    def put(self, metrics: Sequence[Metric]) -> None:
        raise NotImplementedError

    def record(self, metrics: Sequence[Metric], log: Any = None) -> bool:
        """``put``, but a failure is logged as a warning and returns False: a step never fails for its metrics.
        Non-finite values (no service accepts them) are left out, and the warning names them."""
        skipped = [m.name for m in metrics if not m.finite]
        metrics = [m for m in metrics if m.finite]
        if skipped and log is not None:
            log.warning(f"metric(s) {', '.join(skipped)[:300]} not sent to {self.kind}: not a finite number")
        if not metrics:
            return not skipped
        try:
            self.put(metrics)
        # Any SDK's error (missing credentials, a refused token, a timeout): the figures are still in the
        # step's metadata, and a step must never fail for its metrics.
        except Exception as exc:  # noqa: BLE001
            if log is not None:
                log.warning(f"{len(metrics)} metric(s) not sent to {self.kind}: {type(exc).__name__}: {exc}"[:1000])
            return False
        return True


class LocalMetricsSink(MetricsSink):
    """Nothing leaves the machine: the Dagster UI shows every figure as asset metadata."""

    kind: ClassVar[str] = "local"

    def put(self, metrics: Sequence[Metric]) -> None:
        return None


class UnconfiguredMetricsSink(MetricsSink):
    """A cloud sink missing settings: every ``put`` fails naming the variables (logged, never fatal)."""

    kind: ClassVar[str] = "unconfigured"
    missing: list[str] = []

    def put(self, metrics: Sequence[Metric]) -> None:
        raise MetricsSinkError(f"metrics sink not configured: set {', '.join(self.missing)}")


class CloudWatchSink(MetricsSink):
    """AWS CloudWatch custom metrics (``PutMetricData``) under ``namespace``."""

    kind: ClassVar[str] = "cloudwatch"
    namespace: str = NAMESPACE
    region: str | None = None
    endpoint_url: str | None = None

    def put(self, metrics: Sequence[Metric]) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client("cloudwatch", region_name=self.region, endpoint_url=self.endpoint_url)
        data = [
            {
                "MetricName": m.name,
                "Dimensions": [{"Name": k, "Value": str(v)[:1024]} for k, v in sorted(m.dimensions.items())],
                "Timestamp": m.timestamp,
                "Value": float(m.value),
                "Unit": "None",
            }
            for m in metrics
        ]
        for start in range(0, len(data), CLOUDWATCH_BATCH):
            try:
                client.put_metric_data(Namespace=self.namespace, MetricData=data[start : start + CLOUDWATCH_BATCH])
            except (BotoCoreError, ClientError) as exc:
                raise MetricsSinkError(f"CloudWatch PutMetricData in {self.namespace!r} failed: {exc}") from exc


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _post(url: str, body: Any, headers: dict[str, str], service: str, timeout: float) -> None:
    import httpx

    try:
        response = httpx.post(url, content=json.dumps(body), headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise MetricsSinkError(f"{service} unreachable: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise MetricsSinkError(f"{service} answered HTTP {response.status_code}: {response.text[:500]}")


class CloudMonitoringSink(MetricsSink):
    """Google Cloud Monitoring custom metrics: ``custom.googleapis.com/<prefix>/<name>`` on the ``global``
    resource of ``project``. ``endpoint_url`` (an emulator or a proxy) sends without credentials."""

    kind: ClassVar[str] = "cloud-monitoring"
    project: str
    prefix: str = NAMESPACE.replace("-", "_")
    endpoint_url: str | None = None
    timeout_seconds: float = 10.0

    def request(self, metrics: Sequence[Metric]) -> list[dict[str, Any]]:
        """The ``timeSeries.create`` bodies for ``metrics`` (at most 200 series each, one point per series)."""
        series = [
            {
                "metric": {"type": f"custom.googleapis.com/{self.prefix}/{m.name}", "labels": dict(m.dimensions)},
                "resource": {"type": "global", "labels": {"project_id": self.project}},
                "metricKind": "GAUGE",
                "valueType": "DOUBLE",
                "points": [{"interval": {"endTime": _rfc3339(m.timestamp)}, "value": {"doubleValue": float(m.value)}}],
            }
            for m in metrics
        ]
        return [{"timeSeries": series[i : i + GCP_BATCH]} for i in range(0, len(series), GCP_BATCH)]

    def put(self, metrics: Sequence[Metric]) -> None:
        headers = {"Content-Type": "application/json"}
        if self.endpoint_url is None:
            headers["Authorization"] = f"Bearer {_google_token()}"
        base = (self.endpoint_url or "https://monitoring.googleapis.com").rstrip("/")
        for body in self.request(metrics):
            _post(
                f"{base}/v3/projects/{self.project}/timeSeries",
                body,
                headers,
                "Cloud Monitoring timeSeries.create",
                self.timeout_seconds,
            )


def _google_token() -> str:
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/monitoring.write"])
    credentials.refresh(google.auth.transport.requests.Request())
    return str(credentials.token)


class AzureMonitorSink(MetricsSink):
    """Azure Monitor custom metrics on ``resource_id`` (the resource they belong to, such as the Azure ML
    workspace) in ``region``, namespace ``namespace``. ``endpoint_url`` sends without credentials."""

    kind: ClassVar[str] = "azure-monitor"
    resource_id: str
    region: str
    namespace: str = NAMESPACE
    endpoint_url: str | None = None
    timeout_seconds: float = 10.0

    def request(self, metrics: Sequence[Metric]) -> list[dict[str, Any]]:
        """The ingestion bodies: one per metric name and dimension set, a series per dimension values."""
        groups: dict[tuple[str, tuple[str, ...], str], list[Metric]] = {}
        for m in metrics:
            names = tuple(sorted(m.dimensions))
            groups.setdefault((m.name, names, _rfc3339(m.timestamp.replace(microsecond=0))), []).append(m)
        bodies = []
        for (name, names, at), members in groups.items():
            bodies.append(
                {
                    "time": at,
                    "data": {
                        "baseData": {
                            "metric": name,
                            "namespace": self.namespace,
                            "dimNames": list(names),
                            "series": [
                                {
                                    "dimValues": [str(m.dimensions[n]) for n in names],
                                    "min": float(m.value),
                                    "max": float(m.value),
                                    "sum": float(m.value),
                                    "count": 1,
                                }
                                for m in members
                            ],
                        }
                    },
                }
            )
        return bodies

    def put(self, metrics: Sequence[Metric]) -> None:
        headers = {"Content-Type": "application/json"}
        if self.endpoint_url is None:
            from azure.identity import DefaultAzureCredential

            token = DefaultAzureCredential().get_token("https://monitoring.azure.com/.default").token
            headers["Authorization"] = f"Bearer {token}"
        base = (self.endpoint_url or f"https://{self.region}.monitoring.azure.com").rstrip("/")
        url = f"{base}/{self.resource_id.strip('/')}/metrics"
        for body in self.request(metrics):
            _post(url, body, headers, "Azure Monitor custom metrics", self.timeout_seconds)
