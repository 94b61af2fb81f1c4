"""The landing zone on Google Cloud Storage, through google-cloud-storage.

Roots: ``gs://bucket/prefix``. Credentials: Application Default Credentials (workload identity on GKE);
STORAGE_EMULATOR_HOST points the client at an emulator. Every call has a per-request timeout and a
bounded retry deadline (``timeout_seconds``, ``retry_seconds``), so an outage reaches the step's
RetryPolicy as StorageUnavailable in seconds, not after the client's two minutes.

Per-object facts the shared protocol (``landing_objects``) relies on:
- stamp: the object's generation (a new one on every write of the object; a metadata change keeps it);
- checksum: CRC32C (``crc32c:<base64>``), else MD5; GCS keeps both for every object and a copy keeps them;
- copy: one rewrite of exactly the copied generation (``ifSourceGenerationMatch``) with the copy's
  metadata in the same request, never over an existing object (``ifGenerationMatch=0``); a rewrite
  that takes several calls (large objects, another storage class) is followed to its end;
- delete: ``ifGenerationMatch`` of the copied generation; 412 (replaced) or 404 (gone) keep what is there.

gcp-storage-emulator (the tests' server) implements rewrite, patch and delete but ignores every
precondition (``ifGenerationMatch``, ``ifSourceGenerationMatch``) and the destination metadata of a
rewrite. Against it: the metadata is written by a patch right after the rewrite (only when the
rewrite did not set it, so a real bucket never needs it), and the delete is preceded by a check of
the generation, which keeps a replaced object as well (the precondition closes the remaining window
on a real bucket).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr, field_validator

from mlops_platform.storage.landing_objects import SOURCE_STAMP, ObjectInfo, ObjectLandingZone, QuarantineError

DEFAULT_TIMEOUT_SECONDS = 60


def _checksum(blob: Any) -> str | None:
    if blob.crc32c:
        return f"crc32c:{blob.crc32c}"
    return f"md5:{blob.md5_hash}" if blob.md5_hash else None


class GcsLandingZone(ObjectLandingZone):
    """``landing_root`` / ``quarantine_root``: ``gs://bucket/prefix``."""

    project: str | None = None
    timeout_seconds: int | None = Field(default=None, gt=0, description="Per-request timeout (default 60 s).")
    retry_seconds: int | None = Field(
        default=None, gt=0, description="How long the client retries one call (default google-cloud-storage's 120 s)."
    )
    _client: Any = PrivateAttr(default=None)

    @field_validator("landing_root", "quarantine_root")
    @classmethod
    def _a_gcs_root(cls, value: str) -> str:
        if isinstance(value, dg.EnvVar):
            return value  # resolved and checked when the resource is initialised
        scheme, _, rest = value.partition("://")
        if scheme not in ("gs", "gcs") or not rest.split("/", 1)[0]:
            raise ValueError(f"{value!r} is not a GCS root: expected gs://BUCKET/PREFIX")
        return value

    def client(self) -> Any:
        """The storage client, created on first use."""
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client(project=self.project)
        return self._client

    def _calls(self) -> dict[str, Any]:
        """The timeout and retry of every call (uploads and deletes included: each is idempotent here)."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        retry = DEFAULT_RETRY.with_timeout(float(self.retry_seconds)) if self.retry_seconds else DEFAULT_RETRY
        return {"timeout": float(self.timeout_seconds or DEFAULT_TIMEOUT_SECONDS), "retry": retry}

    def _blob(self, bucket: str, key: str) -> Any:
        return self.client().bucket(bucket).blob(key)

    def _info(self, blob: Any) -> ObjectInfo:
        modified = blob.updated or blob.time_created
        modified_ns = int(modified.timestamp() * 1e9) if modified is not None else 0
        return ObjectInfo(
            blob.name,
            int(blob.size or 0),
            str(blob.generation),
            modified_ns,
            _checksum(blob),
            dict(blob.metadata or {}),
        )

    def _list(self, bucket: str, prefix: str, delimiter: str | None) -> tuple[list[ObjectInfo], list[str]]:
        pages = self.client().list_blobs(bucket, prefix=prefix, delimiter=delimiter, **self._calls())
        objects = [self._info(blob) for blob in pages]  # consuming the iterator fills its prefixes
        return objects, sorted(pages.prefixes) if delimiter else []

    def _list_after(self, bucket: str, prefix: str, start_after: str) -> list[ObjectInfo]:
        # startOffset is inclusive; the emulator may ignore it: the filter keeps the contract either way.
        blobs = self.client().list_blobs(bucket, prefix=prefix, start_offset=start_after, **self._calls())
        return [self._info(blob) for blob in blobs if blob.name > start_after]

    def _head(self, bucket: str, key: str) -> ObjectInfo | None:
        blob = self.client().bucket(bucket).get_blob(key, **self._calls())
        return None if blob is None else self._info(blob)

    def _download(self, bucket: str, key: str, target: Path) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self._blob(bucket, key).download_to_filename(str(target), **self._calls())
        except NotFound as exc:
            raise FileNotFoundError(f"gs://{bucket}/{key} is gone") from exc

    def _upload(self, bucket: str, key: str, data: bytes) -> None:
        self._blob(bucket, key).upload_from_string(data, **self._calls())

    def _copy(self, source: tuple[str, str], target: tuple[str, str], metadata: dict[str, str]) -> None:
        from google.api_core.exceptions import PreconditionFailed

        source_blob = self._blob(*source)
        target_blob = self._blob(*target)
        target_blob.metadata = metadata
        stamp = metadata.get(SOURCE_STAMP, "")
        conditions: dict[str, Any] = {"if_generation_match": 0}  # never over an object of that name
        if stamp.isdigit():  # copy exactly the generation the copy records
            conditions["if_source_generation_match"] = int(stamp)
        token = None
        try:
            while True:
                token, _, _ = target_blob.rewrite(source_blob, token=token, **conditions, **self._calls())
                if token is None:
                    break
        except PreconditionFailed as exc:
            current = self._head(*source)
            if current is not None and stamp and current.etag != stamp:
                raise QuarantineError(
                    f"gs://{source[0]}/{source[1]} was replaced while it was being copied to "
                    f"gs://{target[0]}/{target[1]}; nothing was copied and the new object stays in the landing zone"
                ) from exc
            raise  # the target name was taken meanwhile: a refusal; the next attempt picks another name
        if dict(target_blob.metadata or {}) != metadata:
            # Only on an emulator that drops a rewrite's destination metadata (gcp-storage-emulator):
            # set it on exactly the generation just written.
            target_blob.metadata = metadata
            target_blob.patch(if_generation_match=target_blob.generation, **self._calls())

    def _delete(self, bucket: str, key: str, etag: str) -> bool:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        # The emulator ignores preconditions: check the generation first, so a replacement is kept there
        # too; on GCS the precondition closes the window between that check and the delete.
        current = self._head(bucket, key)
        if current is None or current.etag != etag:
            return False  # gone, or replaced by the producer since it was copied: the new one stays
        try:
            self._blob(bucket, key).delete(if_generation_match=int(etag), **self._calls())
        except (NotFound, PreconditionFailed):
            return False
        return True
