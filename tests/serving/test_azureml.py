"""The Azure ML deployer through azure-ai-ml's MLClient, against a loopback server speaking ARM.

No Azure ML emulator exists: FakeAzureML keeps just enough of the workspace's ARM state (models,
environments, online endpoints and deployments, long-running operations, keys, the scoring URI) to answer
MLClient, which reaches it as a cloud of its own (MLClient's ``cloud`` / ``cloud_metadata`` arguments) over
TLS (MLClient sends bearer tokens over https only; the server's certificate is passed as ``ca_bundle``).
"""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit

import pytest

from mlops_platform.serving.deployers.azureml import AzureMLDeployer
from mlops_platform.serving.deployers.base import DeployError
from tests.serving.fake_cloud import Recorder

WS = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
ENDPOINT = f"{WS}/onlineEndpoints/mlops-churn"
IDENTITY = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/endpoints"
MUTATING = ("PUT", "PATCH", "DELETE", "POST")


def not_found(path):
    return 404, {"error": {"code": "ResourceNotFound", "message": f"{path} was not found"}}


class FakeAzureML:
    """ARM for one workspace. A deployment is Creating until its operation is polled (then Succeeded, or
    Failed when ``unhealthy``; ``hang`` keeps it Creating); ``fail`` answers a method and path suffix with 500."""

    def __init__(self):
        self.url = ""
        self.resources: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.ids = itertools.count(1)
        self.fail: dict[tuple[str, str], int] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        self.unhealthy = self.hang = False

    def __call__(self, method, path, body):
        path = urlsplit(path).path
        for (verb, suffix), status in self.fail.items():
            if method == verb and path.endswith(suffix):
                self.attempts[(verb, suffix)] = self.attempts.get((verb, suffix), 0) + 1
                return status, {"error": {"code": "InternalServerError", "message": "the service is unavailable"}}
        if path == "/score":
            return self.score()
        if path.startswith("/operations/"):
            return self.poll(path)
        if method == "GET" and path == WS:
            return 200, {"id": WS, "name": "ws", "location": "westeurope", "properties": {}}
        if method == "GET" and path.rsplit("/", 1)[-1] in ("versions", "deployments"):  # list
            found = [r for p, r in self.resources.items() if p.rsplit("/", 1)[0] == path]
            return 200, {"value": found}
        if method == "POST" and path == f"{ENDPOINT}/listKeys":
            return 200, {"primaryKey": "key-1", "secondaryKey": "key-2"}
        if method == "GET":
            return (200, self.resources[path]) if path in self.resources else not_found(path)
        if method == "DELETE":
            if path not in self.resources:
                return 204, {}
            for child in [p for p in self.resources if p == path or p.startswith(path + "/")]:
                del self.resources[child]
            return 200, {}
        if method == "PUT":
            return self.put(path, body)
        return 404, {"error": {"code": "NoRoute", "message": f"{method} {path}"}}

    def put(self, path, body):
        resource = {**body, "id": path, "name": path.rsplit("/", 1)[-1]}
        properties = resource.setdefault("properties", {})
        if "/models/" in path:
            properties.setdefault("flavors", {})
        if path == ENDPOINT:
            properties["scoringUri"] = f"{self.url}/score"
        if "/deployments/" not in path:
            properties["provisioningState"] = "Succeeded"
            self.resources[path] = resource
            return 200, resource
        properties["provisioningState"] = "Creating"
        properties.setdefault("scaleSettings", {"scaleType": "Default"})
        self.resources[path] = resource
        operation = f"/operations/{next(self.ids)}"
        self.operations[operation] = {"resource": path}
        return 201, resource, {"Azure-AsyncOperation": f"{self.url}{operation}", "Retry-After": "0.05"}

    def poll(self, operation):
        resource = self.resources[self.operations[operation]["resource"]]
        if self.hang:
            return 200, {"status": "InProgress"}, {"Retry-After": "0.2"}
        if self.unhealthy:
            resource["properties"]["provisioningState"] = "Failed"
            return 200, {
                "status": "Failed",
                "error": {"code": "ReadinessProbeFailed", "message": "/ready never answered"},
            }
        resource["properties"]["provisioningState"] = "Succeeded"
        return 200, {"status": "Succeeded"}

    def live(self) -> dict[str, int]:
        return {c: share for c, share in self.resources[ENDPOINT]["properties"]["traffic"].items() if share}

    def deployments(self) -> list[str]:
        return sorted(p.rsplit("/", 1)[-1] for p in self.resources if p.startswith(f"{ENDPOINT}/deployments/"))

    def score(self):
        [(colour, _)] = self.live().items()
        deployment = self.resources[f"{ENDPOINT}/deployments/{colour}"]
        return 200, {"predictions": [1], "model_version": deployment["tags"]["mlops-version"]}


@pytest.fixture
def azure(monkeypatch):
    # MLClient records the cloud it uses in this variable; the test leaves it as it found it.
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    fake = FakeAzureML()
    with Recorder(fake, tls=True) as server:
        fake.url = server.url
        deployer = AzureMLDeployer(
            subscription_id="s1",
            resource_group="rg",
            workspace="ws",
            location="westeurope",
            image_uri="mlops.azurecr.io/serving:1",
            endpoint_identity_id=IDENTITY,
            artifact_uri_template="azureml://datastores/lake/paths/mlflow/{model}/{version}",
            management_url=server.url,
            ca_bundle=server.ca_file,
            access_token="t",
            retries=1,
        )
        yield fake, server, deployer
        assert server.unauthorized == []


def mutations(server, since: int = 0) -> list[tuple[str, str, dict | None]]:
    """The mutating ARM requests sent (listKeys and the scoring call are not ARM mutations)."""
    return [(m, p, b) for m, p, b in server.sent(*MUTATING)[since:] if not p.endswith(("/listKeys", "/score"))]


def contains(sent, planned) -> bool:
    """Every field the plan names is sent with that value (MLClient adds defaults of its own)."""
    if isinstance(planned, dict):
        return isinstance(sent, dict) and all(k in sent and contains(sent[k], v) for k, v in planned.items())
    return sent == planned


def assert_sent_as_planned(plan, server, since: int) -> None:
    sent = mutations(server, since)
    assert [(m, p) for m, p, _ in sent] == [(r.method, urlsplit(r.url).path) for r in plan]
    for (_, path, body), request in zip(sent, plan, strict=True):
        assert contains(body or {}, request.body or {}), (path, body, request.body)
    assert all(r.url.startswith(server.url) for r in plan)


def test_blue_green_through_mlclient_sends_what_the_dry_run_planned(azure) -> None:
    fake, server, deployer = azure
    assert deployer.describe("churn") is None
    plan = deployer.deploy("churn", "1", dry_run=True)
    assert [(r.method, urlsplit(r.url).path.removeprefix(WS + "/")) for r in plan] == [
        ("PUT", "models/churn/versions/1"),
        ("PUT", f"environments/mlops-serving/versions/{plan[1].url.rsplit('/', 1)[-1]}"),
        ("PUT", "onlineEndpoints/mlops-churn"),
        ("PUT", "onlineEndpoints/mlops-churn/deployments/blue"),
        ("PUT", "onlineEndpoints/mlops-churn"),
    ]
    assert mutations(server) == []  # the dry run only read

    first = deployer.deploy("churn", "1")
    assert first.version == "1" and first.changed and first.details["colour"] == "blue"
    assert_sent_as_planned(plan, server, 0)
    model = fake.resources[f"{WS}/models/churn/versions/1"]["properties"]
    assert (
        model["modelUri"]
        == "azureml://subscriptions/s1/resourcegroups/rg/workspaces/ws/datastores/lake/paths/mlflow/churn/1"
    )
    [environment] = [r for p, r in fake.resources.items() if "/environments/" in p]
    routes = environment["properties"]["inferenceConfig"]
    assert (routes["livenessRoute"], routes["readinessRoute"], routes["scoringRoute"]) == (
        {"port": 8080, "path": "/live"},
        {"port": 8080, "path": "/ready"},
        {"port": 8080, "path": "/score"},
    )
    endpoint = fake.resources[ENDPOINT]
    assert endpoint["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    blue = fake.resources[f"{ENDPOINT}/deployments/blue"]["properties"]
    assert blue["environmentId"] == environment["id"] and blue["model"].endswith("/models/churn/versions/1")
    assert fake.live() == {"blue": 100}

    before = len(server.sent(*MUTATING))
    assert deployer.deploy("churn", "1").changed is False  # idempotent: reads only
    assert deployer.deploy("churn", "1", dry_run=True) == []
    assert mutations(server, before) == []

    plan = deployer.deploy("churn", "2", dry_run=True)
    assert [(r.method, urlsplit(r.url).path.removeprefix(WS + "/")) for r in plan] == [
        ("PUT", "models/churn/versions/2"),  # the environment exists: the same image is not registered again
        ("PUT", "onlineEndpoints/mlops-churn/deployments/green"),
        ("PUT", "onlineEndpoints/mlops-churn"),
        ("DELETE", "onlineEndpoints/mlops-churn/deployments/blue"),
    ]
    assert mutations(server, before) == []
    second = deployer.deploy("churn", "2")
    assert second.version == "2" and second.details["colour"] == "green"
    assert_sent_as_planned(plan, server, before)
    # The traffic moved only once green was healthy: its operation was polled before the endpoint's PUT.
    sent = [(m, p) for m, p, _ in server.sent()]
    order = sent[sent.index(("PUT", f"{ENDPOINT}/deployments/green")) :]
    polled = next(i for i, (m, p) in enumerate(order) if p.startswith("/operations/"))
    assert polled < order.index(("PUT", ENDPOINT)) < order.index(("DELETE", f"{ENDPOINT}/deployments/blue"))
    assert fake.live() == {"green": 100} and fake.deployments() == ["green"]

    answered, seconds = deployer.smoke("churn", {"dataframe_records": [{"tenure_months": None}]})
    assert answered == "2" and seconds > 0
    assert deployer.delete("churn", dry_run=True)[0].method == "DELETE"
    assert deployer.delete("churn") is True and deployer.describe("churn") is None
    assert deployer.delete("churn") is False


def test_a_500_on_deploy_names_the_call_and_blue_keeps_serving(azure) -> None:
    fake, server, deployer = azure
    deployer.deploy("churn", "1")
    fake.fail[("PUT", "/deployments/green")] = 500
    before = len(server.sent(*MUTATING))
    with pytest.raises(DeployError, match=r"online_deployments.begin_create_or_update mlops-churn/green .*version 2"):
        deployer.deploy("churn", "2")
    assert fake.attempts[("PUT", "/deployments/green")] == 2  # retries=1: one retry, then the error
    assert [m for m, _, _ in mutations(server, before)] == ["PUT", "PUT", "PUT"]  # model, green twice; no traffic
    assert fake.live() == {"blue": 100} and deployer.describe("churn").version == "1"

    fake.fail.clear()
    fake.unhealthy = True
    with pytest.raises(DeployError, match=r"mlops-churn/green .*/ready never answered"):
        deployer.deploy("churn", "2")
    assert fake.live() == {"blue": 100}

    fake.unhealthy, fake.hang = False, True
    slow = AzureMLDeployer(**{**deployer.model_dump(), "operation_timeout": 0.5})
    with pytest.raises(DeployError, match=r"green .*did not finish within 0.5 s"):
        slow.deploy("churn", "2")
    assert fake.live() == {"blue": 100}


def test_a_deployment_left_behind_is_reported_and_deleted_by_the_next_deploy(azure) -> None:
    fake, server, deployer = azure
    deployer.deploy("churn", "1")
    fake.fail[("DELETE", "/deployments/blue")] = 500
    with pytest.raises(DeployError, match=r"churn version 2 takes all the traffic on mlops-churn, but .*begin_delete"):
        deployer.deploy("churn", "2")
    assert fake.live() == {"green": 100} and fake.deployments() == ["blue", "green"]
    fake.fail.clear()
    plan = deployer.deploy("churn", "2", dry_run=True)
    assert [(r.method, urlsplit(r.url).path) for r in plan] == [("DELETE", f"{ENDPOINT}/deployments/blue")]
    before = len(server.sent(*MUTATING))
    assert deployer.deploy("churn", "2").changed is False
    assert_sent_as_planned(plan, server, before)
    assert fake.deployments() == ["green"]


def test_management_url_must_be_https() -> None:
    deployer = AzureMLDeployer(
        subscription_id="s1",
        resource_group="rg",
        workspace="ws",
        location="westeurope",
        image_uri="mlops.azurecr.io/serving:1",
        management_url="http://127.0.0.1:1",
        access_token="t",
    )
    with pytest.raises(DeployError, match="https only"):
        deployer.describe("churn")
