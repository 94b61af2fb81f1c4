"""The cloud profiles as configuration: what each one builds from its settings, without a server.

This is where Delta on gs:// is checked (no GCS server that delta-rs can write to installs here):
the exact URI and storage options delta-rs receives.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops_platform.definitions import build_definitions
from mlops_platform.settings import ENVIRONMENT_VARIABLES, Settings, SettingsError, instance_config_for, resources_for
from mlops_platform.storage.io_manager import DeltaIOManager
from mlops_platform.storage.pickles import AzureBlobPickles, GCSPickles, S3Pickles

REPO = Path(__file__).resolve().parents[2]
HOME = {"MLOPS_HOME": "/srv/mlops"}
AWS = {**HOME, "MLOPS_PROFILE": "aws", "MLOPS_STORAGE_ROOT": "s3://my-mlops-data/lake", "AWS_REGION": "eu-west-1"}
AZURE = {
    **HOME,
    "MLOPS_PROFILE": "azure",
    "MLOPS_STORAGE_ROOT": "az://mlops/lake",
    "AZURE_STORAGE_ACCOUNT_NAME": "mymlopsdata",
}
GCP = {**HOME, "MLOPS_PROFILE": "gcp", "MLOPS_STORAGE_ROOT": "gs://my-mlops-data/lake", "GOOGLE_CLOUD_PROJECT": "p1"}


def test_aws_builds_s3_resources() -> None:
    settings = Settings.from_env({**AWS, "MLOPS_STORAGE_ENDPOINT_URL": "http://minio.local:9000"})
    resources = resources_for(settings)
    lake = resources["lake"]
    assert lake.root_uri == "s3://my-mlops-data/lake"
    assert lake.storage_options == {
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://minio.local:9000",
        "AWS_ALLOW_HTTP": "true",
    }
    pickles = resources["io_manager"]
    assert isinstance(pickles, S3Pickles)
    assert (pickles.bucket, pickles.prefix, pickles.region_name, pickles.endpoint_url) == (
        "my-mlops-data",
        "lake/_objects",
        "eu-west-1",
        "http://minio.local:9000",
    )
    assert resources["registry"].artifact_root == "s3://my-mlops-data/mlflow"
    assert resources["registry"].tracking_uri == "sqlite:////srv/mlops/mlflow/mlflow.db"
    assert settings.client_environment() == {"MLFLOW_S3_ENDPOINT_URL": "http://minio.local:9000"}
    # Real S3: no endpoint, no plain HTTP.
    assert resources_for(Settings.from_env(AWS))["lake"].storage_options == {"AWS_REGION": "eu-west-1"}


def test_azure_builds_blob_resources_with_the_secret_as_an_env_var() -> None:
    env = {**AZURE, "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=do-not-show-me"}
    settings = Settings.from_env(env)
    resources = resources_for(settings)
    assert resources["lake"].root_uri == "az://mlops/lake"
    assert resources["lake"].storage_options == {"azure_storage_account_name": "mymlopsdata"}
    pickles = resources["io_manager"]
    assert isinstance(pickles, AzureBlobPickles)
    assert (pickles.root, pickles.account_name) == ("abfs://mlops/lake/_objects", "mymlopsdata")
    assert isinstance(pickles.connection_string, dg.EnvVar)
    assert pickles.connection_string.env_var_name == "AZURE_STORAGE_CONNECTION_STRING"
    assert "do-not-show-me" not in repr(resources)
    assert resources["registry"].artifact_root == "wasbs://mlops@mymlopsdata.blob.core.windows.net/mlflow"
    # Without a connection string the clients use DefaultAzureCredential.
    assert resources_for(Settings.from_env(AZURE))["io_manager"].connection_string is None
    # An Azurite or sovereign-cloud endpoint is a setting too.
    emulator = Settings.from_env({**AZURE, "MLOPS_STORAGE_ENDPOINT_URL": "http://127.0.0.1:10000/mymlopsdata"})
    assert emulator.delta_storage_options() == {
        "azure_storage_account_name": "mymlopsdata",
        "azure_storage_endpoint": "http://127.0.0.1:10000/mymlopsdata",
        "allow_http": "true",
    }


def test_azure_accepts_adls_gen2_uris() -> None:
    settings = Settings.from_env({**AZURE, "MLOPS_STORAGE_ROOT": "abfss://mlops@mymlopsdata.dfs.core.windows.net/lake"})
    assert settings.lake_root == "abfss://mlops@mymlopsdata.dfs.core.windows.net/lake"
    assert resources_for(settings)["io_manager"].root == "abfs://mlops/lake/_objects"
    assert settings.artifact_root == "wasbs://mlops@mymlopsdata.blob.core.windows.net/mlflow"


def test_gcp_builds_gcs_resources_and_delta_options_for_gs() -> None:
    settings = Settings.from_env({**GCP, "MLOPS_STORAGE_TIMEOUT_SECONDS": "20", "MLOPS_STORAGE_RETRY_SECONDS": "90"})
    resources = resources_for(settings)
    lake = resources["lake"]
    # What delta-rs receives for gs://: the URI, client timeouts, and no credential (ADC supplies it).
    assert lake.root_uri == "gs://my-mlops-data/lake"
    assert lake.storage_options == {"timeout": "20s", "connect_timeout": "10s", "retry_timeout": "90s"}
    assert lake.uri(dg.AssetKey(["churn", "features"])) == "gs://my-mlops-data/lake/churn/features"
    assert isinstance(resources["delta_io_manager"], DeltaIOManager)
    assert resources["delta_io_manager"].lake.storage_options == lake.storage_options
    pickles = resources["io_manager"]
    assert isinstance(pickles, GCSPickles)
    assert (pickles.bucket, pickles.prefix, pickles.project) == ("my-mlops-data", "lake/_objects", "p1")
    assert (pickles.timeout_seconds, pickles.retry_seconds) == (20, 90)
    assert resources["registry"].artifact_root == "gs://my-mlops-data/mlflow"
    assert resources_for(Settings.from_env(GCP))["lake"].storage_options == {}


def test_team_tracking_backend_and_explicit_roots_are_settings() -> None:
    settings = Settings.from_env(
        {
            **AWS,
            "MLOPS_MLFLOW_TRACKING_URI": "postgresql://mlflow@db.internal:5432/mlflow",
            "MLOPS_MLFLOW_ARTIFACT_ROOT": "s3://other-bucket/mlflow",
            "MLOPS_OBJECTS_ROOT": "s3://my-mlops-data/lake/objects-v2",
        }
    )
    resources = resources_for(settings)
    assert resources["registry"].tracking_uri == "postgresql://mlflow@db.internal:5432/mlflow"
    assert resources["registry"].artifact_root == "s3://other-bucket/mlflow"
    assert resources["io_manager"].prefix == "lake/objects-v2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({**HOME, "MLOPS_PROFILE": "aws"}, "MLOPS_PROFILE=aws needs MLOPS_STORAGE_ROOT"),
        (
            {**AWS, "MLOPS_STORAGE_ROOT": "gs://b/lake"},
            "MLOPS_STORAGE_ROOT='gs://b/lake' is not a URI of the aws profile",
        ),
        ({**AWS, "MLOPS_OBJECTS_ROOT": "az://c/o"}, "MLOPS_OBJECTS_ROOT='az://c/o' is not a URI of the aws profile"),
        ({**AZURE, "AZURE_STORAGE_ACCOUNT_NAME": ""}, "needs AZURE_STORAGE_ACCOUNT_NAME"),
        ({**GCP, "MLOPS_STORAGE_ENDPOINT_URL": "http://127.0.0.1:9023"}, "delta-rs has no GCS endpoint override"),
        ({**HOME, "MLOPS_STORAGE_ROOT": "s3://b/lake"}, "the local profile keeps its data on local disk"),
        ({**AWS, "MLOPS_STORAGE_TIMEOUT_SECONDS": "soon"}, "MLOPS_STORAGE_TIMEOUT_SECONDS='soon' is not a whole"),
    ],
)
def test_malformed_settings_name_the_variable(env, message) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(env)


@pytest.mark.parametrize("env", [AWS, AZURE, GCP], ids=["aws", "azure", "gcp"])
def test_definitions_load_on_every_cloud_profile(env) -> None:
    definitions = build_definitions(Settings.from_env(env))
    dg.Definitions.validate_loadable(definitions)
    assert definitions.resolve_job_def("churn_train") is not None


def test_instance_config_examples_match_the_resolver() -> None:
    cases = {
        "aws": Settings.from_env(AWS),
        "azure": Settings.from_env(AZURE),
        "gcp": Settings.from_env(GCP),
    }
    assert instance_config_for(Settings(home=Path("/srv"))) == {}
    for cloud, settings in cases.items():
        example = yaml.safe_load((REPO / "docs" / "instance" / f"dagster-{cloud}.yaml").read_text())
        assert example["compute_logs"] == instance_config_for(settings)["compute_logs"], cloud


def test_deploy_settings_and_compute_log_prefixes_agree_with_the_resolver() -> None:
    """The ConfigMaps in deploy/helm/platform set only variables the resolver reads, and the Helm
    compute-log prefix (from Terraform) is the one the resolver puts beside the lake."""
    from mlops_platform.settings import COMPUTE_LOGS_PREFIX

    for cloud, needed in (
        ("aws", "AWS_REGION"),
        ("azure", "AZURE_STORAGE_ACCOUNT_NAME"),
        ("gcp", "GOOGLE_CLOUD_PROJECT"),
    ):
        config_map = yaml.safe_load((REPO / "deploy" / "helm" / "platform" / f"platform-env-{cloud}.yaml").read_text())
        variables = set(config_map["data"])
        assert {v for v in variables if v.startswith("MLOPS_")} <= set(ENVIRONMENT_VARIABLES), cloud
        assert {"MLOPS_PROFILE", "MLOPS_STORAGE_ROOT", needed} <= variables, cloud
        assert config_map["data"]["MLOPS_PROFILE"] == cloud
        main = (REPO / "deploy" / "terraform" / "modules" / cloud / "main.tf").read_text()
        assert f'compute_logs_prefix = "{COMPUTE_LOGS_PREFIX}"' in re.sub(r"\s+=\s+", " = ", main), cloud


def test_only_the_profiles_branch_on_the_cloud() -> None:
    """No module outside profiles/ compares the profile's name or reads MLOPS_PROFILE, except the
    settings module that reads the variable and hands back the profile object."""
    compares = re.compile(r"profile\s*==|\.profile\s+in\b|MLOPS_PROFILE")
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "mlops_platform").rglob("*.py")
        if "profiles" not in path.relative_to(REPO).parts and compares.search(path.read_text())
    ]
    assert offenders == ["mlops_platform/settings.py"]
    settings_text = (REPO / "mlops_platform" / "settings.py").read_text()
    assert not re.search(r"profile\s*==", settings_text)


@pytest.mark.parametrize("env", [AWS, AZURE, GCP], ids=["aws", "azure", "gcp"])
def test_loading_a_cloud_code_location_imports_no_cloud_sdk(env, tmp_path) -> None:
    """The cloud IO managers import their SDKs when a step first uses them, not when the code loads."""
    import subprocess
    import sys

    heavy = ("boto3", "dagster_aws", "dagster_gcp", "dagster_azure", "adlfs", "google.cloud.storage", "deltalake")
    code = (
        "import sys; import mlops_platform.definitions as d; d.defs();"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "MLOPS_HOME": str(tmp_path), "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_landing_zone_is_on_the_bucket_beside_the_lake() -> None:
    from mlops_platform.storage.landing_azure import AzureBlobLandingZone
    from mlops_platform.storage.landing_gcs import GcsLandingZone
    from mlops_platform.storage.landing_local import LocalLandingZone
    from mlops_platform.storage.landing_s3 import S3LandingZone

    expected = {
        "aws": (AWS, S3LandingZone, "s3://my-mlops-data"),
        "azure": (AZURE, AzureBlobLandingZone, "az://mlops"),
        "gcp": (GCP, GcsLandingZone, "gs://my-mlops-data"),
    }
    for cloud, (environ, cls, bucket) in expected.items():
        landing = resources_for(Settings.from_env({**environ, "MLOPS_LANDING_MAX_ROWS": "10"}))["landing"]
        assert type(landing) is cls, cloud
        assert (landing.landing_root, landing.quarantine_root) == (f"{bucket}/landing", f"{bucket}/quarantine")
        assert landing.max_rows == 10, cloud
    # A mounted volume still works on a cloud profile; the quarantine defaults beside the landing zone.
    mounted = resources_for(Settings.from_env({**AWS, "MLOPS_LANDING_ROOT": "/mnt/drop/landing"}))["landing"]
    assert type(mounted) is LocalLandingZone and mounted.quarantine_root == "/mnt/drop/quarantine"
    local = resources_for(Settings.from_env(HOME))["landing"]
    assert type(local) is LocalLandingZone and local.landing_root.endswith("/landing")
    assert "landing_queue" not in resources_for(Settings.from_env(AWS))


def test_landing_settings_that_do_not_fit_are_refused_naming_the_variable() -> None:
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/landing-events"
    refused = [
        ({**AWS, "MLOPS_LANDING_ROOT": "gs://other/landing"}, "MLOPS_LANDING_ROOT='gs://other/landing' is not a URI"),
        ({**HOME, "MLOPS_LANDING_ROOT": "s3://b/landing"}, "MLOPS_LANDING_ROOT='s3://b/landing': the local profile"),
        ({**AWS, "MLOPS_QUARANTINE_ROOT": "/srv/quarantine"}, "MLOPS_QUARANTINE_ROOT='/srv/quarantine' must be on"),
        ({**AWS, "MLOPS_LANDING_ROOT": "/mnt/landing", "MLOPS_LANDING_QUEUE": queue}, "is on local disk"),
        ({**GCP, "MLOPS_LANDING_QUEUE": queue}, "the gcp profile lists its landing zone"),
        ({**HOME, "MLOPS_LANDING_QUEUE": queue}, "the local profile lists its landing folder"),
        ({**AWS, "MLOPS_LANDING_QUEUE": "landing-events"}, "MLOPS_LANDING_QUEUE"),
    ]
    for environ, message in refused:
        with pytest.raises(SettingsError, match=re.escape(message)):
            Settings.from_env(environ)


def test_the_landing_queue_follows_the_profile() -> None:
    from mlops_platform.storage.landing_queues import SqsLandingQueue, StorageQueueLandingQueue

    aws = resources_for(
        Settings.from_env({**AWS, "MLOPS_LANDING_QUEUE": "https://sqs.eu-west-1.amazonaws.com/1/landing-events"})
    )["landing_queue"]
    assert isinstance(aws, SqsLandingQueue) and aws.endpoint_url is None and aws.region_name == "eu-west-1"
    moto = resources_for(Settings.from_env({**AWS, "MLOPS_LANDING_QUEUE": "http://127.0.0.1:5000/1/q"}))
    assert moto["landing_queue"].endpoint_url == "http://127.0.0.1:5000"
    azure = resources_for(
        Settings.from_env({**AZURE, "MLOPS_LANDING_QUEUE": "https://mymlopsdata.queue.core.windows.net/landing-events"})
    )["landing_queue"]
    assert isinstance(azure, StorageQueueLandingQueue) and azure.connection_string is None


def test_vertex_endpoints_run_as_the_service_account_terraform_made() -> None:
    vertex = {**GCP, "MLOPS_VERTEX_LOCATION": "europe-west4", "MLOPS_SERVING_IMAGE_URI": "europe-docker.pkg.dev/p1/s:1"}
    account = "mlops-vertex@p1.iam.gserviceaccount.com"
    deployer = resources_for(Settings.from_env({**vertex, "MLOPS_VERTEX_SERVICE_ACCOUNT": account}))["deployer"]
    assert deployer.service_account == account
    assert resources_for(Settings.from_env(vertex))["deployer"].service_account is None
    with pytest.raises(SettingsError, match="MLOPS_VERTEX_SERVICE_ACCOUNT='mlops-vertex' is not a service account"):
        Settings.from_env({**vertex, "MLOPS_VERTEX_SERVICE_ACCOUNT": "mlops-vertex"})
