"""The gcp target: a Vertex AI endpoint running the serving image, through Vertex's REST API (v1).

deploy: upload the version as a Vertex model (our image, the MLflow artifact folder on GCS as
``artifactUri``, the AIP routes of single-model mode), create the endpoint once, deploy the model with
100% of the traffic, then undeploy the model it replaced. The requests are the ones
google-cloud-aiplatform's REST transport sends (models:upload, endpoints, :deployModel, :undeployModel).
"""

from __future__ import annotations

import time
from typing import Any

from mlops_platform.serving.deployers.base import Deployer, DeployError, Deployment, PlannedRequest
from mlops_platform.serving.deployers.rest import call


class VertexDeployer(Deployer):
    """``VertexDeployer(project=..., location="europe-west4", image_uri=..., tracking_uri=...,
    api_endpoint=None, access_token=None)``. The model's ``artifactUri`` is the version's MLflow folder
    where the registry keeps it (gs://, the gcp profile's artifact root), or ``artifact_uri_template``."""

    project: str
    location: str
    image_uri: str
    tracking_uri: str = ""
    artifact_uri_template: str | None = None  # e.g. "gs://bucket/models/{model}/{version}"; None: the registry's
    machine_type: str = "n1-standard-2"
    name_prefix: str = "mlops"
    api_endpoint: str | None = None  # default https://{location}-aiplatform.googleapis.com
    access_token: str | None = None  # default: google.auth's application default credentials

    @property
    def target(self) -> str:
        return "vertex"

    @property
    def base(self) -> str:
        root = self.api_endpoint or f"https://{self.location}-aiplatform.googleapis.com"
        return f"{root.rstrip('/')}/v1/projects/{self.project}/locations/{self.location}"

    def _token(self) -> str:
        if self.access_token:
            return self.access_token
        import google.auth
        import google.auth.transport.requests

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        credentials.refresh(google.auth.transport.requests.Request())
        return str(credentials.token)

    def endpoint_name(self, model: str) -> str:
        return f"{self.name_prefix}-{model}"

    def _endpoint(self, model: str) -> dict[str, Any] | None:
        name = self.endpoint_name(model)
        _, body = call(PlannedRequest("GET", f"{self.base}/endpoints?filter=display_name=%22{name}%22"), self._token())
        endpoints = body.get("endpoints") or []
        return endpoints[0] if endpoints else None

    def artifact_uri(self, model: str, version: str) -> str:
        from mlops_platform.serving.deployers.base import registry_artifact_uri

        if self.artifact_uri_template:
            uri = self.artifact_uri_template.format(model=model, version=version)
        else:
            uri = registry_artifact_uri(self.tracking_uri, model, version)
        if not uri.startswith("gs://"):
            raise DeployError(f"{model} version {version}: Vertex AI reads models from gs:// only, not {uri!r}")
        return uri

    def upload_request(self, model: str, version: str) -> PlannedRequest:
        return PlannedRequest(
            "POST",
            f"{self.base}/models:upload",
            {
                "model": {
                    "displayName": f"{self.name_prefix}-{model}-v{version}",
                    "labels": {"mlops-model": model.replace("_", "-"), "mlops-version": str(version)},
                    "artifactUri": self.artifact_uri(model, version),
                    "containerSpec": {
                        "imageUri": self.image_uri,
                        "predictRoute": "/predict",
                        "healthRoute": "/health",
                        "ports": [{"containerPort": 8080}],
                        "env": [
                            {"name": "MLOPS_SERVING_MODEL", "value": model},
                            {"name": "MLOPS_SERVING_VERSION", "value": str(version)},
                            {"name": "MLOPS_SERVING_AUTH", "value": "cloud"},
                        ],
                    },
                }
            },
        )

    def deploy_request(self, endpoint: str, model_resource: str, model: str, version: str) -> PlannedRequest:
        return PlannedRequest(
            "POST",
            f"{self.base.split('/v1/')[0]}/v1/{endpoint}:deployModel",
            {
                "deployedModel": {
                    "model": model_resource,
                    "displayName": f"{self.name_prefix}-{model}-v{version}",
                    "dedicatedResources": {"machineSpec": {"machineType": self.machine_type}, "minReplicaCount": 1},
                },
                "trafficSplit": {"0": 100},
            },
        )

    def _wait(self, operation: dict[str, Any], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + 3600
        while not operation.get("done"):
            if time.monotonic() > deadline:
                raise DeployError(f"Vertex AI: {what} did not finish within an hour")
            time.sleep(10)
            _, operation = call(
                PlannedRequest("GET", f"{self.base.split('/v1/')[0]}/v1/{operation['name']}"), self._token()
            )
        if "error" in operation:
            raise DeployError(f"Vertex AI: {what} failed: {operation['error']}")
        return operation.get("response") or {}

    def describe(self, model: str) -> Deployment | None:
        endpoint = self._endpoint(model)
        if endpoint is None or not endpoint.get("deployedModels"):
            return None
        traffic = endpoint.get("trafficSplit") or {}
        serving = max(endpoint["deployedModels"], key=lambda d: traffic.get(d["id"], 0))
        _, described = call(PlannedRequest("GET", f"{self.base.split('/v1/')[0]}/v1/{serving['model']}"), self._token())
        version = (described.get("labels") or {}).get("mlops-version")
        url = f"{self.base.split('/v1/')[0]}/v1/{endpoint['name']}:predict"
        return Deployment(
            "vertex", model, version, url, details={"deployed_model_id": serving["id"], "endpoint": endpoint["name"]}
        )

    def deploy(self, model: str, version: str, dry_run: bool = False) -> Deployment | list[PlannedRequest]:
        current = self.describe(model)
        if current is not None and current.version == str(version):
            return [] if dry_run else current
        endpoint = self._endpoint(model)
        upload = self.upload_request(model, version)
        if dry_run:
            plan = [upload]
            if endpoint is None:
                plan.append(
                    PlannedRequest("POST", f"{self.base}/endpoints", {"displayName": self.endpoint_name(model)})
                )
            name = endpoint["name"] if endpoint else "<new endpoint>"
            plan.append(self.deploy_request(name, "<uploaded model>", model, version))
            if current is not None:
                plan.append(self._undeploy(name, current.details["deployed_model_id"]))
            return plan
        token = self._token()
        _, operation = call(upload, token)
        model_resource = self._wait(operation, f"upload of {model} version {version}")["model"]
        if endpoint is None:
            _, operation = call(
                PlannedRequest("POST", f"{self.base}/endpoints", {"displayName": self.endpoint_name(model)}), token
            )
            endpoint = self._wait(operation, f"creating endpoint {self.endpoint_name(model)}")
        _, operation = call(self.deploy_request(endpoint["name"], model_resource, model, version), token)
        self._wait(operation, f"deploying {model} version {version}")  # traffic moves only once it is healthy
        if current is not None:
            call(self._undeploy(endpoint["name"], current.details["deployed_model_id"]), token)
        described = self.describe(model)
        if described is None or described.version != str(version):
            raise DeployError(
                f"Vertex AI endpoint {self.endpoint_name(model)} does not serve version {version} after deploy"
            )
        return Deployment("vertex", model, str(version), described.url, changed=True, details=described.details)

    def _undeploy(self, endpoint: str, deployed_model_id: str) -> PlannedRequest:
        return PlannedRequest(
            "POST", f"{self.base.split('/v1/')[0]}/v1/{endpoint}:undeployModel", {"deployedModelId": deployed_model_id}
        )

    def delete(self, model: str, dry_run: bool = False) -> bool | list[PlannedRequest]:
        endpoint = self._endpoint(model)
        if endpoint is None:
            return [] if dry_run else False
        plan = [self._undeploy(endpoint["name"], d["id"]) for d in endpoint.get("deployedModels") or []]
        plan.append(PlannedRequest("DELETE", f"{self.base.split('/v1/')[0]}/v1/{endpoint['name']}"))
        if dry_run:
            return plan
        token = self._token()
        for request in plan:
            call(request, token)
        return True

    def smoke(self, model: str, payload: dict[str, Any]) -> tuple[str, float]:
        described = self.describe(model)
        if described is None:
            raise DeployError(f"Vertex AI endpoint {self.endpoint_name(model)} serves nothing")
        rows = payload.get("dataframe_records") or payload.get("instances") or []
        started = time.perf_counter()
        _, body = call(PlannedRequest("POST", described.url, {"instances": rows}), self._token())
        if "predictions" not in body:
            raise DeployError(f"smoke request to {described.url} answered no predictions")
        return str(body.get("model_version") or described.version or ""), time.perf_counter() - started
