"""The code location: Definitions from the profile's resources and every registered model spec."""

from __future__ import annotations

import dagster as dg

from mlops_platform.assets.family import build_family
from mlops_platform.automation.alerts import alerted_keys, build_alert_sensors
from mlops_platform.automation.landing_queue import build_landing_queue_sensor
from mlops_platform.automation.maintenance import build_maintenance_job, build_maintenance_schedule
from mlops_platform.automation.sensors import build_automation_sensors
from mlops_platform.settings import Settings, executor_for, resources_for
from mlops_platform.specs import ModelSpec, discover_specs


def build_definitions(settings: Settings | None = None, specs: list[ModelSpec] | None = None) -> dg.Definitions:
    """Merge the families of ``specs`` with the profile's resources.

    ``specs`` defaults to the modules in MLOPS_SPECS, else the reference specs. Public: a team can
    write its own ``definitions.py`` around the platform with ``build_definitions(specs=[...])``.
    """
    settings = settings or Settings.from_env()
    specs = specs if specs is not None else discover_specs(settings.spec_modules)
    queued = settings.landing_queue is not None
    families = [build_family(spec, listing_sensor=not queued) for spec in specs]
    landing_sensors = (
        [build_landing_queue_sensor(specs, {family.spec.name: family.ingest_job for family in families})]
        if queued
        else []
    )
    maintenance = build_maintenance_job()
    assets = [asset for family in families for asset in family.assets]
    return dg.Definitions(
        assets=assets,
        jobs=[*(job for family in families for job in family.jobs), maintenance],
        schedules=[
            *(schedule for family in families for schedule in family.schedules),
            build_maintenance_schedule(maintenance),
        ],
        sensors=[
            *(sensor for family in families for sensor in family.sensors),
            *landing_sensors,
            *build_automation_sensors(),
            *build_alert_sensors(*alerted_keys(assets)),
        ],
        resources=resources_for(settings, secrets_as_env_vars=True),
        executor=executor_for(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
