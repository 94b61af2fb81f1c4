"""Single-model mode, as the cloud containers run it: a subprocess serving one MLflow model folder with
SageMaker, Vertex AI and Azure ML routes; SIGTERM under load; and the signature as the data lands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import httpx
import pytest

from tests.serving.conftest import TOKEN, free_port, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def model_dir(models, tmp_path_factory):
    from mlflow.artifacts import download_artifacts

    models.registry._mlflow()
    return download_artifacts("models:/churn/1", dst_path=str(tmp_path_factory.mktemp("model")))


def _start(model_dir, tmp_path, port):
    env = {
        **os.environ,
        "MLOPS_SERVING_TOKEN": TOKEN,
        "AIP_HEALTH_ROUTE": "/vertex/health",
        "AIP_PREDICT_ROUTE": "/vertex/predict",
        "AIP_HTTP_PORT": str(port),
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops_platform.serving.cli",
            "--single-model",
            "churn",
            "--model-dir",
            str(model_dir),
            "--model-version",
            "1",
            "--host",
            "127.0.0.1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def up():
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=120, what="the single-model server")
    return process


def test_cloud_container_routes_then_sigterm_under_load_exits_zero(model_dir, churn, tmp_path) -> None:
    port = free_port()
    process = _start(model_dir, tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    row = {name: None for name in churn.feature_names}
    try:
        assert httpx.get(f"{url}/vertex/health").status_code == 200
        assert httpx.get(f"{url}/live").status_code == 200 and httpx.get(f"{url}/ready").status_code == 200
        sagemaker = httpx.post(f"{url}/invocations", json={"dataframe_records": [row]}, headers=AUTH)
        assert sagemaker.status_code == 200 and sagemaker.headers["X-Model-Version"] == "1"
        vertex = httpx.post(f"{url}/vertex/predict", json={"instances": [row, row], "parameters": {}}, headers=AUTH)
        assert vertex.status_code == 200 and len(vertex.json()["predictions"]) == 2
        assert httpx.post(f"{url}/score", json={"instances": [row]}, headers=AUTH).status_code == 200
        assert httpx.post(f"{url}/invocations", json={"instances": [row]}).status_code == 401

        results: list[object] = []
        started = threading.Event()

        def load():
            with httpx.Client(headers=AUTH, timeout=30) as client:
                while True:
                    try:
                        response = client.post(f"{url}/invocations", json={"instances": [row] * 50})
                    except httpx.TransportError as exc:  # the server stopped accepting: the load ends
                        results.append(type(exc).__name__)
                        return
                    results.append(response.status_code)
                    started.set()

        workers = [threading.Thread(target=load) for _ in range(3)]
        for worker in workers:
            worker.start()
        started.wait(30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        for worker in workers:
            worker.join(timeout=60)
        statuses = [r for r in results if isinstance(r, int)]
        assert statuses and set(statuses) == {200}, results
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "serve.log").read_text()
    assert '"path": "/invocations"' in log or '"path":"/invocations"' in log


def test_binding_beyond_loopback_without_a_token_refuses_to_start(model_dir, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_SERVING_TOKEN"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_platform.serving.cli",
            "--single-model",
            "churn",
            "--model-dir",
            str(model_dir),
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "MLOPS_SERVING_TOKEN" in done.stderr


def test_a_standard_mlflow_client_scores_rows_typed_as_landed(models, churn) -> None:
    """The signature records landed int64 columns as long, so MLflow's own pyfunc accepts landed rows."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.models.utils import _enforce_schema

    models.registry._mlflow()
    events = models.events["churn"].head(4)
    from mlops_platform.ml.features import compute_features

    features = compute_features(events, churn)[churn.feature_names]
    landed = features.copy()
    for name in ("tenure_months", "support_calls_30d", "days_since_last_login"):
        landed[name] = events[name].to_numpy()  # int64, as landed
    assert str(landed["tenure_months"].dtype) == "int64"
    # The bug: an input example taken from the float feature table records double, which refuses int64.
    float_signature = infer_signature(features, [[0.5, 0.5]] * len(features))
    with pytest.raises(Exception, match=r"tenure_months|int64"):
        _enforce_schema(landed, float_signature.inputs)
    # The fix (serving.signature.landed_input_example, used when logging these versions): long columns.
    model = mlflow.pyfunc.load_model("models:/churn/1")
    inputs = {c["name"]: c["type"] for c in json.loads(model.metadata.signature.inputs.to_json())}
    assert inputs["tenure_months"] == "long" and inputs["monthly_charges"] == "double"
    scored = model.predict(landed)
    expected = models.pipelines[("churn", "1")].predict_proba(features)
    assert abs(scored - expected).max() <= 1e-9
