"""Delta Lake tables addressed by URI, written with a commit id and read at an exact version.

No Dagster here: the IO manager and the CLI both use these functions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_platform.storage.errors import StorageError, storage_errors, storage_name

if TYPE_CHECKING:  # pandas loads with the first read or write, not with the code location
    import pandas as pd

WRITE_ID_KEY = "mlops.write_id"
DAY_COLUMN = "day"
# delta-rs retries a conflicting commit itself (15 times by default); past that it raises
# CommitFailedError and the written files are left uncommitted. The platform then writes again, up to
# this many times in all, so that concurrent writers queue up instead of losing a commit.
COMMIT_ATTEMPTS = 8
# Rows per Arrow record batch handed to delta-rs by a streamed write.
STREAM_BATCH_ROWS = 128 * 1024


class DeltaVersionNotFound(RuntimeError):
    """A write committed but its version could not be found in the table history."""


class CommitConflict(RuntimeError):
    """Concurrent writers kept winning the race for the next version; nothing of this write committed."""


class SchemaConflict(StorageError):
    """A write whose columns the table cannot take: a column of the table is missing, or changed type.

    Permanent (a StorageError: never retried): the same frame is refused again. A table gains
    columns (older rows read them as null) but never loses or retypes one in place, since every
    version that pins the old rows must keep reading them as they were written.
    """

    def __init__(self, uri: str, removed: Mapping[str, str], retyped: Mapping[str, tuple[str, str]]):
        self.storage, self.uri, self.operation = storage_name(uri), uri, "writing"
        self.removed = tuple(removed)
        self.retyped = tuple(retyped)
        problems = []
        if removed:
            listed = ", ".join(f"{name!r} ({kind})" for name, kind in removed.items())
            problems.append(f"the table's columns {listed} are missing from the write")
        for name, (old, new) in retyped.items():
            problems.append(f"column {name!r} is {old} in the table, {new} in the write")
        RuntimeError.__init__(
            self,
            f"refusing to write to {uri}: {'; '.join(problems)}. A table can gain columns, but it cannot "
            "lose or retype one in place: keep the column (and its type) in the spec, or write the changed "
            "data to a new table (a new spec name) and backfill it",
        )


@dataclass(frozen=True)
class WriteResult:
    uri: str
    version: int
    rows: int
    # Columns this write added to the table's schema (older rows read them as null), in frame order.
    added_columns: tuple[str, ...] = ()


# Rows of consecutive whole days a range step commits at once (a day larger than this is a commit alone).
# Small, so that each commit runs in the background while the step computes the next batch and only the
# last one is waited for; a downstream read still costs one scan, since a later commit of other days
# leaves a day's files as they were and its pin is read at the newest pinned version (PinnedDays._scans).
DEFAULT_BATCH_ROWS = 250_000
# Rows of whole days a range step reads at once: small, so the next batch is read in the background
# while the step works on this one.
READ_BATCH_ROWS = 250_000


def join_uri(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])


def write_table(
    uri: str,
    frame: pd.DataFrame,
    *,
    days: Iterable[dt.date] | None = None,
    storage_options: Mapping[str, str] | None = None,
    commit_metadata: Mapping[str, str] | None = None,
) -> WriteResult:
    """Write ``frame`` as one commit and return the version that commit created.

    With ``days``, only those day partitions are replaced (idempotent per partition: writing the same
    day twice leaves one copy of its rows); without, the whole table is replaced. Rows outside
    ``days`` are refused, so a partition write can never touch another partition.

    A partition write may bring columns the table lacks: they are added to its schema (the other
    partitions read them as null; older versions keep their schema) and listed in
    ``WriteResult.added_columns``. A partition write that lacks a column of the table, or changes
    its type, raises SchemaConflict and commits nothing. Replacing the whole table replaces its schema.
    """
    kwargs: dict = {"mode": "overwrite", "schema_mode": "overwrite" if days is None else None}
    if days is not None:
        day_list = sorted(set(days))
        if DAY_COLUMN not in frame.columns:
            raise ValueError(f"a day-partitioned write to {uri} needs a {DAY_COLUMN!r} column")
        outside = set(frame[DAY_COLUMN].unique()) - set(day_list)
        if outside:
            raise ValueError(
                f"refusing to write rows for days {sorted(map(str, outside))} to {uri}: "
                f"this write replaces only {[d.isoformat() for d in day_list]}"
            )
        kwargs["partition_by"] = [DAY_COLUMN]
        kwargs["predicate"] = f"{DAY_COLUMN} IN ({', '.join(repr(d.isoformat()) for d in day_list)})"
    with storage_errors(uri, "writing"):
        # Replacing a whole table or some partitions is idempotent, so a lost race is simply re-run.
        version, added = _commit(uri, frame, storage_options, commit_metadata, kwargs)
    return WriteResult(uri=uri, version=version, rows=len(frame), added_columns=added)


def append_table(
    uri: str,
    frame: pd.DataFrame,
    *,
    storage_options: Mapping[str, str] | None = None,
    commit_metadata: Mapping[str, str] | None = None,
) -> WriteResult:
    """Append ``frame`` as one commit and return the version that commit created.

    Safe with any number of concurrent writers, in this process or others: each append lands as
    exactly one commit, at the version returned. Columns evolve as for partition writes.
    """
    kwargs: dict = {"mode": "append"}
    if DAY_COLUMN in frame.columns:
        kwargs["partition_by"] = [DAY_COLUMN]
    with storage_errors(uri, "appending to"):
        version, added = _commit(uri, frame, storage_options, commit_metadata, kwargs)
    return WriteResult(uri=uri, version=version, rows=len(frame), added_columns=added)


def _open(uri: str, storage_options: Mapping[str, str] | None):
    """The table at its latest version, or None when there is no table yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(uri, storage_options=dict(storage_options or {}))
    except TableNotFoundError:
        return None


def _commit(
    uri: str,
    frame: Any,
    storage_options: Mapping[str, str] | None,
    commit_metadata: Mapping[str, str] | None,
    write_kwargs: dict,
) -> tuple[int, tuple[str, ...]]:
    """Commit ``frame`` once; return the version of that commit, whatever other writers do, and the
    columns it added to the table's schema.

    The write goes through a DeltaTable object, whose state after the write is the snapshot of our
    own commit: its version is ours even when other writers committed meanwhile. (``history()`` is no
    way to find it: delta-rs 1.6 numbers the commits it lists from the snapshot's version while
    listing the log as it is now, so concurrent commits shift every number.) A commit that loses the
    race more often than delta-rs retries raises CommitFailedError with nothing committed; it is
    written again, with jittered backoff, up to COMMIT_ATTEMPTS times.

    Unless the whole table is replaced (``schema_mode="overwrite"``), the frame's columns are checked
    against the table's on every attempt (a concurrent writer may have changed them): new columns are
    merged into the schema, a missing or retyped column raises SchemaConflict before anything is written.
    """
    from deltalake import CommitProperties, Transaction, write_deltalake
    from deltalake.exceptions import CommitFailedError

    write_id = uuid.uuid4().hex
    metadata = {WRITE_ID_KEY: write_id, **(commit_metadata or {})}
    # A stream (a factory of Arrow readers) replaces the whole table and is read afresh on every attempt.
    streamed = callable(frame)
    data: Any = None if streamed else _to_arrow(frame)
    replaces_schema = write_kwargs.get("schema_mode") == "overwrite"
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        table = _open(uri, storage_options)
        if streamed:
            data = frame()
        try:
            if table is not None:
                existing = _arrow_schema(table)
                if replaces_schema:
                    added: tuple[str, ...] = ()
                    kwargs = write_kwargs
                    ready = data if streamed else _fill_null_types(data, existing)
                else:
                    ready, added = _conform_to_table(uri, data, existing)
                    kwargs = {**write_kwargs, "schema_mode": "merge"} if added else write_kwargs
                write_deltalake(table, ready, commit_properties=CommitProperties(custom_metadata=metadata), **kwargs)
                return table.version(), added
            # The first write creates the table; it carries an application transaction id so that we can
            # tell our commit from that of a writer who created the table at the same moment.
            app_id = f"{WRITE_ID_KEY}.{write_id}"
            properties = CommitProperties(custom_metadata=metadata, app_transactions=[Transaction(app_id, 0)])
            write_deltalake(
                uri,
                data if streamed else _fill_null_types(data, None),
                storage_options=dict(storage_options or {}),
                commit_properties=properties,
                **write_kwargs,
            )
            return _version_with_transaction(uri, app_id, storage_options), ()
        except CommitFailedError as exc:
            if attempt == COMMIT_ATTEMPTS:
                raise CommitConflict(
                    f"{uri}: {COMMIT_ATTEMPTS} attempts to commit lost the race to concurrent writers "
                    f"(last: {exc}); nothing of this write was committed"
                ) from exc
            # Full jitter, so that writers that collided do not collide again on the same schedule.
            time.sleep(random.uniform(0.0, min(2.0, 0.05 * 2**attempt)))
    raise AssertionError("unreachable")


def write_stream(
    uri: str,
    frames: Callable[[], Iterator[pd.DataFrame]],
    *,
    storage_options: Mapping[str, str] | None = None,
    commit_metadata: Mapping[str, str] | None = None,
) -> WriteResult:
    """Replace the whole table with the frames ``frames()`` yields, as one commit, holding one at a time.

    Every frame must have the first non-empty frame's columns; a column with no values to infer a type
    from (empty or all null) takes the type that column has in the others (text when it never has a
    value). A frame that does not fit is refused, naming it, before anything is written.

    The frames are computed here, converted to Arrow one by one and spilled to a temporary Arrow
    stream file (LZ4-compressed, under ``TMPDIR``); delta-rs then writes the table from that file,
    so the table is never materialised in memory. Not handed to delta-rs as a Python iterator: it
    pulls one on a worker of its runtime, and while that worker waited for a frame whose producer
    read Delta on the same runtime, the two could wait for each other for ever (the 60-day training
    set hung so; issue 13). A commit that loses the race to a concurrent writer is written again from
    the same file.
    """
    import tempfile

    import pyarrow as pa

    with tempfile.TemporaryDirectory(prefix="mlops-stream-") as spill:
        path = f"{spill}/frames.arrows"
        rows = _spill(uri, frames(), path)

        def reader():
            return pa.ipc.open_stream(pa.memory_map(path))

        with storage_errors(uri, "writing"):
            kwargs: dict = {"mode": "overwrite", "schema_mode": "overwrite"}
            version, added = _commit(uri, reader, storage_options, commit_metadata, kwargs)
    return WriteResult(uri=uri, version=version, rows=rows, added_columns=added)


def _spill(uri: str, frames: Iterator[pd.DataFrame], path: str) -> int:
    """Write ``frames`` to an Arrow stream file at ``path``, each cast to the first non-empty frame's
    schema (a frame that cannot be is refused, naming it); return the rows written."""
    import pyarrow as pa

    writer: Any = None
    schema = None
    empty: pd.DataFrame | None = None  # the last empty frame: the table's columns if no frame has rows
    rows = 0
    try:
        for index, frame in enumerate(frames):
            if not len(frame):
                empty = frame
                continue
            table = _to_arrow(frame)
            if schema is None:
                schema = _fill_null_types(table, None).schema
                options = pa.ipc.IpcWriteOptions(compression="lz4")
                with _spilling(uri, path):
                    writer = pa.ipc.new_stream(path, schema, options=options)
            if table.column_names != schema.names:
                raise ValueError(
                    f"frame {index} of the stream written to {uri} has columns {table.column_names}, "
                    f"the first had {schema.names}"
                )
            try:
                table = table.cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(f"frame {index} of the stream written to {uri} does not fit {schema}: {exc}") from exc
            rows += table.num_rows
            with _spilling(uri, path):
                writer.write_table(table, max_chunksize=STREAM_BATCH_ROWS)
        if writer is None:
            if empty is None:
                raise ValueError(f"nothing to write to {uri}: the stream yielded no frame")
            # Only empty frames: the table is replaced by an empty one with the last frame's columns.
            table = _fill_null_types(_to_arrow(empty), None)
            with _spilling(uri, path):
                writer = pa.ipc.new_stream(path, table.schema)
                writer.write_table(table)
        with _spilling(uri, path):
            writer.close()
        writer = None
    finally:
        if writer is not None:  # failed part-way: the file goes with its folder, the first error stands
            with contextlib.suppress(OSError):
                writer.close()
    return rows


@contextlib.contextmanager
def _spilling(uri: str, path: str) -> Iterator[None]:
    """A failure to write the spill file (a full disk) names the file, the table and the setting."""
    try:
        yield
    except OSError as exc:
        raise OSError(
            f"spilling the stream written to {uri} to {path} failed ({exc}); nothing was committed. "
            "TMPDIR must name a disk with room for the table"
        ) from exc


@dataclass(frozen=True)
class DayFiles:
    """What the Delta log says of one day partition at one version: its rows and its data files."""

    rows: int
    files: frozenset[tuple[Any, ...]]  # (path, size, and any deletion vector fields) of each add action


_NO_FILES = DayFiles(0, frozenset())


def table_day_files(uri: str, version: int, *, storage_options: Mapping[str, str] | None = None) -> dict:
    """Rows and data files per day partition of the table at ``version``, from the Delta log (no data
    file is read)."""
    from deltalake import DeltaTable

    with storage_errors(uri, f"reading the log of version {version} of"):
        table = DeltaTable(uri, version=version, storage_options=dict(storage_options or {}))
        import pyarrow as pa

        actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    # A file's identity: its path and size, and a deletion vector if it has one (rows hidden in place).
    identity = ["path", "size_bytes", *sorted(name for name in actions if name.startswith("deletion"))]
    rows: dict[dt.date, int] = {}
    files: dict[dt.date, set[tuple[Any, ...]]] = {}
    columns = [actions.get(name, []) for name in identity]
    for index, (day, count) in enumerate(
        zip(actions.get(f"partition.{DAY_COLUMN}", []), actions.get("num_records", []), strict=False)
    ):
        if day is None:
            continue
        key = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        rows[key] = rows.get(key, 0) + int(count or 0)
        files.setdefault(key, set()).add(tuple(column[index] for column in columns))
    return {day: DayFiles(rows[day], frozenset(files[day])) for day in rows}


def _version_with_transaction(uri: str, app_id: str, storage_options: Mapping[str, str] | None) -> int:
    """The first version whose snapshot knows application transaction ``app_id``."""
    from deltalake import DeltaTable

    latest = DeltaTable(uri, storage_options=dict(storage_options or {}))
    if latest.version() == 0 and latest.transaction_version(app_id) is not None:
        return 0  # the usual case: nobody else wrote to the new table yet
    for version in range(latest.version() + 1):
        snapshot = DeltaTable(uri, version=version, storage_options=dict(storage_options or {}))
        if snapshot.transaction_version(app_id) is not None:
            return version
    raise DeltaVersionNotFound(f"the commit that created {uri} ({app_id}) is not in its log")


def _to_arrow(frame: pd.DataFrame):
    """Arrow table of ``frame``, with the day partition column typed as a date even when empty."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if DAY_COLUMN in table.column_names and not pa.types.is_date32(table.schema.field(DAY_COLUMN).type):
        # An empty day column has no values to infer a type from; partitions are always dates.
        index = table.column_names.index(DAY_COLUMN)
        table = table.set_column(index, pa.field(DAY_COLUMN, pa.date32()), table.column(DAY_COLUMN).cast(pa.date32()))
    return table


def _arrow_schema(table):
    import pyarrow as pa

    return pa.schema(table.schema().to_arrow())


def _fill_null_types(data, existing):
    """A column with no values to infer a type from (empty, or all null) takes the table's type, or text."""
    import pyarrow as pa

    if not any(pa.types.is_null(field.type) for field in data.schema):
        return data
    known = {field.name: field.type for field in existing} if existing is not None else {}
    fields = [pa.field(f.name, known.get(f.name, pa.string())) if pa.types.is_null(f.type) else f for f in data.schema]
    return data.cast(pa.schema(fields))


def delta_type_name(arrow_type) -> str:
    """The Delta name of the type an Arrow column is stored as (``long``, ``string``, ``timestamp_ntz``)."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        return delta_type_name(arrow_type.value_type)
    if pa.types.is_integer(arrow_type):
        return {8: "byte", 16: "short", 32: "integer"}.get(arrow_type.bit_width, "long")
    if pa.types.is_floating(arrow_type):
        return "float" if arrow_type.bit_width <= 32 else "double"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp" if arrow_type.tz is not None else "timestamp_ntz"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "binary"
    return str(arrow_type)


_INTEGER_WIDTH = {"byte": 8, "short": 16, "integer": 32, "long": 64}


def _stores_losslessly(table_type: str, written_type: str) -> bool:
    """Whether values of ``written_type`` keep their value in a ``table_type`` column (delta-rs casts
    silently, so 1.5 into a long column would be stored as 1 and "1" as the number 1)."""
    if table_type == written_type:
        return True
    if written_type in _INTEGER_WIDTH:
        if table_type in _INTEGER_WIDTH:
            return _INTEGER_WIDTH[written_type] <= _INTEGER_WIDTH[table_type]
        return table_type in ("float", "double")
    return written_type == "float" and table_type == "double"


def _conform_to_table(uri: str, data, existing) -> tuple:
    """``data`` ready to write into a table of schema ``existing``, and the columns it adds.

    Raises SchemaConflict naming every column of the table the write lacks or would change the type of.
    """
    import pyarrow as pa

    data = _fill_null_types(data, existing)
    table_types = {field.name: delta_type_name(field.type) for field in existing}
    written = {field.name: field.type for field in data.schema}
    removed = {name: kind for name, kind in table_types.items() if name not in written}
    retyped = {}
    for name, arrow_type in written.items():
        if name in table_types and not pa.types.is_null(arrow_type):
            kind = delta_type_name(arrow_type)
            if not _stores_losslessly(table_types[name], kind):
                retyped[name] = (table_types[name], kind)
    if removed or retyped:
        raise SchemaConflict(uri, removed, retyped)
    return data, tuple(name for name in written if name not in table_types)


def read_table(
    uri: str,
    version: int,
    *,
    days: Iterable[dt.date] | None = None,
    storage_options: Mapping[str, str] | None = None,
    where: str | None = None,
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The table as of ``version``, optionally only some day partitions, with pandas dtypes as written.

    ``where`` is a SQL condition on the table's columns (``split = 'test'``), evaluated by the scan so
    that rows it excludes are never loaded; ``columns`` selects columns (absent ones are left out).

    The scan runs in delta-rs's own engine (DataFusion). ``DeltaTable.to_pandas`` scans through
    pyarrow's thread pool over delta-rs's file system handler, and a process that did so aborts at
    interpreter exit about half the time ("terminate called without an active exception", exit code
    134, delta-rs issue 2184); this path never does (tests/test_exit_abort.py).
    """
    import pyarrow as pa
    from deltalake import DeltaTable

    with storage_errors(uri, f"reading version {version} of"):
        table = DeltaTable(uri, version=version, storage_options=dict(storage_options or {}))
        schema = pa.schema(table.schema().to_arrow())
        if columns is not None:
            wanted = set(columns)
            schema = pa.schema([f for f in schema if f.name in wanted])
        conditions = [] if where is None else [f"({where})"]
        if days is not None:
            day_list = sorted(set(days))
            if not day_list:
                return to_frame(schema.empty_table())
            literals = ", ".join(f"DATE '{d.isoformat()}'" for d in day_list)
            conditions.append(f"{DAY_COLUMN} IN ({literals})")
        selected = "*" if columns is None else ", ".join(f'"{name}"' for name in schema.names)
        query = f"SELECT {selected} FROM t" + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
        result = _query(table, query).read_all()
    return to_frame(result.select(schema.names))


def to_frame(table) -> pd.DataFrame:
    """A pandas frame of an Arrow table read from Delta, with the dtypes pandas wrote.

    Delta stores microseconds: timestamps come back with the nanosecond dtype pandas wrote, converted in
    the same pass (an astype afterwards copies every timestamp column a second time). Text stays Arrow
    text (``mlops_platform.text.TEXT``): no Python string is built per value.
    """
    from mlops_platform.text import pandas_type

    return table.to_pandas(coerce_temporal_nanoseconds=True, types_mapper=pandas_type)


def _query(table, sql: str):
    """A pyarrow reader of ``sql`` over ``table`` (registered as ``t``), scanned by delta-rs's DataFusion.

    Read through pyarrow, which releases the GIL while it waits for each batch: delta-rs's own reader
    holds it while its runtime computes the batch, so every other Python thread of the process (a
    sensor, a server, a producer) stood still meanwhile, and one that delta-rs's runtime waited on
    could never finish.
    """
    import pyarrow as pa
    from deltalake import QueryBuilder

    return pa.RecordBatchReader.from_stream(QueryBuilder().register("t", table).execute(sql))


def read_days_at_versions(
    uri: str,
    versions_by_day: Mapping[dt.date, int],
    *,
    storage_options: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Each day partition read at the version its own materialization recorded."""
    by_version: dict[int, list[dt.date]] = {}
    for day, version in versions_by_day.items():
        by_version.setdefault(version, []).append(day)
    import pandas as pd

    frames = [
        read_table(uri, version, days=days, storage_options=storage_options)
        for version, days in sorted(by_version.items())
    ]
    if not frames:
        raise ValueError(f"no partitions of {uri} to read")
    # No sort: a table is a set of rows, and consumers that need an order impose their own.
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


class RestoreTargetError(ValueError):
    """The version or time asked for is not an earlier state of the table; nothing was changed."""


def restore_table(
    uri: str,
    *,
    version: int | None = None,
    timestamp: dt.datetime | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> int:
    """Make the table's content that of an earlier version, as a new commit; return the new version.

    Nothing is deleted: every version, including the ones restored over, stays readable. A
    ``timestamp`` selects the newest version committed at or before it. Raises ``RestoreTargetError``
    (changing nothing) for a version the table does not have, a time before its first commit, or a
    target that already is the newest version.
    """
    from deltalake import DeltaTable

    if (version is None) == (timestamp is None):
        raise ValueError("give exactly one of version or timestamp")
    with storage_errors(uri, "restoring"):
        table = DeltaTable(uri, storage_options=dict(storage_options or {}))
        newest = table.version()
        if version is None:
            assert timestamp is not None
            version = _version_at(table, timestamp)
        elif not 0 <= version <= newest:
            raise RestoreTargetError(f"{uri} has versions 0..{newest}; {version} is not one of them")
        if version == newest:
            raise RestoreTargetError(f"{uri} is at version {newest} already: nothing to restore")
        table.restore(version)
        return DeltaTable(uri, storage_options=dict(storage_options or {})).version()


def _version_at(table: Any, timestamp: dt.datetime) -> int:
    """The newest version of ``table`` committed at or before ``timestamp``."""
    stamp = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=dt.UTC)
    committed = sorted(
        (int(entry["version"]), dt.datetime.fromtimestamp(entry["timestamp"] / 1000, dt.UTC))
        for entry in table.history()
        if "version" in entry and "timestamp" in entry
    )
    earlier = [v for v, at in committed if at <= stamp]
    if not earlier:
        first = committed[0][1].isoformat() if committed else "unknown"
        raise RestoreTargetError(
            f"no version of {table.table_uri} was committed at or before {stamp.isoformat()} "
            f"(its oldest recorded commit is at {first})"
        )
    return earlier[-1]


@dataclass(frozen=True)
class PinnedDays:
    """Day partitions of a table, each pinned at the version its materialization recorded, read lazily.

    What a range step receives instead of one frame of the whole range: it reads the days in batches
    of bounded rows (``batches``), or the rows a condition selects (``read``), so a run over many days
    holds about one batch in memory at a time.
    """

    uri: str
    versions: Mapping[dt.date, int]
    storage_options: Mapping[str, str] | None = None
    # Rows a batch of days may hold (the IO manager's ``read_batch_rows``); a day is never split.
    batch_rows: int = READ_BATCH_ROWS
    # The log's view of each version read so far (version -> day -> DayFiles), asked once per version.
    _logs: dict[int, dict[dt.date, DayFiles]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def attrs(self) -> dict[str, Any]:
        """What ``frame.attrs`` holds for an eagerly loaded frame: the versions read and the URI."""
        return {
            "delta_versions": {d.isoformat(): v for d, v in sorted(self.versions.items())},
            "delta_uri": self.uri,
        }

    def days(self) -> list[dt.date]:
        return sorted(self.versions)

    def _log(self, version: int) -> dict[dt.date, DayFiles]:
        if version not in self._logs:
            self._logs[version] = table_day_files(self.uri, version, storage_options=self.storage_options)
        return self._logs[version]

    def rows_by_day(self) -> dict[dt.date, int]:
        """Rows of each pinned day, from the Delta log of each version (no data file is read)."""
        counts: dict[dt.date, int] = {}
        for version, days in self._by_version(self.days()).items():
            known = self._log(version)
            counts.update({d: known[d].rows if d in known else 0 for d in days})
        return counts

    def _scans(self, days: list[dt.date]) -> dict[int, list[dt.date]]:
        """``days`` grouped by the version each is scanned at: its pinned version, or the newest pinned
        version of the group when the log shows the day's data files unchanged between the two (Delta
        files are immutable, so the rows are the same). Days written by one commit each (a daily run)
        then cost one scan, not one per day, and a day rewritten since its pin is still read as pinned.
        """
        grouped = self._by_version(days)
        if len(grouped) <= 1:
            return grouped
        newest = max(grouped)
        latest = self._log(newest)
        scans: dict[int, list[dt.date]] = {newest: list(grouped[newest])}
        for version, group in sorted(grouped.items()):
            if version == newest:
                continue
            pinned = self._log(version)
            for day in group:
                same = latest.get(day, _NO_FILES).files == pinned.get(day, _NO_FILES).files
                scans.setdefault(newest if same else version, []).append(day)
        return {version: sorted(group) for version, group in scans.items()}

    def read(
        self, days: Iterable[dt.date] | None = None, *, where: str | None = None, columns: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """The rows of ``days`` (all pinned days by default), each at its version, optionally filtered."""
        import pandas as pd

        wanted = self.days() if days is None else sorted(set(days) & set(self.versions))
        cols = None if columns is None else list(columns)
        frames = [
            read_table(self.uri, version, days=group, storage_options=self.storage_options, where=where, columns=cols)
            for version, group in sorted(self._scans(wanted).items())
        ]
        if not frames:
            return read_table(
                self.uri, max(self.versions.values()), days=[], storage_options=self.storage_options, columns=cols
            )
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def batches(self, max_rows: int | None = None) -> Iterator[tuple[list[dt.date], pd.DataFrame]]:
        """Consecutive days read together while their rows stay within ``max_rows`` (``batch_rows`` by
        default; a day is never split).

        The next batch is read in the background while the caller works on this one (a Delta read
        releases the GIL), so at most two batches are held.
        """
        from concurrent.futures import ThreadPoolExecutor

        groups = plan_batches(self.rows_by_day(), max_rows or self.batch_rows)
        if len(groups) <= 1:
            for group in groups:
                yield group, self.read(group)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"read-{self.uri.rsplit('/', 1)[-1]}") as reader:
            ahead = reader.submit(self.read, groups[0])
            for index, group in enumerate(groups):
                frame = ahead.result()
                if index + 1 < len(groups):
                    ahead = reader.submit(self.read, groups[index + 1])
                yield group, frame

    def _by_version(self, days: Iterable[dt.date]) -> dict[int, list[dt.date]]:
        grouped: dict[int, list[dt.date]] = {}
        for day in days:
            grouped.setdefault(self.versions[day], []).append(day)
        return grouped


def plan_batches(rows_by_day: Mapping[dt.date, int], max_rows: int) -> list[list[dt.date]]:
    """Consecutive days grouped while their rows stay within ``max_rows``; a day larger than that is alone."""
    batches: list[list[dt.date]] = []
    current: list[dt.date] = []
    rows = 0
    for day in sorted(rows_by_day):
        if current and rows + rows_by_day[day] > max_rows:
            batches.append(current)
            current, rows = [], 0
        current.append(day)
        rows += rows_by_day[day]
    if current:
        batches.append(current)
    return batches


@dataclass
class DayBatches:
    """The output of a range step produced batch by batch: ``(days, frame)`` pairs, every targeted day
    exactly once, each frame holding only rows of its days. The IO manager writes them as they come,
    so the step never holds the whole range; ``summary`` (called once the batches are consumed) gives
    metadata only known at the end (rows dropped, files ingested)."""

    batches: Iterable[tuple[list[dt.date], pd.DataFrame]]
    summary: Callable[[], Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class PinnedTable:
    """A whole table pinned at one version, read lazily: only the rows and columns a step asks for."""

    uri: str
    version: int
    storage_options: Mapping[str, str] | None = None

    @property
    def attrs(self) -> dict[str, Any]:
        return {"delta_versions": {"all": self.version}, "delta_uri": self.uri}

    def read(self, *, where: str | None = None, columns: Iterable[str] | None = None) -> pd.DataFrame:
        frame = read_table(self.uri, self.version, storage_options=self.storage_options, where=where, columns=columns)
        frame.attrs.update(self.attrs)
        return frame

    def count(self, where: str | None = None) -> int:
        """Rows of the pinned version (that satisfy ``where``), counted by the scan without loading them."""
        from deltalake import DeltaTable

        query = "SELECT COUNT(*) AS n FROM t" + (f" WHERE {where}" if where else "")
        with storage_errors(self.uri, f"reading version {self.version} of"):
            table = DeltaTable(self.uri, version=self.version, storage_options=dict(self.storage_options or {}))
            result = _query(table, query).read_all()
        return int(result.column("n")[0].as_py())

    def batches(self, *, where: str | None = None, columns: Iterable[str] | None = None) -> Iterator[pd.DataFrame]:
        """The pinned version's rows (that satisfy ``where``) as frames of at most STREAM_BATCH_ROWS rows,
        streamed from the scan: only one batch is in memory at a time."""
        import pyarrow as pa
        from deltalake import DeltaTable

        with storage_errors(self.uri, f"reading version {self.version} of"):
            table = DeltaTable(self.uri, version=self.version, storage_options=dict(self.storage_options or {}))
            schema = pa.schema(table.schema().to_arrow())
            if columns is not None:
                wanted = set(columns)
                schema = pa.schema([f for f in schema if f.name in wanted])
            selected = ", ".join(f'"{name}"' for name in schema.names)
            query = f"SELECT {selected} FROM t" + (f" WHERE {where}" if where else "")
            reader = _query(table, query)
            pending: list = []
            rows = 0
            for batch in reader:
                pending.append(batch)
                rows += batch.num_rows
                if rows >= STREAM_BATCH_ROWS:
                    yield _batches_frame(pending, schema)
                    pending, rows = [], 0
            if pending:
                yield _batches_frame(pending, schema)


def _batches_frame(batches: list, schema) -> pd.DataFrame:
    import pyarrow as pa

    return to_frame(pa.Table.from_batches(batches).select(schema.names))


@dataclass
class TableStream:
    """A whole-table output produced frame by frame (``frames`` is a factory, see ``write_stream``);
    ``summary``, called once the stream is written, gives metadata only known at the end."""

    frames: Callable[[], Iterator[pd.DataFrame]]
    summary: Callable[[], Mapping[str, Any]] | None = None
