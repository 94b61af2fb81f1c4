"""Cloud profiles against real storage servers on loopback: one module-scoped server per cloud.

A fixture starts the server, creates the bucket/container, exports what a deployment would export
(test credentials for the SDK chains, the endpoint variables of ``Settings.client_environment()``)
and yields ``Cloud``: the server and the settings environment that ``Settings.from_env`` reads. The
server is stopped in the fixture's teardown, whatever the tests did.

Against a real bucket instead: run the module with the profile's settings in the environment, e.g.
``MLOPS_PROFILE=aws MLOPS_STORAGE_ROOT=s3://my-bucket/lake AWS_REGION=eu-west-1 pytest tests/cloud/test_s3.py``.
The fixture then starts no server, the suite writes under ``<MLOPS_STORAGE_ROOT>/test-runs/<run id>``
with the credentials of the SDK chains, and the outage tests (which stop the server) are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_platform.settings import ENVIRONMENT_VARIABLES, Settings
from tests.cloud import servers

BUCKET = "mlops-test"
AZURE_ACCOUNT = "mlopstest"
# Small client timeouts: an outage reaches the step's RetryPolicy in seconds, not minutes.
FAST_FAILURE = {"MLOPS_STORAGE_TIMEOUT_SECONDS": "3", "MLOPS_STORAGE_RETRY_SECONDS": "3"}


@dataclass
class Cloud:
    profile: str
    server: servers.Server | None  # None: a real bucket
    environ: dict[str, str]  # the settings (what Settings.from_env reads)

    def settings(self, home: Path, **overrides: str) -> Settings:
        return Settings.from_env({**self.environ, "MLOPS_HOME": str(home), **overrides})

    def require_server(self) -> servers.Server:
        if self.server is None:
            pytest.skip("outages are staged by stopping the local server; not against a real bucket")
        return self.server


def real_bucket(profile: str) -> dict[str, str] | None:
    """The settings of a real bucket for ``profile`` from the environment, under a fresh run prefix."""
    if os.environ.get("MLOPS_PROFILE") != profile or not os.environ.get("MLOPS_STORAGE_ROOT"):
        return None
    environ = {name: os.environ[name] for name in ENVIRONMENT_VARIABLES if os.environ.get(name)}
    run = f"test-runs/{uuid.uuid4().hex[:12]}"
    environ["MLOPS_STORAGE_ROOT"] = f"{environ['MLOPS_STORAGE_ROOT'].rstrip('/')}/{run}"
    for name in ("MLOPS_OBJECTS_ROOT", "MLOPS_MLFLOW_ARTIFACT_ROOT"):
        if name in environ:
            environ[name] = f"{environ[name].rstrip('/')}/{run}"
    environ.pop("MLOPS_HOME", None)
    return environ


@pytest.fixture(scope="module")
def exported() -> Iterator[pytest.MonkeyPatch]:
    """Process environment for one module's clients, restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _export(patch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        patch.setenv(name, value)


@pytest.fixture(scope="module")
def s3(tmp_path_factory, exported) -> Iterator[Cloud]:
    real = real_bucket("aws")
    if real is not None:
        yield Cloud("aws", None, real)
        return
    workdir = tmp_path_factory.mktemp("s3")
    server = servers.moto_server(workdir)
    try:
        # The SDK chains' environment source; moto accepts any key. No instance metadata lookups.
        credentials = {
            "AWS_ACCESS_KEY_ID": "mlops-test",
            "AWS_SECRET_ACCESS_KEY": "mlops-test",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        environ = {
            "MLOPS_PROFILE": "aws",
            "MLOPS_STORAGE_ROOT": f"s3://{BUCKET}/lake",
            "MLOPS_STORAGE_ENDPOINT_URL": server.url,
            "AWS_REGION": "us-east-1",
            **FAST_FAILURE,
        }
        _export(exported, credentials)
        _export(exported, Settings.from_env({**environ, "MLOPS_HOME": "/x"}).client_environment())
        import boto3

        boto3.client("s3", endpoint_url=server.url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield Cloud("aws", server, environ)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def azure(tmp_path_factory, exported) -> Iterator[Cloud]:
    real = real_bucket("azure")
    if real is not None:
        yield Cloud("azure", None, real)
        return
    if servers.node_path() is None:
        pytest.skip("node is not installed: the Azure Blob server (Azurite) runs on Node.js")
    workdir = tmp_path_factory.mktemp("azure")
    key = servers.random_account_key()
    server = servers.azurite(workdir, AZURE_ACCOUNT, key)
    try:
        endpoint = f"{server.url}/{AZURE_ACCOUNT}"
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={key};BlobEndpoint={endpoint};"
        )
        # delta-rs reads the key from the environment; adlfs and MLflow take the connection string.
        _export(exported, {"AZURE_STORAGE_ACCOUNT_KEY": key, "AZURE_STORAGE_CONNECTION_STRING": connection})
        environ = {
            "MLOPS_PROFILE": "azure",
            "MLOPS_STORAGE_ROOT": f"az://{BUCKET}/lake",
            "MLOPS_STORAGE_ENDPOINT_URL": endpoint,
            "AZURE_STORAGE_ACCOUNT_NAME": AZURE_ACCOUNT,
            "AZURE_STORAGE_CONNECTION_STRING": connection,
            **FAST_FAILURE,
        }
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(connection).create_container(BUCKET)
        yield Cloud("azure", server, environ)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gcs(tmp_path_factory, exported) -> Iterator[Cloud]:
    real = real_bucket("gcp")
    if real is not None:
        yield Cloud("gcp", None, real)  # a real bucket: the lake is on gs:// too
        return
    workdir = tmp_path_factory.mktemp("gcs")
    server = servers.gcs_emulator(workdir, BUCKET)
    try:
        # delta-rs cannot write to this emulator (its XML API answers 501), so the lake of this suite
        # stays on local disk; pickles, MLflow artifacts and compute logs go to the GCS server.
        environ = {
            "MLOPS_PROFILE": "gcp",
            "MLOPS_STORAGE_ROOT": str(workdir / "lake"),
            "MLOPS_OBJECTS_ROOT": f"gs://{BUCKET}/lake/_objects",
            "MLOPS_MLFLOW_ARTIFACT_ROOT": f"gs://{BUCKET}/mlflow",
            "MLOPS_LANDING_ROOT": f"gs://{BUCKET}/landing",
            "MLOPS_STORAGE_ENDPOINT_URL": server.url,
            "GOOGLE_CLOUD_PROJECT": "mlops-test",
            **FAST_FAILURE,
        }
        _export(exported, Settings.from_env({**environ, "MLOPS_HOME": "/x"}).client_environment())
        _export(exported, {"GOOGLE_CLOUD_PROJECT": "mlops-test"})
        yield Cloud("gcp", server, environ)
    finally:
        server.stop()
