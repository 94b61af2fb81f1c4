"""The SageMaker deployer against moto_server (create_model, create_endpoint_config, create_endpoint,
describe, list_tags, delete, S3 upload), and update_endpoint as botocore validates it (moto has none)."""

from __future__ import annotations

import io
import tarfile

import boto3
import pytest
from botocore.stub import Stubber

from mlops_platform.serving.deployers.sagemaker import SageMakerDeployer
from tests.cloud.servers import moto_server


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = moto_server(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def deployer(moto, models, monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", region_name="eu-west-1", endpoint_url=moto.url).create_bucket(
        Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return SageMakerDeployer(
        region="eu-west-1",
        role_arn="arn:aws:iam::123456789012:role/mlops-serving",
        image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-serving:1",
        artifact_uri="s3://models/serving",
        tracking_uri=models.registry.tracking_uri,
        rollback_alarms=["mlops-churn-5xx"],
        endpoint_url=moto.url,
    )


def test_deploy_creates_the_endpoint_once_and_updates_blue_green(deployer, moto) -> None:
    assert deployer.describe("churn") is None
    planned = deployer.deploy("churn", "1", dry_run=True)
    assert [c.url for c in planned] == [
        "s3://models/serving/churn/1/model.tar.gz",
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
    ]
    assert deployer.describe("churn") is None  # a dry run sends nothing
    deployed = deployer.deploy("churn", "1")
    assert deployed.version == "1" and deployed.changed
    assert deployer.describe("churn").version == "1"
    archive = (
        boto3.client("s3", region_name="eu-west-1", endpoint_url=moto.url)
        .get_object(Bucket="models", Key="serving/churn/1/model.tar.gz")["Body"]
        .read()
    )
    with tarfile.open(fileobj=io.BytesIO(archive)) as opened:
        names = opened.getnames()
    assert "MLmodel" in names  # SageMaker extracts the archive to /opt/ml/model
    container = boto3.client("sagemaker", region_name="eu-west-1", endpoint_url=moto.url).describe_model(
        ModelName="mlops-churn-v1"
    )["PrimaryContainer"]
    assert container["Environment"]["MLOPS_SERVING_MODEL"] == "churn"
    assert container["ModelDataUrl"] == "s3://models/serving/churn/1/model.tar.gz"
    # Idempotent: the version already served needs no request.
    assert deployer.deploy("churn", "1", dry_run=True) == []
    assert deployer.deploy("churn", "1").changed is False

    update = deployer.deploy("churn", "2", dry_run=True)[-1]
    assert update.url == "sagemaker:UpdateEndpoint"
    assert update.body["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "mlops-churn-5xx"}]
    }
    client = boto3.client("sagemaker", region_name="eu-west-1", endpoint_url=moto.url)
    with Stubber(client) as stub:  # botocore validates the parameters against the SageMaker model
        stub.add_response(
            "update_endpoint", {"EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/mlops-churn"}, update.body
        )
        client.update_endpoint(**update.body)
        stub.assert_no_pending_responses()
    assert deployer.delete("churn") is True and deployer.delete("churn") is False
