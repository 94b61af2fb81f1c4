"""The asset family of one model spec: the stages composed, with their jobs and schedules.

raw + labels (daily, from the landing zone) -> features (daily) -> training_set -> model ->
evaluation (blocking gates) -> champion -> predictions (daily). Each stage lives in its own module
(``ingest``, ``features``, ``training``, ``promotion``, ``scoring``); this one only composes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mlops_platform.assets.common import Stage, chosen_beta_features
from mlops_platform.assets.features import build_features
from mlops_platform.assets.ingest import build_ingest
from mlops_platform.assets.promotion import build_champion, build_evaluation
from mlops_platform.assets.scoring import build_predictions
from mlops_platform.assets.training import build_model
from mlops_platform.assets.training_set import build_training_set
from mlops_platform.specs.base import ModelSpec

# The stages in graph order; each builder returns the assets of its stage.
STAGES: tuple[Callable[[Stage], Any], ...] = (
    build_ingest,
    build_features,
    build_training_set,
    build_model,
    build_evaluation,
    build_champion,
    build_predictions,
)


@dataclass
class Family:
    """Everything one spec contributes to the Definitions."""

    spec: ModelSpec
    assets: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)
    sensors: list[Any] = field(default_factory=list)

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.spec.name, name])


def build_family(spec: ModelSpec) -> Family:
    """All assets, checks, jobs and schedules of one spec. Group and key prefix are the spec name."""
    from mlops_platform.automation.operations import build_rollback_job
    from mlops_platform.automation.sensors import build_landing_sensor

    stage = Stage(spec)
    family = Family(spec=spec)
    with chosen_beta_features():
        family.assets = [build(stage) for build in STAGES]
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
    )
    family.jobs = [ingest_job, train_job, build_rollback_job(spec, stage.key("champion"))]
    family.schedules = [
        dg.build_schedule_from_partitioned_job(
            ingest_job,
            hour_of_day=0,
            minute_of_hour=30,
            name=f"{spec.name}_daily_ingest",
            description="Every day, ingest yesterday's files (a sweep behind the landing sensor).",
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
    ]
    family.sensors = [build_landing_sensor(spec, ingest_job)]
    return family
