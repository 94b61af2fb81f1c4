"""The Vertex AI deployer's exact REST requests, against a loopback server that keeps Vertex's state.
No Vertex emulator exists; the requests are Vertex's v1 REST API, as the SDK's REST transport sends them."""

from __future__ import annotations

import itertools
from urllib.parse import unquote

from mlops_platform.serving.deployers.vertex import VertexDeployer
from tests.serving.fake_cloud import Recorder

P = "/v1/projects/p1/locations/europe-west4"


class FakeVertex:
    def __init__(self):
        self.models: dict[str, dict] = {}
        self.endpoint: dict | None = None
        self.ids = itertools.count(1)

    def __call__(self, method, path, body):
        path = unquote(path)
        done = lambda response: (200, {"name": f"{P}/operations/{next(self.ids)}", "done": True, "response": response})  # noqa: E731
        if method == "GET" and path.startswith(f"{P}/endpoints?filter="):
            return 200, {"endpoints": [self.endpoint] if self.endpoint else []}
        if method == "POST" and path == f"{P}/models:upload":
            name = f"{P.removeprefix('/v1/')}/models/{next(self.ids)}"
            self.models[name] = body["model"]
            return done({"model": name})
        if method == "POST" and path == f"{P}/endpoints":
            self.endpoint = {"name": f"{P.removeprefix('/v1/')}/endpoints/77", "deployedModels": [], "trafficSplit": {}}
            return done(self.endpoint)
        if method == "POST" and path.endswith(":deployModel"):
            deployed = {"id": str(next(self.ids)), "model": body["deployedModel"]["model"]}
            self.endpoint["deployedModels"].append(deployed)
            self.endpoint["trafficSplit"] = {deployed["id"]: 100}
            return done({"deployedModel": deployed})
        if method == "POST" and path.endswith(":undeployModel"):
            self.endpoint["deployedModels"] = [
                d for d in self.endpoint["deployedModels"] if d["id"] != body["deployedModelId"]
            ]
            return done({})
        if method == "GET" and "/models/" in path:
            return 200, self.models[path.removeprefix("/v1/")]
        if method == "DELETE":
            self.endpoint = None
            return done({})
        return 404, {"error": "unexpected"}


def test_upload_deploy_with_traffic_then_undeploy_the_previous_model() -> None:
    fake = FakeVertex()
    with Recorder(fake) as server:
        deployer = VertexDeployer(
            project="p1",
            location="europe-west4",
            image_uri="europe-docker.pkg.dev/p1/mlops/serving:1",
            artifact_uri_template="gs://lake/mlflow/{model}/{version}",
            api_endpoint=server.url,
            access_token="t",
        )
        plan = deployer.deploy("churn", "1", dry_run=True)
        assert [(r.method, r.url.removeprefix(server.url)) for r in plan] == [
            ("POST", f"{P}/models:upload"),
            ("POST", f"{P}/endpoints"),
            ("POST", "/v1/<new endpoint>:deployModel"),
        ]
        assert not fake.models  # nothing sent but reads
        first = deployer.deploy("churn", "1")
        assert first.version == "1" and first.changed
        upload = next(b for m, p, b in server.requests if p.endswith("models:upload"))
        spec = upload["model"]["containerSpec"]
        assert upload["model"]["artifactUri"] == "gs://lake/mlflow/churn/1"
        assert spec["predictRoute"] == "/predict" and spec["healthRoute"] == "/health"
        assert {"name": "MLOPS_SERVING_MODEL", "value": "churn"} in spec["env"]
        assert deployer.deploy("churn", "1").changed is False  # idempotent
        old_id = first.details["deployed_model_id"]
        second = deployer.deploy("churn", "2")
        assert second.version == "2"
        deploys = [b for m, p, b in server.requests if p.endswith(":deployModel")]
        assert deploys[-1]["trafficSplit"] == {"0": 100}
        undeploys = [b for m, p, b in server.requests if p.endswith(":undeployModel")]
        assert undeploys == [{"deployedModelId": old_id}]  # only after the new one took the traffic
        assert [d["id"] for d in fake.endpoint["deployedModels"]] == [second.details["deployed_model_id"]]
        assert deployer.delete("churn") is True and deployer.describe("churn") is None
