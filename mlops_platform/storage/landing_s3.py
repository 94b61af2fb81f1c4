"""The landing zone on S3 (or an S3-compatible store at ``endpoint_url``), through boto3.

Credentials come from boto3's default chain (IRSA on EKS, a profile, the environment), never a setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic import Field, PrivateAttr

from mlops_platform.storage.landing_objects import SOURCE_STAMP, ObjectInfo, ObjectLandingZone, QuarantineError


def _plain_md5(etag: str) -> str | None:
    """An ETag that is the MD5 of the content (a single-part upload or a copy), else None (multipart)."""
    value = etag.strip('"')
    return None if "-" in value else f"md5:{value}"


def _status(exc: Any) -> int | None:
    return getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


def _timestamp(value: str) -> Any:
    """botocore's timestamp parser, with the ISO 8601 of S3 listings parsed by the standard library first
    (0.003 s instead of 0.56 s for the LastModified values of 10,000 objects)."""
    import datetime as dt

    from botocore.utils import parse_timestamp

    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return parse_timestamp(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _session() -> Any:
    import boto3
    import botocore.session

    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return boto3.Session(botocore_session=session)


class S3LandingZone(ObjectLandingZone):
    """``landing_root`` / ``quarantine_root``: ``s3://bucket/prefix``."""

    region_name: str | None = None
    endpoint_url: str | None = None
    timeout_seconds: int | None = Field(default=None, description="Per-request timeout (default 60 s).")
    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        if self._client is None:
            from botocore.config import Config

            # boto3's standard retry mode retries throttling and 5xx itself a few times; an outage that
            # outlasts it reaches the step's RetryPolicy (or the sensor's next tick) as StorageUnavailable.
            seconds = self.timeout_seconds or 60
            config = Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=min(seconds, 10),
                read_timeout=seconds,
            )
            self._client = _session().client(
                "s3", region_name=self.region_name, endpoint_url=self.endpoint_url, config=config
            )
        return self._client

    def _info(self, key: str, size: int, etag: str, modified: Any, metadata: dict | None = None) -> ObjectInfo:
        return ObjectInfo(key, size, etag.strip('"'), int(modified.timestamp() * 1e9), _plain_md5(etag), metadata or {})

    def _list(self, bucket: str, prefix: str, delimiter: str | None) -> tuple[list[ObjectInfo], list[str]]:
        return self._pages(Bucket=bucket, Prefix=prefix, **({"Delimiter": delimiter} if delimiter else {}))

    def _list_after(self, bucket: str, prefix: str, start_after: str) -> list[ObjectInfo]:
        return self._pages(Bucket=bucket, Prefix=prefix, StartAfter=start_after)[0]

    def _pages(self, **arguments: Any) -> tuple[list[ObjectInfo], list[str]]:
        """Every page of one ListObjectsV2: the objects and the common prefixes."""
        objects, prefixes = [], []
        for page in self.client().get_paginator("list_objects_v2").paginate(**arguments):
            objects += [self._info(o["Key"], o["Size"], o["ETag"], o["LastModified"]) for o in page.get("Contents", [])]
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return objects, prefixes

    def _head(self, bucket: str, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise
        return self._info(key, head["ContentLength"], head["ETag"], head["LastModified"], head.get("Metadata"))

    def _download(self, bucket: str, key: str, target: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client().download_file(bucket, key, str(target))
        except ClientError as exc:
            if _status(exc) == 404:
                raise FileNotFoundError(f"s3://{bucket}/{key} is gone") from exc
            raise

    def _upload(self, bucket: str, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def _copy(self, source: tuple[str, str], target: tuple[str, str], metadata: dict[str, str]) -> None:
        # copy_object copies up to 5 GB in one request, far above the landing zone's file limit; the
        # managed copy (multipart above 8 MB) would give the copy a multipart ETag, with no MD5 to verify.
        from botocore.exceptions import ClientError

        try:
            self.client().copy_object(
                Bucket=target[0],
                Key=target[1],
                CopySource={"Bucket": source[0], "Key": source[1]},
                # Exactly the version whose stamp the copy is labelled with; a replacement since is not it.
                CopySourceIfMatch=f'"{unquote(metadata[SOURCE_STAMP])}"',
                Metadata=metadata,
                MetadataDirective="REPLACE",
            )
        except ClientError as exc:
            if _status(exc) == 412:
                raise QuarantineError(
                    f"s3://{source[0]}/{source[1]} was replaced while being quarantined; it stays to be ingested"
                ) from exc
            raise

    def _delete(self, bucket: str, key: str, etag: str) -> bool:
        from botocore.exceptions import ClientError

        current = self._head(bucket, key)
        if current is None or current.etag != etag:
            return False  # gone, or replaced by the producer since it was copied: the new one stays
        try:
            # The conditional delete closes the window between that check and the delete where S3 has it.
            self.client().delete_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
        except ClientError as exc:
            if _status(exc) in (404, 412):
                return False
            raise
        return True
