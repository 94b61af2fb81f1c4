"""The object landing zone (``storage.landing_objects``) on S3, Azure Blob and GCS, against their local
servers: moto_server, Azurite and gcp-storage-emulator (tests/cloud/conftest.py, one per module).

One suite, run on each store: the layout and listings, quarantine, a quarantine killed between any two of
its steps (a forked child that exits at the step), a producer replacing the object during a quarantine,
a copy that does not verify, an outage and a refusal. Every test works under a fresh prefix.

gcp-storage-emulator ignores preconditions (``ifGenerationMatch``) and a rewrite's destination metadata;
``landing_gcs`` says how it copes. What the suite checks holds on the emulator and on a real bucket.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_platform.ml.validation import InvalidFile
from mlops_platform.storage.errors import StorageError, StorageUnavailable
from mlops_platform.storage.landing import (
    CONTROL_NAME_REASON,
    NESTED_REASON,
    REASON_SUFFIX,
    UNASSIGNED,
    LandedFile,
    sanitize,
)
from mlops_platform.storage.landing_azure import AzureBlobLandingZone
from mlops_platform.storage.landing_gcs import GcsLandingZone
from mlops_platform.storage.landing_objects import BULK_FROM, SOURCE_KEY, ObjectLandingZone, QuarantineError, split_uri
from mlops_platform.storage.landing_s3 import S3LandingZone
from tests.cloud.conftest import AZURE_ACCOUNT, BUCKET, Cloud

pytestmark = pytest.mark.slow

SPEC = "tickets"
DAY = dt.date(2026, 11, 2)
FOLDER = DAY.isoformat()
REASON = "column 'amount' is missing\nreason: forged line"
KILLED = 9  # the exit code of a child killed at a quarantine step
STEPS = ("copied", "verified", "reasoned")


@dataclass
class Store:
    """One store under test: how to build its landing zone on the module's server."""

    name: str
    cloud: Cloud
    cls: type[ObjectLandingZone]
    root: str  # scheme://bucket
    options: dict[str, Any]


def _bucket_root(cloud: Cloud, scheme: str) -> str:
    for name in ("MLOPS_OBJECTS_ROOT", "MLOPS_STORAGE_ROOT"):
        value = cloud.environ.get(name, "")
        if value.startswith(f"{scheme}://"):
            return value.rstrip("/")
    return f"{scheme}://{BUCKET}"


def _store(name: str, cloud: Cloud) -> Store:
    endpoint = cloud.environ.get("MLOPS_STORAGE_ENDPOINT_URL")
    if name == "s3":
        s3 = {"endpoint_url": endpoint, "region_name": cloud.environ.get("AWS_REGION", "us-east-1")}
        return Store(name, cloud, S3LandingZone, _bucket_root(cloud, "s3"), s3)
    if name == "azure":
        azure: dict[str, Any] = {
            "account_name": cloud.environ.get("AZURE_STORAGE_ACCOUNT_NAME", AZURE_ACCOUNT),
            "connection_string": cloud.environ.get("AZURE_STORAGE_CONNECTION_STRING"),
            "endpoint_url": endpoint,
            "timeout_seconds": 5,
            "retry_seconds": 3,
        }
        return Store(name, cloud, AzureBlobLandingZone, _bucket_root(cloud, "az"), azure)
    project = cloud.environ.get("GOOGLE_CLOUD_PROJECT")
    gcs: dict[str, Any] = {"project": project, "timeout_seconds": 5, "retry_seconds": 3}
    return Store(name, cloud, GcsLandingZone, _bucket_root(cloud, "gs"), gcs)


@pytest.fixture(params=["s3", "azure", "gcs"])
def store(request) -> Store:
    return _store(request.param, request.getfixturevalue(request.param))


@dataclass
class Case:
    """A fresh prefix of one store, and zones (of any test subclass) over it."""

    store: Store
    prefix: str

    def zone(self, cls: type[ObjectLandingZone] | None = None, **overrides: Any) -> ObjectLandingZone:
        root = f"{self.store.root}/{self.prefix}"
        fields = {"landing_root": f"{root}/landing", "quarantine_root": f"{root}/quarantine", **self.store.options}
        return (cls or self.store.cls)(**{**fields, **overrides})


@pytest.fixture
def case(store: Store) -> Case:
    return Case(store, f"landing-tests/{uuid.uuid4().hex[:12]}")


@pytest.fixture
def zone(case: Case) -> ObjectLandingZone:
    return case.zone()


# --- helpers ----------------------------------------------------------------------------------------
def put(zone: ObjectLandingZone, relative: str, data: bytes) -> str:
    """An object at ``<landing>/<relative>``, written as any producer could (no layout checks)."""
    bucket, key = zone._root(zone.landing_root, relative)
    zone._upload(bucket, key, data)
    return zone.uri(bucket, key)


def read(zone: ObjectLandingZone, uri: str) -> bytes:
    _, bucket, key = split_uri(uri)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "object"
        zone._download(bucket, key, target)
        return target.read_bytes()


def quarantine_keys(zone: ObjectLandingZone, folder: str = FOLDER) -> list[str]:
    """Every object in the spec's quarantine folder (copies and reasons), as keys below it."""
    bucket, prefix = zone._root(zone.quarantine_root, SPEC, folder)
    objects, _ = zone._list(bucket, prefix + "/", None)
    return sorted(info.key[len(prefix) + 1 :] for info in objects)


def one(zone: ObjectLandingZone, name: str) -> LandedFile:
    files = {f.name: f for f in zone.day_listing(SPEC, DAY)[0]}
    assert name in files, sorted(files)
    return files[name]


def land_later(zone: ObjectLandingZone, name: str, data: bytes, after_ns: int) -> LandedFile:
    """Land ``name`` once the store's clock has passed ``after_ns`` (its times may have whole seconds only).

    Waits for the event, not a fixed time: a probe under an in-progress name (never listed) is written
    until the store stamps it later than ``after_ns``."""
    bucket, probe = zone._root(zone.landing_root, SPEC, FOLDER, "_clock-probe")
    deadline = time.monotonic() + 30
    while True:
        zone._upload(bucket, probe, b"tick")
        info = zone._head(bucket, probe)
        if info is not None and info.modified_ns > after_ns:
            break
        assert time.monotonic() < deadline, "the store's clock did not advance in 30 s"
        time.sleep(0.05)
    zone.land(SPEC, DAY, name, data)
    return one(zone, name)


def run_killed_at(zone: ObjectLandingZone, file: LandedFile, step: str) -> None:
    """Quarantine ``file`` in a forked child whose process ends (os._exit) right after ``step``."""

    base = type(zone)

    class KilledAt(base):  # type: ignore[misc,valid-type]
        def _checkpoint(self, at: str) -> None:
            if at == step:
                os._exit(KILLED)

    # A zone of its own: the child creates its own client, shares no connection with this process.
    killed = KilledAt(**{name: getattr(zone, name) for name in type(zone).model_fields})
    child = multiprocessing.get_context("fork").Process(
        target=lambda: killed.quarantine(file, SPEC, FOLDER, REASON), daemon=True
    )
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
    assert child.exitcode == KILLED, f"the child ended with {child.exitcode}, not at step {step!r}"


# --- layout -----------------------------------------------------------------------------------------
def test_days_list_their_complete_files_in_landing_order(zone: ObjectLandingZone) -> None:
    first = land_later(zone, "events-z.csv", b"a,b\n1,2\n", 0)
    second = land_later(zone, "events-a.csv", b"a,b\n3,4\n", first.modified_ns)
    put(zone, f"{SPEC}/{FOLDER}/_events-3.csv", b"uploading")
    put(zone, f"{SPEC}/{FOLDER}/.events-4.csv", b"uploading")
    put(zone, f"{SPEC}/{FOLDER}/_tmp/events-5.csv", b"in an in-progress folder")
    put(zone, f"{SPEC}/{FOLDER}/sub/events-6.csv", b"nested")
    put(zone, f"{SPEC}/{FOLDER}/events-\t7.csv", b"odd name")
    zone.land(SPEC, DAY + dt.timedelta(days=1), "labels-1.csv", b"x\n")

    files, refused_day = zone.day_listing(SPEC, DAY)

    assert refused_day is None
    refused = {f.name: f.refused for f in files if f.refused}
    assert refused == {"sub/events-6.csv": NESTED_REASON, "events-\t7.csv": CONTROL_NAME_REASON}
    assert [f.name for f in zone.files_for(SPEC, DAY)] == ["events-z.csv", "events-a.csv"]  # landing order
    assert second.modified_ns > first.modified_ns
    assert second.location == f"{zone.landing_root}/{SPEC}/{FOLDER}/events-a.csv" and second.size == 8
    entries = zone.root_entries(SPEC)
    assert [(e.name, e.day, e.is_dir, e.is_link) for e in entries] == [
        (FOLDER, DAY, True, False),
        ((DAY + dt.timedelta(days=1)).isoformat(), DAY + dt.timedelta(days=1), True, False),
    ]
    assert [e.name for e in zone.root_entries(SPEC, skip_day=lambda day: day == DAY)] == [entries[1].name]


def test_entry_stamps_match_the_listing_and_a_replaced_object_gets_a_new_stamp(zone: ObjectLandingZone) -> None:
    zone.land(SPEC, DAY, "events-1.csv", b"a\n1\n")
    zone.land(SPEC, DAY, "labels-1.csv", b"a\n2\n")
    (entry,) = zone.root_entries(SPEC)
    stamps = zone.entry_stamps(entry)
    assert stamps == {f.name: f.stamp for f in zone.day_listing(SPEC, DAY)[0]}
    assert set(stamps) == {"events-1.csv", "labels-1.csv"}

    zone.land(SPEC, DAY, "events-1.csv", b"a\n1\n3\n")  # the producer replaces it under its name

    again = zone.entry_stamps(entry)
    assert again["events-1.csv"] != stamps["events-1.csv"]
    assert again["labels-1.csv"] == stamps["labels-1.csv"]
    assert one(zone, "events-1.csv").size == 6


def test_many_days_are_listed_at_once_with_the_same_stamps_as_day_by_day(zone: ObjectLandingZone) -> None:
    """More days than BULK_FROM to list: one listing of the model's folder, the same answer as one per day
    (in-progress and nested entries treated alike, days not asked for left out)."""
    days = [DAY + dt.timedelta(days=offset) for offset in range(6)]
    for day in days:
        zone.land(SPEC, day, "events-1.csv", f"a\n{day}\n".encode())
    put(zone, f"{SPEC}/{days[2].isoformat()}/_uploading.csv", b"partial")
    put(zone, f"{SPEC}/{days[3].isoformat()}/sub/events-2.csv", b"nested")
    put(zone, f"{SPEC}/notes.txt", b"beside the days")
    entries = [e for e in zone.root_entries(SPEC) if e.day is not None and e.day != days[0]]
    assert len(entries) > BULK_FROM
    together = zone.entries_stamps(SPEC, entries)
    assert together == {entry.name: zone.entry_stamps(entry) for entry in entries}
    assert set(together[days[3].isoformat()]) == {"events-1.csv", "sub/events-2.csv"}
    assert days[0].isoformat() not in together


def test_files_outside_a_day_folder_are_misplaced_with_their_folder(zone: ObjectLandingZone) -> None:
    put(zone, f"{SPEC}/stray.csv", b"directly under the spec")
    put(zone, f"{SPEC}/not-a-day/y.csv", b"y")
    put(zone, f"{SPEC}/not-a-day/sub/x.csv", b"x")
    put(zone, f"{SPEC}/not-a-day/_partial.csv", b"in progress")
    put(zone, f"{SPEC}/20261102/z.csv", b"not the YYYY-MM-DD form")
    put(zone, f"{SPEC}/_staging/w.csv", b"an in-progress folder")

    entries = {e.name: e for e in zone.root_entries(SPEC)}

    assert {name: (e.day, e.is_dir) for name, e in entries.items()} == {
        "20261102": (None, True),
        "not-a-day": (None, True),
        "stray.csv": (None, False),
    }
    found = {
        name: sorted((folder, f.name, f.location) for folder, f in zone.misplaced(SPEC, e))
        for name, e in entries.items()
    }
    base = f"{zone.landing_root}/{SPEC}"
    assert found == {
        "stray.csv": [(UNASSIGNED, "stray.csv", f"{base}/stray.csv")],
        "not-a-day": [
            ("not-a-day", "y.csv", f"{base}/not-a-day/y.csv"),
            ("not-a-day/sub", "x.csv", f"{base}/not-a-day/sub/x.csv"),
        ],
        "20261102": [("20261102", "z.csv", f"{base}/20261102/z.csv")],
    }
    assert sorted(zone.scan(SPEC)) == ["", "20261102", "not-a-day", "not-a-day/sub"]


def test_a_local_copy_holds_the_bytes_and_a_file_over_the_limit_is_never_downloaded(case: Case) -> None:
    downloads: list[str] = []

    base = case.store.cls

    class Counting(base):  # type: ignore[misc,valid-type]
        def _download(self, bucket: str, key: str, target: Path) -> None:
            downloads.append(key)
            super()._download(bucket, key, target)

    data = os.urandom(3000)
    zone = case.zone(Counting)
    zone.land(SPEC, DAY, "events-1.parquet", data)
    file = one(zone, "events-1.parquet")
    with zone.local_copy(file) as path:
        assert path.read_bytes() == data and path.suffix == ".parquet"
    assert not path.exists()  # a temporary download, removed with the context
    assert len(downloads) == 1

    small = case.zone(Counting, max_file_bytes=2999)
    with pytest.raises(InvalidFile, match="3000 bytes; the limit is 2999"), small.local_copy(file):
        pass
    assert len(downloads) == 1


def test_exists_and_a_vanished_file(zone: ObjectLandingZone) -> None:
    zone.land(SPEC, DAY, "events-1.csv", b"a\n1\n")
    file = one(zone, "events-1.csv")
    assert zone.exists(file)
    zone.quarantine(file, SPEC, FOLDER, "bad")
    assert not zone.exists(file)
    with pytest.raises(FileNotFoundError), zone.local_copy(file):
        pass


# --- quarantine -------------------------------------------------------------------------------------
def test_quarantine_keeps_the_file_with_its_reason_before_it_leaves(zone: ObjectLandingZone) -> None:
    data = b"amount\nnot a number\n"
    zone.land(SPEC, DAY, "events-1.csv", data)
    file = one(zone, "events-1.csv")

    target = zone.quarantine(file, SPEC, FOLDER, REASON)

    assert target == f"{zone.quarantine_root}/{SPEC}/{FOLDER}/events-1.csv"
    assert read(zone, target) == data
    reason = read(zone, target + REASON_SUFFIX).decode()
    assert f"source: {file.location}\n" in reason and f"reason: {sanitize(REASON)}\n" in reason
    assert "\nreason: forged line" not in reason  # one sanitized line: a reason cannot forge another
    assert zone.quarantined(SPEC, FOLDER) == {target: sanitize(REASON)}
    assert not zone.exists(file) and zone.day_listing(SPEC, DAY) == ([], None)
    copy = zone._head(*split_uri(target)[1:])
    assert copy is not None and copy.metadata[SOURCE_KEY] == file.location


def test_a_copy_keeps_the_checksum_the_store_verifies_it_by(zone: ObjectLandingZone) -> None:
    zone.land(SPEC, DAY, "events-1.csv", b"amount\n1\n")
    file = one(zone, "events-1.csv")
    original = zone._head(*split_uri(file.location)[1:])
    target = zone.quarantine(file, SPEC, FOLDER, REASON)
    copy = zone._head(*split_uri(target)[1:])
    assert original is not None and copy is not None
    assert original.checksum is not None and copy.checksum == original.checksum  # no download to verify it


def test_a_name_already_in_quarantine_is_never_overwritten(zone: ObjectLandingZone) -> None:
    zone.land(SPEC, DAY, "events-1.csv", b"first\n")
    first = zone.quarantine(one(zone, "events-1.csv"), SPEC, FOLDER, "first reason")
    zone.land(SPEC, DAY, "events-1.csv", b"second, longer\n")

    second = zone.quarantine(one(zone, "events-1.csv"), SPEC, FOLDER, "second reason")

    assert second == f"{zone.quarantine_root}/{SPEC}/{FOLDER}/events-1.1.csv"
    assert read(zone, first) == b"first\n" and read(zone, second) == b"second, longer\n"
    assert zone.quarantined(SPEC, FOLDER) == {first: "first reason", second: "second reason"}


def test_a_misplaced_file_is_quarantined_under_its_folder(zone: ObjectLandingZone) -> None:
    put(zone, f"{SPEC}/stray.csv", b"s")
    (entry,) = zone.root_entries(SPEC)
    ((folder, file),) = zone.misplaced(SPEC, entry)
    target = zone.quarantine(file, SPEC, folder, "not in a day folder")
    assert target == f"{zone.quarantine_root}/{SPEC}/{UNASSIGNED}/stray.csv"
    assert zone.quarantined(SPEC, UNASSIGNED) == {target: "not in a day folder"}
    assert zone.root_entries(SPEC) == []


def test_refused_entries_are_quarantined_under_safe_names(zone: ObjectLandingZone) -> None:
    put(zone, f"{SPEC}/{FOLDER}/sub/events-6.csv", b"nested")
    put(zone, f"{SPEC}/{FOLDER}/events-\t7.csv", b"odd name")
    files, _ = zone.day_listing(SPEC, DAY)

    targets = {f.name: zone.quarantine(f, SPEC, FOLDER, f.refused or "") for f in files}

    folder = f"{zone.quarantine_root}/{SPEC}/{FOLDER}"
    assert targets == {"sub/events-6.csv": f"{folder}/sub_events-6.csv", "events-\t7.csv": f"{folder}/events-_7.csv"}
    assert zone.quarantined(SPEC, FOLDER) == {
        f"{folder}/sub_events-6.csv": NESTED_REASON,
        f"{folder}/events-_7.csv": CONTROL_NAME_REASON,
    }
    assert read(zone, f"{folder}/events-_7.csv") == b"odd name"
    assert zone.day_listing(SPEC, DAY) == ([], None)


@pytest.mark.parametrize("step", STEPS)
def test_a_quarantine_killed_after_a_step_loses_nothing_and_the_next_completes_it_once(
    zone: ObjectLandingZone, step: str
) -> None:
    data = b"amount\nx\n"
    zone.land(SPEC, DAY, "events-1.csv", data)
    file = one(zone, "events-1.csv")

    run_killed_at(zone, file, step)

    assert zone.exists(file)  # nothing lost: the original is still in the landing zone
    assert read(zone, file.location) == data
    target = zone.quarantine(file, SPEC, FOLDER, REASON)
    assert target.endswith(f"/{FOLDER}/events-1.csv")  # the earlier copy, reused
    assert quarantine_keys(zone) == ["events-1.csv", "events-1.csv" + REASON_SUFFIX]
    assert read(zone, target) == data
    assert zone.quarantined(SPEC, FOLDER) == {target: sanitize(REASON)}
    assert not zone.exists(file)


def test_a_quarantine_killed_after_the_delete_is_complete(zone: ObjectLandingZone) -> None:
    zone.land(SPEC, DAY, "events-1.csv", b"amount\nx\n")
    file = one(zone, "events-1.csv")

    run_killed_at(zone, file, "deleted")

    assert not zone.exists(file)
    with pytest.raises(FileNotFoundError, match="no longer in the landing zone"):
        zone.quarantine(file, SPEC, FOLDER, REASON)
    assert quarantine_keys(zone) == ["events-1.csv", "events-1.csv" + REASON_SUFFIX]
    assert list(zone.quarantined(SPEC, FOLDER).values()) == [sanitize(REASON)]


def test_an_object_replaced_during_the_quarantine_stays_to_be_ingested(case: Case) -> None:
    base = case.store.cls

    class ReplacedMeanwhile(base):  # type: ignore[misc,valid-type]
        def _checkpoint(self, step: str) -> None:
            if step == "reasoned":  # after the copy and its reason, before the delete
                self.land(SPEC, DAY, "events-1.csv", b"the producer's fixed file\n")

    zone = case.zone(ReplacedMeanwhile)
    zone.land(SPEC, DAY, "events-1.csv", b"the bad file\n")
    file = one(zone, "events-1.csv")

    target = zone.quarantine(file, SPEC, FOLDER, REASON)

    replaced = one(zone, "events-1.csv")
    assert replaced.stamp != file.stamp
    assert read(zone, replaced.location) == b"the producer's fixed file\n"
    assert read(zone, target) == b"the bad file\n"
    assert zone.quarantined(SPEC, FOLDER) == {target: sanitize(REASON)}


@pytest.mark.parametrize("damage", ["size", "content"])
def test_a_copy_that_does_not_verify_keeps_the_original(case: Case, damage: str) -> None:
    data = b"amount\n1\n"

    base = case.store.cls

    class BadCopy(base):  # type: ignore[misc,valid-type]
        def _copy(self, source: tuple[str, str], target: tuple[str, str], metadata: dict[str, str]) -> None:
            super()._copy(source, target, metadata)
            self._upload(*target, data + b"2\n" if damage == "size" else data.upper())

    zone = case.zone(BadCopy)
    zone.land(SPEC, DAY, "events-1.csv", data)
    file = one(zone, "events-1.csv")
    copy = f"{zone.quarantine_root}/{SPEC}/{FOLDER}/events-1.csv"

    with pytest.raises(QuarantineError) as failure:
        zone.quarantine(file, SPEC, FOLDER, REASON)

    assert copy in str(failure.value) and file.location in str(failure.value), str(failure.value)
    assert "the original stays in the landing zone" in str(failure.value)
    assert zone.exists(file) and read(zone, file.location) == data
    assert zone.quarantined(SPEC, FOLDER) == {}  # no reason for a copy that is not one


# --- failures ---------------------------------------------------------------------------------------
def test_an_outage_during_listing_is_unavailable_and_names_the_uri(case: Case) -> None:
    server = case.store.cloud.require_server()
    zone = case.zone()
    zone.land(SPEC, DAY, "events-1.csv", b"a\n1\n")
    listing = f"{zone.landing_root}/{SPEC}/"
    server.stop()
    try:
        with pytest.raises(StorageUnavailable) as outage:
            zone.root_entries(SPEC)
    finally:
        server.start()
        if case.store.name == "s3":  # moto keeps objects in memory only: the bucket is gone with it
            import boto3

            boto3.client("s3", endpoint_url=server.url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    assert listing in str(outage.value), str(outage.value)
    assert str(outage.value).startswith(f"{_storage(case)} unavailable while listing")
    zone.root_entries(SPEC)  # the next attempt, once the store is back, lists again


def test_a_missing_bucket_is_a_refusal_that_names_the_uri(case: Case) -> None:
    scheme = case.store.root.split("://", 1)[0]
    missing = f"{scheme}://mlops-missing-{uuid.uuid4().hex[:8]}/landing"
    zone = case.zone(landing_root=missing, quarantine_root=f"{missing}-quarantine")
    with pytest.raises(StorageError) as refusal:
        zone.root_entries(SPEC)
    assert not isinstance(refusal.value, StorageUnavailable)
    assert f"{missing}/{SPEC}/" in str(refusal.value), str(refusal.value)
    assert str(refusal.value).startswith(f"{_storage(case)} refused listing")
    with pytest.raises(StorageError, match=f"refused writing {missing}/{SPEC}/{FOLDER}/events-1.csv"):
        zone.land(SPEC, DAY, "events-1.csv", b"a\n")


def _storage(case: Case) -> str:
    return {"s3": "S3", "azure": "Azure Blob", "gcs": "GCS"}[case.store.name]
