"""The landing queue sensor against real queues: S3 notifications into moto_server's SQS (moto delivers
them itself, as S3 does), and Event Grid BlobCreated events written into Azurite's Storage Queue (Azurite
has no Event Grid: the test writes the messages Event Grid would, in its documented schema)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from mlops_platform.automation.landing_queue import QUEUE_SENSOR, queue_tick
from mlops_platform.settings import resources_for
from mlops_platform.storage.landing import REASON_SUFFIX
from mlops_platform.storage.landing_queues import SqsLandingQueue, StorageQueueLandingQueue
from tests.cloud import servers
from tests.cloud.conftest import AZURE_ACCOUNT, BUCKET, Cloud
from tests.conftest import Platform

pytestmark = pytest.mark.slow
LOG = logging.getLogger("landing-queue-test")
TODAY = dt.date(2026, 10, 20)


def _events_file(spec, day: dt.date, rows: int = 20, seed: int = 1) -> bytes:
    events, _ = spec.source.generator(day, seed, 0.0, rows)
    buffer = io.BytesIO()
    events.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _wait_for(condition, what: str, timeout: float = 60.0):
    """Poll until ``condition()`` returns something truthy (the event the test needs), then return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# --- aws: S3 -> SQS --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sqs(s3: Cloud) -> tuple[Cloud, str]:
    import boto3

    server = s3.require_server()
    client = boto3.client("sqs", endpoint_url=server.url, region_name="us-east-1")
    url = client.create_queue(QueueName="landing-events")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1").put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "landing/"}]}},
                }
            ]
        },
    )
    return s3, url


@pytest.fixture
def aws(sqs, tmp_path, delivery) -> Iterator[dict]:
    """A fresh landing prefix on the bucket and a drained queue, per test."""
    cloud, url = sqs
    run = f"run-{uuid.uuid4().hex[:8]}"  # under landing/, where the bucket's notification filter looks
    settings = cloud.settings(
        tmp_path / "home",
        MLOPS_LANDING_ROOT=f"s3://{BUCKET}/landing/{run}",
        MLOPS_QUARANTINE_ROOT=f"s3://{BUCKET}/quarantine/{run}",
        MLOPS_LANDING_QUEUE=url,
    )
    resources = resources_for(settings)
    queue = resources["landing_queue"]
    assert isinstance(queue, SqsLandingQueue) and queue.endpoint_url == cloud.require_server().url
    _drain(queue)
    yield {"settings": settings, "landing": resources["landing"], "queue": queue, "spec": delivery}
    _drain(queue)


def _drain(queue) -> None:
    while messages := queue.receive(100):
        queue.delete([(m.id, m.receipt) for m in messages])


def _counts(queue) -> tuple[int, int]:
    attributes = queue.client().get_queue_attributes(
        QueueUrl=queue.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _tick(env, cursor, today=TODAY, queue=None):
    spec = env["spec"]
    return queue_tick(
        {spec.name: spec}, {spec.name: f"{spec.name}_ingest"}, env["landing"], queue or env["queue"], cursor, today, LOG
    )


def test_notifications_request_the_days_and_are_deleted_only_on_the_next_tick(aws) -> None:
    spec, landing = aws["spec"], aws["landing"]
    first, second = TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1)
    for day in (first, second):
        landing.land(spec.name, day, "events-a.parquet", _events_file(spec, day))
    requests, cursor, summary = _wait_for(lambda: (r := _tick(aws, None)) and r[0] and r, "the notifications")
    assert len(requests) == 1, summary  # two consecutive days: one range run
    assert requests[0].tags["dagster/asset_partition_range_start"] == first.isoformat()
    assert requests[0].tags["dagster/asset_partition_range_end"] == second.isoformat()
    assert requests[0].job_name == f"{spec.name}_ingest"
    # Received, not deleted: the tick that requested them has not been recorded yet.
    assert _counts(aws["queue"]) == (0, 2)
    again, cursor, _ = _tick(aws, cursor)
    assert again == []  # the next tick deletes them and requests nothing new
    assert _counts(aws["queue"]) == (0, 0)


def test_a_crash_before_the_cursor_is_recorded_loses_no_file(aws) -> None:
    """The tick that received the messages never got its cursor stored: they come back after their
    visibility timeout and the same run (same run key) is requested again."""
    spec, landing = aws["spec"], aws["landing"]
    day = TODAY - dt.timedelta(days=1)
    landing.land(spec.name, day, "events-a.parquet", _events_file(spec, day))
    quick = SqsLandingQueue(
        queue_url=aws["queue"].queue_url,
        region_name="us-east-1",
        endpoint_url=aws["queue"].endpoint_url,
        visibility_timeout_seconds=1,
    )
    crashed = _wait_for(lambda: (r := _tick(aws, None, queue=quick)) and r[0] and r, "the notification")
    # The daemon died here: its cursor is lost. The message reappears once its timeout passes.
    retried = _wait_for(lambda: (r := _tick(aws, None, queue=quick)) and r[0] and r, "the message to come back")
    assert [r.run_key for r in retried[0]] == [r.run_key for r in crashed[0]]
    assert retried[0][0].partition_key == day.isoformat()
    # This time the cursor is recorded: the next tick deletes the message for good.
    _tick(aws, retried[1], queue=quick)
    assert _counts(aws["queue"]) == (0, 0)


def test_a_replaced_object_rereads_its_day_and_a_duplicate_notification_does_not(aws) -> None:
    spec, landing, queue = aws["spec"], aws["landing"], aws["queue"]
    day = TODAY - dt.timedelta(days=1)
    landing.land(spec.name, day, "events-a.parquet", _events_file(spec, day, seed=1))
    first, cursor, _ = _wait_for(lambda: (r := _tick(aws, None)) and r[0] and r, "the first notification")
    # The same notification delivered twice (SQS is at-least-once): written by hand, as S3 would.
    key = f"{landing.landing_root.removeprefix(f's3://{BUCKET}/')}/{spec.name}/{day}/events-a.parquet"
    etag = landing.client().head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "eTag": etag}},
    }
    queue.client().send_message(QueueUrl=queue.queue_url, MessageBody=json.dumps({"Records": [record]}))
    duplicate, cursor, summary = _wait_for(lambda: (r := _tick(aws, cursor)) and "1 message" in r[2] and r, "it")
    assert duplicate == [], summary
    landing.land(spec.name, day, "events-a.parquet", _events_file(spec, day, seed=2))  # replaced: a new ETag
    replaced, cursor, _ = _wait_for(lambda: (r := _tick(aws, cursor)) and r[0] and r, "the replacement")
    assert replaced[0].partition_key == day.isoformat() and replaced[0].run_key != first[0].run_key


def test_a_day_not_over_waits_in_the_cursor(aws) -> None:
    spec, landing = aws["spec"], aws["landing"]
    landing.land(spec.name, TODAY, "events-early.parquet", _events_file(spec, TODAY))
    requests, cursor, summary = _wait_for(lambda: (r := _tick(aws, None)) and "1 day(s) waiting" in r[2] and r, "it")
    assert requests == [], summary
    after_midnight, cursor, _ = _tick(aws, cursor, today=TODAY + dt.timedelta(days=1))
    assert [r.partition_key for r in after_midnight] == [TODAY.isoformat()]
    assert json.loads(cursor)["waiting"] == {}


def test_a_malformed_message_is_left_for_the_dead_letter_queue_and_a_stray_file_is_quarantined(aws, caplog) -> None:
    spec, landing, queue = aws["spec"], aws["landing"], aws["queue"]
    queue.client().send_message(QueueUrl=queue.queue_url, MessageBody="not a notification")
    landing.land(spec.name, TODAY, "x", b"")  # lands at <model>/<today>/x: fine, waits
    stray_key = f"{landing.landing_root.removeprefix(f's3://{BUCKET}/')}/{spec.name}/stray.csv"
    landing.client().put_object(Bucket=BUCKET, Key=stray_key, Body=b"a,b\n1,2\n")
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        _, cursor, _ = _wait_for(lambda: (r := _tick(aws, None)) and "3 message" in r[2] and r, "three messages")
    assert "is not a notification" in caplog.text
    assert len(json.loads(cursor)["pending"]) == 2  # the malformed one is not among those to delete
    reasons = landing.quarantined(spec.name, "_unassigned")
    assert [reason for uri, reason in reasons.items() if uri.endswith("/stray.csv")] == [
        "files must sit in a YYYY-MM-DD folder"
    ]
    assert landing.client().list_objects_v2(Bucket=BUCKET, Prefix=stray_key).get("KeyCount") == 0


def test_the_sensor_and_the_ingest_run_in_dagster(aws, tmp_path) -> None:
    """Definitions in queue mode: one queue sensor instead of the listing sensors; its request ingests
    the good file and quarantines the bad one on the bucket, with its reason beside it."""
    spec, settings, landing = aws["spec"], aws["settings"], aws["landing"]
    day = TODAY - dt.timedelta(days=1)
    landing.land(spec.name, day, "events-good.parquet", _events_file(spec, day))
    landing.land(spec.name, day, "events-bad.csv", b"not,the,columns\n1,2,3\n")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        platform = Platform(settings, instance, [spec])
        names = {sensor.name for sensor in platform.defs.sensors or []}
        assert QUEUE_SENSOR in names and f"{spec.name}_landing_sensor" not in names
        sensor = next(s for s in platform.defs.sensors or [] if s.name == QUEUE_SENSOR)
        resources = {"landing": landing, "landing_queue": aws["queue"]}

        def evaluate():
            with dg.build_sensor_context(instance=instance, resources=resources, definitions=platform.defs) as context:
                result = sensor.evaluate_tick(context)
            return result.run_requests

        requests = _wait_for(lambda: evaluate(), "the run request")
        assert [r.partition_key for r in requests] == [day.isoformat()]
        result = platform.run(spec, ["raw", "labels"], partition_key=day.isoformat())
        assert result.success
        raw = platform.latest_metadata(spec, "raw", day.isoformat())
        assert raw["files_ingested"] == {day.isoformat(): ["events-good.parquet"]}
        quarantined = landing.quarantined(spec.name, day.isoformat())
        assert len(quarantined) == 1 and next(iter(quarantined)).endswith("/events-bad.csv")
        reason_object = next(iter(quarantined)) + REASON_SUFFIX
        assert reason_object.startswith(landing.quarantine_root)
        # Nothing lost: the bad file is in quarantine on the bucket; the good one stays in the landing zone.
        assert [f.name for f in landing.files_for(spec.name, day)] == ["events-good.parquet"]


# --- azure: Event Grid -> Storage Queue ----------------------------------------------------------------
@pytest.fixture(scope="module")
def storage_queue(tmp_path_factory) -> Iterator[StorageQueueLandingQueue]:
    if servers.node_path() is None:
        pytest.skip("node is not installed: Azurite runs on Node.js")
    key = servers.random_account_key()
    server = servers.azurite_queue(tmp_path_factory.mktemp("azure-queue"), AZURE_ACCOUNT, key)
    try:
        connection = f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={key};"
        queue = StorageQueueLandingQueue(
            queue_url=f"{server.url}/{AZURE_ACCOUNT}/landing-events", connection_string=connection
        )
        queue.client().create_queue()
        yield queue
    finally:
        server.stop()


def _blob_created(container: str, key: str, etag: str) -> str:
    """A BlobCreated event in the Event Grid schema, as Event Grid writes it into a Storage Queue."""
    return json.dumps(
        {
            "topic": f"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{AZURE_ACCOUNT}",
            "subject": f"/blobServices/default/containers/{container}/blobs/{key}",
            "eventType": "Microsoft.Storage.BlobCreated",
            "id": str(uuid.uuid4()),
            "data": {
                "api": "PutBlob",
                "eTag": etag,
                "contentLength": 10,
                "blobType": "BlockBlob",
                "url": f"https://{AZURE_ACCOUNT}.blob.core.windows.net/{container}/{key}",
            },
            "dataVersion": "",
            "metadataVersion": "1",
            "eventTime": "2026-10-19T10:00:00Z",
        }
    )


def test_event_grid_messages_in_a_storage_queue_request_the_day(storage_queue, delivery) -> None:
    from mlops_platform.storage.landing_azure import AzureBlobLandingZone

    # These events name files of day folders: the landing zone is not listed, so no blob server is needed.
    landing = AzureBlobLandingZone(
        landing_root="az://mlops/landing", quarantine_root="az://mlops/quarantine", account_name=AZURE_ACCOUNT
    )
    day = TODAY - dt.timedelta(days=1)
    key = f"landing/{delivery.name}/{day}/events-a.parquet"
    storage_queue.client().send_message(_blob_created("mlops", key, "0x8DC1"))
    storage_queue.client().send_message(_blob_created("mlops", key, "0x8DC1"))  # delivered twice
    storage_queue.client().send_message(_blob_created("other", key, "0x8DC2"))  # another container
    specs, jobs = {delivery.name: delivery}, {delivery.name: f"{delivery.name}_ingest"}
    requests, cursor, summary = queue_tick(specs, jobs, landing, storage_queue, None, TODAY, LOG)
    assert [r.partition_key for r in requests] == [day.isoformat()], summary
    assert "3 message(s)" in summary and "1 object(s) outside" in summary
    assert len(json.loads(cursor)["pending"]) == 3
    assert storage_queue.client().get_queue_properties().approximate_message_count == 3  # hidden, not deleted
    again, cursor, _ = queue_tick(specs, jobs, landing, storage_queue, cursor, TODAY, LOG)
    assert again == []
    assert storage_queue.client().get_queue_properties().approximate_message_count == 0


def test_the_cursor_stays_bounded_however_many_files_land() -> None:
    """Dagster stores the cursor with every tick: the files it remembers are capped, newest days first."""
    from mlops_platform.automation.landing_queue import SEEN_LIMIT, _bounded, _mark

    seen = {
        (TODAY - dt.timedelta(days=offset)).isoformat(): [_mark(f"events-{i}.parquet", "etag:x") for i in range(900)]
        for offset in range(10)
    }
    kept = _bounded(seen, lookback_days=7)
    assert sum(len(marks) for marks in kept.values()) == SEEN_LIMIT
    assert TODAY.isoformat() in kept and (TODAY - dt.timedelta(days=9)).isoformat() not in kept
    assert len(json.dumps(kept)) < 40_000
