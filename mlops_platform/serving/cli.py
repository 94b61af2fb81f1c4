"""``mlops-platform serve``: the serving app under uvicorn.

Multi-model (default): every model spec (or ``--models a,b``), versions from the MLflow registry,
serving what the endpoint assets deployed (remembered in ``$MLOPS_HOME/serving/deployed.json``).
The bearer token is MLOPS_SERVING_TOKEN; on loopback without it, the app generates one in
``$MLOPS_HOME/serving/token`` (which the local deployer reads). Beyond loopback it must be set.
Single-model (``--single-model NAME --model-dir DIR``): the cloud containers' mode, one MLflow model
folder, no registry; SageMaker, Vertex AI (AIP_* variables) and Azure ML (AZUREML_MODEL_DIR) routes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from mlops_platform.serving.token import TOKEN_VAR


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    serve = subparsers.add_parser("serve", help="serve every model's deployed champion over HTTP")
    serve.add_argument("--host", default=os.environ.get("MLOPS_SERVING_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=None, help="default 8080 (AIP_HTTP_PORT when set)")
    serve.add_argument("--models", default=None, help="comma-separated model names (default: every spec)")
    serve.add_argument("--single-model", default=None, help="single-model mode: the spec name of the model folder")
    serve.add_argument("--model-dir", default=None, help="single-model mode: the MLflow model folder")
    serve.add_argument("--model-version", default=None, help="single-model mode: the version the folder holds")
    serve.add_argument("--max-body-bytes", type=int, default=1_048_576)
    serve.add_argument("--max-batch-rows", type=int, default=10_000)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return serve


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("mlops_platform.serving",):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def build_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> tuple[Any, Any]:
    """(ServeConfig, ModelSource) for the parsed arguments; ConfigError/ValueError naming the setting."""
    from mlops_platform.serving.app import LOOPBACK, ConfigError, ServeConfig
    from mlops_platform.serving.model import DirectorySource, RegistrySource
    from mlops_platform.specs import discover_specs

    env = dict(os.environ if environ is None else environ)
    modules = tuple(m.strip() for m in env.get("MLOPS_SPECS", "").split(",") if m.strip())
    specs = {spec.name: spec for spec in discover_specs(modules)}
    token = env.get(TOKEN_VAR) or None
    common = dict(token=token, host=args.host, max_body_bytes=args.max_body_bytes, max_batch_rows=args.max_batch_rows)
    single = args.single_model or env.get("MLOPS_SERVING_MODEL")
    if single:
        model_dir = (
            args.model_dir or env.get("AZUREML_MODEL_DIR") or env.get("MLOPS_SERVING_MODEL_DIR") or "/opt/ml/model"
        )
        path = Path(model_dir)
        if path.is_dir() and not (path / "MLmodel").is_file():
            # Azure ML mounts the registered folder one level down (AZUREML_MODEL_DIR/<name>).
            inner = [p for p in path.iterdir() if (p / "MLmodel").is_file()]
            path = inner[0] if len(inner) == 1 else path
        if single not in specs:
            raise ConfigError(f"--single-model {single!r}: no such model spec; known: {', '.join(sorted(specs))}")
        config = ServeConfig(
            models={single: specs[single]},
            single_model=single,
            single_version=args.model_version or env.get("MLOPS_SERVING_VERSION") or "1",
            vertex_health_route=env.get("AIP_HEALTH_ROUTE", "/health"),
            vertex_predict_route=env.get("AIP_PREDICT_ROUTE", "/predict"),
            cloud_auth=env.get("MLOPS_SERVING_AUTH", "") == "cloud",
            **common,
        )
        return config, DirectorySource(path, extra_trusted_types=specs[single].skops_trusted_types)
    from mlops_platform.settings import Settings

    settings = Settings.from_env(env)
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in names if n not in specs]
        if unknown:
            raise ConfigError(f"--models names unknown model(s) {unknown}; known: {', '.join(sorted(specs))}")
        specs = {n: specs[n] for n in names}
    if token is None and args.host in LOOPBACK:
        from mlops_platform.serving.token import ensure_token, token_file

        common["token"] = ensure_token(token_file(settings.home))
    config = ServeConfig(models=specs, state_file=settings.home / "serving" / "deployed.json", **common)
    return config, RegistrySource(settings.tracking_uri, settings.artifact_root)


def _server_class() -> Any:
    import contextlib
    import signal
    import threading

    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its graceful shutdown (the process then dies by the signal);
        a container runtime reads that as a crash. Here a drained shutdown exits 0."""

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return GracefulServer


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT: stop accepting, finish in-flight requests, exit 0."""
    import uvicorn

    from mlops_platform.serving.app import ConfigError, create_app

    _configure_logging(args.log_level)
    # One worker answers one request at a time: per-request thread pools (OpenMP in HistGradientBoosting,
    # BLAS) cost more to wake than a small batch takes. Read when those libraries load, so set first.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, os.environ.get("MLOPS_SERVING_THREADS", "1"))
    port = args.port if args.port is not None else int(os.environ.get("AIP_HTTP_PORT", "8080"))
    try:
        config, source = build_from_args(args)
        app = create_app(config, source)
    except (ConfigError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = _server_class()(
        uvicorn.Config(
            app,
            host=args.host,
            port=port,
            access_log=False,  # the app writes its own structured line per request
            log_level=args.log_level,
            timeout_graceful_shutdown=30,
            lifespan="on",
        )
    )
    server.run()
    if not server.started:
        print(f"error: the serving app did not start on {args.host}:{port}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m mlops_platform.serving.cli``: the serving image's entry point (no Dagster CLI)."""
    parser = argparse.ArgumentParser(prog="mlops-serve")
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:  # SageMaker starts the container with the argument "serve"
        args = args[1:]
    return run_serve(parser.parse_args(["serve", *args]))


if __name__ == "__main__":
    sys.exit(main())
