"""The gcp profile: the lake and pickled objects on Google Cloud Storage."""

from __future__ import annotations

from typing import Any

from mlops_platform.profiles.base import CloudProfile, bucket_and_key, is_local, missing_settings, unconfigured


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
        if self.settings.landing_queue:
            raise SettingsError(
                "MLOPS_LANDING_QUEUE: the gcp profile lists its landing zone on GCS (Pub/Sub notifications are "
                "not supported yet); unset it"
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

    def object_landing_zone(self, landing: str, quarantine: str, limits: dict[str, int]) -> Any:
        from mlops_platform.storage.landing_gcs import GcsLandingZone

        return GcsLandingZone(
            landing_root=landing,
            quarantine_root=quarantine,
            project=self.settings.gcp_project,
            timeout_seconds=self.settings.storage_timeout_seconds,
            retry_seconds=self.settings.storage_retry_seconds,
            **limits,
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

    def metrics_sink(self) -> Any:
        """Cloud Monitoring custom metrics in GOOGLE_CLOUD_PROJECT (MLOPS_METRICS_ENDPOINT_URL overrides the API)."""
        from mlops_platform.profiles.metrics import CloudMonitoringSink, UnconfiguredMetricsSink

        if not self.settings.gcp_project:
            return UnconfiguredMetricsSink(missing=["GOOGLE_CLOUD_PROJECT"])
        return CloudMonitoringSink(project=self.settings.gcp_project, endpoint_url=self.settings.metrics_endpoint_url)

    def deployer(self) -> Any:
        """Vertex AI: the serving image as a model on an endpoint, the version's MLflow folder on GCS as artifact."""
        from mlops_platform.serving.deployers.vertex import VertexDeployer

        serving, settings = self.settings.serving, self.settings
        missing = missing_settings(
            {
                "GOOGLE_CLOUD_PROJECT": settings.gcp_project,
                "MLOPS_VERTEX_LOCATION": serving.vertex_location,
                "MLOPS_SERVING_IMAGE_URI": serving.image_uri,
            }
        )
        if missing:
            return unconfigured("vertex", missing)
        assert settings.gcp_project and serving.vertex_location and serving.image_uri
        return VertexDeployer(
            project=settings.gcp_project,
            location=serving.vertex_location,
            image_uri=serving.image_uri,
            tracking_uri=settings.tracking_uri,
            name_prefix=serving.name_prefix,
            machine_type=serving.instance_type or "n1-standard-2",
            service_account=serving.vertex_service_account,
        )
