"""The aws target: a SageMaker real-time endpoint running the platform's serving image.

deploy: the MLflow model folder of the version, packaged as SageMaker expects (``model.tar.gz`` at
the root of the archive, extracted to /opt/ml/model), uploaded to S3; a SageMaker model (the serving
image in single-model mode), an endpoint config, then ``create_endpoint`` or a blue/green
``update_endpoint`` with optional CloudWatch alarms that roll the update back automatically.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from mlops_platform.serving.deployers.base import Deployer, DeployError, Deployment, PlannedRequest

VERSION_TAG = "mlops:model-version"


class SageMakerDeployer(Deployer):
    """``SageMakerDeployer(region=..., role_arn=..., image_uri=..., artifact_uri="s3://bucket/serving",
    tracking_uri=..., rollback_alarms=[...], endpoint_url=None)``."""

    region: str
    role_arn: str
    image_uri: str
    artifact_uri: str  # s3://bucket/prefix where model.tar.gz files go
    tracking_uri: str = ""
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    name_prefix: str = "mlops"
    rollback_alarms: list[str] = []
    endpoint_url: str | None = None  # a SageMaker/S3 emulator (tests); None: AWS
    wait_seconds: int = 1800

    @property
    def target(self) -> str:
        return "sagemaker"

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def endpoint_name(self, model: str) -> str:
        return f"{self.name_prefix}-{model}".replace("_", "-")[:63]

    def resource_name(self, model: str, version: str) -> str:
        return f"{self.name_prefix}-{model}-v{version}".replace("_", "-")[:63]

    def model_data_url(self, model: str, version: str) -> str:
        return f"{self.artifact_uri.rstrip('/')}/{model}/{version}/model.tar.gz"

    def plan(self, model: str, version: str, endpoint_exists: bool) -> list[PlannedRequest]:
        """The exact SageMaker API calls of a deploy (operation name as url, parameters as body)."""
        name, endpoint = self.resource_name(model, version), self.endpoint_name(model)
        tags = [{"Key": VERSION_TAG, "Value": str(version)}, {"Key": "mlops:model", "Value": model}]
        calls = [
            PlannedRequest(
                "PUT", self.model_data_url(model, version), {"content": "model.tar.gz of the MLflow model folder"}
            ),
            PlannedRequest(
                "POST",
                "sagemaker:CreateModel",
                {
                    "ModelName": name,
                    "ExecutionRoleArn": self.role_arn,
                    "PrimaryContainer": {
                        "Image": self.image_uri,
                        "ModelDataUrl": self.model_data_url(model, version),
                        "Environment": {
                            "MLOPS_SERVING_MODEL": model,
                            "MLOPS_SERVING_VERSION": str(version),
                            "MLOPS_SERVING_MODEL_DIR": "/opt/ml/model",
                            "MLOPS_SERVING_AUTH": "cloud",
                        },
                    },
                    "Tags": tags,
                },
            ),
            PlannedRequest(
                "POST",
                "sagemaker:CreateEndpointConfig",
                {
                    "EndpointConfigName": name,
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "ModelName": name,
                            "InitialInstanceCount": self.instance_count,
                            "InstanceType": self.instance_type,
                        }
                    ],
                    "Tags": tags,
                },
            ),
        ]
        if not endpoint_exists:
            calls.append(
                PlannedRequest(
                    "POST",
                    "sagemaker:CreateEndpoint",
                    {"EndpointName": endpoint, "EndpointConfigName": name, "Tags": tags},
                )
            )
        else:
            deployment: dict[str, Any] = {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
                    "TerminationWaitInSeconds": 300,
                }
            }
            if self.rollback_alarms:
                deployment["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in self.rollback_alarms]}
            calls.append(
                PlannedRequest(
                    "POST",
                    "sagemaker:UpdateEndpoint",
                    {"EndpointName": endpoint, "EndpointConfigName": name, "DeploymentConfig": deployment},
                )
            )
        return calls

    def describe(self, model: str) -> Deployment | None:
        from botocore.exceptions import ClientError

        sm = self._client("sagemaker")
        endpoint = self.endpoint_name(model)
        try:
            described = sm.describe_endpoint(EndpointName=endpoint)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise DeployError(f"SageMaker describe_endpoint {endpoint}: {exc}") from exc
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        tags = sm.list_tags(ResourceArn=config["EndpointConfigArn"]).get("Tags", [])
        version = next((t["Value"] for t in tags if t["Key"] == VERSION_TAG), None)
        return Deployment(
            "sagemaker",
            model,
            version,
            f"https://runtime.sagemaker.{self.region}.amazonaws.com/endpoints/{endpoint}/invocations",
            details={"status": described.get("EndpointStatus"), "endpoint_config": described["EndpointConfigName"]},
        )

    def deploy(self, model: str, version: str, dry_run: bool = False) -> Deployment | list[PlannedRequest]:
        current = self.describe(model)
        if current is not None and current.version == str(version):
            return [] if dry_run else current
        calls = self.plan(model, str(version), endpoint_exists=current is not None)
        if dry_run:
            return calls
        self._upload(model, str(version), calls[0].url)
        sm = self._client("sagemaker")
        from botocore.exceptions import ClientError

        try:
            for call in calls[1:]:
                operation = call.url.split(":", 1)[1]
                method = {
                    "CreateModel": sm.create_model,
                    "CreateEndpointConfig": sm.create_endpoint_config,
                    "CreateEndpoint": sm.create_endpoint,
                    "UpdateEndpoint": sm.update_endpoint,
                }[operation]
                try:
                    method(**(call.body or {}))
                except ClientError as exc:
                    if operation in ("CreateModel", "CreateEndpointConfig") and "already exist" in str(exc).lower():
                        continue  # a retried deploy: the resource of this version is there
                    raise
            sm.get_waiter("endpoint_in_service").wait(
                EndpointName=self.endpoint_name(model),
                WaiterConfig={"Delay": 15, "MaxAttempts": max(1, self.wait_seconds // 15)},
            )
        except Exception as exc:
            raise DeployError(
                f"SageMaker endpoint {self.endpoint_name(model)}: deploying {model} version {version} failed "
                f"({type(exc).__name__}: {exc}); SageMaker keeps the previous config serving"
            ) from exc
        described = self.describe(model)
        assert described is not None
        return Deployment("sagemaker", model, str(version), described.url, changed=True, details=described.details)

    def delete(self, model: str, dry_run: bool = False) -> bool | list[PlannedRequest]:
        endpoint = self.endpoint_name(model)
        if dry_run:
            return [PlannedRequest("POST", "sagemaker:DeleteEndpoint", {"EndpointName": endpoint})]
        if self.describe(model) is None:
            return False
        self._client("sagemaker").delete_endpoint(EndpointName=endpoint)
        return True

    def smoke(self, model: str, payload: dict[str, Any]) -> tuple[str, float]:
        import json
        import time

        runtime = self._client("sagemaker-runtime")
        started = time.perf_counter()
        try:
            response = runtime.invoke_endpoint(
                EndpointName=self.endpoint_name(model), ContentType="application/json", Body=json.dumps(payload)
            )
        except Exception as exc:
            raise DeployError(f"smoke request to SageMaker endpoint {self.endpoint_name(model)} failed: {exc}") from exc
        body = json.loads(response["Body"].read() or b"{}")
        return str(body.get("model_version", "")), time.perf_counter() - started

    def _upload(self, model: str, version: str, url: str) -> None:
        import mlflow
        from mlflow.artifacts import download_artifacts

        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
        bucket, _, key = url.removeprefix("s3://").partition("/")
        with tempfile.TemporaryDirectory(prefix="mlops-sagemaker-") as tmp:
            local = Path(download_artifacts(f"models:/{model}/{version}", dst_path=tmp))
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
                for path in sorted(local.rglob("*")):
                    archive.add(path, arcname=str(path.relative_to(local)), recursive=False)
            self._client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def _missing(exc: Any) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    message = str(exc).lower()
    return code in ("ValidationException", "ResourceNotFound") and (
        "could not find" in message or "not found" in message
    )
