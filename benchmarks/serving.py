"""Serving benchmark (run by hand, not a timed test): the platform's serving app against
``mlflow models serve`` and a bare FastAPI handler calling the same pipeline.

For each reference model's champion (both registered in the MLflow store of ``--home``, e.g. after
``make dev`` has promoted them), batch 1 and batch 100, one worker per server: the server is pinned to
core 0 (taskset), wrk to core 1. The platform app runs as in production: token auth, validation,
metrics and the structured access log on (``--log-level info``, written to a file), through its
SageMaker ``/invocations`` route (the MLflow scoring format). All servers of a model run at once (idle
ones sleep) and each cell is measured in ``--rounds`` rounds (default 3) of ``--duration`` seconds
that visit the servers in turn, so the servers compared share the same minutes of a drifting load;
the table gives the medians, the JSON lines every round with the load average before and after it.
``--nice -10`` (root) runs the servers and wrk ahead of other work on a shared machine: it then
measures the servers rather than the scheduler; say so when quoting such figures.

Bounded load: a closed loop of ``--connections`` (default 2) connections, each sending its next request
when its answer arrives. A one-worker server answers one request at a time, so every connection beyond
the one being served waits in its queue: with c connections the latency is about c times the service
time, and p99 measures queueing, not serving. One connection leaves the server idle while each answer
travels back and the next request comes; two keep it busy with at most one request waiting, so
throughput is the server's and p50 about twice its service time. Measured on the churn platform
server (2026-12-02, load 8): 1, 2, 3, 4, 8 connections gave 1,517 / 2,101 / 1,686 / 1,647 / 2,041
req/s at p50 0.30 / 0.47 / 0.92 / 1.44 / 3.28 ms. Every server gets the same load.

"own predict ms" is the model's own in-process time on that batch (pinned to core 0 and to one
BLAS/OpenMP thread, as the servers run): for the platform its request path after JSON parsing
(validation, compiled preprocessing, estimator), for the others the pipeline's predict on a pandas
frame. "CPU ms" is the CPU time (user + system, from /proc, the server's process tree) per request
answered: unlike req/s it hardly moves with the machine's load, so its ratios are the steadier
measure of what each server costs. "overhead ms" is CPU ms minus own predict ms: what serving adds.
"uvicorn_floor" is uvicorn answering a constant (no framework, no model) under the same load: its
p99 is what scheduling on a shared machine costs by itself, below which no server's p99 can be read.

Getting champions into a home without touching yours: ``MLOPS_HOME=$(mktemp -d)``, then land data with
``mlops-platform simulate --model churn --days 20`` (and ``--model delivery_eta --days 5``) and
materialize each family once (raw, labels and features over the landed days, then training_set,
model, evaluation and champion) in the Dagster UI or with ``dagster asset materialize``; pass that
folder as ``--home``.

Needs wrk (Debian: ``apt-get install -y wrk``) and taskset (util-linux). Usage:
    .venv/bin/python benchmarks/serving.py --home .mlops [--duration 5] [--rounds 3] [--models churn,delivery_eta]
"""

from __future__ import annotations

import argparse
import json
import math
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

# The machine's floor: uvicorn answering a constant, no framework, no model. Its p99 under the same
# load is what scheduling alone costs; a server's p99 cannot be read below it.
FLOOR = textwrap.dedent(
    """
    import sys, uvicorn

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off")
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


def wrk(
    url: str, body: str, headers: dict[str, str], duration: int, connections: int, tmp: Path, nice: int = 0
) -> dict[str, float]:
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
    command = ["nice", "-n", str(nice), "taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    out = subprocess.run(
        [*command, "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": float(re.search(r"P50 ([\d.]+)", out).group(1)) / 1000,
        "p99_ms": float(re.search(r"P99 ([\d.]+)", out).group(1)) / 1000,
        "errors": int(re.search(r"ERRORS (\d+)", out).group(1)),
    }


def _median_ms(fn, repeat: int) -> float:
    """Median time of ``fn`` on core 0 with one BLAS/OpenMP thread, as the servers run it."""
    from threadpoolctl import threadpool_limits

    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        with threadpool_limits(1):
            fn()
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                fn()
                times.append(time.perf_counter() - started)
    finally:
        os.sched_setaffinity(0, affinity)
    return statistics.median(times) * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants so far, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += table.get(current, (0, 0))[1]
        todo += [child for child, (parent, _) in table.items() if parent == current]
    return total / tick


def predict_ms(pipeline, spec, rows) -> float:
    """The baselines' own predict: the pipeline on a pandas frame."""
    import pandas as pd

    frame = pd.DataFrame(rows)[spec.feature_names]
    fn = pipeline.predict_proba if spec.task == "classification" else pipeline.predict
    return _median_ms(lambda: fn(frame), 50)


def served_ms(served, rows) -> float:
    """The platform path's own predict time (validation + compiled preprocessing + estimator)."""
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    return _median_ms(lambda: served.predict(columns, len(rows)), 300)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, type=Path, help="MLOPS_HOME holding the MLflow store")
    parser.add_argument("--models", default="churn,delivery_eta")
    parser.add_argument("--version", default="1")
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per server per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the servers; figures are medians")
    parser.add_argument("--connections", type=int, default=2, help="closed-loop connections (see above)")
    parser.add_argument("--batches", default="1,100")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--nice", type=int, default=0, help="nice value of the servers and wrk (negative: root)")
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
    started_load = load_average()
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
                    "info",
                ],
                "bare_fastapi": [sys.executable, "-c", BARE, name, model_dir],
                "uvicorn_floor": [sys.executable, "-c", FLOOR],
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
            # Every server up at once (idle ones sleep), then the cells in rounds, each round visiting
            # every server in turn: the load of a shared machine drifts over minutes, and interleaving
            # puts the servers being compared into the same minutes.
            processes, ports = {}, {}
            try:
                for server, command in servers.items():
                    ports[server] = port = free_port()
                    full = ["nice", "-n", str(args.nice), "taskset", "-c", "0", *command]
                    if server == "platform":
                        full += ["--port", str(port)]
                    elif server in ("bare_fastapi", "uvicorn_floor"):
                        full += [str(port)]
                    else:
                        full += ["-p", str(port)]
                    log = (tmp / f"{name}-{server}.log").open("wb")
                    env_server = {**env, "MLOPS_SERVING_TOKEN": TOKEN}
                    processes[server] = subprocess.Popen(full, env=env_server, stdout=log, stderr=log)
                for server, process in processes.items():
                    health = {"platform": "/ping", "bare_fastapi": "/docs", "mlflow_serve": "/ping"}.get(server, "/")
                    wait_up(f"http://127.0.0.1:{ports[server]}{health}", process)
                for batch in [int(b) for b in args.batches.split(",")]:
                    rows = [records[i % len(records)] for i in range(batch)]
                    body = json.dumps({"dataframe_records": rows})
                    rounds: dict[str, list[dict]] = {server: [] for server in servers}
                    for _ in range(args.rounds):
                        for server in servers:
                            headers = {"Authorization": f"Bearer {TOKEN}"} if server == "platform" else {}
                            url = f"http://127.0.0.1:{ports[server]}/invocations"
                            check = httpx.post(
                                url, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=60
                            )
                            if check.status_code != 200:
                                raise SystemExit(f"{server} answered {check.status_code}: {check.text[:300]}")
                            load_before, cpu_before = load_average(), cpu_seconds(processes[server].pid)
                            measured = wrk(url, body, headers, args.duration, args.connections, tmp, args.nice)
                            cpu = cpu_seconds(processes[server].pid) - cpu_before
                            cpu_ms = 1000 * cpu / measured["requests"] if measured["requests"] else math.inf
                            rounds[server].append({**measured, "cpu_ms": cpu_ms, "load": [load_before, load_average()]})
                    for server, measured in rounds.items():
                        if server == "platform":
                            own = served_ms(served, rows)
                        elif server == "uvicorn_floor":
                            own = 0.0
                        else:
                            own = predict_ms(pipeline, spec, rows)
                        cpu_ms = statistics.median(m["cpu_ms"] for m in measured)
                        results.append(
                            {
                                "model": name,
                                "server": server,
                                "batch": batch,
                                "rps": statistics.median(m["rps"] for m in measured),
                                "p50_ms": statistics.median(m["p50_ms"] for m in measured),
                                "p99_ms": statistics.median(m["p99_ms"] for m in measured),
                                "errors": sum(m["errors"] for m in measured),
                                "own_predict_ms": round(own, 3),
                                "cpu_ms": round(cpu_ms, 3),
                                "overhead_ms": round(cpu_ms - own, 3),
                                "rounds": measured,
                            }
                        )
                        print(json.dumps(results[-1]), flush=True)
            finally:
                for process in processes.values():
                    process.terminate()
                for process in processes.values():
                    process.wait(timeout=60)
    print(f"\nload average (1 min): {started_load} at the start, {load_average()} at the end")
    print(
        f"{args.connections} connections, medians of {args.rounds} interleaved rounds of {args.duration} s,"
        f" nice {args.nice}"
    )
    print("ms per request: p50, p99, own predict, server CPU (of its process tree), overhead (CPU - own predict)")
    print("model          server         batch    req/s      p50      p99  own predict        CPU   overhead  errors")
    for r in results:
        print(
            f"{r['model']:<14} {r['server']:<14} {r['batch']:>5} {r['rps']:>8.1f} {r['p50_ms']:>8.2f}"
            f" {r['p99_ms']:>8.2f} {r['own_predict_ms']:>12.3f} {r['cpu_ms']:>10.3f} {r['overhead_ms']:>10.3f}"
            f" {r['errors']:>7}"
        )
    print("\nagainst the goals (batch 1: >= 10x bare, >= 15x mlflow serve, p99 <= 10 ms; batch 100: >= 5x bare)")
    cells = {(r["model"], r["server"], r["batch"]): r for r in results}
    for (name, server, batch), ours in cells.items():
        if server != "platform":
            continue
        bare, serve = cells.get((name, "bare_fastapi", batch)), cells.get((name, "mlflow_serve", batch))
        parts = [f"{name} batch {batch}:"]
        if bare:
            goal = 10 if batch == 1 else 5
            ratio = ours["rps"] / bare["rps"]
            parts.append(f"{ratio:.1f}x bare ({'met' if ratio >= goal else 'NOT met'}, goal {goal}x;")
            parts.append(f"CPU per request {bare['cpu_ms'] / ours['cpu_ms']:.1f}x less)")
        if serve:
            ratio = ours["rps"] / serve["rps"]
            verdict = f"{'met' if ratio >= 15 else 'NOT met'}, goal 15x; " if batch == 1 else ""
            less = serve["cpu_ms"] / ours["cpu_ms"]
            parts.append(f"{ratio:.1f}x mlflow serve ({verdict}CPU per request {less:.1f}x less)")
        if batch == 1:
            parts.append(f"p99 {ours['p99_ms']:.2f} ms ({'met' if ours['p99_ms'] <= 10 else 'NOT met'}, goal 10 ms)")
        print(" ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
