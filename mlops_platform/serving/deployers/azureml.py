"""The azure target: an Azure ML managed online endpoint, blue/green, through azure-ai-ml's ``MLClient``.

deploy: register the version (its MLflow folder on the workspace's blob store) and the serving image as an
environment version (inference routes: liveness /live, readiness /ready, scoring /score) unless they exist,
create the endpoint once, create the idle colour's deployment and wait until Azure reports it healthy (its
long-running operation ends once the readiness route answers), move all traffic to it, then delete the old
colour. A dry run returns the ARM requests MLClient sends for the same entities: method, URL (without the
``api-version`` MLClient adds) and the body fields the deployer sets (MLClient sends a few defaults more).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from mlops_platform.serving.deployers.base import Deployer, DeployError, Deployment, PlannedRequest

COLOURS = ("blue", "green")
PORT = 8080
ROUTES = {"liveness_route": "/live", "readiness_route": "/ready", "scoring_route": "/score"}
PUBLIC_ARM = "https://management.azure.com/"
# A management_url other than the public cloud's becomes a cloud of its own (MLClient's ``cloud`` and
# ``cloud_metadata`` arguments, as for sovereign clouds); its other endpoints are the public cloud's.
_CLOUD_METADATA = {
    "azure_portal": "https://portal.azure.com/",
    "active_directory": "https://login.microsoftonline.com/",
    "aml_resource_id": "https://ml.azure.com/",
    "storage_endpoint": "core.windows.net",
    "registry_discovery_endpoint": "https://eastus.api.azureml.ms/",
}


class StaticTokenCredential:
    """An azure-core TokenCredential holding one bearer token (e.g. ``az account get-access-token``)."""

    def __init__(self, token: str, lifetime: float = 3600.0):
        self.token, self.lifetime = token, lifetime

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time() + self.lifetime))


class AzureMLDeployer(Deployer):
    """``AzureMLDeployer(subscription_id=..., resource_group=..., workspace=..., location="westeurope",
    image_uri=..., tracking_uri=...)``. The registered model's path is the version's MLflow folder where the
    registry keeps it (wasbs:// becomes the blob's https:// URL), or ``artifact_uri_template`` (e.g.
    ``azureml://datastores/lake/paths/mlflow/{model}/{version}``). Credentials: DefaultAzureCredential,
    or ``access_token``."""

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
    management_url: str | None = None  # Azure Resource Manager; default https://management.azure.com (https only)
    access_token: str | None = None  # default: azure.identity.DefaultAzureCredential
    ca_bundle: str | None = None  # CA certificates for a management or scoring URL with a private CA
    retries: int = 3  # per request, on throttling and 5xx answers (azure-core's retry policy)
    operation_timeout: float = 3600.0  # upper bound for one long-running operation (deployments take minutes)

    @property
    def target(self) -> str:
        return "azureml"

    @property
    def management_root(self) -> str:
        return (self.management_url or PUBLIC_ARM).rstrip("/")

    @property
    def workspace_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )

    def endpoint_name(self, model: str) -> str:
        return f"{self.name_prefix}-{model}".replace("_", "-")

    def environment_name(self) -> str:
        return f"{self.name_prefix}-serving"

    def _client(self) -> Any:
        from azure.ai.ml import MLClient

        root = self.management_root + "/"
        if not root.startswith("https://"):
            raise DeployError(
                f"management_url {self.management_url!r}: azure-ai-ml sends bearer tokens over https only"
            )
        if self.access_token:
            credential: Any = StaticTokenCredential(self.access_token)
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        options: dict[str, Any] = {"show_progress": False, "enable_telemetry": False, "retry_total": self.retries}
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        # The cloud is always named: MLClient otherwise takes the one a previous client set in AZUREML_CURRENT_CLOUD.
        if root == PUBLIC_ARM:
            options["cloud"] = "AzureCloud"
        else:
            options["cloud"] = f"mlops-{hashlib.sha256(root.encode()).hexdigest()[:12]}"
            options["cloud_metadata"] = {**_CLOUD_METADATA, "resource_manager": root}
        try:
            return MLClient(credential, self.subscription_id, self.resource_group, self.workspace, **options)
        except _errors() as exc:
            raise DeployError(f"Azure ML client for workspace {self.workspace}: {type(exc).__name__}: {exc}") from exc

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except _errors() as exc:
            raise DeployError(f"Azure ML {what} failed: {type(exc).__name__}: {_short(exc)}") from exc

    def _wait(self, what: str, poller: Any) -> Any:
        try:
            poller.wait(timeout=self.operation_timeout)
            if not poller.done():
                raise DeployError(f"Azure ML {what} did not finish within {self.operation_timeout:g} s")
            return poller.result()
        except _errors() as exc:
            raise DeployError(f"Azure ML {what} failed: {type(exc).__name__}: {_short(exc)}") from exc

    def _get(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any | None:
        """A read; None when the resource does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return method(*args, **kwargs)
        except ResourceNotFoundError:
            return None
        except _errors() as exc:
            raise DeployError(f"Azure ML {what} failed: {type(exc).__name__}: {_short(exc)}") from exc

    def artifact_uri(self, model: str, version: str) -> str:
        from mlops_platform.serving.deployers.base import registry_artifact_uri

        if self.artifact_uri_template:
            uri = self.artifact_uri_template.format(model=model, version=version)
        else:
            uri = registry_artifact_uri(self.tracking_uri, model, version)
        if uri.startswith("wasbs://"):
            container, _, rest = uri.removeprefix("wasbs://").partition("@")
            host, _, path = rest.partition("/")
            return f"https://{host}/{container}/{path}"
        if uri.startswith("azureml://datastores/"):
            # MLClient sends a workspace datastore path in this long form; written so, the plan shows what is sent.
            return (
                f"azureml://subscriptions/{self.subscription_id}/resourcegroups/{self.resource_group}"
                f"/workspaces/{self.workspace}/{uri.removeprefix('azureml://')}"
            )
        if not uri.startswith(("https://", "azureml://")):
            raise DeployError(f"{model} version {version}: Azure ML reads models from blob storage, not {uri!r}")
        return uri

    # The entities: the live path hands these to MLClient, a dry run returns them as PlannedRequests.

    def model_asset(self, model: str, version: str) -> Any:
        from azure.ai.ml.entities import Model

        # custom_model: the serving image is a custom container that loads the MLflow folder itself
        # (an mlflow_model deployment with an environment of its own must also bring a scoring script).
        return Model(name=model, version=str(version), path=self.artifact_uri(model, version), type="custom_model")

    def environment_asset(self) -> Any:
        from azure.ai.ml.entities import Environment

        # Versions are immutable: the version is derived from the image, so redeploying an image reuses it.
        digest = hashlib.sha256(self.image_uri.encode()).hexdigest()[:12]
        routes = {key: {"port": PORT, "path": path} for key, path in ROUTES.items()}
        return Environment(name=self.environment_name(), version=digest, image=self.image_uri, inference_config=routes)

    def endpoint_entity(self, model: str) -> Any:
        from azure.ai.ml.entities import IdentityConfiguration, ManagedIdentityConfiguration, ManagedOnlineEndpoint

        if self.endpoint_identity_id:
            identity = IdentityConfiguration(
                type="user_assigned",
                user_assigned_identities=[ManagedIdentityConfiguration(resource_id=self.endpoint_identity_id)],
            )
        else:
            identity = IdentityConfiguration(type="system_assigned")
        return ManagedOnlineEndpoint(
            name=self.endpoint_name(model), auth_mode="key", location=self.location, identity=identity
        )

    def deployment_entity(self, model: str, version: str, colour: str) -> Any:
        from azure.ai.ml.entities import ManagedOnlineDeployment

        asset, environment = self.model_asset(model, version), self.environment_asset()
        return ManagedOnlineDeployment(
            name=colour,
            endpoint_name=self.endpoint_name(model),
            model=f"{self.workspace_id}/models/{asset.name}/versions/{asset.version}",
            environment=f"{self.workspace_id}/environments/{environment.name}/versions/{environment.version}",
            instance_type=self.instance_type,
            instance_count=1,
            tags={"mlops-version": str(version)},
            environment_variables={
                "MLOPS_SERVING_MODEL": model,
                "MLOPS_SERVING_VERSION": str(version),
                "MLOPS_SERVING_AUTH": "cloud",
            },
        )

    def _url(self, path: str) -> str:
        return f"{self.management_root}{self.workspace_id}/{path}"

    def planned(self, kind: str, entity: Any, traffic: dict[str, int] | None = None) -> PlannedRequest:
        """The ARM request MLClient sends for ``entity``: kind is model, environment, endpoint, deployment,
        traffic (the endpoint again, with ``traffic``) or delete (a deployment)."""
        if kind == "model":
            body = {"properties": {"modelType": entity.type, "modelUri": entity.path}}
            return PlannedRequest("PUT", self._url(f"models/{entity.name}/versions/{entity.version}"), body)
        if kind == "environment":
            routes = {_camel(key): route for key, route in entity.inference_config.items()}
            body = {"properties": {"image": entity.image, "inferenceConfig": routes}}
            return PlannedRequest("PUT", self._url(f"environments/{entity.name}/versions/{entity.version}"), body)
        if kind == "endpoint":
            identity: dict[str, Any] = {"type": "SystemAssigned"}
            if self.endpoint_identity_id:
                identity = {"type": "UserAssigned", "userAssignedIdentities": {self.endpoint_identity_id: {}}}
            body = {"location": entity.location, "identity": identity, "properties": {"authMode": "Key"}}
            return PlannedRequest("PUT", self._url(f"onlineEndpoints/{entity.name}"), body)
        if kind == "deployment":
            body = {
                "sku": {"name": "Default", "capacity": entity.instance_count},
                "tags": dict(entity.tags),
                "properties": {
                    "endpointComputeType": "Managed",
                    "instanceType": entity.instance_type,
                    "model": entity.model,
                    "environmentId": entity.environment,
                    "environmentVariables": dict(entity.environment_variables),
                },
            }
            return PlannedRequest(
                "PUT", self._url(f"onlineEndpoints/{entity.endpoint_name}/deployments/{entity.name}"), body
            )
        if kind == "traffic":
            return PlannedRequest(
                "PUT", self._url(f"onlineEndpoints/{entity.name}"), {"properties": {"traffic": traffic}}
            )
        if kind == "delete":
            return PlannedRequest(
                "DELETE", self._url(f"onlineEndpoints/{entity.endpoint_name}/deployments/{entity.name}")
            )
        raise ValueError(f"unknown request kind {kind!r}")

    # Reads.

    def _state(self, ml: Any, model: str) -> tuple[Any | None, str | None, list[str]]:
        """(endpoint or None, the colour taking the traffic or None, the other deployments' names)."""
        name = self.endpoint_name(model)
        endpoint = self._get(f"online_endpoints.get {name}", ml.online_endpoints.get, name)
        if endpoint is None:
            return None, None, []
        traffic = dict(endpoint.traffic or {})  # MLClient lists every deployment here, 0 for those without traffic
        live = max(traffic, key=lambda colour: traffic[colour], default=None)
        if live is not None and not traffic[live]:
            live = None
        return endpoint, live, [colour for colour in traffic if colour != live]

    def _describe(self, ml: Any, model: str, endpoint: Any | None, live: str | None) -> Deployment | None:
        if endpoint is None or live is None:
            return None
        name = self.endpoint_name(model)
        deployment = self._get(f"online_deployments.get {name}/{live}", ml.online_deployments.get, live, name)
        version = ((deployment.tags or {}) if deployment is not None else {}).get("mlops-version")
        return Deployment("azureml", model, version, endpoint.scoring_uri or "", details={"colour": live})

    def describe(self, model: str) -> Deployment | None:
        ml = self._client()
        endpoint, live, _ = self._state(ml, model)
        return self._describe(ml, model, endpoint, live)

    # Mutations.

    def deploy(self, model: str, version: str, dry_run: bool = False) -> Deployment | list[PlannedRequest]:
        """Idempotent: when ``version`` already takes the traffic nothing is sent, but deployments a failed
        deploy left without traffic are deleted."""
        from azure.ai.ml.entities import ManagedOnlineDeployment

        version = str(version)
        ml, name = self._client(), self.endpoint_name(model)
        endpoint, live, idle = self._state(ml, model)
        current = self._describe(ml, model, endpoint, live)
        if current is not None and current.version == version:
            leftovers = [ManagedOnlineDeployment(name=colour, endpoint_name=name) for colour in idle]
            if dry_run:
                return [self.planned("delete", leftover) for leftover in leftovers]
            for leftover in leftovers:
                self._delete_deployment(ml, leftover)
            return current
        colour = "green" if live == "blue" else "blue"
        asset, environment = self.model_asset(model, version), self.environment_asset()
        deployment = self.deployment_entity(model, version, colour)
        steps: list[tuple[str, Any]] = []
        if self._get(f"models.get {model}:{version}", ml.models.get, model, version) is None:
            steps.append(("model", asset))
        if (
            self._get(
                f"environments.get {environment.name}:{environment.version}",
                ml.environments.get,
                environment.name,
                environment.version,
            )
            is None
        ):
            steps.append(("environment", environment))
        if endpoint is None:
            steps.append(("endpoint", self.endpoint_entity(model)))
        steps.append(("deployment", deployment))
        steps.append(("traffic", None))
        replaced = [ManagedOnlineDeployment(name=c, endpoint_name=name) for c in [live, *idle] if c and c != colour]
        if dry_run:
            plan = [self.planned(kind, entity) for kind, entity in steps if kind != "traffic"]
            plan.append(self.planned("traffic", self.endpoint_entity(model), {colour: 100}))
            return plan + [self.planned("delete", old) for old in replaced]
        what = f"{model} version {version}"
        for kind, entity in steps:
            if kind == "model":
                self._call(f"models.create_or_update {model}:{version}", ml.models.create_or_update, entity)
            elif kind == "environment":
                self._call(
                    f"environments.create_or_update {entity.name}:{entity.version}",
                    ml.environments.create_or_update,
                    entity,
                )
            elif kind == "endpoint":
                call = f"online_endpoints.begin_create_or_update {name}"
                self._wait(call, self._call(call, ml.online_endpoints.begin_create_or_update, entity))
            elif kind == "deployment":
                call = f"online_deployments.begin_create_or_update {name}/{colour} ({what})"
                created = self._wait(call, self._call(call, ml.online_deployments.begin_create_or_update, entity))
                state = getattr(created, "provisioning_state", None)
                if state != "Succeeded":  # traffic moves only to a healthy deployment
                    raise DeployError(f"Azure ML deployment {name}/{colour} of {what} is {state}; traffic stays")
            else:
                call = f"online_endpoints.begin_create_or_update {name} (traffic {colour}: 100)"
                current_endpoint = self._call(f"online_endpoints.get {name}", ml.online_endpoints.get, name)
                current_endpoint.traffic = {colour: 100}
                self._wait(call, self._call(call, ml.online_endpoints.begin_create_or_update, current_endpoint))
        for old in replaced:
            try:
                self._delete_deployment(ml, old)
            except DeployError as exc:
                raise DeployError(
                    f"{what} takes all the traffic on {name}, but {exc}; it holds no traffic: "
                    f"deploying {model} again deletes it"
                ) from exc
        described = self.describe(model)
        if described is None or described.version != version:
            raise DeployError(f"Azure ML endpoint {name} does not serve {what} after the traffic moved")
        return Deployment("azureml", model, version, described.url, changed=True, details=described.details)

    def _delete_deployment(self, ml: Any, deployment: Any) -> None:
        call = f"online_deployments.begin_delete {deployment.endpoint_name}/{deployment.name}"
        self._wait(
            call, self._call(call, ml.online_deployments.begin_delete, deployment.name, deployment.endpoint_name)
        )

    def delete(self, model: str, dry_run: bool = False) -> bool | list[PlannedRequest]:
        name = self.endpoint_name(model)
        ml = self._client()
        if self._get(f"online_endpoints.get {name}", ml.online_endpoints.get, name) is None:
            return [] if dry_run else False
        if dry_run:
            return [PlannedRequest("DELETE", self._url(f"onlineEndpoints/{name}"))]
        call = f"online_endpoints.begin_delete {name}"
        self._wait(call, self._call(call, ml.online_endpoints.begin_delete, name))
        return True

    def smoke(self, model: str, payload: dict[str, Any]) -> tuple[str, float]:
        import ssl

        import httpx

        ml, name = self._client(), self.endpoint_name(model)
        endpoint, live, _ = self._state(ml, model)
        described = self._describe(ml, model, endpoint, live)
        if described is None or not described.url:
            raise DeployError(f"Azure ML endpoint {name} serves nothing")
        keys = self._call(f"online_endpoints.get_keys {name}", ml.online_endpoints.get_keys, name)
        started = time.perf_counter()
        try:
            response = httpx.post(
                described.url,
                json=payload,
                headers={"Authorization": f"Bearer {keys.primary_key}"},
                timeout=120.0,
                verify=ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else True,
            )
        except httpx.HTTPError as exc:
            raise DeployError(f"smoke request to {described.url}: {type(exc).__name__}: {exc}") from exc
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise DeployError(
                f"smoke request to {described.url} answered HTTP {response.status_code}: {response.text[:300]}"
            )
        try:
            answered = response.json().get("model_version", "")
        except ValueError as exc:
            raise DeployError(f"smoke request to {described.url} answered no JSON: {response.text[:300]}") from exc
        return str(answered), seconds


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _short(exc: BaseException, limit: int = 600) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _errors() -> tuple[type[BaseException], ...]:
    """What MLClient raises: ARM answers and transport failures (AzureError), the SDK's own validation
    (MlException), credential failures (ClientAuthenticationError is an AzureError)."""
    from azure.ai.ml.exceptions import MlException
    from azure.core.exceptions import AzureError

    return AzureError, MlException
