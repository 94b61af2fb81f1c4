"""The Delta IO manager: records the version each materialization wrote, loads exactly that version.

Downstream never reads "latest". For every upstream partition it reads, it looks up the newest
materialization of that partition in the Dagster instance and reads the Delta version recorded there.
The versions it loaded travel with the frame in ``frame.attrs["delta_versions"]`` so assets can put
them in their metadata and MLflow tags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from mlops_platform.storage.delta import (
    DAY_COLUMN,
    join_uri,
    read_days_at_versions,
    read_table,
    write_table,
)
from mlops_platform.storage.errors import StorageError

if TYPE_CHECKING:  # pandas loads with the first read or write, not with the code location
    import pandas as pd

VERSION_KEY = "delta_version"
URI_KEY = "delta_uri"


class LineageError(RuntimeError):
    """An upstream table version that should have been recorded was not."""


@contextmanager
def fail_fast_on_refusal() -> Iterator[None]:
    """A store that refused (403, 404, bad request) refuses again: fail the step without retrying.

    Unreachable stores raise StorageUnavailable, which passes through, so the step's RetryPolicy
    retries it with backoff; if the outage outlasts the retries the run fails with that message,
    which names the storage and the URI.
    """
    try:
        yield
    except StorageError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def table_uri(root_uri: str, asset_key: dg.AssetKey) -> str:
    return join_uri(root_uri, *asset_key.path)


def recorded_versions(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_keys: list[str] | None
) -> dict[str | None, int]:
    """Delta version written by the newest materialization of each partition (or of the asset).

    Partitions never materialized are absent from the result.
    """
    wanted = None if partition_keys is None else set(partition_keys)
    found: dict[str | None, int] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=partition_keys),
            limit=1000,
            cursor=cursor,
        )
        for record in result.records:  # newest first
            materialization = record.asset_materialization
            if materialization is None:
                continue
            key = materialization.partition
            if key in found or (wanted is not None and key not in wanted):
                continue
            value = materialization.metadata.get(VERSION_KEY)
            if value is None:
                raise LineageError(
                    f"materialization of {asset_key.to_user_string()} partition {key} in run "
                    f"{record.run_id} recorded no {VERSION_KEY}"
                )
            found[key] = int(value.value)  # type: ignore[arg-type]
        if partition_keys is None and found:
            break
        if wanted is not None and wanted <= set(found):
            break
        if not result.has_more:
            break
        cursor = result.cursor
    return found


class Lake(dg.ConfigurableResource):
    """The profile's Delta lake: one root URI, one table per asset key, and the storage options."""

    root_uri: str
    storage_options: dict[str, str] = {}

    def uri(self, asset_key: dg.AssetKey) -> str:
        return table_uri(self.root_uri, asset_key)

    def load_version(self, asset_key: dg.AssetKey, version: int) -> pd.DataFrame:
        """One table at one version, for assets that pin a version recorded elsewhere (e.g. in MLflow)."""
        uri = self.uri(asset_key)
        frame = read_table(uri, version, storage_options=self.storage_options)
        frame.attrs["delta_versions"] = {"all": version}
        frame.attrs["delta_uri"] = uri
        return frame


class DeltaIOManager(dg.ConfigurableIOManager):
    """Pandas frames as Delta tables of the lake, one table per asset key."""

    lake: Lake

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        import pandas as pd

        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a pandas DataFrame, got {type(obj).__name__}"
            )
        uri = self.lake.uri(context.asset_key)
        days = None
        if context.has_asset_partitions:
            days = [dt.date.fromisoformat(key) for key in context.asset_partition_keys]
        with fail_fast_on_refusal():
            result = write_table(
                uri,
                obj,
                days=days,
                storage_options=self.lake.storage_options,
                commit_metadata={"dagster.run_id": context.run_id} if context.has_asset_key else None,
            )
        context.add_output_metadata(
            {
                VERSION_KEY: result.version,
                URI_KEY: dg.MetadataValue.path(uri),
                # A range run writes its partitions in one commit; the counts are those of the run.
                "partitions_written": len(days) if days is not None else 0,
                "dagster/row_count": result.rows,
                # Present only when this write evolved the table's schema (older rows read them as null).
                **({"schema_added_columns": list(result.added_columns)} if result.added_columns else {}),
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in obj.dtypes.items()]
                ),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        with fail_fast_on_refusal():
            return self._load(context)

    def _load(self, context: dg.InputContext) -> pd.DataFrame:
        upstream_key = context.asset_key
        uri = self.lake.uri(upstream_key)
        instance = context.instance
        if context.has_asset_partitions:
            keys = list(context.asset_partition_keys)
            versions = recorded_versions(instance, upstream_key, keys)
            if not versions:
                raise LineageError(
                    f"no partition of {upstream_key.to_user_string()} among {len(keys)} requested "
                    f"({keys[0]}..{keys[-1]}) has been materialized"
                )
            if context.has_partition_key or len(keys) == 1:
                missing = sorted(set(keys) - {k for k in versions if k is not None})
                if missing:
                    raise LineageError(f"{upstream_key.to_user_string()} partitions {missing} are not materialized")
            by_day = {dt.date.fromisoformat(k): v for k, v in versions.items() if k is not None}
            frame = read_days_at_versions(uri, by_day, storage_options=self.lake.storage_options)
            frame.attrs["delta_versions"] = {d.isoformat(): v for d, v in sorted(by_day.items())}
        else:
            versions = recorded_versions(instance, upstream_key, None)
            if None not in versions:
                raise LineageError(f"{upstream_key.to_user_string()} has no recorded materialization to load")
            frame = read_table(uri, versions[None], storage_options=self.lake.storage_options)
            frame.attrs["delta_versions"] = {"all": versions[None]}
        frame.attrs["delta_uri"] = uri
        return frame


__all__ = [
    "DAY_COLUMN",
    "DeltaIOManager",
    "Lake",
    "LineageError",
    "fail_fast_on_refusal",
    "recorded_versions",
    "table_uri",
]
