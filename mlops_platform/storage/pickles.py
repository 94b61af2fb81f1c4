"""Pickled non-tabular outputs (model records, evaluation results) on the profile's object store.

One contract whatever the cloud (``CloudPickles``): an asset's output is pickled to
``<root>/<asset key path>[/<partition>]``, a later materialization overwrites it, and the input
loads what the newest materialization wrote. The implementations are the clouds' own Dagster IO
managers, built when a step first uses them, so that the code location never imports a cloud SDK:

- S3: dagster-aws ``S3PickleIOManager`` with ``S3Resource`` (boto3's credential chain).
- GCS: dagster-gcp's GCS pickle IO manager (``PickledObjectGCSIOManager``, what ``GCSPickleIOManager``
  runs) on ``GCSResource``'s client (Application Default Credentials), with the client's timeout and
  retry deadline taken from the settings: google-cloud-storage otherwise retries one call for two
  minutes before the step's RetryPolicy sees the outage.
- Azure Blob: a pickle ``UPathIOManager`` over adlfs (``abfs://``). dagster-azure's
  ``ADLS2PickleIOManager`` talks only to the ADLS Gen2 DFS endpoint, which Azure's emulator lacks;
  the Blob API used here works on every storage account (hierarchical namespace or not) and on
  Azurite, so the same code is tested against a real server.

Failures name the store and the object's URI: an unreachable store raises StorageUnavailable (the
step's RetryPolicy retries it), a refusal fails the step at once.
"""

from __future__ import annotations

import pickle
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from mlops_platform.storage.errors import storage_errors
from mlops_platform.storage.io_manager import fail_fast_on_refusal

PICKLE_PROTOCOL = 4  # what Dagster's own pickle IO managers write


class CloudPickles(dg.ConfigurableIOManager):
    """Contract for the pickle IO managers of every object store.

    - ``handle_output`` writes ``obj`` at ``object_uri(context)``; writing again replaces it.
    - ``load_input`` returns what the newest materialization of the upstream asset wrote.
    - A store that cannot be reached raises ``StorageUnavailable`` naming the store and that URI
      (retryable); a store that refuses fails the step without retries.
    Subclasses implement ``root_uri`` and ``_create`` (which may import the cloud SDK).
    """

    _backend: Any = PrivateAttr(default=None)

    def root_uri(self) -> str:
        raise NotImplementedError

    def _create(self) -> dg.IOManager:
        raise NotImplementedError

    def backend(self) -> dg.IOManager:
        if self._backend is None:
            self._backend = self._create()
        return self._backend

    def object_uri(self, context: dg.InputContext | dg.OutputContext) -> str:
        """Where the object lives; used in messages (the backend computes the same path itself)."""
        if context.has_asset_key:
            parts = list(context.asset_key.path)
            if context.has_asset_partitions and len(context.asset_partition_keys) == 1:
                parts.append(context.asset_partition_keys[0])
        else:
            parts = ["storage", "<run>", context.name or "result"]
        return "/".join([self.root_uri().rstrip("/"), *parts])

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with fail_fast_on_refusal(), storage_errors(self.object_uri(context), "writing"):
            self.backend().handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> Any:
        with fail_fast_on_refusal(), storage_errors(self.object_uri(context), "reading"):
            return self.backend().load_input(context)


class S3Pickles(CloudPickles):
    """Pickled objects in an S3 bucket (or an S3-compatible store at ``endpoint_url``)."""

    bucket: str
    prefix: str
    region_name: str | None = None
    endpoint_url: str | None = None

    def root_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _create(self) -> dg.IOManager:
        from dagster_aws.s3 import S3PickleIOManager, S3Resource

        resource = S3Resource(region_name=self.region_name, endpoint_url=self.endpoint_url)
        return S3PickleIOManager(s3_resource=resource, s3_bucket=self.bucket, s3_prefix=self.prefix)


class GCSPickles(CloudPickles):
    """Pickled objects in a GCS bucket (STORAGE_EMULATOR_HOST points the client at an emulator)."""

    bucket: str
    prefix: str
    project: str | None = None
    timeout_seconds: int | None = Field(default=None, description="Per-request timeout (default 60 s).")
    retry_seconds: int | None = Field(
        default=None, description="How long the client retries one call (default google-cloud-storage's 120 s)."
    )

    def root_uri(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}"

    def _create(self) -> dg.IOManager:
        from dagster_gcp.gcs import GCSResource

        client = GCSResource(project=self.project).get_client()
        return _bounded_gcs_io_manager(self.bucket, self.prefix, client, self.timeout_seconds, self.retry_seconds)


class AzureBlobPickles(CloudPickles):
    """Pickled objects in an Azure Blob container, through adlfs.

    Authentication: ``connection_string`` when given (pass ``dagster.EnvVar``), else the account's
    DefaultAzureCredential (workload identity, managed identity, ``az login``).
    """

    root: str = Field(description="abfs://CONTAINER/PREFIX")
    account_name: str
    connection_string: str | None = None

    def root_uri(self) -> str:
        return self.root

    def _create(self) -> dg.IOManager:
        from upath import UPath

        options: dict[str, Any] = {"account_name": self.account_name}
        if self.connection_string:
            options["connection_string"] = self.connection_string
        else:
            options["anon"] = False  # DefaultAzureCredential, never anonymous access
        return _PickledObjects(base_path=UPath(self.root, **options))


def _bounded_gcs_io_manager(
    bucket: str, prefix: str, client: Any, timeout_seconds: int | None, retry_seconds: int | None
) -> dg.IOManager:
    """dagster-gcp's PickledObjectGCSIOManager whose calls use our timeout and retry deadline."""
    from dagster_gcp.gcs.io_manager import PickledObjectGCSIOManager
    from google.cloud.storage.retry import DEFAULT_RETRY
    from upath import UPath

    retry = DEFAULT_RETRY.with_timeout(float(retry_seconds)) if retry_seconds else DEFAULT_RETRY
    timeout = float(timeout_seconds or 60)

    class BoundedGCSObjects(PickledObjectGCSIOManager):
        def __init__(self) -> None:
            # As PickledObjectGCSIOManager.__init__, less its bucket check: that needs
            # storage.buckets.get, which an identity scoped to objects (roles/storage.objectUser)
            # lacks; a missing bucket fails the first read or write with its name anyway.
            self.bucket = bucket
            self.client = client
            self.bucket_obj = client.bucket(bucket)
            self.prefix = prefix
            dg.UPathIOManager.__init__(self, base_path=UPath(prefix))

        def load_from_path(self, context: dg.InputContext, path: Any) -> Any:
            blob = self.bucket_obj.blob(path.as_posix())
            return pickle.loads(blob.download_as_bytes(timeout=timeout, retry=retry))

        def dump_to_path(self, context: dg.OutputContext, obj: Any, path: Any) -> None:
            blob = self.bucket_obj.blob(path.as_posix())
            blob.upload_from_string(pickle.dumps(obj, PICKLE_PROTOCOL), timeout=timeout, retry=retry)

    return BoundedGCSObjects()


class _PickledObjects(dg.UPathIOManager):
    """Pickles under a UPath; the file layout is Dagster's (asset key path, partition as file name)."""

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: Any) -> None:
        with path.open("wb") as file:
            pickle.dump(obj, file, PICKLE_PROTOCOL)

    def load_from_path(self, context: dg.InputContext, path: Any) -> Any:
        with path.open("rb") as file:
            return pickle.load(file)
