"""The metrics sink of each profile: CloudWatch against moto_server (read back with GetMetricData), Cloud
Monitoring through google-cloud-monitoring's own client against a loopback gRPC server speaking
MetricService (the client has no REST transport; no emulator exists), Azure Monitor's exact requests
against a loopback HTTP server, local sending nothing, and the monitoring assets and the retraining
sensor sending through it without ever failing for it."""

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import grpc
import pytest
from google.cloud import monitoring_v3
from google.protobuf import empty_pb2, json_format

from mlops_platform.profiles.metrics import (
    AzureMonitorSink,
    CloudMonitoringSink,
    CloudWatchSink,
    LocalMetricsSink,
    Metric,
    MetricsSinkError,
    UnconfiguredMetricsSink,
)
from mlops_platform.settings import Settings, SettingsError, resources_for
from tests.conftest import Platform, day

AT = dt.datetime.now(dt.UTC).replace(microsecond=0)
RESOURCE_ID = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


class Recorder:
    """A loopback HTTP server recording each request (method, path, headers, JSON body); answers the next
    of ``statuses`` while any are left, then ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.statuses: list[int] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                status = recorder.statuses.pop(0) if recorder.statuses else recorder.status
                answer = b'{"error": "refused"}' if status >= 300 else b"{}"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    try:
        yield server
    finally:
        server.close()


class MonitoringServer:
    """A loopback gRPC server speaking ``google.monitoring.v3.MetricService/CreateTimeSeries``: records each
    call (method, metadata, the request as proto3 JSON, i.e. the REST body) and answers the next of
    ``answers`` while any are left (None: success), then ``status`` (None: success)."""

    METHOD = "/google.monitoring.v3.MetricService/CreateTimeSeries"

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[grpc.StatusCode | None] = []
        self.status: grpc.StatusCode | None = None
        self.lock = threading.Lock()

        def create(request: monitoring_v3.CreateTimeSeriesRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
            with self.lock:
                self.requests.append(
                    {
                        "metadata": dict(context.invocation_metadata()),
                        "body": json_format.MessageToDict(monitoring_v3.CreateTimeSeriesRequest.pb(request)),
                    }
                )
                code = self.answers.pop(0) if self.answers else self.status
            if code is not None:
                context.abort(code, "refused")
            return empty_pb2.Empty()

        handler = grpc.method_handlers_generic_handler(
            "google.monitoring.v3.MetricService",
            {
                "CreateTimeSeries": grpc.unary_unary_rpc_method_handler(
                    create,
                    request_deserializer=monitoring_v3.CreateTimeSeriesRequest.deserialize,
                    response_serializer=empty_pb2.Empty.SerializeToString,
                )
            },
        )
        self.methods: list[str] = []
        methods = self.methods

        class Methods(grpc.ServerInterceptor):
            def intercept_service(self, continuation, details):
                methods.append(details.method)
                return continuation(details)

        self.server = grpc.server(ThreadPoolExecutor(max_workers=4), handlers=[handler], interceptors=[Methods()])
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.url = f"http://127.0.0.1:{port}"

    def sink(self, **fields) -> CloudMonitoringSink:
        return CloudMonitoringSink(project="p1", endpoint_url=self.url, backoff_seconds=0.01, **fields)

    def close(self) -> None:
        self.server.stop(grace=None)


@pytest.fixture
def monitoring() -> Iterator[MonitoringServer]:
    server = MonitoringServer()
    try:
        yield server
    finally:
        server.close()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)


FIGURES = [
    Metric("drift_score", 0.25, {"model": "churn", "column": "tenure_months"}, AT),
    Metric("drift_score", 0.5, {"model": "churn", "column": "support_calls_30d"}, AT),
    Metric("performance_estimated", 0.81, {"model": "churn", "metric": "roc_auc"}, AT),
]


def test_each_profile_names_its_sink_and_the_settings_it_needs(tmp_path) -> None:
    home = str(tmp_path)
    assert isinstance(resources_for(Settings(home=tmp_path))["metrics"], LocalMetricsSink)
    aws = Settings.from_env(
        {"MLOPS_PROFILE": "aws", "MLOPS_HOME": home, "MLOPS_STORAGE_ROOT": "s3://d/lake", "AWS_REGION": "eu-west-1"}
    )
    assert aws.cloud.metrics_sink() == CloudWatchSink(region="eu-west-1")
    assert aws.cloud.metrics_sink() == aws.cloud.metrics_sink()  # idempotent
    gcp = Settings.from_env({"MLOPS_PROFILE": "gcp", "MLOPS_HOME": home, "MLOPS_STORAGE_ROOT": "gs://d/lake"})
    assert gcp.cloud.metrics_sink() == UnconfiguredMetricsSink(missing=["GOOGLE_CLOUD_PROJECT"])
    azure_env = {"MLOPS_PROFILE": "azure", "MLOPS_HOME": home, "MLOPS_STORAGE_ROOT": "abfss://d/lake"}
    azure_env["AZURE_STORAGE_ACCOUNT_NAME"] = "acct"
    log = Log()
    assert Settings.from_env(azure_env).cloud.metrics_sink().record(FIGURES, log) is False
    assert log.warnings == [
        "3 metric(s) not sent to unconfigured: MetricsSinkError: metrics sink not configured: set "
        "MLOPS_AZURE_MONITOR_RESOURCE_ID, MLOPS_AZURE_MONITOR_REGION (or MLOPS_AZUREML_LOCATION)"
    ]
    azure = Settings.from_env(
        {**azure_env, "MLOPS_AZURE_MONITOR_RESOURCE_ID": RESOURCE_ID, "MLOPS_AZUREML_LOCATION": "westeurope"}
    )
    assert azure.cloud.metrics_sink() == AzureMonitorSink(resource_id=RESOURCE_ID, region="westeurope")
    with pytest.raises(SettingsError, match="MLOPS_AZURE_MONITOR_RESOURCE_ID is not an Azure resource id"):
        Settings.from_env({**azure_env, "MLOPS_AZURE_MONITOR_RESOURCE_ID": "ws"})
    with pytest.raises(SettingsError, match="MLOPS_METRICS_ENDPOINT_URL must be an http"):
        Settings.from_env({**azure_env, "MLOPS_METRICS_ENDPOINT_URL": "monitoring.local"})


def test_local_sends_nothing_anywhere() -> None:
    log = Log()
    assert LocalMetricsSink().record(FIGURES, log) is True
    assert log.warnings == []


def test_cloudwatch_put_metric_data_reads_back(tmp_path, monkeypatch) -> None:
    from tests.cloud import servers

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    moto = servers.moto_server(tmp_path)
    try:
        settings = Settings.from_env(
            {
                "MLOPS_PROFILE": "aws",
                "MLOPS_HOME": str(tmp_path),
                "MLOPS_STORAGE_ROOT": "s3://d/lake",
                "AWS_REGION": "us-east-1",
                "MLOPS_METRICS_ENDPOINT_URL": moto.url,
            }
        )
        sink = settings.cloud.metrics_sink()
        log = Log()
        assert sink.record(FIGURES, log) is True, log.warnings
        import boto3

        client = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto.url)
        queries = [
            {
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "mlops-platform",
                        "MetricName": m.name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(m.dimensions.items())],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
            for i, m in enumerate(FIGURES)
        ]
        answer = client.get_metric_data(
            MetricDataQueries=queries,
            StartTime=AT - dt.timedelta(minutes=5),
            EndTime=AT + dt.timedelta(minutes=5),
        )
        values = {r["Id"]: r["Values"] for r in answer["MetricDataResults"]}
        assert values == {"q0": [0.25], "q1": [0.5], "q2": [0.81]}
    finally:
        moto.stop()
    # moto_server is gone: the send fails, logged, never raised.
    log = Log()
    assert CloudWatchSink(region="us-east-1", endpoint_url=moto.url).record(FIGURES[:1], log) is False
    assert log.warnings and log.warnings[0].startswith("1 metric(s) not sent to cloudwatch: MetricsSinkError")


def test_cloud_monitoring_sends_create_time_series_through_its_client(monitoring) -> None:
    sink = monitoring.sink()
    assert sink.record(FIGURES) is True
    (request,) = monitoring.requests
    assert monitoring.methods == [MonitoringServer.METHOD]
    # The client's routing header names the project; an endpoint override sends no credentials.
    assert request["metadata"]["x-goog-request-params"] == "name=projects/p1"
    assert "authorization" not in request["metadata"]
    assert request["body"]["name"] == "projects/p1"
    stamp = AT.isoformat().replace("+00:00", "Z")
    assert request["body"]["timeSeries"][0] == {
        "metric": {
            "type": "custom.googleapis.com/mlops_platform/drift_score",
            "labels": {"model": "churn", "column": "tenure_months"},
        },
        "resource": {"type": "global", "labels": {"project_id": "p1"}},
        "metricKind": "GAUGE",
        "valueType": "DOUBLE",
        "points": [{"interval": {"endTime": stamp}, "value": {"doubleValue": 0.25}}],
    }
    assert [s["metric"]["type"].rsplit("/", 1)[1] for s in request["body"]["timeSeries"]] == [
        "drift_score",
        "drift_score",
        "performance_estimated",
    ]
    # What the client sent is what request() describes (the dry description of the call).
    assert [{"timeSeries": request["body"]["timeSeries"]}] == sink.request(FIGURES)


def test_cloud_monitoring_sends_at_most_200_series_per_call(monitoring) -> None:
    sink = monitoring.sink()
    many = [Metric("drift_score", float(i), {"model": "m", "column": f"c{i}"}, AT) for i in range(450)]
    sink.put(many)
    assert [len(r["body"]["timeSeries"]) for r in monitoring.requests] == [200, 200, 50]
    assert [{"timeSeries": r["body"]["timeSeries"]} for r in monitoring.requests] == sink.request(many)
    assert {r["body"]["timeSeries"][0]["metric"]["labels"]["column"] for r in monitoring.requests} == {
        "c0",
        "c200",
        "c400",
    }
    # The second call refused: the error says which series never arrived; the third is not sent.
    monitoring.requests.clear()
    monitoring.answers = [None, grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(MetricsSinkError, match=r"series 201-400 of 450; the first 200 were sent"):
        sink.put(many)
    assert len(monitoring.requests) == 2


def test_cloud_monitoring_retries_a_server_error_then_succeeds(monitoring) -> None:
    monitoring.answers = [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE]
    log = Log()
    assert monitoring.sink().record(FIGURES, log) is True, log.warnings
    assert len(monitoring.requests) == 3
    assert monitoring.requests[0]["body"] == monitoring.requests[2]["body"]


def test_cloud_monitoring_failing_for_good_is_an_error_naming_it(monitoring) -> None:
    monitoring.status = grpc.StatusCode.INTERNAL
    sink = monitoring.sink(attempts=3)
    with pytest.raises(MetricsSinkError) as raised:
        sink.put(FIGURES)
    assert str(raised.value) == (
        "Cloud Monitoring CreateTimeSeries on projects/p1 failed with INTERNAL (HTTP 500): refused (after 3 attempts)"
    )
    assert len(monitoring.requests) == 3
    log = Log()
    assert sink.record(FIGURES, log) is False
    assert log.warnings == [f"3 metric(s) not sent to cloud-monitoring: MetricsSinkError: {raised.value}"]
    # A refusal (the request itself is wrong) is not retried.
    monitoring.requests.clear()
    monitoring.status = grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(MetricsSinkError, match=r"failed with PERMISSION_DENIED \(HTTP 403\): refused$"):
        sink.put(FIGURES)
    assert len(monitoring.requests) == 1


def test_cloud_monitoring_down_or_misaddressed_is_a_warning() -> None:
    sink = CloudMonitoringSink(project="p1", endpoint_url=closed_port_url(), attempts=2, backoff_seconds=0.01)
    with pytest.raises(MetricsSinkError, match=r"projects/p1 failed with UNAVAILABLE .*\(after 2 attempts\)$"):
        sink.put(FIGURES)
    log = Log()
    assert sink.record(FIGURES, log) is False
    assert "failed to connect" in log.warnings[0]
    with pytest.raises(MetricsSinkError, match="speaks gRPC to a host and port"):
        CloudMonitoringSink(project="p1", endpoint_url="http://127.0.0.1:9/v3").put(FIGURES)


def test_azure_monitor_request_is_a_custom_metrics_post(recorder) -> None:
    sink = AzureMonitorSink(resource_id=RESOURCE_ID, region="westeurope", endpoint_url=recorder.url)
    assert sink.record(FIGURES) is True
    assert [r["path"] for r in recorder.requests] == [f"{RESOURCE_ID}/metrics"] * 2
    drift, performance = (r["body"] for r in recorder.requests)
    assert drift == {
        "time": AT.isoformat().replace("+00:00", "Z"),
        "data": {
            "baseData": {
                "metric": "drift_score",
                "namespace": "mlops-platform",
                "dimNames": ["column", "model"],
                "series": [
                    {"dimValues": ["tenure_months", "churn"], "min": 0.25, "max": 0.25, "sum": 0.25, "count": 1},
                    {"dimValues": ["support_calls_30d", "churn"], "min": 0.5, "max": 0.5, "sum": 0.5, "count": 1},
                ],
            }
        },
    }
    assert performance["data"]["baseData"]["metric"] == "performance_estimated"
    assert performance["data"]["baseData"]["dimNames"] == ["metric", "model"]


def test_a_refusing_or_unreachable_azure_monitor_is_a_warning(recorder) -> None:
    sink = AzureMonitorSink(resource_id=RESOURCE_ID, region="westeurope", endpoint_url=recorder.url)
    recorder.status = 400
    log = Log()
    assert sink.record(FIGURES, log) is False
    assert log.warnings == [
        "3 metric(s) not sent to azure-monitor: MetricsSinkError: Azure Monitor custom metrics answered HTTP 400: "
        '{"error": "refused"}'
    ]
    assert len(recorder.requests) == 1  # a refusal is not retried
    # A 503 then success: retried with backoff, nothing lost.
    recorder.requests.clear()
    recorder.status, recorder.statuses = 200, [503]
    sink = sink.model_copy(update={"backoff_seconds": 0.01})
    assert sink.record(FIGURES) is True
    assert [r["body"]["data"]["baseData"]["metric"] for r in recorder.requests] == [
        "drift_score",
        "drift_score",
        "performance_estimated",
    ]
    log = Log()
    sink = AzureMonitorSink(
        resource_id=RESOURCE_ID,
        region="westeurope",
        endpoint_url=closed_port_url(),
        timeout_seconds=2,
        attempts=2,
        backoff_seconds=0.01,
    )
    assert sink.record(FIGURES, log) is False
    assert "Azure Monitor custom metrics unreachable: ConnectError" in log.warnings[0]
    assert log.warnings[0].endswith("(after 2 attempts)")
    log = Log()
    assert LocalMetricsSink().record([Metric("drift_score", float("nan"))], log) is False
    assert log.warnings == ["metric(s) drift_score not sent to local: not a finite number"]


def test_the_retraining_decisions_go_through_the_sink(instance, monitoring, churn, monkeypatch) -> None:
    from mlops_platform.automation import retraining
    from mlops_platform.automation.retraining import build_retraining_sensor

    job = dg.define_asset_job("churn_train", selection=dg.AssetSelection.keys(dg.AssetKey(["churn", "model"])))
    sensor = build_retraining_sensor(churn, job, send_metrics=True)
    sink = monitoring.sink()
    drift = dg.AssetKey(["churn", "drift"])
    now = dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)
    cursor = None
    decisions = []
    for hour in (0, 1):
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=drift,
                check_name="no_drift",
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description="tenure_months drifted",
                metadata={"decision": "error"},
            )
        )
        monkeypatch.setattr(retraining, "utcnow", lambda hour=hour: now + dt.timedelta(hours=hour))
        data = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=cursor, resources={"metrics": sink})
        )
        cursor = data.cursor
        decisions.append(len(data.run_requests or []))
    assert decisions == [1, 0]  # requested, then refused by the cooldown
    labels = [r["body"]["timeSeries"][0]["metric"]["labels"] for r in monitoring.requests]
    assert labels == [
        {"model": "churn", "check": "no_drift", "decision": "requested"},
        {"model": "churn", "check": "no_drift", "decision": "cooldown"},
    ]
    # The sink down: the sensor still decides, the failure is a warning.
    monitoring.status = grpc.StatusCode.UNAVAILABLE
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=drift, check_name="no_drift", passed=False, metadata={"decision": "error"})
    )
    monkeypatch.setattr(retraining, "utcnow", lambda: now + dt.timedelta(hours=30))
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"metrics": sink}))
    assert len(data.run_requests or []) == 1


def test_drift_and_performance_figures_go_through_the_sink(tmp_path, churn, monitoring) -> None:
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        platform = Platform(Settings(home=tmp_path / "home"), instance, specs=[churn])
        platform.resources = {
            **platform.resources,
            "metrics": monitoring.sink(),
        }
        platform.land(churn, days=16, rows=150)
        dg.materialize(
            platform.assets,
            selection=dg.AssetSelection.assets(*(dg.AssetKey(["churn", n]) for n in ("raw", "labels", "features"))),
            resources=platform.resources,
            instance=instance,
            tags={"dagster/asset_partition_range_start": day(0), "dagster/asset_partition_range_end": day(15)},
        )
        platform.train(churn)
        platform.run(churn, ["predictions"], partition_key=day(0))
        platform.run(churn, ["drift", "performance"], partition_key=day(0))
        sent = {
            (s["metric"]["type"].rsplit("/", 1)[1], s["metric"]["labels"].get("column")): s["points"][0]["value"][
                "doubleValue"
            ]
            for r in monitoring.requests
            for s in r["body"]["timeSeries"]
        }
        drift = platform.latest_metadata(churn, "drift", day(0))
        for name in churn.feature_names:
            assert sent[("drift_score", name)] == pytest.approx(drift[f"score_{name}"])
        assert sent[("drifted_columns", None)] == drift["drifted_columns"]
        performance = platform.latest_metadata(churn, "performance", day(0))
        assert sent[("performance_realised", None)] == pytest.approx(performance["realised_roc_auc"])
        assert sent[("performance_estimated", None)] == pytest.approx(performance["estimated_roc_auc"])

        # The service refusing: the monitoring step still succeeds, with a warning in its log.
        monitoring.status = grpc.StatusCode.INTERNAL
        result = platform.run(churn, ["drift"], partition_key=day(0))
        assert result.success
        warnings = [
            e.message
            for e in instance.all_logs(result.run_id)
            if e.level == 30 and "not sent to cloud-monitoring" in (e.message or "")
        ]
        assert warnings and "failed with INTERNAL (HTTP 500): refused (after 4 attempts)" in warnings[0]
