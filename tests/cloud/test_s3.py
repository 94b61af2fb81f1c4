"""The aws profile against S3: moto's server, a separate process on a loopback port (or a real
bucket, see conftest.py)."""

from __future__ import annotations

import pytest

from tests.cloud import suite
from tests.cloud.conftest import Cloud

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud(s3):
    return s3


@pytest.fixture(scope="module")
def spec(delivery):
    return delivery


@pytest.fixture(scope="module")
def platform(cloud, spec, tmp_path_factory):
    yield from suite.family_platform(cloud, spec, tmp_path_factory.mktemp("s3-platform"))


def _client(cloud: Cloud):
    import boto3

    endpoint = cloud.server.url if cloud.server else None
    return boto3.client("s3", endpoint_url=endpoint, region_name=cloud.environ.get("AWS_REGION"))


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class TestS3(suite.CloudSuite):
    profile = "aws"
    storage = "S3"
    # moto keeps objects in memory only, so the outage freezes the server (SIGSTOP/SIGCONT):
    # requests are accepted and never answered until it resumes.
    outage = ("pause", "resume")

    def read_object(self, cloud: Cloud, uri: str) -> bytes:
        bucket, key = _split(uri)
        return _client(cloud).get_object(Bucket=bucket, Key=key)["Body"].read()

    def objects_under(self, cloud: Cloud, uri: str) -> dict[str, bytes]:
        bucket, prefix = _split(uri)
        client = _client(cloud)
        listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}
