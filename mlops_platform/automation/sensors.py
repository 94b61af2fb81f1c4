"""The landing sensor and the automation condition sensor."""

import datetime as dt
import hashlib
import json
from typing import Any

import dagster as dg

from mlops_platform.specs.base import ModelSpec
from mlops_platform.storage.landing import LandingZone


def _cursor(raw: str | None) -> dict[str, dict[str, int]]:
    return json.loads(raw) if raw else {}


def _consecutive_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """[(first, last)] of each run of consecutive days in a sorted list."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if ranges and day == ranges[-1][1] + dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def build_landing_sensor(spec: ModelSpec, ingest_job: Any) -> dg.SensorDefinition:
    """Request the day's ingestion when a file lands (or changes) in the spec's landing folder.

    The cursor holds, per day folder, each file name and modification time already handed to a run:
    each file is processed once, and a new or replaced file of an already ingested day re-runs that day.
    New files of consecutive days are ingested in one run. Files in a folder that is not a day of this
    spec's partitions are quarantined with the reason.
    """

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        job=ingest_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Ingests {spec.name} files as they land.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone):
        seen = _cursor(context.cursor)
        current: dict[str, dict[str, int]] = {}
        requests = []
        # Dagster's clock (UTC), not this machine's: a day's partition exists once the day is over.
        today = dt.datetime.now(dt.UTC).date()
        changed: dict[dt.date, list[str]] = {}
        for folder, paths in sorted(landing.scan(spec.name).items()):
            try:
                day = dt.date.fromisoformat(folder)
            except ValueError:
                day = None
            if day is None or day < spec.start_date or day > today:
                why = (
                    f"folder {folder!r} is not a day between {spec.start_date} and {today}"
                    if folder
                    else "files must sit in a YYYY-MM-DD folder"
                )
                for path in paths:
                    landing.quarantine(path, spec.name, folder or "_unassigned", why)
                    context.log.warning(f"quarantined {path}: {why}")
                continue
            if day == today:
                # Today's partition does not exist until the day is over; these files stay out of the
                # cursor and are requested on the first tick after midnight.
                context.log.info(f"{len(paths)} file(s) of {folder} wait for the day's partition")
                continue
            files = {p.name: p.stat().st_mtime_ns for p in paths}
            current[folder] = files
            new = sorted(name for name, mtime in files.items() if seen.get(folder, {}).get(name) != mtime)
            if new:
                changed[day] = new
        for first, last in _consecutive_ranges(sorted(changed)):
            days = [d for d in changed if first <= d <= last]
            digest = hashlib.sha256(
                json.dumps({d.isoformat(): changed[d] for d in sorted(days)}, sort_keys=True).encode()
            ).hexdigest()[:16]
            names = ",".join(name for d in sorted(days) for name in changed[d])
            tags = {"mlops/trigger": "landing", "mlops/new_files": names[:200]}
            if first == last:
                requests.append(dg.RunRequest(run_key=f"{first}:{digest}", partition_key=first.isoformat(), tags=tags))
            else:
                # A run of consecutive days is one run (the assets backfill ranges in a single run).
                tags |= {
                    "dagster/asset_partition_range_start": first.isoformat(),
                    "dagster/asset_partition_range_end": last.isoformat(),
                }
                requests.append(dg.RunRequest(run_key=f"{first}..{last}:{digest}", tags=tags))
        context.update_cursor(json.dumps(current, sort_keys=True))
        if not requests:
            return dg.SkipReason(f"no new files for {spec.name}")
        return requests

    return landing_sensor


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates every asset's automation condition; running from the start (Dagster's own is stopped)."""
    return dg.AutomationConditionSensorDefinition(
        "mlops_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Keeps features, training, evaluation, champion and predictions following their upstreams.",
    )
