"""The azure profile: the lake and pickled objects on Azure Blob Storage / ADLS Gen2."""

from __future__ import annotations

from typing import Any

from mlops_platform.profiles.base import (
    MLFLOW_PREFIX,
    CloudProfile,
    bucket_and_key,
    is_local,
    missing_settings,
    unconfigured,
)

AZURE_CONNECTION_STRING_VAR = "AZURE_STORAGE_CONNECTION_STRING"


class AzureProfile(CloudProfile):
    name = "azure"
    schemes = ("az", "abfs", "abfss")

    def validate(self) -> None:
        from mlops_platform.settings import SettingsError

        super().validate()
        if not self.settings.azure_storage_account:
            raise SettingsError("MLOPS_PROFILE=azure needs AZURE_STORAGE_ACCOUNT_NAME, the storage account of the lake")

    def delta_storage_options(self) -> dict[str, str]:
        options = super().delta_storage_options()
        if is_local(self.settings.lake_root):
            return options
        options["azure_storage_account_name"] = self.settings.azure_storage_account or ""
        endpoint = self.settings.storage_endpoint_url
        if endpoint:
            options["azure_storage_endpoint"] = endpoint
            if endpoint.startswith("http://"):
                options["allow_http"] = "true"
        return options

    def object_store_pickles(self, root: str) -> Any:
        import dagster as dg

        from mlops_platform.storage.pickles import AzureBlobPickles

        bucket, prefix = bucket_and_key(root)
        return AzureBlobPickles(
            root=f"abfs://{bucket}/{prefix}",
            account_name=self.settings.azure_storage_account or "",
            # The secret reaches the resource as an EnvVar: the UI shows the variable's name only.
            connection_string=dg.EnvVar(AZURE_CONNECTION_STRING_VAR) if self.settings.azure_connection_string else None,
        )

    def object_landing_zone(self, landing: str, quarantine: str, limits: dict[str, int]) -> Any:
        import dagster as dg

        from mlops_platform.storage.landing_azure import AzureBlobLandingZone

        return AzureBlobLandingZone(
            landing_root=landing,
            quarantine_root=quarantine,
            account_name=self.settings.azure_storage_account or "",
            connection_string=dg.EnvVar(AZURE_CONNECTION_STRING_VAR) if self.settings.azure_connection_string else None,
            endpoint_url=self.settings.storage_endpoint_url,
            timeout_seconds=self.settings.storage_timeout_seconds,
            retry_seconds=self.settings.storage_retry_seconds,
            **limits,
        )

    def landing_queue(self) -> Any:
        """Event Grid's BlobCreated events in the Storage Queue at MLOPS_LANDING_QUEUE."""
        import dagster as dg

        from mlops_platform.storage.landing_queues import StorageQueueLandingQueue

        if not self.settings.landing_queue:
            return None
        return StorageQueueLandingQueue(
            queue_url=self.settings.landing_queue,
            connection_string=dg.EnvVar(AZURE_CONNECTION_STRING_VAR) if self.settings.azure_connection_string else None,
        )

    def artifact_root(self, bucket_root: str) -> str:
        # MLflow addresses Azure Blob as wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/PATH.
        container, key = bucket_and_key(bucket_root)
        path = "/".join(p for p in (key, MLFLOW_PREFIX) if p)
        return f"wasbs://{container}@{self.settings.azure_storage_account}.blob.core.windows.net/{path}"

    def compute_log_manager(self, root: str, upload_interval: int) -> dict[str, Any]:
        container, prefix = bucket_and_key(root)
        return {
            "module": "dagster_azure.blob.compute_log_manager",
            "class": "AzureBlobComputeLogManager",
            "config": {
                "storage_account": self.settings.azure_storage_account,
                "container": container,
                "prefix": prefix,
                "upload_interval": upload_interval,
                # Workload identity / managed identity / az login; no account key in the instance config.
                "default_azure_credential": {},
            },
        }

    def metrics_sink(self) -> Any:
        """Azure Monitor custom metrics on MLOPS_AZURE_MONITOR_RESOURCE_ID in MLOPS_AZURE_MONITOR_REGION
        (default MLOPS_AZUREML_LOCATION); MLOPS_METRICS_ENDPOINT_URL overrides the regional endpoint."""
        from mlops_platform.profiles.metrics import AzureMonitorSink, UnconfiguredMetricsSink

        settings = self.settings
        region = settings.azure_monitor_region or settings.serving.azureml_location
        missing = missing_settings(
            {
                "MLOPS_AZURE_MONITOR_RESOURCE_ID": settings.azure_monitor_resource_id,
                "MLOPS_AZURE_MONITOR_REGION (or MLOPS_AZUREML_LOCATION)": region,
            }
        )
        if missing:
            return UnconfiguredMetricsSink(missing=missing)
        assert settings.azure_monitor_resource_id and region
        return AzureMonitorSink(
            resource_id=settings.azure_monitor_resource_id, region=region, endpoint_url=settings.metrics_endpoint_url
        )

    def deployer(self) -> Any:
        """Azure ML: a managed online endpoint, blue/green deployments of the serving image."""
        from mlops_platform.serving.deployers.azureml import AzureMLDeployer

        serving, settings = self.settings.serving, self.settings
        missing = missing_settings(
            {
                "AZURE_SUBSCRIPTION_ID": serving.azure_subscription_id,
                "MLOPS_AZUREML_RESOURCE_GROUP": serving.azureml_resource_group,
                "MLOPS_AZUREML_WORKSPACE": serving.azureml_workspace,
                "MLOPS_AZUREML_LOCATION": serving.azureml_location,
                "MLOPS_AZUREML_ENDPOINT_IDENTITY": serving.azureml_endpoint_identity,
                "MLOPS_SERVING_IMAGE_URI": serving.image_uri,
            }
        )
        if missing:
            return unconfigured("azureml", missing)
        assert serving.azure_subscription_id and serving.azureml_resource_group and serving.azureml_workspace
        assert serving.azureml_location and serving.image_uri and serving.azureml_endpoint_identity
        return AzureMLDeployer(
            subscription_id=serving.azure_subscription_id,
            resource_group=serving.azureml_resource_group,
            workspace=serving.azureml_workspace,
            location=serving.azureml_location,
            image_uri=serving.image_uri,
            endpoint_identity_id=serving.azureml_endpoint_identity,
            tracking_uri=settings.tracking_uri,
            name_prefix=serving.name_prefix,
            instance_type=serving.instance_type or "Standard_DS3_v2",
        )
