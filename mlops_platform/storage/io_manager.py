"""The Delta IO manager: records the version each materialization wrote, loads exactly that version.

Downstream never reads "latest". For every upstream partition it reads, it looks up the newest
materialization of that partition in the Dagster instance and reads the Delta version recorded there.
The versions it loaded travel with the frame in ``frame.attrs["delta_versions"]`` so assets can put
them in their metadata and MLflow tags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from mlops_platform.storage.delta import (
    DAY_COLUMN,
    DEFAULT_BATCH_ROWS,
    READ_BATCH_ROWS,
    DayBatches,
    PinnedDays,
    PinnedTable,
    TableStream,
    join_uri,
    read_days_at_versions,
    read_table,
    write_stream,
    write_table,
)
from mlops_platform.storage.errors import StorageError

if TYPE_CHECKING:  # pandas loads with the first read or write, not with the code location
    import pandas as pd

VERSION_KEY = "delta_version"
URI_KEY = "delta_uri"
# Input metadata (``dg.AssetIn(key, metadata=LAZY)``) asking for a PinnedDays / PinnedTable handle,
# read by the step in bounded batches, instead of one frame of everything the input covers.
LOAD_KEY = "mlops/load"
LAZY = {LOAD_KEY: "lazy"}


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


@contextmanager
def _reporting_unsettled(
    context: dg.OutputContext, name: str, in_flight: list[tuple[Future, list[dt.date]]]
) -> Iterator[None]:
    """When the block fails, log each commit still in flight that failed as well (waiting for it): the
    step fails with its own error, and this one would otherwise be lost with the unread future."""
    try:
        yield
    except BaseException:
        for future, days in in_flight:
            error = None if future.cancelled() else future.exception()
            if error is not None:
                context.log.warning(
                    f"{name}: the commit of days {[d.isoformat() for d in days]}, in flight when the step "
                    f"failed, failed too: {type(error).__name__}: {error}"
                )
        raise


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

    def load_version(self, asset_key: dg.AssetKey, version: int, where: str | None = None) -> pd.DataFrame:
        """One table at one version, for assets that pin a version recorded elsewhere (e.g. in MLflow);
        ``where`` (SQL, ``split = 'test'``) is applied by the scan, so other rows are never loaded."""
        uri = self.uri(asset_key)
        frame = read_table(uri, version, storage_options=self.storage_options, where=where)
        frame.attrs["delta_versions"] = {"all": version}
        frame.attrs["delta_uri"] = uri
        return frame


class DeltaIOManager(dg.ConfigurableIOManager):
    """Pandas frames as Delta tables of the lake, one table per asset key."""

    lake: Lake
    # A range write commits once its pending days hold at least this many rows (a day is never split).
    batch_rows: int = DEFAULT_BATCH_ROWS
    # A range step reads its upstream in batches of about this many rows of whole days.
    read_batch_rows: int = READ_BATCH_ROWS

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | DayBatches) -> None:
        import pandas as pd

        if isinstance(obj, DayBatches):
            with fail_fast_on_refusal():
                self._write_batches(context, obj)
            return
        if isinstance(obj, TableStream):
            with fail_fast_on_refusal():
                self._write_stream(context, obj)
            return
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

    def _write_batches(self, context: dg.OutputContext, obj: DayBatches) -> None:
        """Write a range step's batches as they come: one commit per ``batch_rows`` rows of whole days.

        Each day partition records the version of the commit that wrote it. A run that fails part-way
        leaves the days it committed unrecorded (nobody reads them) and re-running it replaces them.
        """
        import pandas as pd

        name = context.asset_key.to_user_string()
        if not context.has_asset_partitions:
            raise TypeError(f"{name}: day batches are for day-partitioned assets only")
        uri = self.lake.uri(context.asset_key)
        targeted = [dt.date.fromisoformat(key) for key in context.asset_partition_keys]
        versions: dict[dt.date, int] = {}
        seen: set[dt.date] = set()
        pending: list[pd.DataFrame] = []
        pending_days: list[dt.date] = []
        totals = {"rows": 0, "commits": 0}
        added: list[str] = []
        dtypes: dict[str, str] = {}

        # One commit at a time runs in the background while the step computes the next batch (the
        # Delta write releases the GIL): commits stay in order and at most two batches are held.
        in_flight: list[tuple[Future, list[dt.date]]] = []

        def settle() -> None:
            """Wait for the commit in flight; its error, if any, is raised here, in the step's thread."""
            while in_flight:
                future, days = in_flight.pop()
                result = future.result()
                versions.update(dict.fromkeys(days, result.version))
                totals["rows"] += result.rows
                totals["commits"] += 1
                added.extend(c for c in result.added_columns if c not in added)

        def flush(committer: ThreadPoolExecutor) -> None:
            if not pending_days:
                return
            frame = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            days = list(pending_days)
            pending.clear()
            pending_days.clear()
            settle()
            future = committer.submit(
                write_table,
                uri,
                frame,
                days=days,
                storage_options=self.lake.storage_options,
                commit_metadata={"dagster.run_id": context.run_id},
            )
            in_flight.append((future, days))

        rows, typed_by_rows = 0, False
        template: pd.DataFrame | None = None
        # Leaving the block waits for a commit still in flight, also when the step fails meanwhile; if the
        # step fails, a commit in flight that failed too is logged (the step's own error stands).
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"commit-{name}") as committer,
            _reporting_unsettled(context, name, in_flight),
        ):
            for days, frame in obj.batches:
                unknown = sorted(set(days) - set(targeted))
                repeated = sorted(set(days) & seen)
                if unknown or repeated:
                    problem = f"days {unknown} outside this run" if unknown else f"days {repeated} twice"
                    raise ValueError(f"{name}: the step produced {problem}")
                seen.update(days)
                if not typed_by_rows:  # the column schema of the first frame with rows (or of the first)
                    dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
                    typed_by_rows = len(frame) > 0
                template = frame.iloc[:0]
                pending.append(frame)
                pending_days.extend(days)
                rows += len(frame)
                if rows >= self.batch_rows:
                    flush(committer)
                    rows = 0
            if template is None:
                raise ValueError(f"{name}: the step produced no batch at all")
            # Days of the run the step had nothing for (no upstream partition) are replaced by no rows,
            # as a one-frame write of the whole range would.
            missing = sorted(set(targeted) - seen)
            if missing:
                pending.append(template)
                pending_days.extend(missing)
            flush(committer)
            settle()
        last = max(versions.values())
        if len(set(versions.values())) > 1:
            # Each partition's own version, so a downstream read of a day loads the commit that wrote it.
            for day, version in versions.items():
                context.step_context.add_asset_metadata(
                    {VERSION_KEY: version}, asset_key=context.asset_key, partition_key=day.isoformat()
                )
        context.add_output_metadata(
            {
                VERSION_KEY: last,
                URI_KEY: dg.MetadataValue.path(uri),
                "partitions_written": len(targeted),
                "delta_commits": totals["commits"],
                "dagster/row_count": totals["rows"],
                **({"schema_added_columns": added} if added else {}),
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name=c, type=t) for c, t in dtypes.items()]
                ),
                **(dict(obj.summary()) if obj.summary is not None else {}),
            }
        )

    def _write_stream(self, context: dg.OutputContext, obj: TableStream) -> None:
        """Replace the whole table with a stream of frames, as one commit, one frame in memory at a time."""
        if context.has_asset_partitions:
            raise TypeError(f"{context.asset_key.to_user_string()}: a table stream replaces a whole table")
        uri = self.lake.uri(context.asset_key)
        dtypes: dict[str, str] = {}

        def frames():
            for frame in obj.frames():
                if not dtypes:
                    dtypes.update({str(c): str(t) for c, t in frame.dtypes.items()})
                yield frame

        result = write_stream(
            uri,
            frames,
            storage_options=self.lake.storage_options,
            commit_metadata={"dagster.run_id": context.run_id},
        )
        context.add_output_metadata(
            {
                VERSION_KEY: result.version,
                URI_KEY: dg.MetadataValue.path(uri),
                "partitions_written": 0,
                "dagster/row_count": result.rows,
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name=c, type=t) for c, t in dtypes.items()]
                ),
                **(dict(obj.summary()) if obj.summary is not None else {}),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | PinnedDays | PinnedTable:
        with fail_fast_on_refusal():
            if (context.definition_metadata or {}).get(LOAD_KEY) == "lazy":
                return self._pin(context)
            return self._load(context)

    def _pin(self, context: dg.InputContext) -> PinnedDays | PinnedTable:
        """The recorded versions of what the input covers, as a handle the step reads in batches."""
        upstream_key = context.asset_key
        uri = self.lake.uri(upstream_key)
        if context.has_asset_partitions:
            keys = list(context.asset_partition_keys)
            versions = recorded_versions(context.instance, upstream_key, keys)
            self._check_partitions(context, keys, versions)
            by_day = {dt.date.fromisoformat(k): v for k, v in versions.items() if k is not None}
            return PinnedDays(uri, by_day, self.lake.storage_options, batch_rows=self.read_batch_rows)
        versions = recorded_versions(context.instance, upstream_key, None)
        if None not in versions:
            raise LineageError(f"{upstream_key.to_user_string()} has no recorded materialization to load")
        return PinnedTable(uri, versions[None], self.lake.storage_options)

    @staticmethod
    def _check_partitions(context: dg.InputContext, keys: list[str], versions: dict[str | None, int]) -> None:
        upstream_key = context.asset_key
        if not versions:
            raise LineageError(
                f"no partition of {upstream_key.to_user_string()} among {len(keys)} requested "
                f"({keys[0]}..{keys[-1]}) has been materialized"
            )
        if context.has_partition_key or len(keys) == 1:
            missing = sorted(set(keys) - {k for k in versions if k is not None})
            if missing:
                raise LineageError(f"{upstream_key.to_user_string()} partitions {missing} are not materialized")

    def _load(self, context: dg.InputContext) -> pd.DataFrame:
        upstream_key = context.asset_key
        uri = self.lake.uri(upstream_key)
        instance = context.instance
        if context.has_asset_partitions:
            keys = list(context.asset_partition_keys)
            versions = recorded_versions(instance, upstream_key, keys)
            self._check_partitions(context, keys, versions)
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
    "LAZY",
    "DeltaIOManager",
    "Lake",
    "LineageError",
    "PinnedDays",
    "PinnedTable",
    "fail_fast_on_refusal",
    "recorded_versions",
    "table_uri",
]
