"""The gcp profile: the lake and pickled objects on Google Cloud Storage."""

from __future__ import annotations

from typing import Any

from mlops_platform.profiles.base import CloudProfile, bucket_and_key, is_local


class GcpProfile(CloudProfile):
    name = "gcp"
    schemes = ("gs",)

    def validate(self) -> None:
        from mlops_platform.settings import SettingsError

        super().validate()
        if self.settings.storage_endpoint_url and not is_local(self.settings.lake_root):
            raise SettingsError(
                "MLOPS_STORAGE_ENDPOINT_URL cannot apply to a gs:// lake: delta-rs has no GCS endpoint override. "
                "Keep the lake on a local path to run against a GCS emulator, or unset the endpoint."
            )

    def object_store_pickles(self, root: str) -> Any:
        from mlops_platform.storage.pickles import GCSPickles

        bucket, prefix = bucket_and_key(root)
        return GCSPickles(
            bucket=bucket,
            prefix=prefix,
            project=self.settings.gcp_project,
            timeout_seconds=self.settings.storage_timeout_seconds,
            retry_seconds=self.settings.storage_retry_seconds,
        )

    def client_environment(self) -> dict[str, str]:
        endpoint = self.settings.storage_endpoint_url
        return {"STORAGE_EMULATOR_HOST": endpoint} if endpoint else {}

    def compute_log_manager(self, root: str, upload_interval: int) -> dict[str, Any]:
        bucket, prefix = bucket_and_key(root)
        return {
            "module": "dagster_gcp.gcs.compute_log_manager",
            "class": "GCSComputeLogManager",
            "config": {"bucket": bucket, "prefix": prefix, "upload_interval": upload_interval},
        }
