"""The platform's settings reach the pods: the ConfigMap of each cloud carries the deployer, metrics and
alert settings Terraform can fill, the resolver accepts what it renders, and the alert webhook URL (a
secret) comes from a Kubernetes Secret mounted by the code server, runs and steps, never from a ConfigMap.

The run and step pods are built with dagster-k8s's own code (test_deploy_dagster.pod_specs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_deploy_dagster import ENV as INSTANCE_ENV
from test_deploy_dagster import pod_specs, values_for
from test_deploy_helm import dagster_values, user_deployment

from mlops_platform.settings import ALERT_WEBHOOK_VAR, ENVIRONMENT_VARIABLES, Settings

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"
CLOUDS = ("aws", "gcp", "azure")
SECRET = "mlops-platform-secrets"
# What a deployment's Terraform outputs look like (the formats the resolver checks).
ACCOUNT = "123456789012"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
REALISTIC = {
    "aws": {
        "CLOUD_REGION": "eu-west-1",
        "CLUSTER_NAME": "mlops-prod",
        "MLOPS_STORAGE_ROOT": "s3://mlops-prod-data/lake",
        "MLOPS_MLFLOW_ARTIFACT_ROOT": "s3://mlops-prod-data/mlflow",
        "LANDING_QUEUE_URL": f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/mlops-prod-landing-events",
        "SAGEMAKER_EXECUTION_ROLE": f"arn:aws:iam::{ACCOUNT}:role/mlops-prod-sagemaker",
        "SERVING_IMAGE_REPOSITORY": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/mlops-prod/serving",
    },
    "gcp": {
        "CLOUD_REGION": "europe-west4",
        "GCP_PROJECT": "acme-ml",
        "MLOPS_STORAGE_ROOT": "gs://mlops-prod-data/lake",
        "MLOPS_MLFLOW_ARTIFACT_ROOT": "gs://mlops-prod-data/mlflow",
        "VERTEX_SERVICE_ACCOUNT": "mlops-prod-vertex@acme-ml.iam.gserviceaccount.com",
        "SERVING_IMAGE_REPOSITORY": "europe-west4-docker.pkg.dev/acme-ml/mlops-prod/serving",
    },
    "azure": {
        "CLOUD_REGION": "westeurope",
        "STORAGE_ACCOUNT": "mlopsproddata",
        "MLOPS_STORAGE_ROOT": "az://mlops/lake",
        "MLOPS_MLFLOW_ARTIFACT_ROOT": "wasbs://mlops@mlopsproddata.blob.core.windows.net/mlflow",
        "LANDING_QUEUE_URL": "https://mlopsproddata.queue.core.windows.net/landing-events",
        "AZUREML_ENDPOINT_IDENTITY": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlops-prod/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-prod-azureml-endpoint",
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "SERVING_IMAGE_REPOSITORY": "mlopsprodab12c.azurecr.io/serving",
        "AZURE_MONITOR_RESOURCE_ID": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-mlops-prod/providers/"
        "Microsoft.ContainerService/managedClusters/aks-mlops-prod",
    },
}
# Deployer settings each ConfigMap fills from a Terraform output (the serving image also from --image-tag).
SERVING_IMAGE = {"MLOPS_SERVING_IMAGE_URI": "${SERVING_IMAGE_REPOSITORY}:${IMAGE_TAG}"}
DEPLOYER_SETTINGS = {
    "aws": {
        "MLOPS_SAGEMAKER_ROLE_ARN": "${SAGEMAKER_EXECUTION_ROLE}",
        "MLOPS_SERVING_NAME_PREFIX": "${CLUSTER_NAME}",
        **SERVING_IMAGE,
    },
    "gcp": {
        "MLOPS_VERTEX_LOCATION": "${CLOUD_REGION}",
        "MLOPS_VERTEX_SERVICE_ACCOUNT": "${VERTEX_SERVICE_ACCOUNT}",
        **SERVING_IMAGE,
    },
    "azure": {
        "MLOPS_AZUREML_ENDPOINT_IDENTITY": "${AZUREML_ENDPOINT_IDENTITY}",
        "MLOPS_AZUREML_LOCATION": "${CLOUD_REGION}",
        "AZURE_SUBSCRIPTION_ID": "${AZURE_SUBSCRIPTION_ID}",
        **SERVING_IMAGE,
    },
}


def _configmap(cloud: str) -> dict[str, Any]:
    return yaml.safe_load((HELM / "platform" / f"platform-env-{cloud}.yaml").read_text())


def _rendered_env(terraform, render, cloud: str) -> dict[str, str]:
    keys = set(terraform.module(cloud)["output"]["helm_env"]["value"])
    values = {k: f"test-{k.lower()}" for k in keys} | REALISTIC[cloud] | {"IMAGE_TAG": "1.0.0"}
    assert REALISTIC[cloud].keys() <= keys, "the realistic values name outputs Terraform no longer has"
    text = render.render_text((HELM / "platform" / f"platform-env-{cloud}.yaml").read_text(), values)
    return yaml.safe_load(text)["data"]


def _mentions(node: Any, needle: str) -> bool:
    if isinstance(node, dict):
        return any(_mentions(k, needle) or _mentions(v, needle) for k, v in node.items())
    if isinstance(node, list):
        return any(_mentions(v, needle) for v in node)
    return isinstance(node, str) and needle in node


def test_the_webhook_url_is_never_in_a_configmap_or_the_chart_values() -> None:
    """No manifest (ConfigMap or other) and no Helm value sets the webhook URL: only the Secret holds it
    (the chart renders a deployment's `env` and `envVars` as ConfigMaps, so they may not carry it either)."""
    for path in sorted(HELM.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not _mentions(doc, ALERT_WEBHOOK_VAR), f"{path.relative_to(HELM)} sets {ALERT_WEBHOOK_VAR}"
            if doc and doc.get("kind") == "ConfigMap":
                assert not any(re.search(r"hooks\.|webhook", str(v)) for v in (doc.get("data") or {}).values())


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_code_server_runs_and_steps_read_the_secret(
    terraform, render, tmp_path: Path, monkeypatch, cloud: str
) -> None:
    for key, value in INSTANCE_ENV.items():  # what the chart sets in the pods that launch runs
        monkeypatch.setenv(key, value)
    values = dagster_values(cloud)
    assert {"name": SECRET} in user_deployment(values)["envSecrets"]
    assert {"name": SECRET} in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    # The webserver and the daemon evaluate no user code: they do not get it.
    for service in ("dagsterWebserver", "dagsterDaemon"):
        assert SECRET not in str(values[service].get("envSecrets", []))
    # The pods dagster-k8s builds for runs and steps mount the Secret and the ConfigMap with envFrom.
    for kind, spec in pod_specs(values_for(terraform, render, cloud), tmp_path).items():
        env_from = spec.containers[0].env_from
        assert SECRET in {e.secret_ref.name for e in env_from if e.secret_ref}, f"{cloud} {kind} pods lack {SECRET}"
        assert "mlops-platform-env" in {e.config_map_ref.name for e in env_from if e.config_map_ref}


def test_the_readme_creates_the_secret_the_pods_read() -> None:
    text = (REPO / "deploy" / "README.md").read_text()
    assert f"kubectl -n mlops create secret generic {SECRET}" in text
    assert f'--from-literal={ALERT_WEBHOOK_VAR}="$ALERT_WEBHOOK_URL"' in text


@pytest.mark.parametrize("cloud", CLOUDS)
def test_each_configmap_sets_the_deployer_settings_terraform_knows(terraform, cloud: str) -> None:
    data = _configmap(cloud)["data"]
    assert set(data) <= set(ENVIRONMENT_VARIABLES), sorted(set(data) - set(ENVIRONMENT_VARIABLES))
    assert DEPLOYER_SETTINGS[cloud].items() <= data.items()
    assert data["MLOPS_ALERT_FORMAT"] in ("json", "slack")
    if cloud == "aws":
        # SageMaker grants name <prefix>-*: the prefix the ConfigMap takes from CLUSTER_NAME must be it.
        module = terraform.module("aws")
        local = module["locals"]
        assert local["sagemaker_prefix"] == local["cluster_name"] == "${local.prefix}"
        assert module["output"]["helm_env"]["value"]["CLUSTER_NAME"] == "${aws_eks_cluster.this.name}"
        assert module["resource"]["aws_eks_cluster"]["this"]["name"] == "${local.cluster_name}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_rendered_configmap_configures_the_profile(terraform, render, tmp_path: Path, cloud: str) -> None:
    """What the pods get (ConfigMap + Secret) is accepted by the resolver; the deployer then lacks only what
    no Terraform output carries (the Azure ML workspace), and the metrics sink and notifier are configured."""
    from mlops_platform.profiles.metrics import AzureMonitorSink, CloudMonitoringSink, CloudWatchSink

    env = _rendered_env(terraform, render, cloud) | {"MLOPS_HOME": str(tmp_path)}
    env[ALERT_WEBHOOK_VAR] = "https://hooks.example.invalid/services/T000/B000/XXXX"  # from the Secret
    settings = Settings.from_env(env)
    assert settings.profile == cloud
    assert settings.alert_webhook_set and settings.alert_format == "json"
    deployer = settings.cloud.deployer()
    sink = settings.cloud.metrics_sink()
    # The serving image is the Terraform repository at the tag render.py was given.
    image = f"{REALISTIC[cloud]['SERVING_IMAGE_REPOSITORY']}:1.0.0"
    if cloud == "aws":
        assert sink == CloudWatchSink(region="eu-west-1")
        assert deployer.image_uri == image
        assert deployer.role_arn == REALISTIC["aws"]["SAGEMAKER_EXECUTION_ROLE"]
        assert deployer.name_prefix == "mlops-prod"
    elif cloud == "gcp":
        assert sink == CloudMonitoringSink(project="acme-ml")
        assert (deployer.image_uri, deployer.location, deployer.service_account) == (
            image,
            "europe-west4",
            REALISTIC["gcp"]["VERTEX_SERVICE_ACCOUNT"],
        )
    else:
        # The Azure ML workspace is not a Terraform resource: the README says what to set.
        assert deployer.missing == ["MLOPS_AZUREML_RESOURCE_GROUP", "MLOPS_AZUREML_WORKSPACE"]
        workspace = {"MLOPS_AZUREML_RESOURCE_GROUP": "rg-ml", "MLOPS_AZUREML_WORKSPACE": "mlw-prod"}
        configured = Settings.from_env(env | workspace).cloud.deployer()
        assert (configured.subscription_id, configured.image_uri) == (SUBSCRIPTION, image)
        # Metrics on the AKS cluster in the stack's region, where the dagster identity may publish them.
        resource = REALISTIC["azure"]["AZURE_MONITOR_RESOURCE_ID"]
        assert sink == AzureMonitorSink(resource_id=resource, region="westeurope")
