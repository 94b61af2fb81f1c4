"""The aws profile: the lake and pickled objects on S3 (or an S3-compatible store such as MinIO)."""

from __future__ import annotations

from typing import Any

from mlops_platform.profiles.base import CloudProfile, bucket_and_key, is_local, missing_settings, unconfigured


class AwsProfile(CloudProfile):
    name = "aws"
    schemes = ("s3",)

    def delta_storage_options(self) -> dict[str, str]:
        options = super().delta_storage_options()
        if is_local(self.settings.lake_root):
            return options
        if self.settings.aws_region:
            options["AWS_REGION"] = self.settings.aws_region
        endpoint = self.settings.storage_endpoint_url
        if endpoint:
            options["AWS_ENDPOINT_URL"] = endpoint
            if endpoint.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        return options

    def object_store_pickles(self, root: str) -> Any:
        from mlops_platform.storage.pickles import S3Pickles

        bucket, prefix = bucket_and_key(root)
        return S3Pickles(
            bucket=bucket,
            prefix=prefix,
            region_name=self.settings.aws_region,
            endpoint_url=self.settings.storage_endpoint_url,
        )

    def object_landing_zone(self, landing: str, quarantine: str, limits: dict[str, int]) -> Any:
        from mlops_platform.storage.landing_s3 import S3LandingZone

        return S3LandingZone(
            landing_root=landing,
            quarantine_root=quarantine,
            region_name=self.settings.aws_region,
            endpoint_url=self.settings.storage_endpoint_url,
            timeout_seconds=self.settings.storage_timeout_seconds,
            **limits,
        )

    def landing_queue(self) -> Any:
        """S3 event notifications in the SQS queue at MLOPS_LANDING_QUEUE (a queue URL on a host other than
        amazonaws.com, such as moto_server or LocalStack, is also the client's endpoint)."""
        from urllib.parse import urlparse

        from mlops_platform.storage.landing_queues import SqsLandingQueue

        url = self.settings.landing_queue
        if not url:
            return None
        parsed = urlparse(url)
        endpoint = None if (parsed.hostname or "").endswith("amazonaws.com") else f"{parsed.scheme}://{parsed.netloc}"
        return SqsLandingQueue(queue_url=url, region_name=self.settings.aws_region, endpoint_url=endpoint)

    def client_environment(self) -> dict[str, str]:
        endpoint = self.settings.storage_endpoint_url
        return {"MLFLOW_S3_ENDPOINT_URL": endpoint} if endpoint else {}

    def compute_log_manager(self, root: str, upload_interval: int) -> dict[str, Any]:
        bucket, prefix = bucket_and_key(root)
        config: dict[str, Any] = {"bucket": bucket, "prefix": prefix, "upload_interval": upload_interval}
        if self.settings.aws_region:
            config["region"] = self.settings.aws_region
        if self.settings.storage_endpoint_url:
            config["endpoint_url"] = self.settings.storage_endpoint_url
        return {"module": "dagster_aws.s3.compute_log_manager", "class": "S3ComputeLogManager", "config": config}

    def metrics_sink(self) -> Any:
        """CloudWatch custom metrics in AWS_REGION (MLOPS_METRICS_ENDPOINT_URL overrides the endpoint)."""
        from mlops_platform.profiles.metrics import CloudWatchSink, UnconfiguredMetricsSink

        if not self.settings.aws_region:
            return UnconfiguredMetricsSink(missing=["AWS_REGION"])
        return CloudWatchSink(region=self.settings.aws_region, endpoint_url=self.settings.metrics_endpoint_url)

    def deployer(self) -> Any:
        """SageMaker: the serving image as a real-time endpoint, model.tar.gz under the MLflow artifact root."""
        from mlops_platform.serving.deployers.sagemaker import SageMakerDeployer

        serving, settings = self.settings.serving, self.settings
        artifact = serving.artifact_uri
        if artifact is None and settings.artifact_root.startswith("s3://"):
            artifact = f"{settings.artifact_root.rstrip('/')}/sagemaker"
        missing = missing_settings(
            {
                "AWS_REGION": settings.aws_region,
                "MLOPS_SAGEMAKER_ROLE_ARN": serving.sagemaker_role_arn,
                "MLOPS_SERVING_IMAGE_URI": serving.image_uri,
                "MLOPS_SERVING_ARTIFACT_URI (or an s3:// MLflow artifact root)": artifact,
            }
        )
        if missing:
            return unconfigured("sagemaker", missing)
        assert settings.aws_region and serving.sagemaker_role_arn and serving.image_uri and artifact
        return SageMakerDeployer(
            region=settings.aws_region,
            role_arn=serving.sagemaker_role_arn,
            image_uri=serving.image_uri,
            artifact_uri=artifact,
            tracking_uri=settings.tracking_uri,
            name_prefix=serving.name_prefix,
            rollback_alarms=list(serving.sagemaker_rollback_alarms),
            instance_type=serving.instance_type or "ml.m5.large",
        )
