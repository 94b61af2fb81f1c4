"""The local target: the running ``mlops-platform serve`` app, told which version to serve through its
authenticated admin route. The app serves nothing an endpoint materialization did not deploy."""

from __future__ import annotations

import time
from typing import Any

from mlops_platform.serving.deployers.base import Deployer, DeployError, Deployment, PlannedRequest


class LocalDeployer(Deployer):
    """``LocalDeployer(url="http://127.0.0.1:8080", token=dg.EnvVar("MLOPS_SERVING_TOKEN"))``, or
    ``token_file=`` the token ``mlops-platform serve`` generated under MLOPS_HOME when no token is set."""

    url: str = "http://127.0.0.1:8080"
    token: str | None = None
    token_file: str | None = None
    timeout_seconds: float = 300.0

    @property
    def target(self) -> str:
        return "local"

    def _headers(self) -> dict[str, str]:
        from pathlib import Path

        from mlops_platform.serving.token import TOKEN_VAR, read_token

        token = self.token or (read_token(Path(self.token_file)) if self.token_file else None)
        if not token:
            where = f" or start `mlops-platform serve`, which writes {self.token_file}" if self.token_file else ""
            raise DeployError(f"no bearer token for the local serving app at {self.url}: set {TOKEN_VAR}{where}")
        return {"Authorization": f"Bearer {token}"}

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import httpx

        try:
            return httpx.request(
                method,
                f"{self.url.rstrip('/')}{path}",
                json=body,
                headers=self._headers(),
                timeout=self.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise DeployError(f"local serving app at {self.url} is unreachable: {type(exc).__name__}: {exc}") from exc

    def deploy(self, model: str, version: str, dry_run: bool = False) -> Deployment | list[PlannedRequest]:
        request = PlannedRequest("PUT", f"{self.url.rstrip('/')}/admin/models/{model}", {"version": str(version)})
        if dry_run:
            return [request]
        response = self._request("PUT", f"/admin/models/{model}", request.body)
        body = _json(response)
        if response.status_code != 200:
            raise DeployError(
                f"local serving app at {self.url} refused {model} version {version} "
                f"(HTTP {response.status_code}): {body.get('error', response.text[:300])}; "
                f"still serving version {body.get('version') or 'none'}"
            )
        return Deployment("local", model, body.get("version"), self._model_url(model), bool(body.get("changed")), body)

    def describe(self, model: str) -> Deployment | None:
        response = self._request("GET", f"/admin/models/{model}")
        if response.status_code != 200:
            raise DeployError(f"local serving app at {self.url}: describe {model} answered HTTP {response.status_code}")
        body = _json(response)
        if not body.get("version"):
            return None
        return Deployment("local", model, body["version"], self._model_url(model), details=body)

    def delete(self, model: str, dry_run: bool = False) -> bool | list[PlannedRequest]:
        if dry_run:
            return [PlannedRequest("DELETE", f"{self.url.rstrip('/')}/admin/models/{model}")]
        response = self._request("DELETE", f"/admin/models/{model}")
        if response.status_code != 200:
            raise DeployError(f"local serving app at {self.url}: delete {model} answered HTTP {response.status_code}")
        return bool(_json(response).get("removed"))

    def smoke(self, model: str, payload: dict[str, Any]) -> tuple[str, float]:
        started = time.perf_counter()
        response = self._request("POST", f"/models/{model}/invocations", payload)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise DeployError(
                f"smoke request to {self._model_url(model)} answered HTTP {response.status_code}: {response.text[:300]}"
            )
        return response.headers.get("X-Model-Version", ""), elapsed

    def _model_url(self, model: str) -> str:
        return f"{self.url.rstrip('/')}/models/{model}/invocations"


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
