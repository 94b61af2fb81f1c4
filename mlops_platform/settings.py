"""The one profile resolver.

Every environment-dependent choice (where data lives, which MLflow store, which IO managers, where the
Dagster instance writes compute logs) is made here and nowhere else. Nothing is read from the
environment at import time: callers ask ``Settings.from_env()`` when definitions load, and
``resources_for(settings)`` returns the whole resource set of that profile.

Profiles: ``local`` (files under MLOPS_HOME), ``aws`` (S3), ``azure`` (Azure Blob / ADLS Gen2) and
``gcp`` (GCS), one class each in ``mlops_platform.profiles``; this module reads and validates the
variables and hands the cloud-specific choices to the profile object (``Settings.cloud``).
A cloud profile needs MLOPS_STORAGE_ROOT, the Delta lake's root URI on the bucket; the
MLflow artifact root, the pickled objects and the compute logs default to prefixes beside it.
Credentials are never settings: every client takes them from its SDK's default chain (environment,
workload identity, instance metadata), and the one secret a resource needs by value (an Azure
connection string) reaches it as a ``dagster.EnvVar``, so the Dagster UI shows only the variable name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_platform.profiles.azure import AZURE_CONNECTION_STRING_VAR
from mlops_platform.profiles.base import COMPUTE_LOGS_PREFIX, MLFLOW_PREFIX, OBJECTS_DIR, Profile, is_local

__all__ = ["COMPUTE_LOGS_PREFIX", "MLFLOW_PREFIX", "OBJECTS_DIR", "ServingSettings", "Settings", "SettingsError"]
# The landing zone's limits: variable -> LandingZone field (unset: the resource's default).
LANDING_LIMITS: dict[str, str] = {
    "MLOPS_LANDING_MAX_FILE_BYTES": "max_file_bytes",
    "MLOPS_LANDING_MAX_ROWS": "max_rows",
    "MLOPS_LANDING_MAX_UNCOMPRESSED_BYTES": "max_uncompressed_bytes",
    "MLOPS_LANDING_MAX_FUTURE_DAYS": "max_future_days",
    "MLOPS_LANDING_SENSOR_LOOKBACK_DAYS": "sensor_lookback_days",
}
# The alert notifier (automation.alerts): a webhook URL (a secret) and the document it receives.
ALERT_WEBHOOK_VAR = "MLOPS_ALERT_WEBHOOK_URL"
ALERT_FORMAT_VAR = "MLOPS_ALERT_FORMAT"
FORMATS: tuple[str, ...] = ("json", "slack")
# The metrics sink (Profile.metrics_sink): an endpoint override, and where Azure Monitor attaches metrics.
METRICS_VARIABLES: tuple[str, ...] = (
    "MLOPS_METRICS_ENDPOINT_URL",
    "MLOPS_AZURE_MONITOR_RESOURCE_ID",
    "MLOPS_AZURE_MONITOR_REGION",
)
# The serving deployer's settings: variable -> Settings.serving field. Each cloud profile's deployer
# names the ones it needs (``Profile.deployer``); MLOPS_SERVING_TOKEN is only checked for presence.
SERVING_VARIABLES: tuple[str, ...] = (
    "MLOPS_SERVING_URL",
    "MLOPS_SERVING_TOKEN",
    "MLOPS_SERVING_IMAGE_URI",
    "MLOPS_SERVING_ARTIFACT_URI",
    "MLOPS_SERVING_NAME_PREFIX",
    "MLOPS_SERVING_INSTANCE_TYPE",
    "MLOPS_SAGEMAKER_ROLE_ARN",
    "MLOPS_SAGEMAKER_ROLLBACK_ALARMS",
    "MLOPS_VERTEX_LOCATION",
    "MLOPS_VERTEX_SERVICE_ACCOUNT",
    "AZURE_SUBSCRIPTION_ID",
    "MLOPS_AZUREML_RESOURCE_GROUP",
    "MLOPS_AZUREML_WORKSPACE",
    "MLOPS_AZUREML_LOCATION",
    "MLOPS_AZUREML_ENDPOINT_IDENTITY",
)
# Every variable Settings.from_env reads. The SDK-standard names are the ones the SDKs and
# deploy/helm/platform/platform-env-<cloud>.yaml already use, so one variable configures both.
EXECUTORS: tuple[str, ...] = ("in_process", "multiprocess", "k8s")
ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "MLOPS_PROFILE",
    "MLOPS_EXECUTOR",
    "MLOPS_HOME",
    "MLOPS_STORAGE_ROOT",
    "MLOPS_OBJECTS_ROOT",
    "MLOPS_STORAGE_ENDPOINT_URL",
    "MLOPS_STORAGE_TIMEOUT_SECONDS",
    "MLOPS_STORAGE_RETRY_SECONDS",
    "MLOPS_MLFLOW_TRACKING_URI",
    "MLOPS_MLFLOW_ARTIFACT_ROOT",
    "MLOPS_MLFLOW_UI_URL",
    "MLOPS_SPECS",
    "MLOPS_LANDING_ROOT",
    "MLOPS_QUARANTINE_ROOT",
    "MLOPS_LANDING_QUEUE",
    *LANDING_LIMITS,
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AZURE_STORAGE_ACCOUNT_NAME",
    AZURE_CONNECTION_STRING_VAR,  # only whether it is set; its value reaches resources as an EnvVar
    "GOOGLE_CLOUD_PROJECT",
    *SERVING_VARIABLES,
    ALERT_WEBHOOK_VAR,  # only whether it is set; its value (a secret) reaches the notifier as an EnvVar
    ALERT_FORMAT_VAR,
    *METRICS_VARIABLES,
)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _parent(uri: str) -> str:
    """The URI one level up (``s3://b/lake`` -> ``s3://b``); a bucket root is its own parent."""
    scheme, rest = uri.rstrip("/").split("://", 1)
    bucket, _, path = rest.partition("/")
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    return f"{scheme}://{bucket}" + (f"/{parent}" if parent else "")


def _seconds(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        seconds = int(value)
    except ValueError as exc:
        raise SettingsError(f"{name}={value!r} is not a whole number of seconds") from exc
    if seconds <= 0:
        raise SettingsError(f"{name}={value!r} must be positive")
    return seconds


class ServingSettings(BaseModel):
    """Where endpoints are deployed (the profile's deployer). Unset values stay None: the definitions
    load, and the endpoint materialization fails naming the variable its deployer needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(default="http://127.0.0.1:8080", description="The local serving app (MLOPS_SERVING_URL).")
    token_set: bool = Field(
        default=False,
        description="MLOPS_SERVING_TOKEN is set (its value reaches the deployer as an EnvVar); otherwise the "
        "local app's generated token under MLOPS_HOME/serving/token is used.",
    )
    image_uri: str | None = Field(
        default=None, description="The serving image for the cloud (MLOPS_SERVING_IMAGE_URI)."
    )
    artifact_uri: str | None = Field(
        default=None,
        description="Where SageMaker's model.tar.gz files go (MLOPS_SERVING_ARTIFACT_URI); "
        "default <artifact root>/sagemaker.",
    )
    name_prefix: str = Field(
        default="mlops",
        description="Prefix of cloud endpoint resources (MLOPS_SERVING_NAME_PREFIX), as Terraform grants.",
    )
    instance_type: str | None = Field(
        default=None, description="Cloud instance / machine type (MLOPS_SERVING_INSTANCE_TYPE)."
    )
    sagemaker_role_arn: str | None = Field(
        default=None, description="SageMaker execution role (MLOPS_SAGEMAKER_ROLE_ARN)."
    )
    sagemaker_rollback_alarms: tuple[str, ...] = Field(
        default=(),
        description="CloudWatch alarms that roll a blue/green update back (MLOPS_SAGEMAKER_ROLLBACK_ALARMS).",
    )
    vertex_location: str | None = Field(default=None, description="Vertex AI region (MLOPS_VERTEX_LOCATION).")
    vertex_service_account: str | None = Field(
        default=None,
        description="The identity Vertex AI endpoints run as (MLOPS_VERTEX_SERVICE_ACCOUNT; Terraform output "
        "vertex_service_account_email); unset: Vertex's default service agent.",
    )
    azure_subscription_id: str | None = Field(default=None, description="Azure subscription (AZURE_SUBSCRIPTION_ID).")
    azureml_resource_group: str | None = Field(default=None, description="(MLOPS_AZUREML_RESOURCE_GROUP).")
    azureml_workspace: str | None = Field(default=None, description="Azure ML workspace (MLOPS_AZUREML_WORKSPACE).")
    azureml_location: str | None = Field(default=None, description="Azure region (MLOPS_AZUREML_LOCATION).")
    azureml_endpoint_identity: str | None = Field(
        default=None,
        description="Resource id of the user-assigned identity endpoints run as (MLOPS_AZUREML_ENDPOINT_IDENTITY, "
        "Terraform's AZUREML_ENDPOINT_IDENTITY: pulls the image, reads mlflow/).",
    )


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,30}$")
_REGION = re.compile(r"^[a-z]+(-[a-z0-9]+)+$|^[a-z]+[0-9a-z]*$")


def _serving(env: Mapping[str, str]) -> ServingSettings:
    def get(name: str) -> str | None:
        return env.get(name, "").strip() or None

    role = get("MLOPS_SAGEMAKER_ROLE_ARN")
    if role is not None and not _ROLE_ARN.match(role):
        raise SettingsError(
            "MLOPS_SAGEMAKER_ROLE_ARN is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)"
        )
    prefix = get("MLOPS_SERVING_NAME_PREFIX") or "mlops"
    if not _NAME.match(prefix):
        raise SettingsError(
            f"MLOPS_SERVING_NAME_PREFIX={prefix!r}: letters, digits and '-', starting with a letter or digit, "
            "at most 31 characters (endpoint names are limited)"
        )
    artifact = get("MLOPS_SERVING_ARTIFACT_URI")
    if artifact is not None and "://" not in artifact:
        raise SettingsError(f"MLOPS_SERVING_ARTIFACT_URI={artifact!r} must be a bucket URI such as s3://bucket/prefix")
    for variable in ("MLOPS_VERTEX_LOCATION", "MLOPS_AZUREML_LOCATION"):
        value = get(variable)
        if value is not None and not _REGION.match(value):
            raise SettingsError(f"{variable}={value!r} is not a region name such as europe-west4 or westeurope")
    subscription = get("AZURE_SUBSCRIPTION_ID")
    if subscription is not None and not re.fullmatch(
        r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", subscription
    ):
        raise SettingsError("AZURE_SUBSCRIPTION_ID is not a subscription id (a GUID)")
    token = get("MLOPS_SERVING_TOKEN")
    if token is not None and len(token) < 16:
        raise SettingsError("MLOPS_SERVING_TOKEN is shorter than 16 characters")
    identity = get("MLOPS_AZUREML_ENDPOINT_IDENTITY")
    if identity is not None and "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" not in identity:
        raise SettingsError(
            "MLOPS_AZUREML_ENDPOINT_IDENTITY is not a user-assigned identity's resource id "
            "(/subscriptions/.../providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>)"
        )
    alarms = tuple(a.strip() for a in (get("MLOPS_SAGEMAKER_ROLLBACK_ALARMS") or "").split(",") if a.strip())
    return ServingSettings(
        url=_http_url("MLOPS_SERVING_URL", get("MLOPS_SERVING_URL")) or "http://127.0.0.1:8080",
        token_set=token is not None,
        image_uri=get("MLOPS_SERVING_IMAGE_URI"),
        artifact_uri=artifact,
        name_prefix=prefix,
        instance_type=get("MLOPS_SERVING_INSTANCE_TYPE"),
        sagemaker_role_arn=role,
        sagemaker_rollback_alarms=alarms,
        vertex_location=get("MLOPS_VERTEX_LOCATION"),
        vertex_service_account=_service_account(get("MLOPS_VERTEX_SERVICE_ACCOUNT")),
        azure_subscription_id=subscription,
        azureml_resource_group=get("MLOPS_AZUREML_RESOURCE_GROUP"),
        azureml_workspace=get("MLOPS_AZUREML_WORKSPACE"),
        azureml_location=get("MLOPS_AZUREML_LOCATION"),
        azureml_endpoint_identity=identity,
    )


class Settings(BaseModel):
    """Resolved platform settings. Build with ``Settings.from_env()`` or directly in tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = Field(default="local", description="Name of the profile class (MLOPS_PROFILE).")
    home: Path = Field(description="Root folder of local state (MLOPS_HOME): landing zone, local defaults.")
    storage_root: str | None = Field(
        default=None,
        description="Root URI of the Delta lake (MLOPS_STORAGE_ROOT); required by cloud profiles, default <home>/lake.",
    )
    objects_root: str | None = Field(
        default=None,
        description="Root URI of pickled non-tabular outputs (MLOPS_OBJECTS_ROOT); default <storage root>/_objects.",
    )
    storage_endpoint_url: str | None = Field(
        default=None,
        description="Object-store endpoint override (MLOPS_STORAGE_ENDPOINT_URL): MinIO, an emulator, ...",
    )
    storage_timeout_seconds: int | None = Field(
        default=None, description="Per-request timeout of the Delta client (MLOPS_STORAGE_TIMEOUT_SECONDS)."
    )
    storage_retry_seconds: int | None = Field(
        default=None,
        description="How long the Delta client retries one request (MLOPS_STORAGE_RETRY_SECONDS).",
    )
    aws_region: str | None = Field(default=None, description="S3 region (AWS_REGION, else AWS_DEFAULT_REGION).")
    azure_storage_account: str | None = Field(
        default=None, description="Azure storage account (AZURE_STORAGE_ACCOUNT_NAME)."
    )
    azure_connection_string: bool = Field(
        default=False,
        description=f"Azure clients authenticate with the connection string in {AZURE_CONNECTION_STRING_VAR} "
        "(set when that variable exists); otherwise with DefaultAzureCredential.",
    )
    gcp_project: str | None = Field(default=None, description="GCP project of the GCS clients (GOOGLE_CLOUD_PROJECT).")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking/registry backend; default SQLite under home."
    )
    mlflow_artifact_root: str | None = Field(
        default=None, description="Where MLflow stores artifacts; default beside the lake (<bucket>/mlflow)."
    )
    mlflow_ui_url: str = Field(default="http://127.0.0.1:5000", description="Base URL used for MLflow run links.")
    spec_modules: tuple[str, ...] = Field(
        default=(),
        description="Importable modules that define SPEC or SPECS (MLOPS_SPECS, comma-separated); "
        "empty = the reference specs in mlops_platform.specs.",
    )
    landing_override: str | None = Field(
        default=None,
        description="Root of the landing zone (MLOPS_LANDING_ROOT): a path or a URI of the profile's store; "
        "default <bucket>/landing beside the lake on cloud profiles, <home>/landing otherwise.",
    )
    quarantine_override: str | None = Field(
        default=None,
        description="Root of the quarantine (MLOPS_QUARANTINE_ROOT); default 'quarantine' beside the landing zone.",
    )
    landing_queue: str | None = Field(
        default=None,
        description="Queue of the landing zone's object-created notifications (MLOPS_LANDING_QUEUE): an SQS "
        "queue URL (aws) or a Storage Queue URL (azure); unset: the landing sensor lists the bucket.",
    )
    landing_limits: dict[str, int] = Field(
        default_factory=dict,
        description="LandingZone limits set in the environment (MLOPS_LANDING_*), by field name.",
    )
    serving: ServingSettings = Field(
        default_factory=ServingSettings, description="The endpoint deployer's settings (MLOPS_SERVING_*, ...)."
    )
    metrics_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of the profile's monitoring service (MLOPS_METRICS_ENDPOINT_URL): an emulator or a "
        "proxy; an override of Cloud Monitoring or Azure Monitor sends without credentials.",
    )
    azure_monitor_resource_id: str | None = Field(
        default=None,
        description="The Azure resource custom metrics belong to (MLOPS_AZURE_MONITOR_RESOURCE_ID), e.g. the "
        "Azure ML workspace's id.",
    )
    azure_monitor_region: str | None = Field(
        default=None,
        description="Region of that resource (MLOPS_AZURE_MONITOR_REGION; default MLOPS_AZUREML_LOCATION).",
    )
    alert_webhook_set: bool = Field(
        default=False,
        description=f"{ALERT_WEBHOOK_VAR} is set: alerts go to that webhook (its value, a secret, reaches the "
        "notifier as an EnvVar); unset, the alert sensors skip saying so.",
    )
    alert_format: Literal["json", "slack"] = Field(
        default="json", description=f"The alert document ({ALERT_FORMAT_VAR}): json, or slack (text + blocks)."
    )
    executor: Literal["in_process", "multiprocess", "k8s"] = Field(
        default="in_process",
        description="How a run executes its steps (MLOPS_EXECUTOR): in the run's process, one process "
        "per step, or one Kubernetes job per step (dagster-k8s k8s_job_executor, for deployments).",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _roots_fit_the_profile(self) -> Settings:
        self.cloud.validate()
        return self

    @property
    def cloud(self) -> Profile:
        """The profile object: every cloud-specific choice is its method."""
        from mlops_platform.profiles import profile_class

        return profile_class(self.profile)(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        profile = (get("MLOPS_PROFILE") or "local").lower()
        executor = (get("MLOPS_EXECUTOR") or "in_process").lower()
        if executor not in EXECUTORS:
            raise SettingsError(f"MLOPS_EXECUTOR={executor!r} is not an executor; choose one of {', '.join(EXECUTORS)}")
        from mlops_platform.profiles import profile_class

        profile_class(profile)  # an unknown name is an error naming the variable and the choices
        home = _home(env)
        try:
            return cls(
                profile=profile,
                home=home,
                storage_root=get("MLOPS_STORAGE_ROOT"),
                objects_root=get("MLOPS_OBJECTS_ROOT"),
                storage_endpoint_url=_http_url("MLOPS_STORAGE_ENDPOINT_URL", get("MLOPS_STORAGE_ENDPOINT_URL")),
                storage_timeout_seconds=_seconds(env, "MLOPS_STORAGE_TIMEOUT_SECONDS"),
                storage_retry_seconds=_seconds(env, "MLOPS_STORAGE_RETRY_SECONDS"),
                aws_region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
                azure_storage_account=get("AZURE_STORAGE_ACCOUNT_NAME"),
                azure_connection_string=get(AZURE_CONNECTION_STRING_VAR) is not None,
                gcp_project=get("GOOGLE_CLOUD_PROJECT"),
                mlflow_tracking_uri=_tracking_uri(get("MLOPS_MLFLOW_TRACKING_URI")),
                mlflow_artifact_root=_artifact_root(get("MLOPS_MLFLOW_ARTIFACT_ROOT")),
                mlflow_ui_url=_http_url("MLOPS_MLFLOW_UI_URL", get("MLOPS_MLFLOW_UI_URL")) or "http://127.0.0.1:5000",
                spec_modules=_modules(get("MLOPS_SPECS")),
                landing_override=_root_uri(get("MLOPS_LANDING_ROOT")),
                quarantine_override=_root_uri(get("MLOPS_QUARANTINE_ROOT")),
                landing_queue=_http_url("MLOPS_LANDING_QUEUE", get("MLOPS_LANDING_QUEUE")),
                landing_limits=_landing_limits(env),
                serving=_serving(env),
                metrics_endpoint_url=_http_url("MLOPS_METRICS_ENDPOINT_URL", get("MLOPS_METRICS_ENDPOINT_URL")),
                azure_monitor_resource_id=_azure_resource_id(get("MLOPS_AZURE_MONITOR_RESOURCE_ID")),
                azure_monitor_region=_region("MLOPS_AZURE_MONITOR_REGION", get("MLOPS_AZURE_MONITOR_REGION")),
                alert_webhook_set=_http_url(ALERT_WEBHOOK_VAR, get(ALERT_WEBHOOK_VAR)) is not None,
                alert_format=_alert_format(get(ALERT_FORMAT_VAR)),  # type: ignore[arg-type]
                executor=executor,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            # pydantic wraps the validator's SettingsError; hand back the message that names the variable.
            messages = [str(e.get("ctx", {}).get("error", e["msg"])) for e in exc.errors()]
            raise SettingsError("; ".join(messages)) from exc

    # Locations derived from the profile. Callers never build these paths themselves.
    @property
    def lake_root(self) -> str:
        return self.storage_root or str(self.home / "lake")

    @property
    def landing_location(self) -> str:
        """The landing zone's root: a path, or a URI of the profile's store."""
        if self.landing_override:
            return self.landing_override
        if self.bucket_root is not None:
            return f"{self.bucket_root}/landing"
        return str(self.home / "landing")

    @property
    def quarantine_location(self) -> str:
        """The quarantine's root: MLOPS_QUARANTINE_ROOT, else ``quarantine`` beside the landing zone."""
        if self.quarantine_override:
            return self.quarantine_override
        landing = self.landing_location
        parent = str(Path(landing).parent) if is_local(landing) else _parent(landing)
        return f"{parent.rstrip('/')}/quarantine"

    @property
    def landing_root(self) -> Path:
        """The landing zone as a folder of this machine (a local landing zone; tools and tests)."""
        return _local_folder("MLOPS_LANDING_ROOT", self.landing_location)

    @property
    def quarantine_root(self) -> Path:
        return _local_folder("MLOPS_QUARANTINE_ROOT", self.quarantine_location)

    @property
    def pickle_root(self) -> str:
        return self.objects_root or self.cloud.default_pickle_root()

    @property
    def bucket_root(self) -> str | None:
        """Where the lake's siblings (MLflow artifacts, compute logs) go: the URI above the lake root."""
        return None if is_local(self.lake_root) else _parent(self.lake_root)

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        if self.bucket_root is None:
            return (self.home / "mlflow" / "artifacts").as_uri()
        return self.cloud.artifact_root(self.bucket_root)

    def delta_storage_options(self) -> dict[str, str]:
        """What delta-rs needs besides the URI; never a credential (those come from the SDK chain)."""
        return self.cloud.delta_storage_options()

    def client_environment(self) -> dict[str, str]:
        """Variables that the SDK-configured clients (MLflow's artifact stores, google-cloud-storage)
        need for the endpoint override, which they read only from the environment. Deployments export
        them next to the MLOPS_* settings; nothing here is a secret."""
        return self.cloud.client_environment()


TRACKING_URI_VAR = "MLOPS_MLFLOW_TRACKING_URI"
# MLflow tracking stores by URI scheme: what mlflow.tracking accepts (plus databricks, which needs its own setup).
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file", "databricks")
ARTIFACT_SCHEMES = ("file", "s3", "gs", "wasbs", "abfss", "http", "https", "mlflow-artifacts", "hdfs", "sftp", "ftp")


def _home(env: Mapping[str, str]) -> Path:
    value = env.get("MLOPS_HOME")
    if value is not None and not value.strip():
        raise SettingsError("MLOPS_HOME is set but empty; unset it (default ./.mlops) or name a folder")
    home = Path(value.strip()) if value else Path.cwd() / ".mlops"
    if home.exists() and not home.is_dir():
        raise SettingsError(f"MLOPS_HOME={str(home)!r} is a file, not a folder")
    return home


def _tracking_uri(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.split("://", 1)[0].split("+", 1)[0].lower() if "://" in value else ""
    if scheme not in TRACKING_SCHEMES:
        raise SettingsError(
            f"MLOPS_MLFLOW_TRACKING_URI has scheme {scheme or 'none'!r}; expected one of "
            f"{', '.join(s + '://' for s in TRACKING_SCHEMES)}"
        )
    return value


def _artifact_root(value: str | None) -> str | None:
    if value is None or "://" not in value:
        if value is not None and not value.startswith("/"):
            raise SettingsError(f"MLOPS_MLFLOW_ARTIFACT_ROOT={value!r} must be an absolute path or a URI")
        return value
    scheme = value.split("://", 1)[0].lower()
    if scheme not in ARTIFACT_SCHEMES:
        raise SettingsError(
            f"MLOPS_MLFLOW_ARTIFACT_ROOT has scheme {scheme!r}; expected one of {', '.join(ARTIFACT_SCHEMES)}"
        )
    return value


def _http_url(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SettingsError(f"{name} must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:9000")
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise SettingsError(f"{name} has a malformed port: {exc}") from exc
    return value


def _azure_resource_id(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/.+/.+", value):
        raise SettingsError(
            "MLOPS_AZURE_MONITOR_RESOURCE_ID is not an Azure resource id "
            "(/subscriptions/<id>/resourceGroups/<group>/providers/<namespace>/<type>/<name>)"
        )
    return value


def _region(name: str, value: str | None) -> str | None:
    if value is not None and not _REGION.match(value):
        raise SettingsError(f"{name}={value!r} is not a region name such as westeurope")
    return value


def _alert_format(value: str | None) -> str:
    fmt = (value or "json").lower()
    if fmt not in FORMATS:
        raise SettingsError(f"{ALERT_FORMAT_VAR}={value!r} is not an alert format; choose one of {', '.join(FORMATS)}")
    return fmt


def _service_account(value: str | None) -> str | None:
    """A Google service account's e-mail (NAME@PROJECT.iam.gserviceaccount.com), or a clear error."""
    if value is not None and not re.fullmatch(r"[a-z][a-z0-9-]{4,29}@[a-z0-9.-]+\.gserviceaccount\.com", value):
        raise SettingsError(
            f"MLOPS_VERTEX_SERVICE_ACCOUNT={value!r} is not a service account e-mail "
            "(NAME@PROJECT.iam.gserviceaccount.com)"
        )
    return value


def _root_uri(value: str | None) -> str | None:
    """A root path or URI without a trailing slash."""
    return value.rstrip("/") or "/" if value else None


def _local_folder(variable: str, location: str) -> Path:
    if not is_local(location):
        raise SettingsError(f"{variable}: {location} is on an object store, not a folder of this machine")
    return Path(location.removeprefix("file://"))


def _landing_limits(env: Mapping[str, str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for variable, field in LANDING_LIMITS.items():
        value = env.get(variable, "").strip()
        if not value:
            continue
        try:
            number = int(value)
        except ValueError as exc:
            raise SettingsError(f"{variable}={value!r} is not a whole number") from exc
        if number < 0 or (number == 0 and field != "max_future_days"):
            raise SettingsError(f"{variable}={value!r} must be positive")
        limits[field] = number
    return limits


def _modules(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    modules = tuple(part.strip() for part in value.split(",") if part.strip())
    for module in modules:
        if not all(piece.isidentifier() for piece in module.split(".")):
            raise SettingsError(f"MLOPS_SPECS names {module!r}, which is not an importable module name")
    return modules


def executor_for(settings: Settings) -> Any:
    """How a run executes its steps. By default in the run's own process: a step subprocess would
    re-import the code location (seconds each on 2 cores) for steps that mostly run one after another.
    On Kubernetes each step is its own job (the Helm values set MLOPS_EXECUTOR=k8s), scheduled on the
    spot pool like the run pod whose configuration it inherits.
    """
    import dagster as dg

    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if settings.executor == "multiprocess":
        return dg.multiprocess_executor
    return dg.in_process_executor


def resources_for(settings: Settings, *, secrets_as_env_vars: bool = False) -> dict[str, Any]:
    """The whole resource set of the profile: IO managers, landing zone, MLflow registry and the
    serving deployer (``deployer``, the profile's ``Profile.deployer``).

    ``secrets_as_env_vars`` (what the code location uses): a tracking URI that came from the
    environment reaches the resources as a ``dagster.EnvVar``, resolved when a run or tick initialises
    them, so the UI's resource configuration shows the variable's name, never a password. Callers
    that use a resource directly (the CLI) take the plain values.
    """
    from mlops_platform.automation.alerts import Notifier
    from mlops_platform.automation.operations import OPERATIONS_EXPERIMENT, lazy_mlflow_tracking
    from mlops_platform.storage.io_manager import DeltaIOManager, Lake
    from mlops_platform.tracking.registry import MlflowRegistry

    lake = Lake(root_uri=settings.lake_root, storage_options=settings.delta_storage_options())
    tracking_uri: Any = settings.tracking_uri
    tracking_config: Any = settings.tracking_uri
    if secrets_as_env_vars and os.environ.get(TRACKING_URI_VAR, "").strip() == settings.tracking_uri:
        import dagster as dg

        tracking_uri, tracking_config = dg.EnvVar(TRACKING_URI_VAR), {"env": TRACKING_URI_VAR}
    return {
        "lake": lake,
        "io_manager": settings.cloud.pickle_io_manager(settings.pickle_root),
        "delta_io_manager": DeltaIOManager(lake=lake),
        "landing": settings.cloud.landing_zone(settings.landing_limits),
        **({"landing_queue": queue} if (queue := settings.cloud.landing_queue()) is not None else {}),
        "registry": MlflowRegistry(
            tracking_uri=tracking_uri,
            artifact_root=settings.artifact_root,
            ui_url=settings.mlflow_ui_url,
        ),
        "deployer": settings.cloud.deployer(),
        "notifier": _notifier(settings, Notifier),
        "metrics": settings.cloud.metrics_sink(),
        "mlflow": lazy_mlflow_tracking.configured(
            {
                "experiment_name": OPERATIONS_EXPERIMENT,
                "mlflow_tracking_uri": tracking_config,
                "artifact_root": settings.artifact_root,
            }
        ),
    }


def _notifier(settings: Settings, notifier: Any) -> Any:
    """The alert notifier: the webhook URL is a secret, so it is always passed as the variable's name."""
    import dagster as dg

    url = dg.EnvVar(ALERT_WEBHOOK_VAR) if settings.alert_webhook_set else None
    return notifier(webhook_url=url, format=settings.alert_format)


def instance_config_for(settings: Settings, *, root: str | None = None, upload_interval: int = 30) -> dict[str, Any]:
    """The Dagster instance configuration (dagster.yaml) that belongs to the profile: step compute
    logs in the bucket, beside the lake (``root``, default <bucket>/dagster/compute-logs). Empty for
    local, where the instance keeps them on disk. deploy/helm/dagster/values-<cloud>.yaml sets the
    same through the chart.
    """
    if root is None:
        if settings.bucket_root is None:
            return {}
        root = f"{settings.bucket_root}/{COMPUTE_LOGS_PREFIX}"
    block = settings.cloud.compute_log_manager(root, upload_interval)
    return {"compute_logs": block} if block else {}
