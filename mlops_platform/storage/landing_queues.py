"""Object-created notifications of the landing zone, read from the cloud's queue instead of listing.

- aws: S3 event notifications delivered to an SQS queue (``SqsLandingQueue``).
- azure: Event Grid ``Microsoft.Storage.BlobCreated`` events delivered to a Storage Queue
  (``StorageQueueLandingQueue``).
- gcp: GCS notifications go to Pub/Sub, which has no emulator here: the gcp profile lists its bucket.

A queue hands out messages that stay invisible to other readers for ``visibility_timeout_seconds`` and
come back if they are not deleted. The landing queue sensor deletes a message only on its next tick,
once the tick that requested its run has been recorded, so a crash in between never drops a file: the
message reappears and the same request (same run key) is made again.
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus, urlparse

import dagster as dg
from pydantic import Field, PrivateAttr

from mlops_platform.storage.errors import storage_errors
from mlops_platform.storage.landing import secret_value


class MalformedMessage(ValueError):
    """A queue message that is not a notification this reader understands."""


@dataclass(frozen=True)
class QueueMessage:
    id: str
    receipt: str  # what deleting it takes (SQS receipt handle, Azure pop receipt)
    body: str


@dataclass(frozen=True)
class ObjectCreated:
    """One object that was created or replaced: its URI (the landing zone's scheme) and its stamp."""

    uri: str
    etag: str | None


class LandingQueue(dg.ConfigurableResource, abc.ABC):
    """Contract: ``receive`` returns up to ``limit`` messages (fewer when the queue is drained), each
    invisible to other readers for ``visibility_timeout_seconds``; ``delete`` removes messages already
    received (a message whose receipt expired is left to come back: its file is requested again, and
    the run key deduplicates it); ``events`` parses one message or raises MalformedMessage (such a
    message is never deleted, so the queue's dead-letter policy keeps it for a person)."""

    queue_url: str
    storage_name: str = "queue"  # how errors name the service
    visibility_timeout_seconds: int = Field(default=300, ge=1, le=43200)
    max_messages_per_tick: int = Field(default=1000, ge=1)

    @abc.abstractmethod
    def receive(self, limit: int) -> list[QueueMessage]: ...

    @abc.abstractmethod
    def delete(self, messages: list[tuple[str, str]]) -> None: ...

    @abc.abstractmethod
    def events(self, message: QueueMessage) -> list[ObjectCreated]: ...

    def _errors(self, operation: str) -> Any:
        return storage_errors(self.queue_url, operation, storage=self.storage_name, sdk_refusals=True)


def _json(body: str) -> Any:
    """A message's JSON, as it was written or base64-encoded (the Azure SDKs' default encoding)."""
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        return json.loads(base64.b64decode(body, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise MalformedMessage(f"not JSON (nor base64 of JSON): {body[:80]!r}") from exc


class SqsLandingQueue(LandingQueue):
    """S3 event notifications in an SQS queue (``queue_url``: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)."""

    region_name: str | None = None
    endpoint_url: str | None = None
    storage_name: str = "SQS"
    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs", region_name=self.region_name, endpoint_url=self.endpoint_url)
        return self._client

    def receive(self, limit: int) -> list[QueueMessage]:
        found: list[QueueMessage] = []
        with self._errors("receiving from"):
            while len(found) < limit:
                answer = self.client().receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(10, limit - len(found)),
                    VisibilityTimeout=self.visibility_timeout_seconds,
                    WaitTimeSeconds=0,
                )
                batch = answer.get("Messages", [])
                if not batch:
                    break
                found += [QueueMessage(m["MessageId"], m["ReceiptHandle"], m["Body"]) for m in batch]
        return found

    def delete(self, messages: list[tuple[str, str]]) -> None:
        with self._errors("deleting from"):
            for start in range(0, len(messages), 10):
                entries = [
                    {"Id": str(index), "ReceiptHandle": receipt}
                    for index, (_, receipt) in enumerate(messages[start : start + 10])
                ]
                # Failed entries (an expired receipt) come back later and are requested again: deduplicated.
                self.client().delete_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def events(self, message: QueueMessage) -> list[ObjectCreated]:
        data = _json(message.body)
        if isinstance(data, dict) and data.get("Event") == "s3:TestEvent":
            return []  # S3 sends one when the notification is configured
        if isinstance(data, dict) and "Message" in data and data.get("Type") == "Notification":
            data = _json(data["Message"])  # through SNS (fan-out to several queues)
        records = data.get("Records") if isinstance(data, dict) else None
        if not isinstance(records, list):
            raise MalformedMessage("an S3 notification has a 'Records' list")
        found = []
        for record in records:
            try:
                if not str(record["eventName"]).startswith("ObjectCreated:"):
                    continue
                bucket = record["s3"]["bucket"]["name"]
                key = unquote_plus(record["s3"]["object"]["key"])  # S3 URL-encodes keys in notifications
                etag = record["s3"]["object"].get("eTag")
            except (KeyError, TypeError) as exc:
                raise MalformedMessage(f"an S3 record lacks {exc}") from exc
            found.append(ObjectCreated(f"s3://{bucket}/{key}", etag))
        return found


class StorageQueueLandingQueue(LandingQueue):
    """Event Grid blob events in an Azure Storage Queue (``queue_url``:
    https://ACCOUNT.queue.core.windows.net/QUEUE). Authentication: the account key of ``connection_string``
    when given (pass ``dagster.EnvVar``), else DefaultAzureCredential (workload identity)."""

    connection_string: str | None = None
    storage_name: str = "Azure Storage Queue"
    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        if self._client is None:
            from azure.storage.queue import QueueClient

            credential: Any
            key = _account_key(secret_value(self.connection_string))
            if key is not None:
                from azure.core.credentials import AzureNamedKeyCredential

                credential = AzureNamedKeyCredential(*key)
            else:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._client = QueueClient.from_queue_url(self.queue_url, credential=credential)
        return self._client

    def receive(self, limit: int) -> list[QueueMessage]:
        found: list[QueueMessage] = []
        with self._errors("receiving from"):
            while len(found) < limit:
                batch = self.client().receive_messages(
                    messages_per_page=min(32, limit - len(found)),
                    visibility_timeout=self.visibility_timeout_seconds,
                    max_messages=min(32, limit - len(found)),
                )
                page = [QueueMessage(m.id, m.pop_receipt, m.content) for m in batch]
                if not page:
                    break
                found += page
        return found

    def delete(self, messages: list[tuple[str, str]]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors("deleting from"):
            for message_id, receipt in messages:
                try:
                    self.client().delete_message(message_id, pop_receipt=receipt)
                except ResourceNotFoundError:
                    continue  # its receipt expired: it comes back and is requested again, deduplicated

    def events(self, message: QueueMessage) -> list[ObjectCreated]:
        data = _json(message.body)
        events = data if isinstance(data, list) else [data]
        found = []
        for event in events:
            if not isinstance(event, dict):
                raise MalformedMessage("an Event Grid event is a JSON object")
            kind = event.get("eventType") or event.get("type")  # Event Grid schema, or CloudEvents 1.0
            if kind is None:
                raise MalformedMessage("an Event Grid event has 'eventType' (or CloudEvents 'type')")
            if kind != "Microsoft.Storage.BlobCreated":
                continue
            details = event.get("data") or {}
            url = details.get("url") if isinstance(details, dict) else None
            if not url:
                raise MalformedMessage("a BlobCreated event has data.url")
            found.append(ObjectCreated(_blob_uri(url), details.get("eTag")))
        return found


def _account_key(connection_string: str | None) -> tuple[str, str] | None:
    if not connection_string:
        return None
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    if "AccountName" in parts and "AccountKey" in parts:
        return parts["AccountName"], parts["AccountKey"]
    return None


def _blob_uri(url: str) -> str:
    """``https://ACCOUNT.blob.core.windows.net/CONTAINER/KEY`` (or an emulator's
    ``http://host:port/ACCOUNT/CONTAINER/KEY``) as the landing zone's ``az://CONTAINER/KEY``."""
    parsed = urlparse(url)
    parts = unquote(parsed.path).lstrip("/").split("/")
    if not parsed.hostname or ".blob." not in parsed.hostname:
        parts = parts[1:]  # path-style (Azurite): the account comes first
    if len(parts) < 2:
        raise MalformedMessage(f"blob URL without a container and a name: {url[:120]!r}")
    return f"az://{parts[0]}/{'/'.join(parts[1:])}"
