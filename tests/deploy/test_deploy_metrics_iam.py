"""The Dagster identity of each cloud may send the platform's metrics, and no more (issue 10).

The metrics sinks (mlops_platform/profiles/metrics.py) run in the code server, run and step pods, all
under the Dagster workload identity: CloudWatch PutMetricData in the namespace NAMESPACE, Cloud
Monitoring time series in GOOGLE_CLOUD_PROJECT, Azure Monitor custom metrics on the resource named by
MLOPS_AZURE_MONITOR_RESOURCE_ID. Read from the Terraform and Helm files (python-hcl2, PyYAML), no cloud;
the AWS policy is evaluated with the IAM evaluator of test_deploy_landing.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from test_deploy_landing import HELM, _resolved_statements, allowed, resolve

from mlops_platform.profiles.metrics import NAMESPACE, CloudWatchSink

DAGSTER_ROLE = ("AWS", "${aws_iam_role.dagster.arn}")
GCP_DAGSTER = "serviceAccount:${google_service_account.dagster.email}"
AZURE_DAGSTER = '${azurerm_user_assigned_identity.workload["dagster"].principal_id}'
AKS = "${azurerm_kubernetes_cluster.this.id}"


def _configmap(cloud: str) -> dict[str, str]:
    return yaml.safe_load((HELM / "platform" / f"platform-env-{cloud}.yaml").read_text())["data"]


# --- AWS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws(terraform) -> dict[str, Any]:
    return terraform.module("aws")


def _cloudwatch_statements(doc: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in doc if any(a.lower().startswith("cloudwatch:") for a in s.get("actions", []))]


def test_dagster_may_put_metric_data_only_in_the_platform_namespace(aws) -> None:
    doc = _resolved_statements(aws, "dagster")
    (grant,) = _cloudwatch_statements(doc)
    assert grant.get("effect", "Allow") == "Allow"
    assert grant["actions"] == ["cloudwatch:PutMetricData"]
    assert grant["resources"] == ["*"]  # PutMetricData has no resource type
    assert grant["condition"] == [{"test": "StringEquals", "variable": "cloudwatch:namespace", "values": [NAMESPACE]}]
    # What the sink sends is what the policy admits; everything else is refused.
    assert CloudWatchSink().namespace == NAMESPACE
    put = "cloudwatch:PutMetricData"
    assert allowed(doc, DAGSTER_ROLE, put, "*", {"cloudwatch:namespace": NAMESPACE})
    for namespace in ("AWS/EC2", "/aws/sagemaker/Endpoints", f"{NAMESPACE}-other", NAMESPACE.upper()):
        assert not allowed(doc, DAGSTER_ROLE, put, "*", {"cloudwatch:namespace": namespace}), namespace
    assert not allowed(doc, DAGSTER_ROLE, put, "*", {}), "a request without a namespace key passes"
    for action in ("cloudwatch:GetMetricData", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"):
        assert not allowed(doc, DAGSTER_ROLE, action, "*", {"cloudwatch:namespace": NAMESPACE}), action


def test_the_namespace_check_would_catch_a_grant_without_its_condition(aws) -> None:
    loose = [{**s, "condition": []} for s in _resolved_statements(aws, "dagster")]
    assert allowed(loose, DAGSTER_ROLE, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/EC2"})


def test_the_metrics_grant_sits_on_the_dagster_role_policy(aws) -> None:
    attached = aws["resource"]["aws_iam_role_policy"]["dagster"]
    assert attached["role"] == "${aws_iam_role.dagster.id}"
    assert attached["policy"] == "${data.aws_iam_policy_document.dagster.json}"
    # the role is the one the Dagster pods assume (IRSA) and the chart annotates
    assert aws["output"]["helm_env"]["value"]["DAGSTER_WORKLOAD_IDENTITY"] == "${aws_iam_role.dagster.arn}"
    assert resolve(aws, "${local.metrics_namespace}") == NAMESPACE
    # the ConfigMap sends to the stack's region
    assert _configmap("aws")["AWS_REGION"] == "${CLOUD_REGION}"


# --- GCP -----------------------------------------------------------------------------------------


def test_dagster_writes_metrics_in_the_project_its_pods_send_to(terraform) -> None:
    gcp = terraform.module("gcp")
    bindings = [b for b in gcp["resource"]["google_project_iam_member"].values() if b["member"] == GCP_DAGSTER]
    monitoring = [b for b in bindings if "monitoring" in str(b["role"])]
    assert [(b["project"], b["role"]) for b in monitoring] == [("${var.project_id}", "roles/monitoring.metricWriter")]
    assert "condition" not in monitoring[0]
    # The sink sends to GOOGLE_CLOUD_PROJECT, which the ConfigMap fills with that same project.
    assert _configmap("gcp")["GOOGLE_CLOUD_PROJECT"] == "${GCP_PROJECT}"
    assert gcp["output"]["helm_env"]["value"]["GCP_PROJECT"] == "${var.project_id}"
    # Dagster's pods act as this service account (Workload Identity), not as the node service account.
    wi = gcp["resource"]["google_service_account_iam_member"]["workload_identity"]
    assert wi["for_each"]["dagster"]["gsa"] == "${google_service_account.dagster.name}"


# --- Azure ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def azure(terraform) -> dict[str, Any]:
    return terraform.module("azure")


def test_dagster_publishes_metrics_on_the_resource_the_configmap_names(azure) -> None:
    publishers = [
        b
        for b in azure["resource"]["azurerm_role_assignment"].values()
        if b["role_definition_name"] == "Monitoring Metrics Publisher"
    ]
    assert [(b["principal_id"], b["scope"]) for b in publishers] == [(AZURE_DAGSTER, AKS)]
    outputs = azure["output"]
    assert outputs["azure_monitor_resource_id"]["value"] == AKS
    assert outputs["helm_env"]["value"]["AZURE_MONITOR_RESOURCE_ID"] == AKS
    data = _configmap("azure")
    assert data["MLOPS_AZURE_MONITOR_RESOURCE_ID"] == "${AZURE_MONITOR_RESOURCE_ID}"
    # The sink posts to the region of MLOPS_AZUREML_LOCATION (no MLOPS_AZURE_MONITOR_REGION): the stack's,
    # which is where the cluster is.
    assert "MLOPS_AZURE_MONITOR_REGION" not in data
    assert data["MLOPS_AZUREML_LOCATION"] == "${CLOUD_REGION}"
    cluster = azure["resource"]["azurerm_kubernetes_cluster"]["this"]
    assert cluster["location"] == "${azurerm_resource_group.this.location}"
    assert outputs["helm_env"]["value"]["CLOUD_REGION"] == "${azurerm_resource_group.this.location}"


def test_the_azure_identity_that_publishes_is_the_one_the_dagster_pods_use(azure) -> None:
    federated = azure["resource"]["azurerm_federated_identity_credential"]["workload"]
    assert federated["user_assigned_identity_id"] == "${azurerm_user_assigned_identity.workload[each.key].id}"
    assert azure["locals"]["federated"]["dagster"] == "${var.dagster_service_account}"
    helm_env = azure["output"]["helm_env"]["value"]
    assert helm_env["DAGSTER_WORKLOAD_IDENTITY"] == '${azurerm_user_assigned_identity.workload["dagster"].client_id}'


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_environments_pass_the_metrics_resource_through(terraform, env: str) -> None:
    output = terraform.env("azure", env)["output"]["azure_monitor_resource_id"]
    assert output["value"] == "${module.platform.azure_monitor_resource_id}"


# --- the serving image and the subscription in helm_env ------------------------------------------

SERVING_REPOSITORY = {
    "aws": '${aws_ecr_repository.this["serving"].repository_url}',
    "gcp": "${var.region}-docker.pkg.dev/${var.project_id}/"
    "${google_artifact_registry_repository.this.repository_id}/serving",
    "azure": "${azurerm_container_registry.this.login_server}/serving",
}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_serving_image_is_the_serving_repository_at_the_rendered_tag(terraform, render, cloud: str) -> None:
    module = terraform.module(cloud)
    helm_env = module["output"]["helm_env"]["value"]
    assert helm_env["SERVING_IMAGE_REPOSITORY"] == SERVING_REPOSITORY[cloud]
    if cloud == "aws":
        assert "'serving'" in module["locals"]["ecr_repositories"]  # ${toset([...])}
    else:  # the same registry as the user-code image, image "serving" beside it
        assert helm_env["USER_CODE_IMAGE_REPOSITORY"].removesuffix("/user-code") == SERVING_REPOSITORY[
            cloud
        ].removesuffix("/serving")
    assert _configmap(cloud)["MLOPS_SERVING_IMAGE_URI"] == "${SERVING_IMAGE_REPOSITORY}:${IMAGE_TAG}"
    text = (HELM / "platform" / f"platform-env-{cloud}.yaml").read_text()
    values = {k: f"test-{k.lower()}" for k in helm_env} | {"SERVING_IMAGE_REPOSITORY": "reg/serving", "IMAGE_TAG": "7"}
    assert yaml.safe_load(render.render_text(text, values))["data"]["MLOPS_SERVING_IMAGE_URI"] == "reg/serving:7"


def test_azure_helm_env_carries_the_stack_subscription(azure) -> None:
    assert "azurerm_client_config" in azure["data"]
    helm_env = azure["output"]["helm_env"]["value"]
    assert helm_env["AZURE_SUBSCRIPTION_ID"] == "${data.azurerm_client_config.current.subscription_id}"
    assert _configmap("azure")["AZURE_SUBSCRIPTION_ID"] == "${AZURE_SUBSCRIPTION_ID}"
