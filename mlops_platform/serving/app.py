"""The serving app: one process, every deployed model by name, the protocols clients already speak.

Routes (``{name}`` is a model spec's name):
  Open Inference Protocol v2  GET /v2/health/live, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready;
                              POST /v2/models/{name}/infer (one tensor per column)
  MLflow scoring format       POST /models/{name}/invocations (dataframe_split, dataframe_records, instances, inputs)
  admin (token required)      PUT/GET/DELETE /admin/models/{name}: swap to a version, describe, stop serving
  single-model mode           SageMaker GET /ping, POST /invocations; Vertex AI AIP_HEALTH_ROUTE/AIP_PREDICT_ROUTE
                              ({"instances"} -> {"predictions"}); Azure ML GET /live, /ready, POST /score
  GET /metrics                Prometheus

Health routes need no token; every other route needs ``Authorization: Bearer <MLOPS_SERVING_TOKEN>``
whenever a token is configured (and one must be when the app binds beyond loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mlops_platform.serving.model import LoadError, ModelSource, ServedModel, build_served
from mlops_platform.serving.schema import InputError, mlflow_columns, v2_columns

access_log = logging.getLogger("mlops_platform.serving.access")
log = logging.getLogger("mlops_platform.serving")

JSON = "application/json"
VERSION_HEADER = "X-Model-Version"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ConfigError(ValueError):
    """A serving configuration the app refuses to start with; the message names the setting."""


@dataclass
class ServeConfig:
    models: dict[str, Any]  # name -> ModelSpec
    token: str | None = None
    host: str = "127.0.0.1"
    max_body_bytes: int = 1_048_576
    max_batch_rows: int = 10_000
    # Where the app remembers what the endpoint assets deployed, so a restart serves the same versions.
    state_file: Path | None = None
    # Single-model mode (the cloud containers): this model, and the version it loads at startup.
    single_model: str | None = None
    single_version: str | None = None
    vertex_health_route: str = "/health"
    vertex_predict_route: str = "/predict"
    # Inside SageMaker, Vertex AI or Azure ML the service authenticates callers (IAM, keys) and only it
    # reaches the container's port; the deployers set MLOPS_SERVING_AUTH=cloud there, nowhere else.
    cloud_auth: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.cloud_auth and self.single_model is None:
            raise ConfigError("MLOPS_SERVING_AUTH=cloud is only for single-model mode inside a cloud service")
        if self.host not in LOOPBACK and not self.token and not self.cloud_auth:
            raise ConfigError(
                f"binding to {self.host!r} (beyond loopback) needs a bearer token: set MLOPS_SERVING_TOKEN"
            )
        if self.token is not None and len(self.token) < 16:
            raise ConfigError("MLOPS_SERVING_TOKEN is shorter than 16 characters")
        if self.max_body_bytes <= 0 or self.max_batch_rows <= 0:
            raise ConfigError("max_body_bytes and max_batch_rows must be positive")
        if self.single_model is not None and self.single_model not in self.models:
            raise ConfigError(f"single-model mode names {self.single_model!r}, which is not a known model spec")


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (two apps in one process stay apart)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlops_serving_requests", "Inference requests.", ["model", "version", "code"], registry=self.registry
        )
        self.errors = Counter(
            "mlops_serving_errors",
            "Inference requests answered 4xx or 5xx.",
            ["model", "version", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlops_serving_request_seconds",
            "Inference request latency, body read to response.",
            ["model", "version"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.served = Gauge(
            "mlops_serving_model_version",
            "The version each model serves (absent: none).",
            ["model"],
            registry=self.registry,
        )
        self.path = Gauge(
            "mlops_serving_inference_path",
            "1 for the inference path the served version uses.",
            ["model", "version", "path"],
            registry=self.registry,
        )
        self.swaps = Counter("mlops_serving_swaps", "Versions swapped in.", ["model"], registry=self.registry)
        self.failed_swaps = Counter(
            "mlops_serving_failed_swaps",
            "Versions that failed to load or warm up; never took traffic.",
            ["model"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class Catalog:
    """The served version of each model. Swaps build a whole new ServedModel and replace the entry in
    one assignment; a request holds the object it looked up, so it finishes on that version."""

    def __init__(self, config: ServeConfig, source: ModelSource, metrics: Metrics):
        self.config, self.source, self.metrics = config, source, metrics
        self.served: dict[str, ServedModel] = {}
        self.failures: dict[str, dict[str, Any]] = {}
        self._locks = {name: threading.Lock() for name in config.models}

    def get(self, name: str) -> ServedModel:
        served = self.served.get(name)
        if served is None:
            if name not in self.config.models:
                raise InputError(f"no model named {name!r}; served: {', '.join(sorted(self.served)) or 'none'}", 404)
            raise InputError(f"model {name!r} has no deployed version yet", 503)
        return served

    def swap(self, name: str, version: str) -> tuple[ServedModel, bool]:
        """Serve ``version`` of ``name``: (served model, whether it changed). Idempotent. LoadError when
        the version fails to load or warm up; the version served before keeps serving."""
        if name not in self.config.models:
            raise InputError(f"no model named {name!r}", 404)
        with self._locks[name]:
            current = self.served.get(name)
            if current is not None and current.version == str(version):
                return current, False
            try:
                new = build_served(name, str(version), self.config.models[name], self.source)
            except Exception as exc:
                self.metrics.failed_swaps.labels(name).inc()
                message = str(exc) if isinstance(exc, LoadError) else f"{type(exc).__name__}: {exc}"
                self.failures[name] = {
                    "version": str(version),
                    "error": message,
                    "at": dt.datetime.now(dt.UTC).isoformat(),
                }
                log.error(
                    "swap of %s to version %s failed; still serving %s: %s",
                    name,
                    version,
                    current.version if current else "nothing",
                    message,
                )
                raise LoadError(message) from exc
            self.served[name] = new
            self.failures.pop(name, None)
            self.metrics.swaps.labels(name).inc()
            self.metrics.served.labels(name).set(_number(new.version))
            if current is not None:
                self.metrics.path.remove(name, current.version, current.path)
            self.metrics.path.labels(name, new.version, new.path).set(1)
            log.info("%s now serves version %s (%s path)", name, new.version, new.path)
            self._save()
            return new, True

    def remove(self, name: str) -> bool:
        with self._locks[name]:
            current = self.served.pop(name, None)
            if current is not None:
                self.metrics.served.remove(name)
                self.metrics.path.remove(name, current.version, current.path)
                self._save()
            return current is not None

    def restore(self) -> None:
        """At startup: the versions the endpoint assets deployed before (state file), or the single model."""
        if self.config.single_model is not None:
            self.swap(self.config.single_model, self.config.single_version or "1")
            return
        path = self.config.state_file
        if path is None or not path.is_file():
            return
        try:
            state = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"serving state file {path} is not valid JSON: {exc}") from exc
        for name, version in sorted(state.get("deployed", {}).items()):
            if name not in self.config.models:
                continue
            # A failure is recorded in failures and metrics; the other models still come up.
            with contextlib.suppress(LoadError):
                self.swap(name, str(version))

    def _save(self) -> None:
        path = self.config.state_file
        if path is None or self.config.single_model is not None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"deployed": {n: m.version for n, m in sorted(self.served.items())}}, indent=1))
        os.replace(tmp, path)

    def describe(self, name: str) -> dict[str, Any]:
        served = self.served.get(name)
        return {
            "model": name,
            "version": served.version if served else None,
            **(served.metadata() if served else {}),
            "last_failed_swap": self.failures.get(name),
        }


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return -1.0


class AccessLog:
    """Pure ASGI middleware: one JSON access-log line and the request metrics per HTTP request."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = [500]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            model, version = state.get("model"), state.get("version") or ""
            code = status[0]
            if model:
                self.metrics.requests.labels(model, version, str(code)).inc()
                self.metrics.latency.labels(model, version).observe(elapsed)
                if code >= 400:
                    self.metrics.errors.labels(model, version, str(code)).inc()
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    orjson.dumps(
                        {
                            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": code,
                            "ms": round(elapsed * 1000, 3),
                            "model": model,
                            "version": version or None,
                            "rows": state.get("rows"),
                            "client": client[0] if client else None,
                            "request_id": state.get("request_id"),
                            **({"error": state["error"]} if "error" in state else {}),
                        }
                    ).decode()
                )


def create_app(config: ServeConfig, source: ModelSource, load_on_startup: bool = True) -> Any:
    """The FastAPI app. ``config.check()`` refuses a configuration that would be unsafe to start."""
    config.check()
    metrics = Metrics()
    catalog = Catalog(config, source, metrics)
    token = config.token.encode() if config.token else None
    ready = threading.Event()

    async def lifespan(app: Any):
        if load_on_startup:
            await asyncio.to_thread(catalog.restore)
        ready.set()
        yield

    app = FastAPI(title="mlops-platform serving", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.catalog = catalog
    app.state.metrics = metrics

    def respond(body: Any, status: int = 200, version: str | None = None) -> Response:
        headers = {VERSION_HEADER: version} if version else None
        return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status, headers, media_type=JSON)

    def error(request: Request, exc: InputError) -> Response:
        request.state.error = exc.message
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return Response(orjson.dumps({"error": exc.message}), exc.status, headers, media_type=JSON)

    def authorize(request: Request, admin: bool = False) -> None:
        if token is None:
            if admin:
                raise InputError("admin routes need MLOPS_SERVING_TOKEN to be set on the server", 403)
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise InputError("missing bearer token: send 'Authorization: Bearer <token>'", 401)
        if not hmac.compare_digest(given.strip().encode(), token):
            raise InputError("wrong bearer token", 401)

    async def read_json(request: Request) -> Any:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != JSON:
            raise InputError(f"content type {content_type or 'none'!r} is not supported; send {JSON}", 415)
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise InputError("Content-Length is not a number", 400) from None
            if size > config.max_body_bytes:
                raise InputError(f"body of {size} bytes is over the limit of {config.max_body_bytes}", 413)
            body = await request.body()
        else:
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > config.max_body_bytes:
                    raise InputError(f"body is over the limit of {config.max_body_bytes} bytes", 413)
                chunks.append(chunk)
            body = b"".join(chunks)
        if len(body) > config.max_body_bytes:
            raise InputError(f"body of {len(body)} bytes is over the limit of {config.max_body_bytes}", 413)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"body is not valid JSON (line {exc.lineno}, column {exc.colno}; NaN and Infinity are not JSON)", 400
            ) from None

    def infer(request: Request, served: ServedModel, columns: dict[str, list[Any]], n: int) -> dict[str, Any]:
        request.state.rows = n
        if n > config.max_batch_rows:
            raise InputError(f"batch of {n} rows is over the limit of {config.max_batch_rows}", 413)
        try:
            return served.predict(columns, n)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the library's message may quote row values: type only
            log.error(
                "model %s version %s failed to score a batch of %d: %s",
                served.name,
                served.version,
                n,
                type(exc).__name__,
            )
            raise InputError(
                f"model {served.name!r} version {served.version} could not score this batch ({type(exc).__name__})",
                500,
            ) from None

    def model_for(request: Request, name: str) -> ServedModel:
        # Metrics are labelled with known model names only: a path name never grows the label set.
        request.state.model = name if name in config.models else None
        served = catalog.get(name)
        request.state.version = served.version
        return served

    def rows_out(served: ServedModel, outputs: dict[str, Any]) -> list[Any]:
        if "probability" in outputs:
            return [
                {"prediction": c, "probability": p}
                for c, p in zip(outputs["prediction"].tolist(), outputs["probability"].tolist(), strict=True)
            ]
        return outputs["prediction"].tolist()

    async def mlflow_route(request: Request, name: str, key: str = "predictions") -> Response:
        try:
            authorize(request)
            served = model_for(request, name)
            body = await read_json(request)
            if key == "predictions" and isinstance(body, dict) and "instances" in body and "parameters" in body:
                body = {"instances": body["instances"]}  # Vertex AI sends parameters next to instances
            columns, n = mlflow_columns(body)
            outputs = infer(request, served, columns, n)
        except InputError as exc:
            return error(request, exc)
        return respond({key: rows_out(served, outputs), "model_version": served.version}, version=served.version)

    # --- Open Inference Protocol v2 ---------------------------------------------------------------

    @app.get("/v2/health/live")
    async def live() -> Response:
        return respond({"live": True})

    @app.get("/v2/health/ready")
    async def v2_ready() -> Response:
        return respond({"ready": ready.is_set()}, 200 if ready.is_set() else 503)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        served = catalog.served.get(name)
        if served is None:
            return respond({"name": name, "ready": False}, 404 if name not in config.models else 503)
        return respond({"name": name, "ready": True}, version=served.version)

    @app.get("/v2/models/{name}")
    async def model_metadata(request: Request, name: str) -> Response:
        try:
            authorize(request)
            served = catalog.get(name)
        except InputError as exc:
            return error(request, exc)
        outputs = [{"name": "prediction", "datatype": "INT64" if served.classifier else "FP64", "shape": [-1]}]
        if served.classifier:
            outputs.append({"name": "probability", "datatype": "FP64", "shape": [-1]})
        return respond(
            {
                "name": name,
                "versions": [served.version],
                "platform": "scikit-learn",
                "inputs": served.features.describe(),
                "outputs": outputs,
                "parameters": {**served.metadata(), "event_inputs": served.events.describe()},
            },
            version=served.version,
        )

    @app.post("/v2/models/{name}/infer")
    async def v2_infer(request: Request, name: str) -> Response:
        try:
            authorize(request)
            served = model_for(request, name)
            body = await read_json(request)
            columns, n = v2_columns(body, served.schema_for)
            outputs = infer(request, served, columns, n)
        except InputError as exc:
            return error(request, exc)
        tensors = [
            {
                "name": "prediction",
                "datatype": "INT64" if served.classifier else "FP64",
                "shape": [n],
                "data": outputs["prediction"],
            }
        ]
        if "probability" in outputs:
            tensors.append({"name": "probability", "datatype": "FP64", "shape": [n], "data": outputs["probability"]})
        request_id = body.get("id") if isinstance(body.get("id"), str) else None
        return respond(
            {
                "model_name": name,
                "model_version": served.version,
                "id": request_id or str(uuid.uuid4()),
                "outputs": tensors,
            },
            version=served.version,
        )

    # --- MLflow scoring format --------------------------------------------------------------------

    @app.post("/models/{name}/invocations")
    async def invocations(request: Request, name: str) -> Response:
        return await mlflow_route(request, name)

    # --- admin: what the local deployer calls -----------------------------------------------------

    @app.put("/admin/models/{name}")
    async def admin_deploy(request: Request, name: str) -> Response:
        try:
            authorize(request, admin=True)
            body = await read_json(request)
            version = body.get("version") if isinstance(body, dict) else None
            if not isinstance(version, str | int) or isinstance(version, bool) or not str(version).strip():
                raise InputError("field 'version': expected a version string")
            try:
                served, changed = await asyncio.to_thread(catalog.swap, name, str(version))
            except LoadError as exc:
                request.state.error = str(exc)
                return respond({"error": str(exc), **catalog.describe(name)}, 422)
        except InputError as exc:
            return error(request, exc)
        return respond({**catalog.describe(name), "changed": changed}, version=served.version)

    @app.get("/admin/models/{name}")
    async def admin_describe(request: Request, name: str) -> Response:
        try:
            authorize(request, admin=True)
            if name not in config.models:
                raise InputError(f"no model named {name!r}", 404)
        except InputError as exc:
            return error(request, exc)
        described = catalog.describe(name)
        return respond(described, version=described["version"])

    @app.delete("/admin/models/{name}")
    async def admin_delete(request: Request, name: str) -> Response:
        try:
            authorize(request, admin=True)
            if name not in config.models:
                raise InputError(f"no model named {name!r}", 404)
        except InputError as exc:
            return error(request, exc)
        removed = await asyncio.to_thread(catalog.remove, name)
        return respond({"model": name, "removed": removed})

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        try:
            authorize(request)
        except InputError as exc:
            return error(request, exc)
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # --- single-model mode: the cloud containers' contracts ---------------------------------------

    single = config.single_model
    if single is not None:

        async def health() -> Response:
            served = catalog.served.get(single)
            return respond({"ready": served is not None}, 200 if served is not None else 503)

        async def predict(request: Request) -> Response:
            return await mlflow_route(request, single)

        async def vertex_predict(request: Request) -> Response:
            return await mlflow_route(request, single, key="predictions")

        app.add_api_route("/ping", health, methods=["GET"])  # SageMaker
        app.add_api_route("/invocations", predict, methods=["POST"])
        app.add_api_route("/live", health, methods=["GET"])  # Azure ML
        app.add_api_route("/ready", health, methods=["GET"])
        app.add_api_route("/score", predict, methods=["POST"])
        if config.vertex_health_route not in ("/ping", "/live", "/ready"):
            app.add_api_route(config.vertex_health_route, health, methods=["GET"])
        if config.vertex_predict_route not in ("/invocations", "/score"):
            app.add_api_route(config.vertex_predict_route, vertex_predict, methods=["POST"])

    return AccessLog(app, metrics)
