"""Checks of deploy/helm against the Terraform modules and the Dockerfile (no cluster, no Helm).

The Dagster values are merged the way Helm merges several -f files (maps deep-merged, lists and
scalars replaced) and compared with what the Terraform modules create: the spot pool's label and
taints, the service-account names, the outputs that fill the placeholders.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster_chart import helm_merge

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"
TERRAFORM = REPO / "deploy" / "terraform"
CLOUDS = ("aws", "gcp", "azure")
PG_SECRET = "dagster-postgresql-secret"
PLATFORM_ENV = {"MLOPS_PROFILE", "MLOPS_STORAGE_ROOT", "MLOPS_MLFLOW_TRACKING_URI", "MLOPS_MLFLOW_ARTIFACT_ROOT"}
COMPUTE_LOGS = {"aws": "S3ComputeLogManager", "gcp": "GCSComputeLogManager", "azure": "AzureBlobComputeLogManager"}
SA_ANNOTATION = {
    "aws": "eks.amazonaws.com/role-arn",
    "gcp": "iam.gke.io/gcp-service-account",
    "azure": "azure.workload.identity/client-id",
}
EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dagster_values(cloud: str) -> dict[str, Any]:
    return helm_merge(load_yaml(HELM / "dagster" / "values.yaml"), load_yaml(HELM / "dagster" / f"values-{cloud}.yaml"))


def manifests(*paths: Path) -> list[dict[str, Any]]:
    docs = []
    for path in paths:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def mlflow_docs(cloud: str) -> dict[str, dict[str, Any]]:
    docs = manifests(HELM / "mlflow" / "mlflow.yaml", HELM / "mlflow" / f"serviceaccount-{cloud}.yaml")
    return {d["kind"]: d for d in docs}


def user_deployment(values: dict[str, Any]) -> dict[str, Any]:
    deployments = values["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1
    return deployments[0]


# --- what the Terraform modules define -----------------------------------------------------------


def spot_pool_contract(terraform, cloud: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(node labels, taints) of the module's spot pool, read from the resource itself."""
    resources = terraform.module(cloud)["resource"]
    if cloud == "aws":
        pool = resources["aws_eks_node_group"]["spot"]
        labels, taints = pool["labels"], pool["taint"]
    elif cloud == "gcp":
        config = resources["google_container_node_pool"]["spot"]["node_config"][0]
        labels, taints = config["labels"], config["taint"]
    else:
        pool = resources["azurerm_kubernetes_cluster_node_pool"]["spot"]
        labels = pool["node_labels"]
        taints = []
        for spec in pool["node_taints"]:
            key_value, effect = spec.rsplit(":", 1)
            key, value = key_value.split("=", 1)
            taints.append({"key": key, "value": value, "effect": effect})
    return labels, [
        {"key": t["key"], "value": t["value"], "effect": EFFECTS.get(t["effect"], t["effect"])} for t in taints
    ]


def system_pool_labels(terraform, cloud: str) -> dict[str, str]:
    resources = terraform.module(cloud)["resource"]
    if cloud == "aws":
        return resources["aws_eks_node_group"]["system"]["labels"]
    if cloud == "gcp":
        return resources["google_container_node_pool"]["system"]["node_config"][0]["labels"]
    return resources["azurerm_kubernetes_cluster"]["this"]["default_node_pool"][0]["node_labels"]


def helm_env_keys(terraform, cloud: str) -> set[str]:
    return set(terraform.module(cloud)["output"]["helm_env"]["value"])


def _scalars(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _scalars(value)]
    if isinstance(node, list):
        return [v for value in node for v in _scalars(value)]
    return [node]


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in _keys(value)}
    if isinstance(node, list):
        return {k for value in node for k in _keys(value)}
    return set()


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(HELM.rglob("*.yaml")), ids=lambda p: str(p.relative_to(HELM)))
def test_every_yaml_file_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_runs_and_steps_tolerate_every_spot_taint_and_select_the_spot_pool(terraform, cloud: str) -> None:
    labels, taints = spot_pool_contract(terraform, cloud)
    pod_spec = dagster_values(cloud)["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    tolerations = pod_spec["tolerations"]
    for taint in taints:
        assert {**taint, "operator": "Equal"} in tolerations, f"runs do not tolerate the spot taint {taint}"
    selector = pod_spec["nodeSelector"]
    assert selector and selector.items() <= labels.items(), f"{selector} does not select the spot pool {labels}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_services_run_on_the_system_pool(terraform, cloud: str) -> None:
    labels = system_pool_labels(terraform, cloud)
    values = dagster_values(cloud)
    selectors = {
        "webserver": values["dagsterWebserver"]["nodeSelector"],
        "daemon": values["dagsterDaemon"]["nodeSelector"],
        "code server": user_deployment(values)["nodeSelector"],
        "mlflow": mlflow_docs(cloud)["Deployment"]["spec"]["template"]["spec"]["nodeSelector"],
    }
    for who, selector in selectors.items():
        assert selector.items() <= labels.items(), f"{who} selects {selector}, system pool has {labels}"
        assert "tolerations" not in selector


@pytest.mark.parametrize("cloud", CLOUDS)
def test_service_account_and_namespace_match_the_workload_identity(terraform, cloud: str) -> None:
    variables = terraform.module(cloud)["variable"]
    namespace = variables["k8s_namespace"]["default"]
    values = dagster_values(cloud)
    assert values["global"]["serviceAccountName"] == variables["dagster_service_account"]["default"]
    assert values["serviceAccount"]["name"] == variables["dagster_service_account"]["default"]
    assert values["serviceAccount"]["annotations"][SA_ANNOTATION[cloud]] == "${DAGSTER_WORKLOAD_IDENTITY}"
    docs = mlflow_docs(cloud)
    assert docs["ServiceAccount"]["metadata"]["name"] == variables["mlflow_service_account"]["default"]
    assert docs["ServiceAccount"]["metadata"]["annotations"][SA_ANNOTATION[cloud]] == "${MLFLOW_WORKLOAD_IDENTITY}"
    assert (
        docs["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"]
        == variables["mlflow_service_account"]["default"]
    )
    for doc in manifests(
        *[HELM / p for p in ("platform/namespace.yaml", f"platform/platform-env-{cloud}.yaml")]
    ) + list(docs.values()):
        assert namespace in (doc["metadata"].get("namespace"), doc["metadata"]["name"])


@pytest.mark.parametrize("cloud", CLOUDS)
def test_postgres_is_external_and_mlflow_does_not_share_dagsters_secret(cloud: str) -> None:
    values = dagster_values(cloud)
    assert values["global"]["postgresqlSecretName"] == PG_SECRET
    assert values["generatePostgresqlPasswordSecret"] is False
    pg = values["postgresql"]
    assert pg["enabled"] is False and pg["postgresqlHost"] == "${DB_HOST}" and pg["postgresqlDatabase"] == "dagster"
    assert pg["postgresqlParams"]["sslmode"] == "require"
    refs = re.findall(
        r"secretKeyRef:\s*\n\s*name: (\S+)\s*\n\s*key: (\S+)", (HELM / "mlflow" / "mlflow.yaml").read_text()
    )
    # MLflow has its own user and secret (test_deploy_security.py); Dagster's is not in its pods
    assert refs and set(refs) == {("mlflow-postgresql-secret", "postgresql-password")}


def _dockerfile_cmd() -> list[str]:
    cmd = [
        line for line in (REPO / "deploy" / "docker" / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")
    ]
    return json.loads(cmd[-1][4:])


@pytest.mark.parametrize("cloud", CLOUDS)
def test_user_code_deployment_runs_our_image_and_code_location(cloud: str) -> None:
    deployment = user_deployment(dagster_values(cloud))
    assert deployment["image"] == {
        "repository": "${USER_CODE_IMAGE_REPOSITORY}",
        "tag": "${IMAGE_TAG}",
        "pullPolicy": "IfNotPresent",
    }
    cmd = _dockerfile_cmd()
    assert deployment["dagsterApiGrpcArgs"] == cmd[cmd.index("-m") : cmd.index("-m") + 2]
    assert str(deployment["port"]) == cmd[cmd.index("-p") + 1]
    # off: the code server's placement and resources must not reach runs (test_deploy_dagster.py)
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is False
    assert {"name": "mlops-platform-env"} in deployment["envConfigMaps"]
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    for container in (
        mlflow_docs(cloud)["Deployment"]["spec"]["template"]["spec"]["initContainers"]
        + mlflow_docs(cloud)["Deployment"]["spec"]["template"]["spec"]["containers"]
    ):
        assert container["image"] == "${USER_CODE_IMAGE_REPOSITORY}:${IMAGE_TAG}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_run_launcher_monitoring_retries_and_concurrency(cloud: str) -> None:
    values = dagster_values(cloud)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    daemon = values["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] is True and daemon["runMonitoring"]["maxResumeRunAttempts"] >= 1
    assert daemon["runRetries"]["enabled"] is True and daemon["runRetries"]["maxRetries"] >= 1
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    # Dagster refuses run limits both in the run coordinator and under concurrency > runs
    # (test_deploy_dagster.py feeds the rendered instance to Dagster): they live under concurrency.
    assert not daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    runs = values["concurrency"]["runs"]
    assert runs["maxConcurrentRuns"] > 0 and runs["tagConcurrencyLimits"]
    assert values["concurrency"]["pools"]["defaultLimit"] >= 1
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_compute_logs_go_to_the_cloud_bucket(cloud: str) -> None:
    manager = dagster_values(cloud)["computeLogManager"]
    assert manager["type"] == COMPUTE_LOGS[cloud]
    config = next(iter(manager["config"].values()))
    bucket = config.get("bucket") or config.get("container")
    assert bucket == "${BUCKET}" and config["prefix"] == "${COMPUTE_LOGS_PREFIX}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_platform_settings_configmap(cloud: str) -> None:
    configmap = load_yaml(HELM / "platform" / f"platform-env-{cloud}.yaml")
    data = configmap["data"]
    assert configmap["metadata"]["name"] == "mlops-platform-env"
    assert set(data) >= PLATFORM_ENV
    assert data["MLOPS_PROFILE"] == cloud
    assert data["MLOPS_STORAGE_ROOT"] == "${MLOPS_STORAGE_ROOT}"
    assert data["MLOPS_MLFLOW_ARTIFACT_ROOT"] == "${MLOPS_MLFLOW_ARTIFACT_ROOT}"
    assert data["MLOPS_MLFLOW_TRACKING_URI"] == "http://mlflow.mlops.svc.cluster.local:5000"
    mlflow = mlflow_docs(cloud)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {"configMapRef": {"name": "mlops-platform-env"}} in mlflow["envFrom"]


def test_mlflow_is_reachable_only_inside_the_namespace() -> None:
    docs = manifests(*HELM.rglob("*.yaml"))
    kinds = {d.get("kind") for d in docs}
    assert "Ingress" not in kinds and "Route" not in kinds
    for doc in docs:
        if doc.get("kind") == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", doc["metadata"]["name"]
    values = [load_yaml(p) for p in (HELM / "dagster").glob("*.yaml")] + docs
    for forbidden in ("LoadBalancer", "NodePort"):
        assert forbidden not in _scalars(values), f"{forbidden} found in deploy/helm"
    assert "hostNetwork" not in _keys(values)
    mlflow = {d["kind"]: d for d in manifests(HELM / "mlflow" / "mlflow.yaml")}
    policy = mlflow["NetworkPolicy"]["spec"]
    assert (
        policy["podSelector"]["matchLabels"].items()
        <= mlflow["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    )
    assert "Ingress" in policy["policyTypes"]
    for rule in policy["ingress"]:
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, f"ingress peer {peer} reaches beyond the namespace"
        assert rule["ports"] == [{"protocol": "TCP", "port": 5000}]
    args = mlflow["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-serve-artifacts" in args
    assert any(a.startswith("--allowed-hosts=") and "*" not in a.split("=", 1)[1].split(",") for a in args)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_placeholders_are_all_terraform_outputs(terraform, render, cloud: str) -> None:
    available = helm_env_keys(terraform, cloud) | set(render.EXTRA_KEYS)
    for rel in render.files_for(cloud):
        used = render.placeholders((HELM / rel).read_text())
        assert used <= available, f"{rel}: no Terraform helm_env output for {sorted(used - available)}"
    for env in ("dev", "prod"):
        assert terraform.env(cloud, env)["output"]["helm_env"]["value"] == "${module.platform.helm_env}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_render_fills_every_placeholder(terraform, render, tmp_path: Path, cloud: str) -> None:
    values = {key: f"test-{key.lower()}" for key in helm_env_keys(terraform, cloud)} | {"IMAGE_TAG": "1.0.0"}
    written = render.render(cloud, values, tmp_path)
    assert {p.relative_to(tmp_path) for p in written} == set(render.files_for(cloud))
    for path in written:
        text = path.read_text()
        assert not render.placeholders(text), path
        assert [d for d in yaml.safe_load_all(text) if d], path
    other_clouds = {c for c in CLOUDS if c != cloud}
    assert not [p for p in written if any(p.stem.endswith(f"-{c}") for c in other_clouds)]


def test_render_refuses_missing_values(render) -> None:
    with pytest.raises(KeyError, match="DB_HOST"):
        render.render_text('host: "${DB_HOST}"', {})
