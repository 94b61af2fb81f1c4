"""The azure profile against Azure Blob: Azurite (npm, package-lock.json), a node process on loopback
(or a real storage account, see conftest.py).

What runs against the server: Delta through delta-rs (az:// URIs, the account key from the
environment as on any storage account), the pickle IO manager through adlfs, MLflow's wasbs://
artifact store, and dagster-azure's AzureBlobComputeLogManager. That last one always builds
https://ACCOUNT.blob.core.windows.net, so against Azurite its Blob client is the same client pointed
at the server by connection string; its upload and read code runs unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg
import pytest

from tests.cloud import suite
from tests.cloud.conftest import Cloud

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud(azure):
    return azure


@pytest.fixture(scope="module")
def spec(delivery):
    return delivery


@pytest.fixture(scope="module")
def platform(cloud, spec, tmp_path_factory):
    yield from suite.family_platform(cloud, spec, tmp_path_factory.mktemp("azure-platform"))


def _service(cloud: Cloud):
    from azure.storage.blob import BlobServiceClient

    connection = cloud.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection:
        return BlobServiceClient.from_connection_string(connection)
    from azure.identity import DefaultAzureCredential

    account = cloud.environ["AZURE_STORAGE_ACCOUNT_NAME"]
    return BlobServiceClient(f"https://{account}.blob.core.windows.net", credential=DefaultAzureCredential())


def _split(uri: str) -> tuple[str, str]:
    container, _, name = uri.split("://", 1)[1].partition("/")
    return container.split("@", 1)[0], name


class TestAzureBlob(suite.CloudSuite):
    profile = "azure"
    storage = "Azure Blob"
    # Azurite keeps its data on disk here, so the outage really ends the process and starts a new one
    # on the same port: connections are refused until it is back.
    outage = ("stop", "start")

    def read_object(self, cloud: Cloud, uri: str) -> bytes:
        container, name = _split(uri)
        return _service(cloud).get_blob_client(container, name).download_blob().readall()

    def objects_under(self, cloud: Cloud, uri: str) -> dict[str, bytes]:
        container, prefix = _split(uri)
        client = _service(cloud).get_container_client(container)
        return {b.name: client.download_blob(b.name).readall() for b in client.list_blobs(name_starts_with=prefix)}

    @contextlib.contextmanager
    def compute_log_instance(self, cloud: Cloud, settings, tmp_path) -> Iterator[dg.DagsterInstance]:
        import unittest.mock

        import dagster_azure.blob.compute_log_manager as manager

        with contextlib.ExitStack() as stack:
            if cloud.server is not None:  # Azurite: the manager's client, pointed at the server
                stack.enter_context(
                    unittest.mock.patch.object(manager, "create_blob_client", lambda *a: _service(cloud))
                )
            yield stack.enter_context(super().compute_log_instance(cloud, settings, tmp_path))
