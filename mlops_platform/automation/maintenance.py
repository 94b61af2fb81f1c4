"""The lake maintenance job: compact and vacuum every Delta table the platform materialized.

Protected versions, per table URI, are the ones something still points at:
- the Delta version recorded by the newest materialization of every asset (of every partition, for
  partitioned assets): what downstream steps load;
- the training-set version of every registered MLflow model version (tags
  ``mlops.training_set_uri`` / ``mlops.training_set_version``): what reproduces a model;
- the input versions that the materialization which wrote such a training-set version recorded
  (metadata ``<input>_delta_versions``, e.g. features and labels per day): what rebuilds that
  training set from its lineage. The input table is the one beside it in the lake
  (``.../<spec>/training_set`` -> ``.../<spec>/features``), as the asset family lays tables out.
Everything else may be vacuumed once it is older than the retention floor.
"""

from collections import defaultdict
from typing import Any

import dagster as dg

from mlops_platform.storage.io_manager import URI_KEY, VERSION_KEY, Lake
from mlops_platform.storage.maintenance import DEFAULT_MIN_RETENTION_HOURS, maintain_table
from mlops_platform.tracking.registry import MlflowRegistry, model_versions, redact_uri, search_all

JOB_NAME = "lake_maintenance"
TRAINING_SET_URI_TAG = "mlops.training_set_uri"
TRAINING_SET_VERSION_TAG = "mlops.training_set_version"


def materialized_versions(instance: dg.DagsterInstance) -> dict[str, set[int]]:
    """Table URI -> versions recorded by the newest materialization of each asset partition."""
    protected: dict[str, set[int]] = defaultdict(set)
    for key in instance.get_asset_keys():
        latest = instance.get_latest_materialization_event(key)
        metadata = latest.asset_materialization.metadata if latest and latest.asset_materialization else {}
        if URI_KEY not in metadata:
            continue  # not a Delta asset
        partitions = sorted(instance.get_materialized_partitions(key))
        records: list[Any] = []
        if partitions:
            for partition in partitions:
                result = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
                )
                records.extend(result.records)
        else:
            records.append(latest)
        for record in records:
            materialization = record.asset_materialization
            if materialization is None or VERSION_KEY not in materialization.metadata:
                continue
            uri = str(materialization.metadata[URI_KEY].value)
            protected[uri].add(int(materialization.metadata[VERSION_KEY].value))
    return dict(protected)


def registered_training_versions(registry: MlflowRegistry) -> dict[str, set[int]]:
    """Table URI -> training-set versions that registered model versions were trained on.

    Every page of MLflow's searches: a model beyond the first page (100 models) would lose its
    training set to the vacuum.
    """
    protected: dict[str, set[int]] = defaultdict(set)
    client = registry.client()
    for model in search_all(client.search_registered_models):
        for version in model_versions(client, model.name):
            tags = version.tags or {}
            if TRAINING_SET_URI_TAG in tags and TRAINING_SET_VERSION_TAG in tags:
                protected[tags[TRAINING_SET_URI_TAG]].add(int(tags[TRAINING_SET_VERSION_TAG]))
    return dict(protected)


LINEAGE_SUFFIX = "_delta_versions"


def lineage_versions(instance: dg.DagsterInstance, pinned: dict[str, set[int]]) -> dict[str, set[int]]:
    """Input-table versions recorded by the materializations that wrote the ``pinned`` versions."""
    keys_by_uri: dict[str, dg.AssetKey] = {}
    for key in instance.get_asset_keys():
        latest = instance.get_latest_materialization_event(key)
        if latest and latest.asset_materialization and URI_KEY in latest.asset_materialization.metadata:
            keys_by_uri[str(latest.asset_materialization.metadata[URI_KEY].value)] = key
    protected: dict[str, set[int]] = defaultdict(set)
    for uri, versions in pinned.items():
        if uri not in keys_by_uri:
            continue
        key = keys_by_uri[uri]
        wanted = set(versions)
        cursor = None
        while wanted:
            page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=500, cursor=cursor)
            for record in page.records:
                materialization = record.asset_materialization
                if materialization is None or VERSION_KEY not in materialization.metadata:
                    continue
                version = int(materialization.metadata[VERSION_KEY].value)  # type: ignore[arg-type]
                if version not in wanted:
                    continue
                wanted.discard(version)
                for name, value in materialization.metadata.items():
                    if name.endswith(LINEAGE_SUFFIX) and isinstance(value.value, dict):
                        upstream = f"{uri.rsplit('/', 1)[0]}/{name[: -len(LINEAGE_SUFFIX)]}"
                        protected[upstream] |= {int(v) for v in value.value.values()}
            if not page.has_more:
                break
            cursor = page.cursor
    return dict(protected)


def protected_versions(instance: dg.DagsterInstance, registry: MlflowRegistry) -> dict[str, set[int]]:
    """Table URI -> every version that must stay readable (see the module docstring)."""
    registered = registered_training_versions(registry)
    merged: dict[str, set[int]] = defaultdict(set)
    for source in (materialized_versions(instance), registered, lineage_versions(instance, registered)):
        for uri, versions in source.items():
            merged[uri] |= versions
    return dict(merged)


class MaintenanceConfig(dg.Config):
    min_retention_hours: int = DEFAULT_MIN_RETENTION_HOURS


@dg.op(name="compact_and_vacuum_lake", description="Compact and vacuum every Delta table, keeping pinned versions.")
def compact_and_vacuum_lake(
    context: dg.OpExecutionContext, config: MaintenanceConfig, lake: Lake, registry: MlflowRegistry
) -> dict[str, Any]:
    protected = protected_versions(context.instance, registry)
    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for uri, versions in sorted(protected.items()):
        if not uri.startswith(lake.root_uri.rstrip("/")):
            continue  # a table outside this lake (another profile, a moved lake): not ours to vacuum
        try:
            result = maintain_table(
                uri,
                versions,
                storage_options=lake.storage_options,
                minimum_retention_hours=config.min_retention_hours,
            )
        except Exception as exc:  # noqa: BLE001 - one table's failure must not stop the other tables
            failed[redact_uri(uri)] = f"{type(exc).__name__}: {redact_uri(str(exc))}"
            context.log.error(f"{redact_uri(uri)}: maintenance failed: {failed[redact_uri(uri)]}")
            continue
        context.log.info(
            f"{redact_uri(uri)}: compacted {result.files_compacted} files into {result.files_written}, vacuumed "
            f"{result.files_vacuumed} (retention {result.retention_hours} h, kept versions "
            f"{list(result.protected_versions)})"
        )
        if result.unreadable_versions:
            context.log.warning(
                f"{redact_uri(uri)}: protected versions {list(result.unreadable_versions)} cannot be loaded "
                "from the Delta log any more (cleaned up before they were protected)"
            )
        done[redact_uri(uri)] = {
            "protected_versions": list(result.protected_versions),
            "retention_hours": result.retention_hours,
            "files_compacted": result.files_compacted,
            "files_vacuumed": result.files_vacuumed,
            "log_retention": result.log_retention,
            "unreadable_versions": list(result.unreadable_versions),
        }
    if failed:
        raise dg.Failure(
            description=f"maintenance failed for {len(failed)} table(s): {', '.join(sorted(failed))}",
            metadata={"failed": dg.MetadataValue.json(failed), "tables": dg.MetadataValue.json(done)},
        )
    context.add_output_metadata({"tables": dg.MetadataValue.json(done)})
    return done


def build_maintenance_job() -> dg.JobDefinition:
    @dg.job(name=JOB_NAME, description="Compact and vacuum the lake; versions still referenced stay readable.")
    def lake_maintenance():
        compact_and_vacuum_lake()

    return lake_maintenance


def build_maintenance_schedule(job: dg.JobDefinition, cron: str = "0 3 * * 0") -> dg.ScheduleDefinition:
    """Weekly by default (Sunday 03:00), when retraining and scoring are idle."""
    return dg.ScheduleDefinition(
        name=f"{JOB_NAME}_weekly",
        job=job,
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Compact and vacuum the lake without losing a version a model or a run points at.",
    )
