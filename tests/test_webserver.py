"""Smoke test: `dagster dev` starts the webserver and daemon, and the GraphQL API shows the platform."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ASSET_QUERY = "{ assetNodes { assetKey { path } groupName } }"
REPO_QUERY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  name sensors { name sensorState { status } } schedules { name scheduleState { status } } } } } }"""
DAEMON_QUERY = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def dagster_dev(tmp_path):
    port = _free_port()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "MLOPS_HOME": str(tmp_path / "home")}
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen(
        [str(dagster), "dev", "-m", "mlops_platform.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise AssertionError(f"dagster dev exited with {process.returncode}")
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("dagster dev did not answer within 180 s")
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_webserver_and_daemon_serve_the_platform(dagster_dev) -> None:
    nodes = _graphql(dagster_dev, ASSET_QUERY)["assetNodes"]
    keys = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
    for spec in ("churn", "delivery_eta"):
        for name in ("raw", "labels", "features", "training_set", "model", "evaluation", "champion", "predictions"):
            assert keys[f"{spec}/{name}"] == spec

    repository = _graphql(dagster_dev, REPO_QUERY)["repositoriesOrError"]["nodes"][0]
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert sensors == {
        "churn_landing_sensor": "RUNNING",
        "delivery_eta_landing_sensor": "RUNNING",
        "churn_retraining": "RUNNING",
        "delivery_eta_retraining": "RUNNING",
        "mlops_automation": "RUNNING",
        "mlops_training": "RUNNING",
        "mlops_alert_run_failures": "RUNNING",
        "mlops_alert_checks": "RUNNING",
        "mlops_alert_freshness": "RUNNING",
    }
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    assert schedules == {
        "churn_daily_ingest": "RUNNING",
        "delivery_eta_daily_ingest": "RUNNING",
        "lake_maintenance_weekly": "RUNNING",
    }

    deadline = time.monotonic() + 120
    while True:
        statuses = _graphql(dagster_dev, DAEMON_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
        unhealthy = [s["daemonType"] for s in statuses if s["required"] and not s["healthy"]]
        if not unhealthy:
            break
        assert time.monotonic() < deadline, f"daemons not healthy: {unhealthy}"
        time.sleep(2)
    assert {"SENSOR", "SCHEDULER", "ASSET"} <= {s["daemonType"] for s in statuses if s["required"]}
