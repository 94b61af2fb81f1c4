"""The landing zone on Azure Blob Storage (or Azurite at ``endpoint_url``), through azure-storage-blob.

Roots: ``az://container/prefix`` (the azure profile's form), also ``abfs[s]://container@account.dfs.core.windows.net/prefix``.
Authentication: ``connection_string`` when given (pass ``dagster.EnvVar``), else DefaultAzureCredential
(workload identity, managed identity, ``az login``) on ``https://<account_name>.blob.core.windows.net``.

Per-object facts the shared protocol (``landing_objects``) relies on:
- stamp: the blob's ETag (changes on every write, even of the same bytes);
- checksum: the blob's Content-MD5 (every upload here sets it; a server-side copy keeps it), else None
  (then the protocol compares the contents);
- copy: a same-account server-side copy (``start_copy_from_url``) of exactly the copied ETag
  (If-Match on the source), never over an existing blob (If-None-Match on the destination), with the
  metadata set by the copy itself; awaited until its status is ``success``, for at most
  ``copy_timeout_seconds``; a copy that fails or times out is aborted and its blob removed;
- delete: conditional on the ETag (``If-Match``); 412 (replaced) or 404 (gone) keep what is there.

Metadata names on Azure must be C# identifiers: the protocol's ``mlops-source`` keys are stored as
``mlops_source`` and read back under their own names.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr, field_validator

from mlops_platform.storage.landing import secret_value
from mlops_platform.storage.landing_objects import (
    SOURCE_KEY,
    SOURCE_STAMP,
    ObjectInfo,
    ObjectLandingZone,
    QuarantineError,
)

SCHEMES = ("az", "abfs", "abfss")
_STORED_NAMES = {key: key.replace("-", "_") for key in (SOURCE_KEY, SOURCE_STAMP)}
_READ_NAMES = {stored: key for key, stored in _STORED_NAMES.items()}


def _stored_name(key: str) -> str:
    return _STORED_NAMES.get(key, key.replace("-", "_"))


def _md5(value: Any) -> str | None:
    return f"md5:{bytes(value).hex()}" if value else None


def _error_code(exc: Any) -> str | None:
    """The service's error code (``x-ms-error-code``; a HEAD answer has no body to carry it)."""
    code = getattr(exc, "error_code", None)
    if code is None and getattr(exc, "response", None) is not None:
        code = exc.response.headers.get("x-ms-error-code")
    return None if code is None else str(getattr(code, "value", code))


def _with_endpoint(connection_string: str, endpoint: str) -> str:
    """The connection string with its BlobEndpoint set to ``endpoint`` (the other parts kept)."""
    parts = [p for p in connection_string.split(";") if p.strip() and not p.strip().lower().startswith("blobendpoint=")]
    return ";".join([*parts, f"BlobEndpoint={endpoint.rstrip('/')}"]) + ";"


def _retry_total(seconds: int) -> int:
    """Retries of ExponentialRetry(initial_backoff=1, increment_base=2) whose waits add up to at most ``seconds``."""
    total, waited = 0, 0.0
    while True:
        wait = 1 + (0 if total == 0 else 2**total)
        if waited + wait > seconds:
            return max(total, 1)
        waited += wait
        total += 1


class AzureBlobLandingZone(ObjectLandingZone):
    """``landing_root`` / ``quarantine_root``: ``az://container/prefix`` in the account ``account_name``."""

    account_name: str
    connection_string: str | None = Field(
        default=None, description="The account's connection string (pass dagster.EnvVar); else DefaultAzureCredential."
    )
    endpoint_url: str | None = Field(
        default=None, description="The blob endpoint, e.g. Azurite's http://127.0.0.1:PORT/ACCOUNT."
    )
    timeout_seconds: int | None = Field(default=None, gt=0, description="Per-request connect and read timeout.")
    retry_seconds: int | None = Field(
        default=None,
        gt=0,
        description="About how long the client retries one call (default the SDK's: 3 retries, 15 s apart and more).",
    )
    copy_timeout_seconds: int = Field(
        default=300, gt=0, description="How long a quarantine waits for a server-side copy to finish."
    )
    _service: Any = PrivateAttr(default=None)

    @field_validator("landing_root", "quarantine_root")
    @classmethod
    def _an_azure_root(cls, value: str) -> str:
        if isinstance(value, dg.EnvVar):
            return value  # resolved and checked when the resource is initialised
        scheme, _, rest = value.partition("://")
        if scheme not in SCHEMES or not rest.split("/", 1)[0].split("@", 1)[0]:
            raise ValueError(f"{value!r} is not an Azure Blob root: expected az://CONTAINER/PREFIX")
        return value

    def client(self) -> Any:
        """The BlobServiceClient, created on first use."""
        if self._service is None:
            from azure.storage.blob import BlobServiceClient, ExponentialRetry

            options: dict[str, Any] = {}
            if self.timeout_seconds:
                options.update(connection_timeout=self.timeout_seconds, read_timeout=self.timeout_seconds)
            if self.retry_seconds:
                options["retry_policy"] = ExponentialRetry(
                    initial_backoff=1,
                    increment_base=2,
                    retry_total=_retry_total(self.retry_seconds),
                    random_jitter_range=0,
                )
            if self.connection_string:
                connection = secret_value(self.connection_string) or ""
                if self.endpoint_url:
                    connection = _with_endpoint(connection, self.endpoint_url)
                self._service = BlobServiceClient.from_connection_string(connection, **options)
            else:
                from azure.identity import DefaultAzureCredential

                url = self.endpoint_url or f"https://{self.account_name}.blob.core.windows.net"
                self._service = BlobServiceClient(url, credential=DefaultAzureCredential(), **options)
        return self._service

    def _blob(self, bucket: str, key: str) -> Any:
        return self.client().get_blob_client(bucket, key)

    def _info(self, blob: Any, metadata: dict[str, str] | None = None) -> ObjectInfo:
        settings = getattr(blob, "content_settings", None)
        checksum = _md5(getattr(settings, "content_md5", None))
        read = {_READ_NAMES.get(name, name): value for name, value in (metadata or {}).items()}
        modified = int(blob.last_modified.timestamp() * 1e9)
        return ObjectInfo(blob.name, blob.size, blob.etag.strip('"'), modified, checksum, read)

    def _list(self, bucket: str, prefix: str, delimiter: str | None) -> tuple[list[ObjectInfo], list[str]]:
        from azure.storage.blob import BlobPrefix

        container = self.client().get_container_client(bucket)
        if not delimiter:
            return [self._info(blob) for blob in container.list_blobs(name_starts_with=prefix)], []
        objects, prefixes = [], []
        for item in container.walk_blobs(name_starts_with=prefix, delimiter=delimiter):
            if isinstance(item, BlobPrefix):
                prefixes.append(item.name)
            else:
                objects.append(self._info(item))
        return objects, prefixes

    def _head(self, bucket: str, key: str) -> ObjectInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            properties = self._blob(bucket, key).get_blob_properties()
        except ResourceNotFoundError as exc:
            if _error_code(exc) == "ContainerNotFound":
                raise  # a refusal naming the container, not an absent object
            return None
        return self._info(properties, properties.metadata)

    def _download(self, bucket: str, key: str, target: Path) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with target.open("wb") as handle:
                self._blob(bucket, key).download_blob().readinto(handle)
        except ResourceNotFoundError as exc:
            raise FileNotFoundError(f"az://{bucket}/{key} is gone") from exc

    def _upload(self, bucket: str, key: str, data: bytes) -> None:
        from azure.storage.blob import ContentSettings

        # Content-MD5 set by the client: the service keeps it for uploads of any size (it computes one
        # itself only for single-shot uploads), and a copy keeps it, so a quarantine copy verifies by it.
        settings = ContentSettings(content_md5=bytearray(hashlib.md5(data).digest()))
        self._blob(bucket, key).upload_blob(data, overwrite=True, content_settings=settings)

    def _copy(self, source: tuple[str, str], target: tuple[str, str], metadata: dict[str, str]) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        source_blob = self._blob(*source)
        target_blob = self._blob(*target)
        stored = {_stored_name(name): value for name, value in metadata.items()}
        stamp = metadata.get(SOURCE_STAMP)
        conditions: dict[str, Any] = {"match_condition": MatchConditions.IfMissing}  # If-None-Match: *
        if stamp:  # copy exactly the object whose stamp the copy records
            conditions.update(source_etag=f'"{stamp}"', source_match_condition=MatchConditions.IfNotModified)
        try:
            started = target_blob.start_copy_from_url(source_blob.url, metadata=stored, **conditions)
        except HttpResponseError as exc:
            if _error_code(exc) == "SourceConditionNotMet":
                raise QuarantineError(
                    f"az://{source[0]}/{source[1]} was replaced while it was being copied to "
                    f"az://{target[0]}/{target[1]}; nothing was copied and the new object stays in the landing zone"
                ) from exc
            raise  # the target name was taken meanwhile (412/409): a refusal; the next attempt picks another
        status, copy_id = started.get("copy_status"), started.get("copy_id")
        deadline = time.monotonic() + self.copy_timeout_seconds
        delay = 0.05
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(delay)  # polling the service's copy status; bounded by copy_timeout_seconds
            delay = min(delay * 2, 2.0)
            properties = target_blob.get_blob_properties()
            status, copy_id = properties.copy.status, properties.copy.id or copy_id
        if status != "success":
            self._remove_failed_copy(target_blob, status, copy_id)
            raise QuarantineError(
                f"the copy of az://{source[0]}/{source[1]} to az://{target[0]}/{target[1]} ended {status or 'unknown'}"
                + (f" (not done after {self.copy_timeout_seconds} s)" if status == "pending" else "")
                + "; the original stays in the landing zone"
            )

    def _remove_failed_copy(self, target_blob: Any, status: str | None, copy_id: str | None) -> None:
        """A copy that did not succeed leaves an empty blob with the copy's metadata: remove it, or
        the next attempt would take it for its own earlier copy."""
        from azure.core.exceptions import HttpResponseError

        try:
            if status == "pending" and copy_id:
                target_blob.abort_copy(copy_id)
            target_blob.delete_blob()
        except HttpResponseError:
            pass  # best effort: a leftover fails verification by size and is never taken for a good copy

    def _delete(self, bucket: str, key: str, etag: str) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        try:
            self._blob(bucket, key).delete_blob(etag=f'"{etag}"', match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as exc:
            if exc.status_code == 412 or (exc.status_code == 404 and _error_code(exc) != "ContainerNotFound"):
                return False  # replaced by the producer since it was copied (the new one stays), or gone
            raise
        return True
