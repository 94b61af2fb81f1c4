"""``mlops-platform serve`` as ``make dev`` starts it: no settings but the home; the token it generates
guards every route but health, the local deployer of the same home finds it, and SIGTERM exits 0."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import httpx

from mlops_platform.serving.deployers.local import LocalDeployer
from mlops_platform.serving.token import token_file
from mlops_platform.settings import Settings
from tests.serving.conftest import free_port, wait_for


def _env(models, home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_SERVING_TOKEN"}
    return {
        **env,
        "MLOPS_HOME": str(home),
        "MLOPS_MLFLOW_TRACKING_URI": models.registry.tracking_uri,
        "MLOPS_MLFLOW_ARTIFACT_ROOT": models.registry.artifact_root,
    }


def test_serve_generates_a_private_token_the_local_deployer_uses(models, churn, tmp_path) -> None:
    home, port = tmp_path / "home", free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_platform", "serve", "--port", str(port), "--models", "churn"],
        env=_env(models, home),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def up() -> bool:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=120, what="mlops-platform serve")
        path = token_file(home)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert httpx.put(f"{url}/admin/models/churn", json={"version": "1"}).status_code == 401
        deployer = Settings.from_env(_env(models, home)).cloud.deployer()
        assert isinstance(deployer, LocalDeployer) and deployer.token is None
        deployer = LocalDeployer(url=url, token_file=deployer.token_file)
        assert deployer.deploy("churn", "1").version == "1"
        token = path.read_text().strip()
        row = {"dataframe_records": [dict.fromkeys(churn.feature_names)]}
        assert httpx.post(f"{url}/models/churn/invocations", json=row).status_code == 401
        answered = httpx.post(f"{url}/models/churn/invocations", json=row, headers={"Authorization": f"Bearer {token}"})
        assert answered.status_code == 200 and answered.headers["X-Model-Version"] == "1"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def test_serve_beyond_loopback_needs_a_token_it_never_generates(models, tmp_path) -> None:
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "mlops_platform", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=_env(models, home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "needs a bearer token: set MLOPS_SERVING_TOKEN" in done.stderr
    assert not token_file(home).exists()
