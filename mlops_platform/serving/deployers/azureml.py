"""The azure target: an Azure ML managed online endpoint, blue/green, through the ARM REST API that
azure-ai-ml's ``MLClient.online_endpoints`` / ``online_deployments`` call (api-version below).

deploy: register the version (its MLflow folder on the workspace's blob store), create the endpoint
once, register the serving image as an environment version (inference routes: liveness /live,
readiness /ready, scoring /score), create the idle colour's deployment of model and environment,
move all traffic to it once Azure reports it healthy, then delete the old colour.
"""

from __future__ import annotations

import time
from typing import Any

from mlops_platform.serving.deployers.base import Deployer, DeployError, Deployment, PlannedRequest
from mlops_platform.serving.deployers.rest import call

API_VERSION = "2024-04-01"
COLOURS = ("blue", "green")


class AzureMLDeployer(Deployer):
    """``AzureMLDeployer(subscription_id=..., resource_group=..., workspace=..., location="westeurope",
    image_uri=..., tracking_uri=..., management_url=None, access_token=None)``. The registered model's
    ``modelUri`` is the version's MLflow folder where the registry keeps it (wasbs:// becomes the blob's
    https:// URL), or ``artifact_uri_template`` (e.g. ``azureml://datastores/lake/paths/mlflow/{model}/{version}``)."""

    subscription_id: str
    resource_group: str
    workspace: str
    location: str
    image_uri: str
    # The user-assigned identity endpoints run as (Terraform grants it AcrPull and blob read on mlflow/);
    # None: a system-assigned identity, which must then be granted those by hand.
    endpoint_identity_id: str | None = None
    tracking_uri: str = ""
    artifact_uri_template: str | None = None
    instance_type: str = "Standard_DS3_v2"
    name_prefix: str = "mlops"
    management_url: str | None = None  # default https://management.azure.com
    access_token: str | None = None  # default: azure.identity.DefaultAzureCredential

    @property
    def target(self) -> str:
        return "azureml"

    def _token(self) -> str:
        if self.access_token:
            return self.access_token
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential().get_token("https://management.azure.com/.default").token

    @property
    def workspace_url(self) -> str:
        root = (self.management_url or "https://management.azure.com").rstrip("/")
        return (
            f"{root}/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )

    def endpoint_name(self, model: str) -> str:
        return f"{self.name_prefix}-{model}".replace("_", "-")

    def _url(self, path: str) -> str:
        return f"{self.workspace_url}/{path}?api-version={API_VERSION}"

    def _get(self, path: str) -> dict[str, Any] | None:
        status, body = call(PlannedRequest("GET", self._url(path)), self._token())
        return None if status == 404 else body

    def artifact_uri(self, model: str, version: str) -> str:
        from mlops_platform.serving.deployers.base import registry_artifact_uri

        if self.artifact_uri_template:
            return self.artifact_uri_template.format(model=model, version=version)
        uri = registry_artifact_uri(self.tracking_uri, model, version)
        if uri.startswith("wasbs://"):
            container, _, rest = uri.removeprefix("wasbs://").partition("@")
            host, _, path = rest.partition("/")
            return f"https://{host}/{container}/{path}"
        if not uri.startswith(("https://", "azureml://")):
            raise DeployError(f"{model} version {version}: Azure ML reads models from blob storage, not {uri!r}")
        return uri

    def plan(
        self, model: str, version: str, endpoint: dict[str, Any] | None
    ) -> tuple[list[PlannedRequest], str, str | None]:
        name = self.endpoint_name(model)
        traffic = ((endpoint or {}).get("properties") or {}).get("traffic") or {}
        live = next((c for c, share in traffic.items() if share), None)
        colour = "green" if live == "blue" else "blue"
        workspace_id = self.workspace_url.split(".com", 1)[-1]
        model_id = f"{workspace_id}/models/{model}/versions/{version}"
        requests = [
            PlannedRequest(
                "PUT",
                self._url(f"models/{model}/versions/{version}"),
                {
                    "properties": {
                        "modelUri": self.artifact_uri(model, version),
                        "modelType": "mlflow_model",
                    }
                },
            )
        ]
        if endpoint is None:
            requests.append(
                PlannedRequest(
                    "PUT",
                    self._url(f"onlineEndpoints/{name}"),
                    {
                        "location": self.location,
                        "identity": (
                            {"type": "UserAssigned", "userAssignedIdentities": {self.endpoint_identity_id: {}}}
                            if self.endpoint_identity_id
                            else {"type": "SystemAssigned"}
                        ),
                        "properties": {"authMode": "Key"},
                    },
                )
            )
        # A custom container is an environment version (image + inference routes) the deployment references;
        # its id is derived from the image, so redeploying the same image reuses it (versions are immutable).
        environment, env_version = f"{self.name_prefix}-serving", _digest(self.image_uri)
        route = {"port": 8080}
        requests.append(
            PlannedRequest(
                "PUT",
                self._url(f"environments/{environment}/versions/{env_version}"),
                {
                    "properties": {
                        "image": self.image_uri,
                        "osType": "Linux",
                        "inferenceConfig": {
                            "livenessRoute": {**route, "path": "/live"},
                            "readinessRoute": {**route, "path": "/ready"},
                            "scoringRoute": {**route, "path": "/score"},
                        },
                    }
                },
            )
        )
        requests.append(
            PlannedRequest(
                "PUT",
                self._url(f"onlineEndpoints/{name}/deployments/{colour}"),
                {
                    "location": self.location,
                    "sku": {"name": "Default", "capacity": 1},
                    "tags": {"mlops-version": str(version)},
                    "properties": {
                        "endpointComputeType": "Managed",
                        "instanceType": self.instance_type,
                        "model": model_id,
                        "environmentId": f"{workspace_id}/environments/{environment}/versions/{env_version}",
                        "environmentVariables": {
                            "MLOPS_SERVING_MODEL": model,
                            "MLOPS_SERVING_VERSION": str(version),
                            "MLOPS_SERVING_AUTH": "cloud",
                        },
                    },
                },
            )
        )
        requests.append(
            PlannedRequest("PATCH", self._url(f"onlineEndpoints/{name}"), {"properties": {"traffic": {colour: 100}}})
        )
        if live is not None:
            requests.append(PlannedRequest("DELETE", self._url(f"onlineEndpoints/{name}/deployments/{live}")))
        return requests, colour, live

    def describe(self, model: str) -> Deployment | None:
        name = self.endpoint_name(model)
        endpoint = self._get(f"onlineEndpoints/{name}")
        if endpoint is None:
            return None
        traffic = (endpoint.get("properties") or {}).get("traffic") or {}
        live = next((c for c, share in traffic.items() if share == 100), None)
        if live is None:
            return None
        deployment = self._get(f"onlineEndpoints/{name}/deployments/{live}") or {}
        version = (deployment.get("tags") or {}).get("mlops-version")
        url = (endpoint.get("properties") or {}).get("scoringUri", "")
        return Deployment("azureml", model, version, url, details={"colour": live})

    def deploy(self, model: str, version: str, dry_run: bool = False) -> Deployment | list[PlannedRequest]:
        current = self.describe(model)
        if current is not None and current.version == str(version):
            return [] if dry_run else current
        name = self.endpoint_name(model)
        requests, colour, _ = self.plan(model, str(version), self._get(f"onlineEndpoints/{name}"))
        if dry_run:
            return requests
        token = self._token()
        for request in requests:
            if request.method == "PATCH":
                self._wait_healthy(name, colour)  # traffic moves only to a healthy deployment
            call(request, token)
        described = self.describe(model)
        if described is None or described.version != str(version):
            raise DeployError(f"Azure ML endpoint {name} does not serve version {version} after deploy")
        return Deployment("azureml", model, str(version), described.url, changed=True, details=described.details)

    def _wait_healthy(self, name: str, colour: str, timeout: float = 3600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            deployment = self._get(f"onlineEndpoints/{name}/deployments/{colour}") or {}
            state = (deployment.get("properties") or {}).get("provisioningState")
            if state == "Succeeded":
                return
            if state in ("Failed", "Canceled"):
                raise DeployError(f"Azure ML deployment {name}/{colour} {state.lower()}; traffic stays where it was")
            if time.monotonic() > deadline:
                raise DeployError(f"Azure ML deployment {name}/{colour} not healthy within {timeout:.0f} s")
            time.sleep(10)

    def delete(self, model: str, dry_run: bool = False) -> bool | list[PlannedRequest]:
        name = self.endpoint_name(model)
        request = PlannedRequest("DELETE", self._url(f"onlineEndpoints/{name}"))
        if dry_run:
            return [request]
        if self._get(f"onlineEndpoints/{name}") is None:
            return False
        call(request, self._token())
        return True

    def smoke(self, model: str, payload: dict[str, Any]) -> tuple[str, float]:
        described = self.describe(model)
        if described is None or not described.url:
            raise DeployError(f"Azure ML endpoint {self.endpoint_name(model)} serves nothing")
        name = self.endpoint_name(model)
        _, keys = call(PlannedRequest("POST", self._url(f"onlineEndpoints/{name}/listKeys")), self._token())
        started = time.perf_counter()
        _, body = call(PlannedRequest("POST", described.url, payload), str(keys.get("primaryKey", "")))
        return str(body.get("model_version", "")), time.perf_counter() - started


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]
