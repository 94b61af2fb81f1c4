"""The Azure ML deployer's exact ARM REST requests against a loopback server keeping the endpoint's
state (azure-ai-ml's own client was not pointed at loopback: these are the requests it would make)."""

from __future__ import annotations

from mlops_platform.serving.deployers.azureml import AzureMLDeployer
from tests.serving.fake_cloud import Recorder


class FakeAzure:
    def __init__(self):
        self.endpoint = None
        self.deployments: dict[str, dict] = {}
        self.environments: dict[str, dict] = {}

    def __call__(self, method, path, body):
        path = path.split("?")[0].split("/workspaces/ws/")[1]
        if path.startswith("models/"):
            return 200, {"id": path}
        if path.startswith("environments/"):
            self.environments[path] = body
            return 200, {"id": path}
        if path == "onlineEndpoints/mlops-churn":
            if method == "GET":
                return (200, self.endpoint) if self.endpoint else (404, {})
            if method == "PUT":
                self.endpoint = {
                    "properties": {
                        "traffic": {},
                        "scoringUri": "https://mlops-churn.westeurope.inference.ml.azure.com/score",
                    }
                }
            elif method == "PATCH":
                self.endpoint["properties"]["traffic"] = body["properties"]["traffic"]
            elif method == "DELETE":
                self.endpoint = None
            return 200, self.endpoint or {}
        colour = path.rsplit("/", 1)[1]
        if method == "PUT":
            self.deployments[colour] = {**body, "properties": {**body["properties"], "provisioningState": "Succeeded"}}
        if method == "DELETE":
            self.deployments.pop(colour, None)
            return 200, {}
        return (200, self.deployments[colour]) if colour in self.deployments else (404, {})


def test_blue_green_moves_traffic_after_the_new_deployment_is_healthy() -> None:
    fake = FakeAzure()
    with Recorder(fake) as server:
        deployer = AzureMLDeployer(
            subscription_id="s1",
            resource_group="rg",
            workspace="ws",
            location="westeurope",
            image_uri="mlops.azurecr.io/serving:1",
            artifact_uri_template="azureml://datastores/lake/paths/mlflow/{model}/{version}",
            management_url=server.url,
            access_token="t",
        )
        assert deployer.describe("churn") is None
        first = deployer.deploy("churn", "1")
        assert first.version == "1" and first.details["colour"] == "blue"
        blue = fake.deployments["blue"]["properties"]
        [(environment, body)] = fake.environments.items()
        assert blue["environmentId"].endswith(f"/workspaces/ws/{environment}")
        assert body["properties"]["image"] == "mlops.azurecr.io/serving:1"
        routes = body["properties"]["inferenceConfig"]
        assert (routes["scoringRoute"], routes["livenessRoute"], routes["readinessRoute"]) == (
            {"port": 8080, "path": "/score"},
            {"port": 8080, "path": "/live"},
            {"port": 8080, "path": "/ready"},
        )
        assert deployer.deploy("churn", "1").changed is False
        plan = deployer.deploy("churn", "2", dry_run=True)
        assert [(r.method, r.url.split("/workspaces/ws/")[1].split("?")[0]) for r in plan] == [
            ("PUT", "models/churn/versions/2"),
            ("PUT", environment),
            ("PUT", "onlineEndpoints/mlops-churn/deployments/green"),
            ("PATCH", "onlineEndpoints/mlops-churn"),
            ("DELETE", "onlineEndpoints/mlops-churn/deployments/blue"),
        ]
        assert "green" not in fake.deployments  # the dry run sent nothing
        second = deployer.deploy("churn", "2")
        assert second.version == "2" and second.details["colour"] == "green"
        order = [(m, p.split("?")[0].rsplit("/", 1)[-1]) for m, p, _ in server.requests if m != "GET"]
        assert order.index(("PATCH", "mlops-churn")) < order.index(("DELETE", "blue"))
        assert set(fake.deployments) == {"green"}
        assert deployer.delete("churn") is True and deployer.delete("churn") is False
