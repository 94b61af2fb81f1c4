"""What every cloud must do, written once; each test_<cloud>.py runs these against its own server."""

from __future__ import annotations

import datetime as dt
import io
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd

from mlops_platform.specs import ModelSpec
from mlops_platform.storage.delta import read_days_at_versions, read_table
from mlops_platform.tracking.registry import CHAMPION
from tests.conftest import START, Platform, day

START = START
DAYS = 6
ROWS = 250


LOG = logging.getLogger("cloud-scenarios")


def events_file(spec: ModelSpec, day: dt.date, rows: int = ROWS, seed: int = 1) -> bytes:
    """One day's events as a producer would land them (Parquet bytes)."""
    events, _ = spec.source.generator(day, seed, 0.0, rows)
    buffer = io.BytesIO()
    events.to_parquet(buffer, index=False)
    return buffer.getvalue()


def materialize_family(platform: Platform, spec: ModelSpec) -> None:
    """Land a few small days, then ingest, featurize, train, evaluate, promote and score them."""
    platform.land(spec, days=DAYS, rows=ROWS)
    platform.ingest(spec, DAYS)
    platform.train(spec)
    platform.run(spec, ["predictions"], partition_key=day(DAYS - 1))


def assert_family_lineage(platform: Platform, spec: ModelSpec) -> None:
    """Every materialization recorded its Delta version; the model is reproducible from them."""
    lake = platform.resources["lake"]
    registry = platform.resources["registry"]
    assert registry.alias_version(spec.registered_model_name, CHAMPION) == "1"
    model = platform.latest_metadata(spec, "model")
    training = platform.latest_metadata(spec, "training_set")
    assert model["training_set_version"] == training["delta_version"]
    assert str(training["delta_uri"]) == lake.uri(dg.AssetKey([spec.name, "training_set"]))
    assert str(training["delta_uri"]).startswith(lake.root_uri)

    # The training set as the model saw it, read back at the pinned version ...
    stored = read_table(
        str(training["delta_uri"]), int(training["delta_version"]), storage_options=lake.storage_options
    )
    assert len(stored) == training["rows_train"] + training["rows_validation"] + training["rows_test"]
    # ... equals one rebuilt from the feature and label versions the training set recorded.
    from mlops_platform.ml.dataset import point_in_time_join
    from mlops_platform.ml.training import canonical_order

    features = read_days_at_versions(
        lake.uri(dg.AssetKey([spec.name, "features"])),
        {dt.date.fromisoformat(d): v for d, v in training["features_delta_versions"].items()},
        storage_options=lake.storage_options,
    )
    labels = read_days_at_versions(
        lake.uri(dg.AssetKey([spec.name, "labels"])),
        {dt.date.fromisoformat(d): v for d, v in training["labels_delta_versions"].items()},
        storage_options=lake.storage_options,
    )
    rebuilt = point_in_time_join(features, labels, spec)
    pd.testing.assert_frame_equal(canonical_order(rebuilt, spec), canonical_order(stored, spec), check_dtype=False)

    # The MLflow run carries the same lineage, and its model loads from the bucket's artifact store.
    run = registry.client().get_run(model["mlflow_run_id"])
    assert run.data.tags["mlops.training_set_version"] == str(training["delta_version"])
    assert run.data.tags["mlops.training_set_uri"] == str(training["delta_uri"])
    assert run.info.artifact_uri.startswith(registry.artifact_root.rstrip("/"))
    assert registry.load_model(spec.registered_model_name, "1") is not None
    predictions = platform.latest_metadata(spec, "predictions", day(DAYS - 1))
    assert predictions["champion_version"] == 1 and predictions["dagster/row_count"] > 0


def assert_downstream_loads_the_recorded_version(platform: Platform, spec: ModelSpec) -> None:
    """Time travel: a write that Dagster never recorded is not what downstream loads."""
    from mlops_platform.storage.delta import write_table

    lake = platform.resources["lake"]
    key = dg.AssetKey([spec.name, "features"])
    partition = day(DAYS - 1)
    recorded = platform.latest_metadata(spec, "features", partition)["delta_version"]
    pinned = read_table(
        lake.uri(key), recorded, days=[dt.date.fromisoformat(partition)], storage_options=lake.storage_options
    )
    # Another writer replaces the day's rows without going through Dagster.
    tampered = pinned.head(3).copy()
    newer = write_table(
        lake.uri(key), tampered, days=[dt.date.fromisoformat(partition)], storage_options=lake.storage_options
    )
    assert newer.version > recorded
    result = platform.run(spec, ["predictions"], partition_key=partition)
    assert result.success
    scored = platform.latest_metadata(spec, "predictions", partition)
    assert scored["features_delta_versions"] == {partition: recorded}
    assert scored["dagster/row_count"] == len(pinned) != len(tampered)


APPEND_SCRIPT = """
import sys, json, pandas as pd
from mlops_platform.exit_guard import exit_now
from mlops_platform.storage.delta import append_table
uri, writer, appends, options = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
versions = []
for n in range(appends):
    frame = pd.DataFrame({"writer": [writer] * 50, "append": [n] * 50, "row": range(50)})
    tag = {"test.append": f"{writer}/{n}"}
    versions.append([append_table(uri, frame, storage_options=options, commit_metadata=tag).version, f"{writer}/{n}"])
print(json.dumps(versions))
exit_now(0)
"""


def concurrent_appends(uri: str, storage_options: dict[str, str], writers: int, appends: int) -> None:
    """N processes append to one table at once: every commit lands, no row is lost or doubled."""
    import json

    from deltalake import DeltaTable

    from mlops_platform.storage.delta import append_table

    seed = pd.DataFrame({"writer": [-1], "append": [-1], "row": [0]})
    append_table(uri, seed, storage_options=storage_options)  # the table exists before the race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPEND_SCRIPT, uri, str(w), str(appends), json.dumps(storage_options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, [err[-800:] for _, err in outputs]
    reported = {tag: version for out, _ in outputs for version, tag in json.loads(out)}
    # Every append is its own commit, and the versions are exactly 1..N*appends after the seed ...
    assert sorted(reported.values()) == list(range(1, writers * appends + 1)), reported
    table = DeltaTable(uri, storage_options=storage_options)
    assert table.version() == writers * appends
    # ... and each writer was told the version its own commit has (the log, read now that it is still).
    logged = {entry["test.append"]: entry["version"] for entry in table.history() if "test.append" in entry}
    assert logged == reported
    frame = read_table(uri, table.version(), storage_options=storage_options)
    counts = frame[frame["writer"] >= 0].groupby(["writer", "append"]).size()
    assert len(counts) == writers * appends and set(counts) == {50}


def run_through_outage(
    stop: Callable[[], None],
    start: Callable[[], None],
    instance: dg.DagsterInstance,
    action: Callable[[], dg.ExecuteInProcessResult],
    bound: float = 300.0,
) -> dg.ExecuteInProcessResult:
    """Stop the server, run ``action``, and bring the server back once the run's first failed attempt
    is on record (a step up for retry), however long the busy machine took to get there."""
    before = _retries_on_record(instance)
    stop()
    finished = threading.Event()

    def restart_after_the_first_failure() -> None:
        deadline = time.monotonic() + bound
        while not finished.is_set() and time.monotonic() < deadline:
            if _retries_on_record(instance) > before:
                break
            finished.wait(0.05)
        start()

    watcher = threading.Thread(target=restart_after_the_first_failure, daemon=True)
    watcher.start()
    try:
        return action()
    finally:
        finished.set()
        watcher.join()


def _retries_on_record(instance: dg.DagsterInstance) -> int:
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.STEP_UP_FOR_RETRY), limit=1000
    )
    return len(records)


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    """Every error message of the run's failed steps, causes included."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(error.message)
                error = error.cause
    return "\n".join(texts)


def retry_events(result: dg.ExecuteInProcessResult) -> int:
    return sum(1 for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY")


def table_history(uri: str, storage_options: dict[str, str]) -> list[int]:
    from deltalake import DeltaTable

    return sorted(int(entry["version"]) for entry in DeltaTable(uri, storage_options=storage_options).history())


def read_latest(uri: str, storage_options: dict[str, str]) -> pd.DataFrame:
    from deltalake import DeltaTable

    version = DeltaTable(uri, storage_options=storage_options).version()
    return read_table(uri, version, storage_options=storage_options)


def home(tmp: Path) -> Path:
    path = tmp / "home"
    path.mkdir(parents=True, exist_ok=True)
    return path
