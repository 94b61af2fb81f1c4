"""The gcp target: a Vertex AI endpoint running the serving image, through google-cloud-aiplatform.

deploy: upload the version as a Vertex model (our image, the MLflow artifact folder on GCS as
``artifactUri``, the AIP routes and port of single-model mode), create the endpoint once, deploy the model
with 100% of the traffic, then undeploy the models it replaced. The clients are ``aiplatform_v1``'s
ModelServiceClient and EndpointServiceClient on their REST transport; every long-running operation is
awaited for at most ``operation_timeout`` seconds. A dry run returns the requests those clients send for
the same request messages: method, URL (without the ``$alt`` query the transport appends) and JSON body.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from mlops_platform.serving.deployers.base import Deployer, DeployError, Deployment, PlannedRequest

PORT = 8080  # single-model mode listens on AIP_HTTP_PORT, which Vertex sets from the container port
PREDICT_ROUTE, HEALTH_ROUTE = "/predict", "/health"
NEW_ENDPOINT, UPLOADED_MODEL = "<new endpoint>", "<uploaded model>"  # names a dry run cannot know yet


class _Clients(NamedTuple):
    models: Any
    endpoints: Any
    predictions: Any


class VertexDeployer(Deployer):
    """``VertexDeployer(project=..., location="europe-west4", image_uri=..., tracking_uri=...)``. The model's
    ``artifactUri`` is the version's MLflow folder where the registry keeps it (gs://, the gcp profile's
    artifact root), or ``artifact_uri_template``. Credentials: google.auth's application default chain, or
    ``access_token`` (a static OAuth token)."""

    project: str
    location: str
    image_uri: str
    tracking_uri: str = ""
    artifact_uri_template: str | None = None  # e.g. "gs://bucket/models/{model}/{version}"; None: the registry's
    machine_type: str = "n1-standard-2"
    name_prefix: str = "mlops"
    # A host ("europe-west4-aiplatform.googleapis.com", https) or a URL with its scheme (a test server's
    # http://127.0.0.1:PORT: the REST transport keeps a scheme it is given). None: the location's endpoint.
    api_endpoint: str | None = None
    access_token: str | None = None  # default: google.auth's application default credentials
    # The identity deployed models run as (Terraform's VERTEX_SERVICE_ACCOUNT); None: Vertex's default.
    service_account: str | None = None
    operation_timeout: float = 3600.0  # upper bound for one long-running operation (deploys take minutes)
    request_timeout: float = 120.0  # one HTTP request

    @property
    def target(self) -> str:
        return "vertex"

    @property
    def root(self) -> str:
        """Scheme and host of the Vertex AI API, e.g. https://europe-west4-aiplatform.googleapis.com."""
        endpoint = (self.api_endpoint or f"{self.location}-aiplatform.googleapis.com").rstrip("/")
        return endpoint if "://" in endpoint else f"https://{endpoint}"

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def endpoint_name(self, model: str) -> str:
        return f"{self.name_prefix}-{model}"

    def _clients(self) -> _Clients:
        from google.cloud.aiplatform_v1.services.endpoint_service import EndpointServiceClient
        from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient
        from google.cloud.aiplatform_v1.services.prediction_service import PredictionServiceClient

        credentials = None  # the clients then ask google.auth.default() (cloud-platform scope)
        if self.access_token:
            import google.oauth2.credentials

            credentials = google.oauth2.credentials.Credentials(self.access_token)
        options = {"api_endpoint": self.root}
        try:
            return _Clients(
                *(
                    client(credentials=credentials, transport="rest", client_options=options)
                    for client in (ModelServiceClient, EndpointServiceClient, PredictionServiceClient)
                )
            )
        except _errors() as exc:
            raise DeployError(f"Vertex AI clients for {self.root}: {type(exc).__name__}: {exc}") from exc

    def _call(self, what: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(timeout=self.request_timeout, **kwargs)
        except _errors() as exc:
            raise DeployError(f"Vertex AI {what} failed: {type(exc).__name__}: {exc}") from exc

    def _wait(self, operation: Any, what: str) -> Any:
        import concurrent.futures

        try:
            return operation.result(timeout=self.operation_timeout)
        except concurrent.futures.TimeoutError as exc:
            raise DeployError(f"Vertex AI {what} did not finish within {self.operation_timeout:g} s") from exc
        except _errors() as exc:
            raise DeployError(f"Vertex AI {what} failed: {type(exc).__name__}: {exc}") from exc

    def artifact_uri(self, model: str, version: str) -> str:
        from mlops_platform.serving.deployers.base import registry_artifact_uri

        if self.artifact_uri_template:
            uri = self.artifact_uri_template.format(model=model, version=version)
        else:
            uri = registry_artifact_uri(self.tracking_uri, model, version)
        if not uri.startswith("gs://"):
            raise DeployError(f"{model} version {version}: Vertex AI reads models from gs:// only, not {uri!r}")
        return uri

    # The request messages: the live path sends these, a dry run returns them as PlannedRequests.

    def upload_request(self, model: str, version: str) -> Any:
        from google.cloud.aiplatform_v1 import types

        env = {"MLOPS_SERVING_MODEL": model, "MLOPS_SERVING_VERSION": str(version), "MLOPS_SERVING_AUTH": "cloud"}
        return types.UploadModelRequest(
            parent=self.parent,
            model=types.Model(
                display_name=f"{self.name_prefix}-{model}-v{version}",
                labels={"mlops-model": model.replace("_", "-"), "mlops-version": str(version)},
                artifact_uri=self.artifact_uri(model, version),
                container_spec=types.ModelContainerSpec(
                    image_uri=self.image_uri,
                    predict_route=PREDICT_ROUTE,
                    health_route=HEALTH_ROUTE,
                    ports=[types.Port(container_port=PORT)],
                    env=[types.EnvVar(name=name, value=value) for name, value in env.items()],
                ),
            ),
        )

    def create_endpoint_request(self, model: str) -> Any:
        from google.cloud.aiplatform_v1 import types

        return types.CreateEndpointRequest(
            parent=self.parent,
            endpoint=types.Endpoint(
                display_name=self.endpoint_name(model), labels={"mlops-model": model.replace("_", "-")}
            ),
        )

    def deploy_request(self, endpoint: str, model_resource: str, model: str, version: str) -> Any:
        from google.cloud.aiplatform_v1 import types

        return types.DeployModelRequest(
            endpoint=endpoint,
            deployed_model=types.DeployedModel(
                model=model_resource,
                display_name=f"{self.name_prefix}-{model}-v{version}",
                service_account=self.service_account or "",
                dedicated_resources=types.DedicatedResources(
                    machine_spec=types.MachineSpec(machine_type=self.machine_type),
                    min_replica_count=1,
                    max_replica_count=1,
                ),
            ),
            traffic_split={"0": 100},  # "0": the model this request deploys; every other one gets 0
        )

    def undeploy_request(self, endpoint: str, deployed_model_id: str) -> Any:
        from google.cloud.aiplatform_v1 import types

        return types.UndeployModelRequest(endpoint=endpoint, deployed_model_id=deployed_model_id)

    def planned(self, request: Any) -> PlannedRequest:
        """The HTTP request the REST transport sends for ``request`` (its v1 HTTP rule)."""
        from google.cloud.aiplatform_v1 import types

        if isinstance(request, types.UploadModelRequest):
            return PlannedRequest("POST", f"{self.root}/v1/{request.parent}/models:upload", _body(request, "parent"))
        if isinstance(request, types.CreateEndpointRequest):
            return PlannedRequest("POST", f"{self.root}/v1/{request.parent}/endpoints", _body(request.endpoint))
        if isinstance(request, types.DeployModelRequest):
            url = f"{self.root}/v1/{request.endpoint}:deployModel"
            return PlannedRequest("POST", url, _body(request, "endpoint"))
        if isinstance(request, types.UndeployModelRequest):
            url = f"{self.root}/v1/{request.endpoint}:undeployModel"
            return PlannedRequest("POST", url, _body(request, "endpoint"))
        if isinstance(request, types.DeleteEndpointRequest):
            return PlannedRequest("DELETE", f"{self.root}/v1/{request.name}")
        raise TypeError(f"no HTTP rule known for {type(request).__name__}")

    # Reads.

    def _endpoint(self, clients: _Clients, model: str) -> Any:
        """The endpoint named after ``model`` (an aiplatform_v1 Endpoint), None when there is none."""
        from google.cloud.aiplatform_v1 import types

        name = self.endpoint_name(model)
        request = types.ListEndpointsRequest(parent=self.parent, filter=f'display_name="{name}"')
        pages = self._call(f"list_endpoints (display name {name})", clients.endpoints.list_endpoints, request=request)
        try:
            found = [endpoint for endpoint in pages if endpoint.display_name == name]
        except _errors() as exc:
            raise DeployError(f"Vertex AI list_endpoints (display name {name}) failed: {exc}") from exc
        if len(found) > 1:
            raise DeployError(f"Vertex AI has {len(found)} endpoints named {name}: delete all but one")
        return found[0] if found else None

    def _serving(self, clients: _Clients, model: str, endpoint: Any | None) -> Deployment | None:
        if endpoint is None or not endpoint.deployed_models:
            return None
        traffic = dict(endpoint.traffic_split)
        serving = max(endpoint.deployed_models, key=lambda deployed: traffic.get(deployed.id, 0))
        if not traffic.get(serving.id):
            return None
        return Deployment(
            "vertex",
            model,
            self._version_of(clients, serving),
            f"{self.root}/v1/{endpoint.name}:predict",
            details={"deployed_model_id": serving.id, "endpoint": endpoint.name, "model_resource": serving.model},
        )

    def _version_of(self, clients: _Clients, deployed: Any) -> str | None:
        uploaded = self._call(f"get_model {deployed.model}", clients.models.get_model, name=deployed.model)
        return uploaded.labels.get("mlops-version")

    def describe(self, model: str) -> Deployment | None:
        clients = self._clients()
        return self._serving(clients, model, self._endpoint(clients, model))

    # Mutations.

    def deploy(self, model: str, version: str, dry_run: bool = False) -> Deployment | list[PlannedRequest]:
        """Idempotent: when ``version`` already takes the traffic nothing is sent, but models a failed
        deploy left on the endpoint with no traffic are undeployed."""
        version = str(version)
        clients = self._clients()
        endpoint = self._endpoint(clients, model)
        current = self._serving(clients, model, endpoint)
        serving_id = current.details["deployed_model_id"] if current else None
        if current is not None and current.version == version:
            leftovers = [
                self.undeploy_request(endpoint.name, d.id) for d in endpoint.deployed_models if d.id != serving_id
            ]
            if dry_run:
                return [self.planned(request) for request in leftovers]
            for request in leftovers:
                self._undeploy(clients, request, model)
            return current
        upload = self.upload_request(model, version)
        create = self.create_endpoint_request(model) if endpoint is None else None
        replaced = [d.id for d in endpoint.deployed_models] if endpoint is not None else []
        if dry_run:
            name = endpoint.name if endpoint is not None else NEW_ENDPOINT
            plan = [upload] + ([create] if create is not None else [])
            plan.append(self.deploy_request(name, UPLOADED_MODEL, model, version))
            plan += [self.undeploy_request(name, deployed_id) for deployed_id in replaced]
            return [self.planned(request) for request in plan]
        what = f"{model} version {version}"
        operation = self._call(f"upload_model of {what}", clients.models.upload_model, request=upload)
        model_resource = self._wait(operation, f"upload_model of {what}").model
        if create is not None:
            operation = self._call(
                f"create_endpoint {create.endpoint.display_name}", clients.endpoints.create_endpoint, request=create
            )
            endpoint = self._wait(operation, f"create_endpoint {create.endpoint.display_name}")
        request = self.deploy_request(endpoint.name, model_resource, model, version)
        operation = self._call(
            f"deploy_model of {what} to {endpoint.name}", clients.endpoints.deploy_model, request=request
        )
        # The operation ends once the new model is healthy and takes the traffic; until then the old one serves.
        self._wait(operation, f"deploy_model of {what} to {endpoint.name}")
        for deployed_id in replaced:
            self._undeploy(clients, self.undeploy_request(endpoint.name, deployed_id), model, serving=version)
        described = self.describe(model)
        if described is None or described.version != version:
            raise DeployError(f"Vertex AI endpoint {endpoint.name} does not serve {what} after deploy_model")
        return Deployment("vertex", model, version, described.url, changed=True, details=described.details)

    def _undeploy(self, clients: _Clients, request: Any, model: str, serving: str | None = None) -> None:
        what = f"undeploy_model of deployed model {request.deployed_model_id} from {request.endpoint}"
        try:
            self._wait(self._call(what, clients.endpoints.undeploy_model, request=request), what)
        except DeployError as exc:
            if serving is None:
                raise
            raise DeployError(
                f"{model} version {serving} takes all the traffic, but {exc}; it holds no traffic: "
                f"deploying {model} again undeploys it"
            ) from exc

    def delete(self, model: str, dry_run: bool = False) -> bool | list[PlannedRequest]:
        from google.cloud.aiplatform_v1 import types

        clients = self._clients()
        endpoint = self._endpoint(clients, model)
        if endpoint is None:
            return [] if dry_run else False
        undeploys = [self.undeploy_request(endpoint.name, d.id) for d in endpoint.deployed_models]
        remove = types.DeleteEndpointRequest(name=endpoint.name)
        if dry_run:
            return [self.planned(request) for request in [*undeploys, remove]]
        for request in undeploys:
            self._undeploy(clients, request, model)
        what = f"delete_endpoint {endpoint.name}"
        self._wait(self._call(what, clients.endpoints.delete_endpoint, request=remove), what)
        return True

    def smoke(self, model: str, payload: dict[str, Any]) -> tuple[str, float]:
        from google.cloud.aiplatform_v1 import types

        clients = self._clients()
        endpoint = self._endpoint(clients, model)
        described = self._serving(clients, model, endpoint)
        if described is None:
            raise DeployError(f"Vertex AI endpoint {self.endpoint_name(model)} serves nothing")
        rows = payload.get("dataframe_records") or payload.get("instances") or []
        request = types.PredictRequest(endpoint=described.details["endpoint"])
        request.instances.extend(rows)  # JSON values (proto-plus marshals them into google.protobuf.Value)
        started = time.perf_counter()
        response = self._call(f"predict on {described.url}", clients.predictions.predict, request=request)
        seconds = time.perf_counter() - started
        if not response.predictions:
            raise DeployError(f"smoke request to {described.url} answered no predictions")
        answered = response.deployed_model_id
        if answered == described.details["deployed_model_id"]:
            return str(described.version or ""), seconds
        deployed = next((d for d in endpoint.deployed_models if d.id == answered), None)
        version = self._version_of(clients, deployed) if deployed is not None else None
        return str(version or f"deployed model {answered}"), seconds


def _body(message: Any, *path_fields: str) -> dict[str, Any]:
    """The JSON body the REST transport sends: the message without the fields its URL carries."""
    from google.protobuf import json_format

    body = json_format.MessageToDict(type(message).pb(message), use_integers_for_enums=True)
    for field in path_fields:
        body.pop(field, None)
    return body


def _errors() -> tuple[type[BaseException], ...]:
    """What the clients raise: API errors (HTTP status), credential errors, transport errors."""
    import google.auth.exceptions
    import requests
    from google.api_core import exceptions

    return (
        exceptions.GoogleAPICallError,
        exceptions.RetryError,
        google.auth.exceptions.GoogleAuthError,
        requests.RequestException,
    )
