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

The inference routes (the POSTs above that score a batch) are answered by ``ServingApp`` itself, in
front of FastAPI: the same token check, body limits, validation, metrics and access log, without
FastAPI's routing over every route, its middleware stack, dependency solving and Request/Response
objects, which cost more per request than a one-row prediction (benchmarks/README.md, serving).
Everything else (health, metadata, admin, /metrics) goes through FastAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
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
    # BLAS/OpenMP threads a prediction may use: at most this many, and never more than the CPUs this
    # process may run on (os.sched_getaffinity). None: that CPU count only. Applied once at startup.
    threads: int | None = None
    # Freeze the heap once startup has loaded the served versions (see create_app's lifespan).
    freeze_heap: bool = True
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
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads <= 0):
            raise ConfigError(f"threads must be a positive number of threads, not {self.threads!r}")
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
        # (model, version, code) -> that label set's children: labels() takes a lock and builds a key
        # per call; the label sets are bounded (known models x served versions x status codes).
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def observe(self, model: str, version: str, code: int, seconds: float) -> None:
        """One inference request: counted, timed, and counted as an error when 4xx or 5xx."""
        key = (model, version, code)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(model, version, str(code)),
                self.latency.labels(model, version),
                self.errors.labels(model, version, str(code)) if code >= 400 else None,
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if children[2] is not None:
            children[2].inc()

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


class ClientGone(Exception):
    """The client disconnected before its request body arrived: nothing to answer."""


def limit_threads(cap: int | None) -> Any:
    """Cap the BLAS and OpenMP pools at the CPUs this process may run on (os.sched_getaffinity) and at
    ``cap``, never raising them; the limiter (to restore at shutdown), or None when nothing was over.

    A single-worker server predicts one batch at a time, so threads beyond its CPUs only contend (an
    unpinned HistGradientBoosting predict with 2 OpenMP threads on a busy 2-core machine: p50 1.9 ms,
    p99 1.7 s; with 1: 1.3 / 2.2 ms). A threadpoolctl limit costs 3 to 4 ms a call (it walks the
    loaded libraries), more than a prediction, so it is applied once at startup, never per request.
    OpenMP's limit holds for the calling thread: call it on the thread that predicts (the event loop's).
    """
    from threadpoolctl import ThreadpoolController

    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cap is not None:
        allowed = min(allowed, cap)
    controller = ThreadpoolController()
    over = [lib.filepath for lib in controller.lib_controllers if lib.num_threads > allowed]
    if not over:
        return None
    limiter = controller.select(filepath=over).limit(limits=allowed)
    log.info("BLAS/OpenMP pools limited to %d thread(s)", allowed)
    return limiter


def _route_path(scope: dict) -> str:
    """The path the routes match: without the app's root path, as Starlette matches it."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


_WANTED_HEADERS = (b"authorization", b"content-type", b"content-length")


def _headers(scope: dict) -> dict[bytes, str]:
    """The three request headers the inference path reads (the first of each, as Starlette's get)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def _send_json(send: Callable, status: int, content: bytes, version: str | None = None) -> int:
    headers = [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")]
    if version:
        headers.append((b"x-model-version", version.encode("latin-1")))
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    elif status == 405:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
    return status


Handler = Callable[[dict, Callable, Callable, dict, str], Any]


class ServingApp:
    """The ASGI app: inference routes answered here, every other request by the FastAPI app (``app``);
    one structured access-log line and the request metrics per HTTP request either way."""

    def __init__(self, app: Any, metrics: Metrics, route: Callable[[str, str], tuple[Handler, str] | None]):
        self.app, self.metrics, self._route = app, metrics, route

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = [500]
        try:
            route = self._route(scope["method"], _route_path(scope))
            if route is not None:
                handler, name = route
                status[0] = await handler(scope, receive, send, state, name)
            else:

                async def send_wrapper(message: dict) -> None:
                    if message["type"] == "http.response.start":
                        status[0] = message["status"]
                    await send(message)

                await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, state, status[0], time.perf_counter() - started)

    def _record(self, scope: dict, state: dict, code: int, elapsed: float) -> None:
        model, version = state.get("model"), state.get("version") or ""
        if model:
            self.metrics.observe(model, version, code, elapsed)
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
    """The ASGI app. ``config.check()`` refuses a configuration that would be unsafe to start."""
    config.check()
    metrics = Metrics()
    catalog = Catalog(config, source, metrics)
    token = config.token.encode() if config.token else None
    ready = threading.Event()

    async def lifespan(app: Any):
        # Here, on the event loop's thread: the thread every prediction runs on.
        limiter = limit_threads(config.threads)
        if load_on_startup:
            await asyncio.to_thread(catalog.restore)
        if config.freeze_heap:
            # What startup loaded (libraries, the served versions) lives as long as the process. Frozen,
            # it is out of the cyclic collector's sight, so a full collection, which stops every request,
            # scans only what came after: 120 to 215 ms for a churn server's 186,000 objects on a busy
            # machine before, 0 after. Loaded models hold no reference cycles, so a version swapped out
            # later is still freed by reference counting.
            gc.collect()
            gc.freeze()
        ready.set()
        try:
            yield
        finally:
            if limiter is not None:
                limiter.restore_original_limits()

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

    def check_token(header: str, admin: bool = False) -> None:
        if token is None:
            if admin:
                raise InputError("admin routes need MLOPS_SERVING_TOKEN to be set on the server", 403)
            return
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise InputError("missing bearer token: send 'Authorization: Bearer <token>'", 401)
        if not hmac.compare_digest(given.strip().encode(), token):
            raise InputError("wrong bearer token", 401)

    def authorize(request: Request, admin: bool = False) -> None:
        check_token(request.headers.get("authorization", ""), admin)

    async def read_body(content_type: str, declared: str | None, receive: Callable) -> Any:
        """The JSON body: 415 for another content type, 413 over the limit (before reading it
        whole when Content-Length says so), 400 for a body that is not JSON."""
        if content_type.split(";", 1)[0].strip().lower() != JSON:
            raise InputError(f"content type {content_type or 'none'!r} is not supported; send {JSON}", 415)
        limit = config.max_body_bytes
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise InputError("Content-Length is not a number", 400) from None
            if size > limit:
                raise InputError(f"body of {size} bytes is over the limit of {limit}", 413)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise InputError(f"body is over the limit of {limit} bytes", 413)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            return orjson.loads(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"body is not valid JSON (line {exc.lineno}, column {exc.colno}; NaN and Infinity are not JSON)", 400
            ) from None

    async def read_json(request: Request) -> Any:
        headers = request.headers
        return await read_body(headers.get("content-type", ""), headers.get("content-length"), request.receive)

    def infer(state: dict, served: ServedModel, columns: dict[str, list[Any]], n: int) -> dict[str, Any]:
        state["rows"] = n
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

    def model_for(state: dict, name: str) -> ServedModel:
        # Metrics are labelled with known model names only: a path name never grows the label set.
        state["model"] = name if name in config.models else None
        served = catalog.get(name)
        state["version"] = served.version
        return served

    def rows_out(outputs: dict[str, Any]) -> list[Any]:
        if "probability" in outputs:
            return [
                {"prediction": c, "probability": p}
                for c, p in zip(outputs["prediction"].tolist(), outputs["probability"].tolist(), strict=True)
            ]
        return outputs["prediction"].tolist()

    def mlflow_payload(state: dict, served: ServedModel, body: Any) -> dict[str, Any]:
        if isinstance(body, dict) and "instances" in body and "parameters" in body:
            body = {"instances": body["instances"]}  # Vertex AI sends parameters next to instances
        columns, n = mlflow_columns(body)
        outputs = infer(state, served, columns, n)
        return {"predictions": rows_out(outputs), "model_version": served.version}

    def v2_payload(state: dict, served: ServedModel, body: Any) -> dict[str, Any]:
        columns, n = v2_columns(body, served.schema_for)
        outputs = infer(state, served, columns, n)
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
        return {
            "model_name": served.name,
            "model_version": served.version,
            "id": request_id or str(uuid.uuid4()),
            "outputs": tensors,
        }

    def inference(payload: Callable[[dict, ServedModel, Any], dict[str, Any]]) -> Handler:
        async def handle(scope: dict, receive: Callable, send: Callable, state: dict, name: str) -> int:
            if scope["method"] != "POST":
                message = f"method {scope['method']} is not allowed here; send POST"
                return await _send_json(send, 405, orjson.dumps({"error": message}))
            try:
                headers = _headers(scope)
                check_token(headers.get(b"authorization", ""))
                served = model_for(state, name)
                body = await read_body(headers.get(b"content-type", ""), headers.get(b"content-length"), receive)
                content = orjson.dumps(payload(state, served, body), option=orjson.OPT_SERIALIZE_NUMPY)
            except InputError as exc:
                state["error"] = exc.message
                return await _send_json(send, exc.status, orjson.dumps({"error": exc.message}))
            except ClientGone:
                return 499  # the client's own closed-request status (nginx's): nothing was sent
            except Exception as exc:  # a bug: answered 500, logged with its traceback
                log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
                state["error"] = f"internal error ({type(exc).__name__})"
                return await _send_json(send, 500, orjson.dumps({"error": state["error"]}))
            return await _send_json(send, 200, content, served.version)

        return handle

    mlflow_handler, v2_handler = inference(mlflow_payload), inference(v2_payload)
    single = config.single_model
    # Single-model mode: SageMaker /invocations, Azure ML /score, Vertex AI's AIP_PREDICT_ROUTE.
    single_routes = {} if single is None else dict.fromkeys(("/invocations", "/score", config.vertex_predict_route))
    # Paths FastAPI also serves (for GET): another method there is FastAPI's to answer.
    fastapi_paths = set() if single is None else {"/ping", "/live", "/ready", config.vertex_health_route}

    def route(method: str, path: str) -> tuple[Handler, str] | None:
        # The patterns before the single-model routes, in FastAPI's order of registration.
        if path.startswith("/models/") and path.endswith("/invocations"):
            name = path[len("/models/") : -len("/invocations")]
            if name and "/" not in name:
                return mlflow_handler, name
        if path.startswith("/v2/models/") and path.endswith("/infer"):
            name = path[len("/v2/models/") : -len("/infer")]
            if name and "/" not in name:
                return v2_handler, name
        if single is not None and path in single_routes and (method == "POST" or path not in fastapi_paths):
            return mlflow_handler, single
        return None

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

    # POST /v2/models/{name}/infer, POST /models/{name}/invocations and the single-model predict
    # routes: answered by ServingApp in front of FastAPI (``route`` above).

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

    if single is not None:

        async def health() -> Response:
            served = catalog.served.get(single)
            return respond({"ready": served is not None}, 200 if served is not None else 503)

        app.add_api_route("/ping", health, methods=["GET"])  # SageMaker
        app.add_api_route("/live", health, methods=["GET"])  # Azure ML
        app.add_api_route("/ready", health, methods=["GET"])
        if config.vertex_health_route not in ("/ping", "/live", "/ready"):
            app.add_api_route(config.vertex_health_route, health, methods=["GET"])

    return ServingApp(app, metrics, route)
