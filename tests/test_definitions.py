"""The code location: loads, holds both families, and stays light to import."""

import subprocess
import sys

import dagster as dg
import pytest

from mlops_platform.definitions import build_definitions, defs
from mlops_platform.settings import Settings, SettingsError


def test_definitions_load_with_both_families(settings) -> None:
    definitions = build_definitions(settings)
    graph = definitions.resolve_asset_graph()
    for spec in ("churn", "delivery_eta"):
        for name in (
            "raw",
            "labels",
            "features",
            "training_set",
            "model",
            "evaluation",
            "champion",
            "model_card",
            "endpoint",
            "predictions",
        ):
            key = dg.AssetKey([spec, name])
            assert key in graph.get_all_asset_keys()
            assert graph.get(key).group_name == spec
        definitions.resolve_job_def(f"{spec}_train")
        definitions.resolve_job_def(f"{spec}_rollback")
        definitions.resolve_schedule_def(f"{spec}_daily_ingest")
        assert definitions.resolve_sensor_def(f"{spec}_landing_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    # The reference specs need no approval: no approval asset stands between evaluation and champion.
    assert dg.AssetKey(["churn", "approval"]) not in graph.get_all_asset_keys()
    for name in ("mlops_automation", "mlops_training", *ALERT_SENSORS):
        assert definitions.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    dg.Definitions.validate_loadable(definitions)


ALERT_SENSORS = ("mlops_alert_run_failures", "mlops_alert_checks", "mlops_alert_freshness")


def test_alerts_watch_every_check_and_every_freshness_policy(settings) -> None:
    from mlops_platform.automation.alerts import alerted_keys

    checks, fresh = alerted_keys(build_definitions(settings).assets or [])
    for spec in ("churn", "delivery_eta"):
        assert {(k.asset_key.path[-1], k.name) for k in checks if k.asset_key.path[0] == spec} == {
            ("raw", "files_valid"),
            ("evaluation", "meets_threshold"),
            ("evaluation", "no_regression_vs_champion"),
            ("endpoint", "serves_champion"),
            ("drift", "no_drift"),
            ("performance", "performance_within_tolerance"),
        }
        assert {k.path[-1] for k in fresh if k.path[0] == spec} == {"raw", "features", "predictions"}


def test_the_decorated_loader_builds_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    loaded = defs()
    assert loaded.resources["lake"].root_uri == str(tmp_path / "lake")


def test_the_executor_is_a_setting(tmp_path) -> None:
    from mlops_platform.settings import executor_for

    assert executor_for(Settings(home=tmp_path)) is dg.in_process_executor
    assert executor_for(Settings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_EXECUTOR": "k8s"})).name == "k8s"
    assert executor_for(Settings(home=tmp_path, executor="multiprocess")) is dg.multiprocess_executor
    with pytest.raises(SettingsError, match="MLOPS_EXECUTOR='celery' is not an executor"):
        Settings.from_env({"MLOPS_EXECUTOR": "celery"})


def test_profile_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match="MLOPS_PROFILE='moon' is not a profile"):
        Settings.from_env({"MLOPS_PROFILE": "moon"})
    settings = Settings.from_env({"MLOPS_HOME": "/srv/mlops"})
    assert settings.tracking_uri == "sqlite:////srv/mlops/mlflow/mlflow.db"
    assert settings.artifact_root == "file:///srv/mlops/mlflow/artifacts"
    custom = Settings.from_env({"MLOPS_HOME": "/x", "MLOPS_MLFLOW_TRACKING_URI": "postgresql://db/mlflow"})
    assert custom.tracking_uri == "postgresql://db/mlflow"
    # The cloud profiles are available: one setting (plus the bucket) moves the lake and its siblings.
    with pytest.raises(SettingsError, match="MLOPS_PROFILE=aws needs MLOPS_STORAGE_ROOT"):
        Settings.from_env({"MLOPS_PROFILE": "aws", "MLOPS_HOME": "/x"})
    aws = Settings.from_env({"MLOPS_PROFILE": "aws", "MLOPS_HOME": "/x", "MLOPS_STORAGE_ROOT": "s3://data/lake"})
    assert (aws.profile, aws.lake_root, aws.artifact_root) == ("aws", "s3://data/lake", "s3://data/mlflow")
    assert aws.tracking_uri == "sqlite:////x/mlflow/mlflow.db"  # one machine; a team sets a database URL


def test_loading_the_code_location_imports_no_heavy_ml_library(tmp_path) -> None:
    code = (
        "import sys; import mlops_platform.definitions as d; d.defs();"
        "heavy = [m for m in ('mlflow', 'sklearn', 'deltalake', 'dagster_mlflow') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"MLOPS_HOME": str(tmp_path), "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


CLOUD = {
    "aws": {"MLOPS_STORAGE_ROOT": "s3://data/lake", "AWS_REGION": "eu-west-1"},
    "gcp": {"MLOPS_STORAGE_ROOT": "gs://data/lake", "GOOGLE_CLOUD_PROJECT": "p1"},
    "azure": {"MLOPS_STORAGE_ROOT": "abfss://data/lake", "AZURE_STORAGE_ACCOUNT_NAME": "acct"},
}
DEPLOYERS = {
    "aws": (
        "sagemaker",
        {
            "MLOPS_SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/mlops-sagemaker",
            "MLOPS_SERVING_IMAGE_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops/serving:1",
        },
    ),
    "gcp": (
        "vertex",
        {
            "MLOPS_VERTEX_LOCATION": "europe-west4",
            "MLOPS_SERVING_IMAGE_URI": "europe-docker.pkg.dev/p1/mlops/serving:1",
        },
    ),
    "azure": (
        "azureml",
        {
            "AZURE_SUBSCRIPTION_ID": "00000000-1111-2222-3333-444444444444",
            "MLOPS_AZUREML_RESOURCE_GROUP": "rg",
            "MLOPS_AZUREML_WORKSPACE": "ws",
            "MLOPS_AZUREML_LOCATION": "westeurope",
            "MLOPS_AZUREML_ENDPOINT_IDENTITY": "/subscriptions/s/resourceGroups/rg/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-azureml-endpoint",
            "MLOPS_SERVING_IMAGE_URI": "mlops.azurecr.io/serving:1",
        },
    ),
}


@pytest.mark.parametrize("profile", sorted(CLOUD))
def test_each_profile_brings_its_deployer_and_loads_without_its_settings(profile, tmp_path) -> None:
    from mlops_platform.serving.deployers.base import DeployError

    kind, variables = DEPLOYERS[profile]
    env = {"MLOPS_PROFILE": profile, "MLOPS_HOME": str(tmp_path), **CLOUD[profile]}
    unset = build_definitions(Settings.from_env(env)).resources["deployer"]
    assert unset.target == kind
    with pytest.raises(DeployError, match=f"the {kind} deployer is not configured: set .*{next(iter(variables))}"):
        unset.deploy("churn", "1")
    deployer = build_definitions(Settings.from_env({**env, **variables})).resources["deployer"]
    assert deployer.target == kind and deployer.image_uri == variables["MLOPS_SERVING_IMAGE_URI"]
    assert deployer.tracking_uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db"


def test_the_local_deployer_and_serving_settings(tmp_path) -> None:
    local = build_definitions(Settings(home=tmp_path)).resources["deployer"]
    assert (local.url, local.token, local.token_file) == (
        "http://127.0.0.1:8080",
        None,
        str(tmp_path / "serving/token"),
    )
    settings = Settings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_SERVING_TOKEN": "a-token-of-enough-length"})
    # The secret reaches the resource as an EnvVar: the UI shows the variable's name, never the token.
    assert build_definitions(settings).resources["deployer"].token == dg.EnvVar("MLOPS_SERVING_TOKEN")
    for variable, value, message in (
        ("MLOPS_SAGEMAKER_ROLE_ARN", "mlops-role", "MLOPS_SAGEMAKER_ROLE_ARN is not an IAM role ARN"),
        ("MLOPS_SERVING_URL", "localhost:8080", "MLOPS_SERVING_URL must be an http"),
        ("MLOPS_SERVING_TOKEN", "short", "MLOPS_SERVING_TOKEN is shorter than 16 characters"),
        ("MLOPS_VERTEX_LOCATION", "Europe West", "MLOPS_VERTEX_LOCATION='Europe West' is not a region"),
        ("AZURE_SUBSCRIPTION_ID", "my-sub", "AZURE_SUBSCRIPTION_ID is not a subscription id"),
        ("MLOPS_SERVING_NAME_PREFIX", "-x", "MLOPS_SERVING_NAME_PREFIX='-x'"),
    ):
        with pytest.raises(SettingsError, match=message):
            Settings.from_env({"MLOPS_HOME": str(tmp_path), variable: value})
