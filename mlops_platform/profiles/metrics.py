"""Metrics sinks: the platform's monitoring figures in the cloud's own monitoring service.

One contract (``MetricsSink.put``), one class per service, chosen by the profile (``Profile.metrics_sink``):

- ``LocalMetricsSink``: nothing leaves the machine (the Dagster UI holds every figure as metadata).
- ``CloudWatchSink``: ``PutMetricData`` through boto3, credentials from its default chain; botocore
  retries throttling, 5xx answers and connection errors with backoff.
- ``CloudMonitoringSink``: Google Cloud Monitoring custom metrics (``custom.googleapis.com/...``) through
  the official client, google-cloud-monitoring's ``MetricServiceClient.create_time_series``, credentials
  from google-auth's default chain. That client speaks gRPC only (its metric service has no REST
  transport), so an endpoint override is a gRPC ``host:port`` given as ``http://`` (plaintext) or
  ``https://`` (TLS). ``request`` gives the same series as the REST API's ``timeSeries.create`` bodies:
  the proto3 JSON of the messages the client sends.
- ``AzureMonitorSink``: Azure Monitor custom metrics, the regional ingestion REST endpoint
  (``https://<region>.monitoring.azure.com/<resource id>/metrics``) with a token from azure-identity.
  No official client sends custom metrics (azure-monitor-ingestion sends logs; azure-monitor-query
  reads), so this one stays on the documented REST call.

Cloud Monitoring and Azure Monitor retry what may pass on a second try (connection errors, timeouts, 5xx,
408, 425, 429 or the gRPC codes for them) ``attempts`` times in all, waiting ``backoff_seconds`` doubled
after each failure, as the alert notifier does; a refusal (4xx) fails at once.

Figures are gauges named by ``Metric.name`` with a few low-cardinality dimensions (model, column,
metric, decision). A sink creates its client when it first sends, never at import or construction.
Callers send through ``record``: a failure to send is a warning in the step's log, never a failed step.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlparse

import dagster as dg

NAMESPACE = "mlops-platform"
# What one request may carry: CloudWatch 1000 metric data, Cloud Monitoring 200 time series.
CLOUDWATCH_BATCH = 500
GCP_BATCH = 200
GCP_ENDPOINT = "monitoring.googleapis.com"
# HTTP answers worth retrying besides 5xx; other 4xx mean the request itself is wrong (as automation.alerts).
RETRYABLE = frozenset({408, 425, 429})


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


class _Failure(Exception):
    """One failed attempt: ``message`` for the error, ``transient`` when another attempt may succeed."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


def _with_retries(send: Callable[[], None], attempts: int, backoff_seconds: float) -> None:
    """``send()``; a transient ``_Failure`` is tried again after ``backoff_seconds * 2**(n-1)``, up to
    ``attempts`` calls in all. The last failure, or the first that is not transient, is a
    ``MetricsSinkError`` saying how many attempts were made."""
    attempts = max(attempts, 1)
    for attempt in range(1, attempts + 1):
        try:
            send()
            return
        except _Failure as failure:
            if not failure.transient or attempt == attempts:
                tried = f" (after {attempt} attempts)" if attempt > 1 else ""
                raise MetricsSinkError(f"{failure.message}{tried}") from failure.__cause__
        time.sleep(backoff_seconds * 2 ** (attempt - 1))


def _retryable(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE or (status >= 500 and status != 501))


def _post(url: str, body: Any, headers: dict[str, str], service: str, timeout: float) -> None:
    """One POST; a failure is a ``_Failure`` (transient for connection errors and retryable answers)."""
    import httpx

    try:
        response = httpx.post(url, content=json.dumps(body), headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise _Failure(f"{service} unreachable: {type(exc).__name__}: {exc}", transient=True) from exc
    if not response.is_success:
        raise _Failure(
            f"{service} answered HTTP {response.status_code}: {response.text[:500]}",
            transient=_retryable(response.status_code),
        )


class CloudMonitoringSink(MetricsSink):
    """Google Cloud Monitoring custom metrics: ``custom.googleapis.com/<prefix>/<name>`` on the ``global``
    resource of ``project``, through google-cloud-monitoring's ``MetricServiceClient`` (gRPC) at
    ``monitoring.googleapis.com`` with google-auth's default credentials. ``endpoint_url`` (an emulator
    or a proxy: ``http://host:port`` plaintext, ``https://host:port`` TLS) sends without credentials."""

    kind: ClassVar[str] = "cloud-monitoring"
    project: str
    prefix: str = NAMESPACE.replace("-", "_")
    endpoint_url: str | None = None
    timeout_seconds: float = 10.0
    attempts: int = 4
    backoff_seconds: float = 0.5

    def request(self, metrics: Sequence[Metric]) -> list[dict[str, Any]]:
        """The ``timeSeries.create`` bodies for ``metrics`` (at most 200 series each, one point per series):
        exactly the series ``put`` sends, in the REST API's JSON (the proto3 JSON of the gRPC request)."""
        series = [
            {
                "metric": {
                    "type": f"custom.googleapis.com/{self.prefix}/{m.name}",
                    "labels": {k: str(v) for k, v in m.dimensions.items()},
                },
                "resource": {"type": "global", "labels": {"project_id": self.project}},
                "metricKind": "GAUGE",
                "valueType": "DOUBLE",
                "points": [{"interval": {"endTime": _rfc3339(m.timestamp)}, "value": {"doubleValue": float(m.value)}}],
            }
            for m in metrics
        ]
        return [{"timeSeries": series[i : i + GCP_BATCH]} for i in range(0, len(series), GCP_BATCH)]

    def put(self, metrics: Sequence[Metric]) -> None:
        bodies = self.request(metrics)
        if not bodies:
            return
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import monitoring_v3
        from google.protobuf.json_format import ParseError

        total = sum(len(body["timeSeries"]) for body in bodies)
        try:
            client = self._client()
        except GoogleAuthError as exc:
            raise MetricsSinkError(f"{self._service}: no credentials: {type(exc).__name__}: {exc}") from exc
        with client:
            sent = 0
            for body in bodies:
                try:
                    series = [monitoring_v3.TimeSeries.from_json(json.dumps(s)) for s in body["timeSeries"]]
                except (ParseError, ValueError) as exc:
                    raise MetricsSinkError(f"{self._service}: a series is not a valid TimeSeries: {exc}") from exc
                # A later batch failing says which series never arrived (the earlier ones did).
                where = f" (series {sent + 1}-{sent + len(series)} of {total}; the first {sent} were sent)"
                _with_retries(
                    functools.partial(self._create, client, series, where if sent else ""),
                    self.attempts,
                    self.backoff_seconds,
                )
                sent += len(series)

    @property
    def _service(self) -> str:
        return f"Cloud Monitoring CreateTimeSeries on projects/{self.project}"

    def _create(self, client: Any, series: list[Any], where: str) -> None:
        """One ``create_time_series`` call (the client's own retry off: ``_with_retries`` retries)."""
        from google.api_core.exceptions import GoogleAPICallError
        from google.auth.exceptions import GoogleAuthError

        try:
            client.create_time_series(
                name=f"projects/{self.project}", time_series=series, retry=None, timeout=self.timeout_seconds
            )
        except GoogleAPICallError as exc:
            status = exc.grpc_status_code.name if exc.grpc_status_code is not None else "error"
            raise _Failure(
                f"{self._service} failed with {status} (HTTP {exc.code}){where}: {exc.message}"[:1000],
                transient=_retryable(exc.code),
            ) from exc
        except GoogleAuthError as exc:
            raise _Failure(f"{self._service}: credentials refused: {type(exc).__name__}: {exc}", False) from exc

    def _client(self) -> Any:
        """The official client: production endpoint and default credentials, or a channel to ``endpoint_url``
        without credentials (the client's REST transport does not exist for this service)."""
        from google.cloud import monitoring_v3

        if self.endpoint_url is None:
            return monitoring_v3.MetricServiceClient(transport="grpc", client_options={"api_endpoint": GCP_ENDPOINT})
        import grpc
        from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

        parsed = urlparse(self.endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/"):
            raise MetricsSinkError(
                f"metrics endpoint {self.endpoint_url!r}: Cloud Monitoring's client speaks gRPC to a host and port "
                "(http://host:port plaintext or https://host:port TLS), with no path"
            )
        host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
        target = f"{host}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"
        channel = (
            grpc.insecure_channel(target)
            if parsed.scheme == "http"
            else grpc.secure_channel(target, grpc.ssl_channel_credentials())
        )
        return monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))


class AzureMonitorSink(MetricsSink):
    """Azure Monitor custom metrics on ``resource_id`` (the resource they belong to, such as the Azure ML
    workspace) in ``region``, namespace ``namespace``. ``endpoint_url`` sends without credentials.

    REST with an azure-identity token, not an SDK: no official client sends custom metrics
    (azure-monitor-ingestion sends logs to a data collection rule, azure-monitor-query only reads)."""

    kind: ClassVar[str] = "azure-monitor"
    resource_id: str
    region: str
    namespace: str = NAMESPACE
    endpoint_url: str | None = None
    timeout_seconds: float = 10.0
    attempts: int = 4
    backoff_seconds: float = 0.5

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
            _with_retries(
                functools.partial(_post, url, body, headers, "Azure Monitor custom metrics", self.timeout_seconds),
                self.attempts,
                self.backoff_seconds,
            )
