"""How storage failures are told apart and reported, and how lost commit races are retried."""

from __future__ import annotations

import dagster as dg
import deltalake
import pandas as pd
import pytest
from deltalake.exceptions import CommitFailedError

from mlops_platform.assets.common import TRANSIENT_RETRY
from mlops_platform.assets.common import is_transient as _is_transient
from mlops_platform.storage import delta
from mlops_platform.storage.delta import CommitConflict, append_table, read_table, write_table
from mlops_platform.storage.errors import (
    StorageError,
    StorageUnavailable,
    is_unavailable,
    storage_errors,
    storage_name,
)
from mlops_platform.storage.io_manager import DeltaIOManager, Lake
from tests.cloud import scenarios

CONNECTION_REFUSED = (
    "Kernel error -> Generic S3 error\n \x1b[31m↳\x1b[0m Error performing GET http://127.0.0.1:50312/b/t/_delta_log/"
    "_last_checkpoint in 2ms, after 2 retries\n  ↳ error sending request\n   ↳ Connection refused (os error 111)"
)
FORBIDDEN = "Generic S3 error: Error performing GET http://127.0.0.1:50312/b/t - Server returned non-2xx status 403"


def test_unreachable_stores_are_unavailable_and_refusals_are_errors() -> None:
    with pytest.raises(StorageUnavailable) as unavailable, storage_errors("s3://b/t", "writing"):
        raise OSError(CONNECTION_REFUSED)
    message = str(unavailable.value)
    assert message.startswith("S3 unavailable while writing s3://b/t: OSError: Kernel error")
    assert "\x1b" not in message and "Connection refused" in message
    # A port that contains "503" is no HTTP 503; the 403 is a refusal, not an outage.
    with (
        pytest.raises(StorageError, match=r"S3 refused reading s3://b/t: OSError: .*403"),
        storage_errors("s3://b/t", "reading"),
    ):
        raise OSError(FORBIDDEN)
    # Not a storage failure: unchanged.
    with pytest.raises(ValueError, match="bad frame"), storage_errors("az://c/t", "writing"):
        raise ValueError("bad frame")


def test_sdk_connection_errors_count_by_type() -> None:
    from azure.core.exceptions import ServiceRequestError
    from botocore.exceptions import EndpointConnectionError

    assert is_unavailable(EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b"))
    assert is_unavailable(ServiceRequestError("cannot connect"))
    wrapped = RuntimeError("upload failed")
    wrapped.__cause__ = EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b")
    assert is_unavailable(wrapped)
    assert not is_unavailable(RuntimeError("HTTP 403 Forbidden"))
    assert [storage_name(u) for u in ("s3://b", "abfss://c@a.dfs.core.windows.net/x", "gs://b", "/tmp/x")] == [
        "S3",
        "Azure Blob",
        "GCS",
        "local disk",
    ]


def test_the_retry_wrapper_retries_outages_but_not_refusals() -> None:
    from botocore.exceptions import EndpointConnectionError

    assert _is_transient(StorageUnavailable("S3", "s3://b/t", "writing", "refused"))
    assert _is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b"))
    assert not _is_transient(StorageError("S3", "s3://b/t", "writing", "403 connection not allowed"))
    assert TRANSIENT_RETRY.max_retries == 3


def test_a_lost_commit_race_is_written_again(tmp_path, monkeypatch) -> None:
    uri = str(tmp_path / "t")
    write_table(uri, pd.DataFrame({"x": [0]}))
    real = deltalake.write_deltalake
    calls = []

    def loses_twice(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise CommitFailedError("Transaction failed: version already exists")
        return real(*args, **kwargs)

    monkeypatch.setattr(deltalake, "write_deltalake", loses_twice)
    monkeypatch.setattr(delta.time, "sleep", lambda _: None)
    result = append_table(uri, pd.DataFrame({"x": [1, 2]}))
    assert (len(calls), result.version) == (3, 1)
    assert sorted(read_table(uri, 1)["x"]) == [0, 1, 2]


def test_a_race_lost_every_time_says_so_and_commits_nothing(tmp_path, monkeypatch) -> None:
    uri = str(tmp_path / "t")
    write_table(uri, pd.DataFrame({"x": [0]}))

    def always_loses(*args, **kwargs):
        raise CommitFailedError("Transaction failed: version already exists")

    monkeypatch.setattr(deltalake, "write_deltalake", always_loses)
    monkeypatch.setattr(delta.time, "sleep", lambda _: None)
    with pytest.raises(CommitConflict, match=r"8 attempts to commit lost the race"):
        append_table(uri, pd.DataFrame({"x": [1]}))
    assert deltalake.DeltaTable(uri).version() == 0


def test_concurrent_appenders_on_local_disk(tmp_path) -> None:
    scenarios.concurrent_appends(str(tmp_path / "t"), {}, writers=4, appends=3)


def test_a_refusing_store_fails_the_step_without_retries(tmp_path, instance, monkeypatch) -> None:
    from mlops_platform.storage import io_manager

    def refuses(uri, *args, **kwargs):
        raise StorageError("S3", uri, "writing", "403 Forbidden")

    monkeypatch.setattr(io_manager, "write_table", refuses)

    @dg.asset(io_manager_key="delta", retry_policy=dg.RetryPolicy(max_retries=3))
    def table() -> pd.DataFrame:
        return pd.DataFrame({"x": [1]})

    lake = Lake(root_uri=str(tmp_path / "lake"))
    result = dg.materialize(
        [table], resources={"delta": DeltaIOManager(lake=lake)}, instance=instance, raise_on_error=False
    )
    assert not result.success
    assert scenarios.retry_events(result) == 0
    assert "S3 refused writing" in scenarios.failure_messages(result)


def test_permanent_errors_are_not_taken_for_outages_by_their_message() -> None:
    """Issue 14 bug 10: substrings of a message never make an error transient; type and status do."""
    import sqlite3

    permanent = [
        ValueError("Found input variables with inconsistent numbers of samples: [1503, 1502]"),
        KeyError("connection_type"),
        ValueError("customer C-429 has no feature row"),
        PermissionError(13, "Permission denied: '/srv/lake/churn/raw'"),
        FileNotFoundError(2, "No such file: 503.parquet"),
        RuntimeError("connection string is malformed"),
    ]
    for exc in permanent:
        assert not _is_transient(exc), exc
    transient = [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("read timed out"),
        sqlite3.OperationalError("database is locked"),
        OSError("error sending request for url (http://127.0.0.1:1/bucket/key)"),
    ]
    for exc in transient:
        assert _is_transient(exc), exc

    class HttpError(Exception):
        def __init__(self, status_code: int):
            super().__init__(f"HTTP {status_code}")
            self.status_code = status_code

    assert _is_transient(HttpError(503)) and _is_transient(HttpError(429))
    assert not _is_transient(HttpError(403))
