"""Storage failures that say which storage and which URI, and whether trying again can help.

Every storage client the platform uses (delta-rs, boto3, google-cloud-storage, the Azure SDK through
adlfs) reports a broken connection its own way. ``storage_errors`` turns them into two errors with one
message shape, naming the storage and the URI:

- ``StorageUnavailable`` (a ``ConnectionError``): the store could not be reached or answered 5xx/429
  after the client's own retries. Transient: a step's RetryPolicy retries it.
- ``StorageError``: the store answered and refused (403, 404, a bad request). Deterministic: retrying
  gives the same answer, so it is not retried.

No Dagster and no SDK imports here: classification goes by exception type names and messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

# Exception classes of the SDKs that mean "could not talk to the store", matched by name so this
# module imports none of them.
_UNAVAILABLE_TYPES = frozenset(
    {
        "EndpointConnectionError",  # botocore
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ServiceRequestError",  # azure.core
        "ServiceResponseError",
        "ClientConnectorError",  # aiohttp (adlfs)
        "ServerDisconnectedError",
        "ServiceUnavailable",  # google.api_core
        "InternalServerError",
        "BadGateway",
        "GatewayTimeout",
        "TooManyRequests",
        "RetryError",
    }
)
# What delta-rs (object_store) and HTTP clients write when the store is unreachable or overloaded.
_UNAVAILABLE_MARKERS = (
    "error sending request",
    "connection refused",
    "connection reset",
    "connection aborted",
    "connection closed",
    "tcp connect error",
    "timed out",
    "deadline exceeded",
    "temporarily unavailable",
    "service unavailable",
    "slow down",
    "slowdown",
    "max retries exceeded",
    "broken pipe",
)
# HTTP statuses that mean "try again later", as a whole number (not part of a port or a key).
_UNAVAILABLE_STATUS = re.compile(r"(?<![\d:.])(429|500|502|503|504)(?!\d)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STORAGE_NAMES = {
    "s3": "S3",
    "s3a": "S3",
    "az": "Azure Blob",
    "abfs": "Azure Blob",
    "abfss": "Azure Blob",
    "adl": "Azure Blob",
    "wasbs": "Azure Blob",
    "gs": "GCS",
    "gcs": "GCS",
    "file": "local disk",
    "": "local disk",
}


class StorageError(RuntimeError):
    """The store answered and refused the operation; trying again gives the same answer."""

    def __init__(self, storage: str, uri: str, operation: str, detail: str):
        self.storage, self.uri, self.operation = storage, uri, operation
        super().__init__(f"{storage} refused {operation} {uri}: {detail}")


class StorageUnavailable(ConnectionError):
    """The store could not be reached (or was overloaded) after the client's own retries."""

    def __init__(self, storage: str, uri: str, operation: str, detail: str):
        self.storage, self.uri, self.operation = storage, uri, operation
        super().__init__(f"{storage} unavailable while {operation} {uri}: {detail}")


def storage_name(uri: str) -> str:
    """ "S3", "Azure Blob", "GCS" or "local disk", from the URI scheme."""
    scheme = urlparse(uri).scheme.lower() if "://" in uri else ""
    return _STORAGE_NAMES.get(scheme, f"{scheme} storage")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# Modules whose exceptions carry a store's answer in their message (delta-rs reports object-store
# failures as OSError text; HTTP clients and SDKs as their own types). Only their messages are read:
# a ValueError or KeyError from our own code that happens to contain "503" is not an outage.
_CLIENT_MODULES = ("botocore", "boto3", "urllib3", "requests", "aiohttp", "azure", "google", "deltalake", "mlflow")


def _from_client(error: BaseException) -> bool:
    module = type(error).__module__ or ""
    return isinstance(error, OSError) or module.split(".", 1)[0] in _CLIENT_MODULES


def _http_status(error: BaseException) -> int | None:
    """The HTTP status an SDK error carries as data (never parsed out of free text)."""
    for attribute in ("status_code", "status"):
        value = getattr(error, attribute, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    code = getattr(error, "code", None)  # google.api_core
    if isinstance(code, int) and 100 <= code < 600:
        return code
    response = getattr(error, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return value if isinstance(value, int) else None
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) means the store was unreachable.

    Decided by type (connection and timeout errors, the SDKs' own unavailable types), by the HTTP
    status an SDK error carries (429, 5xx), and by the message only for errors raised by a storage
    client (OSError, the SDK modules above).
    """
    for error in _chain(exc):
        if isinstance(error, StorageUnavailable):
            return True
        if isinstance(error, StorageError | PermissionError | FileNotFoundError):
            return False
        if isinstance(error, ConnectionError | TimeoutError):
            return True
        if type(error).__name__ in _UNAVAILABLE_TYPES:
            return True
        status = _http_status(error)
        if status is not None:
            if status == 429 or status >= 500:
                return True
            continue
        if not _from_client(error):
            continue
        text = str(error).lower()
        if any(marker in text for marker in _UNAVAILABLE_MARKERS) or _UNAVAILABLE_STATUS.search(text):
            return True
    return False


def summary(exc: BaseException, limit: int = 600) -> str:
    """One readable line of an SDK error: delta-rs writes multi-line, colour-coded chains."""
    text = _ANSI.sub("", str(exc))
    lines = [line.strip().lstrip("↳").strip() for line in text.splitlines() if line.strip()]
    joined = " <- ".join(lines) or type(exc).__name__
    return f"{type(exc).__name__}: {joined[:limit]}"


@contextmanager
def storage_errors(
    uri: str, operation: str, *, storage: str | None = None, sdk_refusals: bool = False
) -> Iterator[None]:
    """Re-raise SDK failures of the block as StorageUnavailable / StorageError naming store and URI.

    Only failures that come from the store are translated: ``OSError`` (what delta-rs raises for
    object-store failures) and the SDKs' connection errors, and with ``sdk_refusals`` every other
    error an SDK raises (botocore's ClientError, azure.core's HttpResponseError, google.api_core's
    errors: a 403, a bad request). Anything else (a schema mismatch, a commit conflict, a bug) passes
    through unchanged, and so do errors already translated and FileNotFoundError.
    """
    name = storage or storage_name(uri)
    try:
        yield
    except (StorageError, StorageUnavailable, FileNotFoundError):
        raise
    except Exception as exc:
        if is_unavailable(exc):
            raise StorageUnavailable(name, uri, operation, summary(exc)) from exc
        if isinstance(exc, OSError) or (sdk_refusals and _from_client(exc)):
            raise StorageError(name, uri, operation, summary(exc)) from exc
        raise
