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


def build_landing_sensor(spec: ModelSpec, ingest_job: Any) -> dg.SensorDefinition:
    """Request the day's ingestion when a file lands (or changes) in the spec's landing folder.

    The cursor holds, per day folder, each file name and modification time already handed to a run:
    each file is processed once, and a new or replaced file of an already ingested day re-runs that day.
    Files in a folder that is not a day of this spec's partitions are quarantined with the reason.
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
        today = dt.date.today()
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
            files = {p.name: p.stat().st_mtime_ns for p in paths}
            current[folder] = files
            new = {name: mtime for name, mtime in files.items() if seen.get(folder, {}).get(name) != mtime}
            if new:
                digest = hashlib.sha256(json.dumps(sorted(new.items())).encode()).hexdigest()[:16]
                requests.append(
                    dg.RunRequest(
                        run_key=f"{folder}:{digest}",
                        partition_key=folder,
                        tags={"mlops/trigger": "landing", "mlops/new_files": ",".join(sorted(new))[:200]},
                    )
                )
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
