"""The asset family of one model spec: the stages composed, with their jobs and schedules.

raw + labels (daily, from the landing zone) -> features (daily) -> training_set -> model ->
evaluation (blocking gates) -> champion -> endpoint -> predictions (daily) -> drift / performance
(daily). Each stage lives in its own module (``ingest``, ``features``, ``training_set``, ``training``,
``promotion``, ``endpoint``, ``scoring``, ``monitoring``); this one only composes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mlops_platform.assets.common import TRAINING_TAGS, Stage, chosen_beta_features
from mlops_platform.assets.endpoint import build_endpoint
from mlops_platform.assets.features import build_features
from mlops_platform.assets.ingest import build_ingest
from mlops_platform.assets.model_card import build_model_card
from mlops_platform.assets.monitoring import build_monitoring
from mlops_platform.assets.promotion import build_champion, build_evaluation
from mlops_platform.assets.scoring import build_predictions
from mlops_platform.assets.training import build_model
from mlops_platform.assets.training_set import build_training_set
from mlops_platform.specs.base import ModelSpec
from mlops_platform.storage.landing import LandingZone, sanitize

# Runs of the ingest job that have not finished: a day they cover is already on its way.
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

# The stages in graph order; each builder returns the asset (or the list of assets and checks) of its stage.
STAGES: tuple[Callable[[Stage], Any], ...] = (
    build_ingest,
    build_features,
    build_training_set,
    build_model,
    build_evaluation,
    build_champion,
    build_model_card,
    build_endpoint,
    build_predictions,
    build_monitoring,
)


@dataclass
class Family:
    """Everything one spec contributes to the Definitions."""

    spec: ModelSpec
    assets: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)
    sensors: list[Any] = field(default_factory=list)
    ingest_job: Any = None

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.spec.name, name])


def build_family(spec: ModelSpec, *, listing_sensor: bool = True) -> Family:
    """All assets, checks, jobs and schedules of one spec. Group and key prefix are the spec name.

    ``listing_sensor``: the spec's landing sensor lists its landing folder; False where the landing
    queue sensor (one for every spec) reads the bucket's notifications instead."""
    from mlops_platform.automation.operations import build_rollback_job
    from mlops_platform.automation.retraining import build_retraining_sensor
    from mlops_platform.automation.sensors import build_landing_sensor

    stage = Stage(spec)
    family = Family(spec=spec)
    with chosen_beta_features():
        for build in STAGES:
            built = build(stage)
            family.assets.extend(built if isinstance(built, list) else [built])
    ingest_job = dg.define_asset_job(
        f"{spec.name}_ingest",
        selection=dg.AssetSelection.assets(stage.key("raw"), stage.key("labels")),
        partitions_def=stage.partitions,
        description=f"Ingest one day of {spec.name} files from the landing zone.",
    )
    train_job = dg.define_asset_job(
        f"{spec.name}_train",
        selection=dg.AssetSelection.assets(
            *(stage.key(n) for n in ("training_set", "model", "evaluation", "champion"))
        ),
        description=f"Build the training set, train, evaluate and (if the gates pass) promote {spec.name}.",
        tags=TRAINING_TAGS,
    )
    family.jobs = [ingest_job, train_job, build_rollback_job(spec, stage.key("champion"))]
    family.schedules = [build_daily_sweep(stage, ingest_job)]
    family.ingest_job = ingest_job
    family.sensors = [
        *([build_landing_sensor(spec, ingest_job)] if listing_sensor else []),
        build_retraining_sensor(spec, train_job, send_metrics=True),
    ]
    return family


def files_not_ingested(
    instance: dg.DagsterInstance, stage: Stage, landing: LandingZone, day: dt.date
) -> tuple[dict[str, str], str]:
    """The day's landed entries that no materialization has ingested: ({name: stamp}, what was found).

    A file counts as ingested when the newest materialization of the day's raw (events) or labels
    partition lists it in ``files_ingested`` and the file was not modified after that run started
    (a file replaced under the same name is new again). Files that were quarantined have left the
    landing zone, so they are not listed here.
    """
    entries, refused = landing.day_listing(stage.spec.name, day)
    if refused:
        return {day.isoformat(): refused}, refused
    ingested: set[str] = set()
    since_ns = None
    for name in ("raw", "labels"):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=stage.key(name), asset_partitions=[day.isoformat()]), limit=1
        ).records
        if not records or records[0].asset_materialization is None:
            continue
        listed = records[0].asset_materialization.metadata.get("files_ingested")
        if listed is not None and isinstance(listed.value, dict):
            ingested.update(listed.value.get(day.isoformat(), []))
        run = instance.get_run_record_by_id(records[0].run_id)
        started = run.start_time if run is not None and run.start_time is not None else records[0].timestamp
        started_ns = int(started * 1e9)
        since_ns = started_ns if since_ns is None else min(since_ns, started_ns)
    missed = {
        f.name: f.stamp for f in entries if f.name not in ingested or since_ns is None or f.modified_ns > since_ns
    }
    return missed, f"{len(entries)} file(s) landed, {len(entries) - len(missed)} ingested"


def _ingest_unfinished(instance: dg.DagsterInstance, job_name: str, day: str) -> str | None:
    """The id of an unfinished run of ``job_name`` whose partition (or range) covers ``day``."""
    for run in instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=UNFINISHED)):
        tags = run.tags
        first = tags.get("dagster/asset_partition_range_start", tags.get("dagster/partition"))
        last = tags.get("dagster/asset_partition_range_end", tags.get("dagster/partition"))
        if first is not None and last is not None and first <= day <= last:
            return run.run_id
    return None


def build_daily_sweep(stage: Stage, ingest_job: Any) -> dg.ScheduleDefinition:
    """00:30 UTC every day: ingest yesterday only if it has landed files that no run ingested or is ingesting.

    The landing sensor ingests files as they land; this sweep catches what it missed (a sensor that
    was stopped, a run that failed) and never repeats what was ingested, so downstream features and
    predictions are not re-run for a day that did not change.
    """
    spec = stage.spec

    @dg.schedule(
        name=f"{spec.name}_daily_ingest",
        cron_schedule="30 0 * * *",
        job=ingest_job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Every day at 00:30 UTC, ingest yesterday's files that the landing sensor did not hand to a run "
            "(skips, saying why, when every landed file was ingested)."
        ),
    )
    def daily_ingest(context: dg.ScheduleEvaluationContext, landing: LandingZone):
        now = context.scheduled_execution_time
        if now is None:
            raise ValueError(f"{spec.name}_daily_ingest: no scheduled execution time to know which day is yesterday")
        day = now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
        if day < spec.start_date:
            return dg.SkipReason(f"{day} is before {spec.name}'s first partition ({spec.start_date})")
        missed, found = files_not_ingested(context.instance, stage, landing, day)
        if not missed:
            return dg.SkipReason(f"{spec.name} {day}: nothing to sweep ({found})")
        running = _ingest_unfinished(context.instance, ingest_job.name, day.isoformat())
        if running is not None:
            return dg.SkipReason(f"{spec.name} {day}: run {running} is already ingesting it ({found})")
        digest = hashlib.sha256(json.dumps(missed, sort_keys=True).encode()).hexdigest()[:16]
        names = ",".join(sanitize(name, 100) for name in sorted(missed))
        context.log.info(f"{spec.name} {day}: {found}; sweeping {names[:500]}")
        return dg.RunRequest(
            run_key=f"sweep:{day}:{digest}",
            partition_key=day.isoformat(),
            tags={"mlops/trigger": "daily_sweep", "mlops/new_files": names[:200]},
        )

    return daily_ingest
