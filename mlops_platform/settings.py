"""The one profile resolver.

Every environment-dependent choice (where data lives, which MLflow store, which IO managers, where the
Dagster instance writes compute logs) is made here and nowhere else. Nothing is read from the
environment at import time: callers ask ``Settings.from_env()`` when definitions load, and
``resources_for(settings)`` returns the whole resource set of that profile.

Profiles: ``local`` (files under MLOPS_HOME), ``aws`` (S3), ``azure`` (Azure Blob / ADLS Gen2) and
``gcp`` (GCS). A cloud profile needs MLOPS_STORAGE_ROOT, the Delta lake's root URI on the bucket; the
MLflow artifact root, the pickled objects and the compute logs default to prefixes beside it.
Credentials are never settings: every client takes them from its SDK's default chain (environment,
workload identity, instance metadata), and the one secret a resource needs by value (an Azure
connection string) reaches it as a ``dagster.EnvVar``, so the Dagster UI shows only the variable name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Profile = Literal["local", "aws", "gcp", "azure"]
PROFILES: tuple[str, ...] = ("local", "aws", "gcp", "azure")
# URI schemes of each profile's object store (delta-rs and fsspec names).
CLOUD_SCHEMES: dict[str, tuple[str, ...]] = {"aws": ("s3",), "azure": ("az", "abfs", "abfss"), "gcp": ("gs",)}
OBJECTS_DIR = "_objects"
MLFLOW_PREFIX = "mlflow"
COMPUTE_LOGS_PREFIX = "dagster/compute-logs"
AZURE_CONNECTION_STRING_VAR = "AZURE_STORAGE_CONNECTION_STRING"
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
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AZURE_STORAGE_ACCOUNT_NAME",
    AZURE_CONNECTION_STRING_VAR,  # only whether it is set; its value reaches resources as an EnvVar
    "GOOGLE_CLOUD_PROJECT",
)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _scheme(uri: str) -> str:
    return urlparse(uri).scheme.lower() if "://" in uri else ""


def _parent(uri: str) -> str:
    """The URI one level up (``s3://b/lake`` -> ``s3://b``); a bucket root is its own parent."""
    scheme, rest = uri.rstrip("/").split("://", 1)
    bucket, _, path = rest.partition("/")
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    return f"{scheme}://{bucket}" + (f"/{parent}" if parent else "")


def _bucket_and_key(uri: str) -> tuple[str, str]:
    """(bucket or container, key prefix) of an object-store URI; abfs's ``container@account`` too."""
    rest = uri.split("://", 1)[1].rstrip("/")
    bucket, _, key = rest.partition("/")
    return bucket.split("@", 1)[0], key


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


class Settings(BaseModel):
    """Resolved platform settings. Build with ``Settings.from_env()`` or directly in tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = "local"
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
        if self.profile == "local":
            for name, value in (("MLOPS_STORAGE_ROOT", self.storage_root), ("MLOPS_OBJECTS_ROOT", self.objects_root)):
                if value is not None and not _is_local(value):
                    raise SettingsError(f"{name}={value!r}: the local profile keeps its data on local disk")
            return self
        schemes = CLOUD_SCHEMES[self.profile]
        expected = " or ".join(f"{s}://" for s in schemes)
        if not self.storage_root:
            raise SettingsError(
                f"MLOPS_PROFILE={self.profile} needs MLOPS_STORAGE_ROOT, the lake's root URI ({expected}...)"
            )
        for name, value in (("MLOPS_STORAGE_ROOT", self.storage_root), ("MLOPS_OBJECTS_ROOT", self.objects_root)):
            # A local path is allowed (a mounted volume); another cloud's URI is a mistake.
            if value is not None and not _is_local(value) and _scheme(value) not in schemes:
                raise SettingsError(f"{name}={value!r} is not a {self.profile} URI; expected {expected}...")
        if self.profile == "azure" and not self.azure_storage_account:
            raise SettingsError("MLOPS_PROFILE=azure needs AZURE_STORAGE_ACCOUNT_NAME, the storage account of the lake")
        if self.profile == "gcp" and self.storage_endpoint_url and not _is_local(self.storage_root):
            raise SettingsError(
                "MLOPS_STORAGE_ENDPOINT_URL cannot apply to a gs:// lake: delta-rs has no GCS endpoint override. "
                "Keep the lake on a local path to run against a GCS emulator, or unset the endpoint."
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        profile = (get("MLOPS_PROFILE") or "local").lower()
        executor = (get("MLOPS_EXECUTOR") or "in_process").lower()
        if executor not in EXECUTORS:
            raise SettingsError(f"MLOPS_EXECUTOR={executor!r} is not an executor; choose one of {', '.join(EXECUTORS)}")
        if profile not in PROFILES:
            raise SettingsError(f"MLOPS_PROFILE={profile!r} is not a profile; choose one of {', '.join(PROFILES)}")
        home = Path(get("MLOPS_HOME") or Path.cwd() / ".mlops")
        try:
            return cls(
                profile=profile,  # type: ignore[arg-type]
                home=home,
                storage_root=get("MLOPS_STORAGE_ROOT"),
                objects_root=get("MLOPS_OBJECTS_ROOT"),
                storage_endpoint_url=get("MLOPS_STORAGE_ENDPOINT_URL"),
                storage_timeout_seconds=_seconds(env, "MLOPS_STORAGE_TIMEOUT_SECONDS"),
                storage_retry_seconds=_seconds(env, "MLOPS_STORAGE_RETRY_SECONDS"),
                aws_region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
                azure_storage_account=get("AZURE_STORAGE_ACCOUNT_NAME"),
                azure_connection_string=get(AZURE_CONNECTION_STRING_VAR) is not None,
                gcp_project=get("GOOGLE_CLOUD_PROJECT"),
                mlflow_tracking_uri=get("MLOPS_MLFLOW_TRACKING_URI"),
                mlflow_artifact_root=get("MLOPS_MLFLOW_ARTIFACT_ROOT"),
                mlflow_ui_url=get("MLOPS_MLFLOW_UI_URL") or "http://127.0.0.1:5000",
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
    def landing_root(self) -> Path:
        return self.home / "landing"

    @property
    def quarantine_root(self) -> Path:
        return self.home / "quarantine"

    @property
    def pickle_root(self) -> str:
        if self.objects_root:
            return self.objects_root
        if self.profile == "local":
            return str(self.home / "objects")
        return f"{self.lake_root.rstrip('/')}/{OBJECTS_DIR}"

    @property
    def bucket_root(self) -> str | None:
        """Where the lake's siblings (MLflow artifacts, compute logs) go: the URI above the lake root."""
        return None if _is_local(self.lake_root) else _parent(self.lake_root)

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        if self.bucket_root is None:
            return (self.home / "mlflow" / "artifacts").as_uri()
        if self.profile == "azure":
            # MLflow addresses Azure Blob as wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/PATH.
            container, key = _bucket_and_key(self.bucket_root)
            path = "/".join(p for p in (key, MLFLOW_PREFIX) if p)
            return f"wasbs://{container}@{self.azure_storage_account}.blob.core.windows.net/{path}"
        return f"{self.bucket_root}/{MLFLOW_PREFIX}"

    def delta_storage_options(self) -> dict[str, str]:
        """What delta-rs needs besides the URI; never a credential (those come from the SDK chain)."""
        options: dict[str, str] = {}
        if self.storage_timeout_seconds:
            options["timeout"] = f"{self.storage_timeout_seconds}s"
            options["connect_timeout"] = f"{min(self.storage_timeout_seconds, 10)}s"
        if self.storage_retry_seconds:
            options["retry_timeout"] = f"{self.storage_retry_seconds}s"
        if _is_local(self.lake_root):
            return options
        endpoint = self.storage_endpoint_url
        if self.profile == "aws":
            if self.aws_region:
                options["AWS_REGION"] = self.aws_region
            if endpoint:
                options["AWS_ENDPOINT_URL"] = endpoint
                if endpoint.startswith("http://"):
                    options["AWS_ALLOW_HTTP"] = "true"
        elif self.profile == "azure":
            options["azure_storage_account_name"] = self.azure_storage_account or ""
            if endpoint:
                options["azure_storage_endpoint"] = endpoint
                if endpoint.startswith("http://"):
                    options["allow_http"] = "true"
        return options

    def client_environment(self) -> dict[str, str]:
        """Variables that the SDK-configured clients (MLflow's artifact stores, google-cloud-storage)
        need for the endpoint override, which they read only from the environment. Deployments export
        them next to the MLOPS_* settings; nothing here is a secret."""
        endpoint = self.storage_endpoint_url
        if not endpoint:
            return {}
        if self.profile == "aws":
            return {"MLFLOW_S3_ENDPOINT_URL": endpoint}
        if self.profile == "gcp":
            return {"STORAGE_EMULATOR_HOST": endpoint}
        return {}


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


def _pickle_io_manager(settings: Settings) -> Any:
    """The profile's IO manager for non-tabular outputs (resource key ``io_manager``)."""
    import dagster as dg

    from mlops_platform.storage.pickles import AzureBlobPickles, GCSPickles, S3Pickles

    root = settings.pickle_root
    if _is_local(root):
        return dg.FilesystemIOManager(base_dir=root.removeprefix("file://"))
    bucket, prefix = _bucket_and_key(root)
    if settings.profile == "aws":
        return S3Pickles(
            bucket=bucket,
            prefix=prefix,
            region_name=settings.aws_region,
            endpoint_url=settings.storage_endpoint_url,
        )
    if settings.profile == "gcp":
        return GCSPickles(
            bucket=bucket,
            prefix=prefix,
            project=settings.gcp_project,
            timeout_seconds=settings.storage_timeout_seconds,
            retry_seconds=settings.storage_retry_seconds,
        )
    return AzureBlobPickles(
        root=f"abfs://{bucket}/{prefix}",
        account_name=settings.azure_storage_account or "",
        connection_string=dg.EnvVar(AZURE_CONNECTION_STRING_VAR) if settings.azure_connection_string else None,
    )


def resources_for(settings: Settings) -> dict[str, Any]:
    """The whole resource set of the profile: IO managers, landing zone and MLflow registry."""
    from mlops_platform.automation.operations import OPERATIONS_EXPERIMENT, lazy_mlflow_tracking
    from mlops_platform.storage.io_manager import DeltaIOManager, Lake
    from mlops_platform.storage.landing import LandingZone
    from mlops_platform.tracking.registry import MlflowRegistry

    lake = Lake(root_uri=settings.lake_root, storage_options=settings.delta_storage_options())
    return {
        "lake": lake,
        "io_manager": _pickle_io_manager(settings),
        "delta_io_manager": DeltaIOManager(lake=lake),
        "landing": LandingZone(
            landing_root=str(settings.landing_root),
            quarantine_root=str(settings.quarantine_root),
        ),
        "registry": MlflowRegistry(
            tracking_uri=settings.tracking_uri,
            artifact_root=settings.artifact_root,
            ui_url=settings.mlflow_ui_url,
        ),
        "mlflow": lazy_mlflow_tracking.configured(
            {
                "experiment_name": OPERATIONS_EXPERIMENT,
                "mlflow_tracking_uri": settings.tracking_uri,
                "artifact_root": settings.artifact_root,
            }
        ),
    }


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
    bucket, prefix = _bucket_and_key(root)
    config: dict[str, Any]
    if settings.profile == "aws":
        config = {"bucket": bucket, "prefix": prefix, "upload_interval": upload_interval}
        if settings.aws_region:
            config["region"] = settings.aws_region
        if settings.storage_endpoint_url:
            config["endpoint_url"] = settings.storage_endpoint_url
        return {
            "compute_logs": {
                "module": "dagster_aws.s3.compute_log_manager",
                "class": "S3ComputeLogManager",
                "config": config,
            }
        }
    if settings.profile == "gcp":
        config = {"bucket": bucket, "prefix": prefix, "upload_interval": upload_interval}
        return {
            "compute_logs": {
                "module": "dagster_gcp.gcs.compute_log_manager",
                "class": "GCSComputeLogManager",
                "config": config,
            }
        }
    config = {
        "storage_account": settings.azure_storage_account,
        "container": bucket,
        "prefix": prefix,
        "upload_interval": upload_interval,
        # Workload identity / managed identity / az login; no account key in the instance config.
        "default_azure_credential": {},
    }
    return {
        "compute_logs": {
            "module": "dagster_azure.blob.compute_log_manager",
            "class": "AzureBlobComputeLogManager",
            "config": config,
        }
    }
