"""The Vertex AI deployer through google-cloud-aiplatform's REST transport, against a loopback server.

No Vertex emulator exists: FakeVertex keeps just enough of Vertex AI's v1 state (models, one endpoint per
display name, deployed models, traffic split, long-running operations) to answer the SDK's clients, and
the Recorder keeps every request they really sent.
"""

from __future__ import annotations

import itertools
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from mlops_platform.serving.deployers.base import DeployError
from mlops_platform.serving.deployers.vertex import NEW_ENDPOINT, UPLOADED_MODEL, VertexDeployer
from tests.serving.fake_cloud import Recorder

P = "projects/p1/locations/europe-west4"
TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


class FakeVertex:
    """Vertex AI's v1 REST API as far as the deployer uses it. Operations are not done when they start:
    the first poll finishes them (``instant`` finishes them at once; ``hang`` never)."""

    def __init__(self):
        self.models: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.ids = itertools.count(1)
        self.fail: dict[str, tuple[int, str]] = {}  # URL suffix -> HTTP status, message
        self.fail_operation: dict[str, str] = {}  # URL suffix -> error message of its operation
        self.hang = False

    def __call__(self, method, path, body):
        url = urlsplit(path)
        path, query = unquote(url.path), parse_qs(url.query)
        for suffix, (status, message) in self.fail.items():
            if path.endswith(suffix):
                return status, {"error": {"code": status, "message": message, "status": "INTERNAL"}}
        if "/operations/" in path and method == "GET":  # the SDK polls /ui/{name} (its first HTTP rule)
            return 200, self.poll(path.split("/", 2)[2])
        path = path.removeprefix("/v1/")
        if method == "GET" and path == f"{P}/endpoints":
            wanted = query["filter"][0].split("=", 1)[1].strip('"')
            return 200, {"endpoints": [e for e in self.endpoints.values() if e["displayName"] == wanted]}
        if method == "GET" and path in self.models:
            return 200, self.models[path]
        if method == "POST" and path == f"{P}/models:upload":
            name = f"{P}/models/{next(self.ids)}"
            return self.start(
                path,
                lambda: self.models.setdefault(name, {**body["model"], "name": name}) and None,
                {"@type": f"{TYPE}UploadModelResponse", "model": name},
            )
        if method == "POST" and path == f"{P}/endpoints":
            endpoint = {**body, "name": f"{P}/endpoints/{next(self.ids)}", "deployedModels": [], "trafficSplit": {}}
            return self.start(
                path,
                lambda: self.endpoints.setdefault(endpoint["name"], endpoint) and None,
                {"@type": f"{TYPE}Endpoint", **endpoint},
            )
        endpoint_name, _, verb = path.partition(":")
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            return 404, {"error": {"code": 404, "message": f"{endpoint_name} not found", "status": "NOT_FOUND"}}
        if method == "POST" and verb == "deployModel":
            deployed = {**body["deployedModel"], "id": str(next(self.ids))}

            def apply():
                endpoint["deployedModels"].append(deployed)
                split = body["trafficSplit"]
                endpoint["trafficSplit"] = {d["id"]: 0 for d in endpoint["deployedModels"]} | {
                    deployed["id"]: split["0"]
                }

            return self.start(path, apply, {"@type": f"{TYPE}DeployModelResponse", "deployedModel": deployed})
        if method == "POST" and verb == "undeployModel":
            gone = body["deployedModelId"]

            def apply():
                endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] != gone]
                endpoint["trafficSplit"].pop(gone, None)

            return self.start(path, apply, {"@type": f"{TYPE}UndeployModelResponse"})
        if method == "POST" and verb == "predict":
            serving = max(endpoint["trafficSplit"], key=endpoint["trafficSplit"].get)
            return 200, {"predictions": [{"prediction": 1} for _ in body["instances"]], "deployedModelId": serving}
        if method == "DELETE" and not verb:
            return self.start(
                path,
                lambda: self.endpoints.pop(endpoint_name) and None,
                {"@type": "type.googleapis.com/google.protobuf.Empty"},
            )
        return 404, {"error": {"code": 404, "message": f"no route {method} {path}", "status": "NOT_FOUND"}}

    def start(self, path, apply, response):
        name = f"{P}/operations/{next(self.ids)}"
        error = next((m for suffix, m in self.fail_operation.items() if path.endswith(suffix)), None)
        self.operations[name] = {"apply": apply, "response": response, "error": error, "done": False}
        return 200, {"name": name, "done": False}

    def poll(self, name):
        operation = self.operations[name]
        if not operation["done"] and not self.hang:
            operation["done"] = True
            if operation["error"] is None:
                operation["apply"]()
        if not operation["done"]:
            return {"name": name, "done": False}
        if operation["error"] is not None:
            return {"name": name, "done": True, "error": {"code": 9, "message": operation["error"]}}
        return {"name": name, "done": True, "response": operation["response"]}

    def serving(self) -> list[str]:
        """Display names of the deployed models taking traffic."""
        [endpoint] = self.endpoints.values()
        split = endpoint["trafficSplit"]
        return [d["displayName"] for d in endpoint["deployedModels"] if split.get(d["id"])]


@pytest.fixture
def vertex():
    fake = FakeVertex()
    with Recorder(fake) as server:
        deployer = VertexDeployer(
            project="p1",
            location="europe-west4",
            image_uri="europe-docker.pkg.dev/p1/mlops/serving:1",
            artifact_uri_template="gs://lake/mlflow/{model}/{version}",
            service_account="mlops-vertex@p1.iam.gserviceaccount.com",
            api_endpoint=server.url,
            access_token="t",
        )
        yield fake, server, deployer
        assert server.unauthorized == []  # every request carried the bearer token


def mutations(server, since: int = 0) -> list[tuple[str, str, dict | None]]:
    return [
        (m, urlsplit(p).path, b)
        for m, p, b in server.requests[since:]
        if m in MUTATING and not p.split("?")[0].endswith(":predict")
    ]


def as_sent(plan, server, names: dict[str, str]) -> list[tuple[str, str, dict | None]]:
    """The plan as the server saw it: placeholders replaced by the names the live run created."""

    def fill(value):
        if isinstance(value, str):
            for placeholder, name in names.items():
                value = value.replace(placeholder, name)
            return value
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    return [(r.method, fill(r.url).removeprefix(server.url), fill(r.body)) for r in plan]


def test_the_sdk_sends_what_the_dry_run_planned_and_the_new_model_replaces_the_old(vertex) -> None:
    fake, server, deployer = vertex
    plan = deployer.deploy("churn", "1", dry_run=True)
    assert [(r.method, r.url.removeprefix(server.url)) for r in plan] == [
        ("POST", f"/v1/{P}/models:upload"),
        ("POST", f"/v1/{P}/endpoints"),
        ("POST", f"/v1/{NEW_ENDPOINT}:deployModel"),
    ]
    assert mutations(server) == [] and not fake.models  # the dry run only read

    first = deployer.deploy("churn", "1")
    assert first.version == "1" and first.changed
    [endpoint] = fake.endpoints
    [uploaded] = fake.models
    assert mutations(server) == as_sent(plan, server, {NEW_ENDPOINT: endpoint, UPLOADED_MODEL: uploaded})
    model = fake.models[uploaded]
    spec = model["containerSpec"]
    assert model["artifactUri"] == "gs://lake/mlflow/churn/1" and model["labels"]["mlops-version"] == "1"
    assert (spec["predictRoute"], spec["healthRoute"], spec["ports"]) == (
        "/predict",
        "/health",
        [{"containerPort": 8080}],
    )
    assert {"name": "MLOPS_SERVING_MODEL", "value": "churn"} in spec["env"]
    deployed = fake.endpoints[endpoint]["deployedModels"][0]
    assert deployed["serviceAccount"] == "mlops-vertex@p1.iam.gserviceaccount.com"
    assert fake.serving() == ["mlops-churn-v1"]

    before = len(server.requests)
    assert deployer.deploy("churn", "1").changed is False  # idempotent: reads only
    assert deployer.deploy("churn", "1", dry_run=True) == []
    assert mutations(server, before) == []

    old_id = first.details["deployed_model_id"]
    plan = deployer.deploy("churn", "2", dry_run=True)
    assert mutations(server, before) == []
    before = len(server.requests)
    second = deployer.deploy("churn", "2")
    assert second.version == "2" and second.changed and second.details["deployed_model_id"] != old_id
    [new_model] = set(fake.models) - {uploaded}
    sent = mutations(server, before)
    assert sent == as_sent(plan, server, {UPLOADED_MODEL: new_model})
    assert [path.rsplit(":", 1)[-1] for _, path, _ in sent] == ["upload", "deployModel", "undeployModel"]
    assert sent[1][2]["trafficSplit"] == {"0": 100} and sent[2][2] == {"deployedModelId": old_id}
    assert fake.serving() == ["mlops-churn-v2"] and len(fake.endpoints[endpoint]["deployedModels"]) == 1

    assert deployer.describe("churn").version == "2"
    answered, seconds = deployer.smoke("churn", {"dataframe_records": [{"tenure_months": None}]})
    assert answered == "2" and seconds > 0

    assert [(r.method, r.url.removeprefix(server.url)) for r in deployer.delete("churn", dry_run=True)] == [
        ("POST", f"/v1/{endpoint}:undeployModel"),
        ("DELETE", f"/v1/{endpoint}"),
    ]
    assert deployer.delete("churn") is True and deployer.describe("churn") is None
    assert deployer.delete("churn") is False


def test_a_500_on_deploy_names_the_call_and_the_previous_model_keeps_serving(vertex) -> None:
    fake, server, deployer = vertex
    deployer.deploy("churn", "1")
    fake.fail[":deployModel"] = (500, "backend unavailable")
    before = len(server.requests)
    with pytest.raises(DeployError, match=r"deploy_model of churn version 2 .*500.*backend unavailable"):
        deployer.deploy("churn", "2")
    assert [p.rsplit(":", 1)[-1] for _, p, _ in mutations(server, before)] == ["upload", "deployModel"]  # no undeploy
    assert fake.serving() == ["mlops-churn-v1"] and deployer.describe("churn").version == "1"

    del fake.fail[":deployModel"]
    fake.fail_operation[":deployModel"] = "the container never became healthy"
    with pytest.raises(DeployError, match=r"deploy_model of churn version 2 .*never became healthy"):
        deployer.deploy("churn", "2")
    assert fake.serving() == ["mlops-churn-v1"]

    fake.fail_operation.clear()
    fake.hang = True
    with pytest.raises(DeployError, match="upload_model of churn version 2 did not finish within 1 s"):
        deployer.model_copy(update={"operation_timeout": 1.0}).deploy("churn", "2")
    assert fake.serving() == ["mlops-churn-v1"]


def test_an_undeploy_left_behind_is_reported_and_cleaned_up_by_the_next_deploy(vertex) -> None:
    fake, server, deployer = vertex
    first = deployer.deploy("churn", "1")
    fake.fail[":undeployModel"] = (500, "try later")
    with pytest.raises(DeployError, match=r"churn version 2 takes all the traffic, but .*undeploy_model"):
        deployer.deploy("churn", "2")
    assert fake.serving() == ["mlops-churn-v2"]
    del fake.fail[":undeployModel"]
    [endpoint] = fake.endpoints
    plan = deployer.deploy("churn", "2", dry_run=True)
    assert as_sent(plan, server, {}) == [
        ("POST", f"/v1/{endpoint}:undeployModel", {"deployedModelId": first.details["deployed_model_id"]})
    ]
    before = len(server.requests)
    assert deployer.deploy("churn", "2").changed is False
    assert mutations(server, before) == as_sent(plan, server, {})
    assert len(fake.endpoints[endpoint]["deployedModels"]) == 1
