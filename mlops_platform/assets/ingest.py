"""The ingest stage: the day's landed files, validated and typed, into the raw and labels tables."""

import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from mlops_platform.assets.common import (
    DELTA,
    FILES_VALID_CHECK,
    SOURCE_FILE_COLUMN,
    TRANSIENT_RETRY,
    Frame,
    Stage,
    is_transient,
    retry_only_transient,
)
from mlops_platform.specs.base import ModelSpec
from mlops_platform.storage.delta import DAY_COLUMN
from mlops_platform.storage.errors import StorageError
from mlops_platform.storage.landing import LandedFile, LandingZone, safe_name, sanitize, stream_of


def _limits(landing: LandingZone) -> Any:
    from mlops_platform.ml.validation import FileLimits

    return FileLimits(
        max_file_bytes=landing.max_file_bytes,
        max_rows=landing.max_rows,
        max_uncompressed_bytes=landing.max_uncompressed_bytes,
    )


def key_columns(spec: ModelSpec, stream: str) -> tuple[str, ...]:
    """The columns no row may leave empty: the entity and event time (the point-in-time join's keys),
    and for labels also the label time (the day a label landed)."""
    if stream == "events":
        return (spec.entity_key, spec.event_timestamp)
    return (spec.entity_key, spec.event_timestamp, spec.label_timestamp)


def _read_one(file: LandedFile, stream: str, spec: ModelSpec, day: dt.date, landing: LandingZone) -> Frame:
    """One file read, typed and proven to convert to its declared Arrow types, or InvalidFile."""
    from mlops_platform.ml.validation import conform, read_landed_file

    schema = spec.source.events if stream == "events" else spec.source.labels
    day_column = spec.event_timestamp if stream == "events" else spec.label_timestamp
    with landing.local_copy(file) as path:
        frame = read_landed_file(path, _limits(landing), schema)
    return conform(frame, schema, day=day, day_column=day_column, key_columns=key_columns(spec, stream))


def _quarantine(landing: LandingZone, file: LandedFile, spec: ModelSpec, day: dt.date, reason: str, log: Any) -> str:
    """Quarantine one file (or link) with its reason; returns the reason as recorded (bounded, sanitized)."""
    reason = sanitize(reason)
    target = landing.quarantine(file, spec.name, day.isoformat(), reason)
    log.warning(f"quarantined {sanitize(file.location)} -> {sanitize(target)}: {reason}")
    return reason


def _ingest_stream(
    files: list[LandedFile], stream: str, spec: ModelSpec, day: dt.date, landing: LandingZone, log: Any
) -> tuple[Frame, list[str], dict[str, str]]:
    """Valid files of one stream concatenated in landing order; bad ones quarantined with their reason.

    One file's contents never fail the run: any error reading or validating it quarantines that file,
    and the others are ingested. The store's errors are not the file's: an outage is retried (the
    retry policy), a refusal (permissions, a missing bucket) fails the run naming the URI.
    """
    import pandas as pd

    from mlops_platform.ml.days import day_of
    from mlops_platform.ml.validation import InvalidFile
    from mlops_platform.text import TEXT

    schema = spec.source.events if stream == "events" else spec.source.labels
    day_column = spec.event_timestamp if stream == "events" else spec.label_timestamp
    frames, ingested, quarantined = [], [], {}
    for file in files:
        try:
            frame = _read_one(file, stream, spec, day, landing)
        except InvalidFile as exc:
            reason = str(exc)
        except StorageError:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            if not landing.exists(file):
                # Moved away while being read (another run quarantined it): it is recorded there.
                log.warning(f"{sanitize(file.location)} disappeared while being read; skipped in this run")
                continue
            reason = f"could not be read or validated: {type(exc).__name__}: {exc}"
        else:
            frame[SOURCE_FILE_COLUMN] = pd.Series(file.name, index=frame.index, dtype=TEXT)
            frames.append(frame)
            ingested.append(file.name)
            continue
        try:
            quarantined[safe_name(file.name)] = _quarantine(landing, file, spec, day, reason, log)
        except FileNotFoundError:
            log.warning(f"{sanitize(file.location)} disappeared before it could be quarantined")
    if frames:
        combined = pd.concat(frames, ignore_index=True)
    else:
        combined = pd.DataFrame({c: pd.Series(dtype=_pandas_dtype(t)) for c, t in schema.items()})
        combined[SOURCE_FILE_COLUMN] = pd.Series(dtype=TEXT)
    combined[DAY_COLUMN] = day_of(combined[day_column]) if len(combined) else pd.Series(dtype=object)
    return combined, ingested, quarantined


def _pandas_dtype(column_type: str) -> Any:
    from mlops_platform.text import TEXT

    return {"string": TEXT, "timestamp": "datetime64[ns]"}.get(column_type, column_type)


def _dedupe(frame: Frame, keys: list[str]) -> tuple[Frame, int]:
    """One row per key, the last landed file winning (files are concatenated by modification time,
    then name), so a file landed twice never doubles its rows and a later correction replaces rows."""
    deduped = frame.drop_duplicates(subset=keys, keep="last")
    return deduped.reset_index(drop=True), len(frame) - len(deduped)


@dataclass
class DayIngest:
    day: dt.date
    frames: dict[str, Frame]
    ingested: dict[str, list[str]]
    rejected: dict[str, dict[str, str]]
    duplicates: dict[str, int]


def ingest_day(spec: ModelSpec, day: dt.date, landing: LandingZone, log: Any) -> DayIngest:
    """Both streams of one day: valid files typed and deduplicated, the rest quarantined.

    A day folder that is a link, and a link, odd name or sub-folder inside it, is quarantined itself
    (never followed, never read).
    """
    by_stream, unknown = list_day(spec, day, landing, log)
    result = DayIngest(day, {}, {}, {"events": unknown, "labels": {}}, {})
    for stream, paths in by_stream.items():
        frame, ingested, rejected = _ingest_stream(paths, stream, spec, day, landing, log)
        result.frames[stream], result.duplicates[stream] = _dedupe(frame, [spec.entity_key, spec.event_timestamp])
        result.ingested[stream] = ingested
        result.rejected[stream].update(rejected)
    return result


def list_day(spec: ModelSpec, day: dt.date, landing: LandingZone, log: Any) -> tuple[dict[str, list], dict[str, str]]:
    """The day's files by stream, and the reasons of the entries quarantined instead (links, odd names)."""
    by_stream: dict[str, list[LandedFile]] = {"events": [], "labels": []}
    unknown: dict[str, str] = {}
    entries, _ = landing.day_listing(spec.name, day)  # a refused day folder is its one entry
    for entry in entries:
        stream = stream_of(entry.name)
        reason = entry.refused
        if reason is not None or stream is None:
            reason = reason or "file name must start with 'events-' or 'labels-'"
            try:
                unknown[safe_name(entry.name)] = _quarantine(landing, entry, spec, day, reason, log)
            except FileNotFoundError:
                log.warning(f"{sanitize(entry.location)} disappeared before it could be quarantined")
        else:
            by_stream[stream].append(entry)
    return by_stream, unknown


@dataclass
class RangeIngest:
    """A range run's ingestion, one day and one stream at a time: each day's frame is written before
    the next day is read, so a run over many days holds about one day in memory."""

    spec: ModelSpec
    days: list[dt.date]
    landing: LandingZone
    log: Any

    def __post_init__(self) -> None:
        self.listings: dict[dt.date, tuple[dict[str, list], dict[str, str]]] = {}
        self.ingested: dict[str, dict[str, list[str]]] = {"events": {}, "labels": {}}
        self.rejected: dict[str, dict[str, str]] = {"events": {}, "labels": {}}
        self.duplicates = {"events": 0, "labels": 0}

    def listing(self, day: dt.date) -> tuple[dict[str, list], dict[str, str]]:
        """The day's files, listed once per run (the labels see the listing the events saw)."""
        if day not in self.listings:
            self.listings[day] = list_day(self.spec, day, self.landing, self.log)
            self.rejected["events"].update(self.listings[day][1])
        return self.listings[day]

    def batches(self, stream: str) -> Iterator[tuple[list[dt.date], Frame]]:
        spec = self.spec
        for day in self.days:
            paths = self.listing(day)[0][stream]
            frame, ingested, rejected = _ingest_stream(paths, stream, spec, day, self.landing, self.log)
            frame, dropped = _dedupe(frame, [spec.entity_key, spec.event_timestamp])
            self.ingested[stream][day.isoformat()] = ingested
            self.rejected[stream].update(rejected)
            self.duplicates[stream] += dropped
            yield [day], frame

    def summary(self, stream: str) -> dict[str, Any]:
        return {
            "files_ingested": dg.MetadataValue.json(self.ingested[stream]),
            "files_quarantined_this_run": dg.MetadataValue.json(self.rejected[stream]),
            "duplicate_rows_dropped": self.duplicates[stream],
        }


def build_ingest(stage: Stage) -> dg.AssetsDefinition:
    """raw + labels of one spec: one multi-asset over daily partitions, with the files_valid check."""
    spec = stage.spec
    raw_key, labels_key = stage.key("raw"), stage.key("labels")

    @dg.multi_asset(
        name=f"{spec.name}__ingest",
        outs={
            f"{spec.name}__raw": dg.AssetOut(
                key=raw_key,
                io_manager_key=DELTA,
                description=f"Events of {spec.name} landed for the day, validated and typed.",
                group_name=stage.group,
                freshness_policy=stage.freshness,
                kinds={"delta", "pandas"},
                metadata={"partition_column": DAY_COLUMN},
            ),
            f"{spec.name}__labels": dg.AssetOut(
                key=labels_key,
                io_manager_key=DELTA,
                description=f"Labels ({spec.label}) of {spec.name} that landed on the day.",
                group_name=stage.group,
                kinds={"delta", "pandas"},
                metadata={"partition_column": DAY_COLUMN},
            ),
        },
        check_specs=[
            dg.AssetCheckSpec(
                FILES_VALID_CHECK,
                asset=raw_key,
                description="Every file landed for the day was ingested; none sits in quarantine.",
            )
        ],
        partitions_def=stage.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=TRANSIENT_RETRY,
    )
    @retry_only_transient
    def ingest(context: dg.AssetExecutionContext, landing: LandingZone):
        """Ingest exactly the files of each day in the run; quarantine bad files with their reason."""
        from mlops_platform.storage.delta import DayBatches

        days = [dt.date.fromisoformat(key) for key in context.partition_keys]
        run = RangeIngest(spec, days, landing, context.log)
        for stream, output in (("events", f"{spec.name}__raw"), ("labels", f"{spec.name}__labels")):
            yield dg.Output(
                DayBatches(run.batches(stream), summary=functools.partial(run.summary, stream)), output_name=output
            )
        quarantined = {
            path: reason for day in days for path, reason in landing.quarantined(spec.name, day.isoformat()).items()
        }
        total = sum(len(files) for stream in run.ingested.values() for files in stream.values())
        span = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
        yield dg.AssetCheckResult(
            asset_key=raw_key,
            check_name=FILES_VALID_CHECK,
            passed=not quarantined,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(quarantined)} file(s) of {span} are in quarantine; see reasons"
                if quarantined
                else f"all {total} file(s) of {span} ingested"
            ),
            metadata={
                "quarantined": dg.MetadataValue.json(quarantined),
                "quarantine_folder": dg.MetadataValue.path(landing.quarantine_folder(spec.name)),
            },
        )

    return ingest
