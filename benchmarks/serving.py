"""Serving benchmark (run by hand, not a timed test): the platform's serving app against
``mlflow models serve`` and a bare FastAPI handler calling the same pipeline.

For each reference model's champion (both registered in the MLflow store of ``--home``, e.g. after
``make dev`` has promoted them), batch 1 and batch 100, one worker per server: the server is pinned to
core 0 (taskset), wrk to core 1, with bounded load (``--connections``, default 4). The platform app runs
as in production: token auth, validation, metrics and the access log on, through its MLflow route.

Needs wrk (Debian: ``apt-get install -y wrk``) and taskset (util-linux). Usage:
    .venv/bin/python benchmarks/serving.py --home .mlops [--duration 10] [--models churn,delivery_eta]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

TOKEN = "benchmark-token-0123456789"
BARE = textwrap.dedent(
    """
    import sys, orjson, pandas as pd, uvicorn
    from fastapi import FastAPI, Request, Response
    from mlops_platform.serving.model import DirectorySource
    from mlops_platform.specs import get_spec
    spec = get_spec(sys.argv[1])
    pipeline, _ = DirectorySource(sys.argv[2], spec.skops_trusted_types).load(spec.name, "1")
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        frame = pd.DataFrame(orjson.loads(await request.body())["dataframe_records"])[spec.feature_names]
        out = pipeline.predict_proba(frame)[:, 1] if spec.task == "classification" else pipeline.predict(frame)
        return Response(orjson.dumps({"predictions": out.tolist()}), media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not come up within {timeout}s")


def wrk(url: str, body: str, headers: dict[str, str], duration: int, connections: int, tmp: Path) -> dict[str, float]:
    script = tmp / "post.lua"
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(body)}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines.append(
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("P50 %f\\nP99 %f\\nERRORS %d\\n", latency:percentile(50), latency:percentile(99),'
        " summary.errors.status + summary.errors.connect + summary.errors.read"
        " + summary.errors.write + summary.errors.timeout))\n"
        "end"
    )
    script.write_text("\n".join(lines))
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": float(re.search(r"P50 ([\d.]+)", out).group(1)) / 1000,
        "p99_ms": float(re.search(r"P99 ([\d.]+)", out).group(1)) / 1000,
        "errors": int(re.search(r"ERRORS (\d+)", out).group(1)),
    }


def predict_ms(pipeline, spec, rows) -> float:
    import pandas as pd

    frame = pd.DataFrame(rows)[spec.feature_names]
    fn = pipeline.predict_proba if spec.task == "classification" else pipeline.predict
    times = []
    for _ in range(50):
        started = time.perf_counter()
        fn(frame)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def served_ms(served, rows) -> float:
    """The platform path's own predict time (validation + compiled preprocessing + estimator)."""
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    times = []
    for _ in range(200):
        started = time.perf_counter()
        served.predict(columns, len(rows))
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, type=Path, help="MLOPS_HOME holding the MLflow store")
    parser.add_argument("--models", default="churn,delivery_eta")
    parser.add_argument("--version", default="1")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batches", default="1,100")
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is not installed (Debian: apt-get install -y {'wrk' if tool == 'wrk' else 'util-linux'})"
            )
    import mlflow
    from mlflow.artifacts import download_artifacts

    from mlops_platform.serving.model import DirectorySource
    from mlops_platform.specs import get_spec

    tracking = f"sqlite:///{args.home.resolve() / 'mlflow' / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "MLOPS_HOME": str(args.home.resolve()),
        # mlflow models serve execs "uvicorn" by name: the interpreter's own bin folder comes first.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp_name:
        tmp = Path(tmp_name)
        for name in args.models.split(","):
            spec = get_spec(name)
            model_dir = download_artifacts(f"models:/{name}/{args.version}", dst_path=str(tmp / name))
            pipeline, _ = DirectorySource(Path(model_dir), spec.skops_trusted_types).load(name, args.version)
            from mlops_platform.serving.model import build_served

            served = build_served(name, args.version, spec, DirectorySource(Path(model_dir), spec.skops_trusted_types))
            example = json.loads((Path(model_dir) / "input_example.json").read_text())
            records = [dict(zip(example["columns"], row, strict=True)) for row in example["data"]]
            servers = {
                "platform": [
                    sys.executable,
                    "-m",
                    "mlops_platform.serving.cli",
                    "--single-model",
                    name,
                    "--model-dir",
                    model_dir,
                    "--model-version",
                    args.version,
                    "--log-level",
                    "warning",
                ],
                "bare_fastapi": [sys.executable, "-c", BARE, name, model_dir],
            }
            if not args.skip_mlflow:
                servers["mlflow_serve"] = [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    f"models:/{name}/{args.version}",
                    "--env-manager",
                    "local",
                    "-w",
                    "1",
                    "-h",
                    "127.0.0.1",
                ]
            for server, command in servers.items():
                port = free_port()
                full = ["taskset", "-c", "0", *command]
                if server == "platform":
                    full += ["--port", str(port)]
                elif server == "bare_fastapi":
                    full += [str(port)]
                else:
                    full += ["-p", str(port)]
                log = (tmp / f"{name}-{server}.log").open("wb")
                process = subprocess.Popen(full, env={**env, "MLOPS_SERVING_TOKEN": TOKEN}, stdout=log, stderr=log)
                try:
                    health = {"platform": "/ping", "bare_fastapi": "/docs", "mlflow_serve": "/ping"}[server]
                    wait_up(f"http://127.0.0.1:{port}{health}", process)
                    for batch in [int(b) for b in args.batches.split(",")]:
                        rows = [records[i % len(records)] for i in range(batch)]
                        body = json.dumps({"dataframe_records": rows})
                        headers = {"Authorization": f"Bearer {TOKEN}"} if server == "platform" else {}
                        url = f"http://127.0.0.1:{port}/invocations"
                        check = httpx.post(
                            url, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=60
                        )
                        if check.status_code != 200:
                            raise SystemExit(f"{server} answered {check.status_code}: {check.text[:300]}")
                        measured = wrk(url, body, headers, args.duration, args.connections, tmp)
                        own = served_ms(served, rows) if server == "platform" else predict_ms(pipeline, spec, rows)
                        results.append(
                            {
                                "model": name,
                                "server": server,
                                "batch": batch,
                                **measured,
                                "own_predict_ms": round(own, 3),
                                "overhead_p50_ms": round(measured["p50_ms"] - own, 3),
                            }
                        )
                        print(json.dumps(results[-1]), flush=True)
                finally:
                    process.terminate()
                    process.wait(timeout=60)
    print("\nmodel          server         batch   req/s    p50 ms   p99 ms   predict ms  overhead p50 ms  errors")
    for r in results:
        print(
            f"{r['model']:<14} {r['server']:<14} {r['batch']:>5} {r['rps']:>8.1f} {r['p50_ms']:>8.2f}"
            f" {r['p99_ms']:>8.2f}"
            f" {r['own_predict_ms']:>11.2f} {r['overhead_p50_ms']:>16.2f} {r['errors']:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
