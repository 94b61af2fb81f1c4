"""The azure profile: the lake and pickled objects on Azure Blob Storage / ADLS Gen2."""

from __future__ import annotations

from typing import Any

from mlops_platform.profiles.base import MLFLOW_PREFIX, CloudProfile, bucket_and_key, is_local

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
