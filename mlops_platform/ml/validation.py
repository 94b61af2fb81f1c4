"""Reading and validating landed files against a spec's declared schema.

Timestamps: a value with a UTC offset (``2026-10-25T02:30:00+02:00``, ``...Z``) is converted to UTC, so
a day of local time that crosses a daylight-saving change reads as one UTC column; a value without an
offset is taken as UTC already. A column that mixes values with and without an offset is refused: which
zone the bare ones mean cannot be known. Every timestamp column comes out as naive UTC ``datetime64[ns]``.

A file's cost is bounded before it is read whole (``FileLimits``): its size on disk, and for Parquet its
rows and decoded size from the footer's metadata; a CSV is read in chunks and refused once it passes the
row limit. Error messages are bounded: they may quote a short excerpt of a value, never a whole line.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_platform.ml.days import within_days
from mlops_platform.text import TEXT, pandas_type

SUPPORTED_SUFFIXES = (".parquet", ".csv")
MESSAGE_LIMIT = 200  # characters of one underlying error message quoted in a reason
_CSV_CHUNK_ROWS = 1_000_000
# A time followed by an offset: "...T02:30", "...T02:30:00.5", then "Z", "+02", "+0200" or "+02:00".
# Matched by Arrow's RE2 engine over the whole column (Python's re per value took 2.4 s a million rows).
_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?[\s\p{Zs}]*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$"
_UTC_SUFFIX = r"(?i)(\d)\s*(?:z|utc)$"
# Bytes per value once decoded into pandas (a text value costs at least its pointer and header).
_DECODED_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}
_MIN_TEXT_WIDTH = 16


class InvalidFile(ValueError):
    """A landed file cannot be ingested; the message says what is wrong with it."""


@dataclass(frozen=True)
class FileLimits:
    """What one landed file may cost; a file beyond any limit is refused before it is read whole."""

    max_file_bytes: int = 512 * 1024**2
    max_rows: int = 20_000_000
    max_uncompressed_bytes: int = 2 * 1024**3


def _short(exc: BaseException) -> str:
    """``Type: message``, the message cut to MESSAGE_LIMIT characters (it may quote file contents)."""
    message = " ".join(str(exc).split())
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + "..."
    return f"{type(exc).__name__}: {message}"


def _names(columns: list[Any], limit: int = 10) -> str:
    """A bounded list of column names for a reason (a hostile header can hold millions)."""
    shown = [str(c)[:60] for c in columns[:limit]]
    more = f" and {len(columns) - limit} more" if len(columns) > limit else ""
    return f"{shown}{more}"


def _open_regular(path: Path, limits: FileLimits):
    """Open without following a link, and check it is a regular file within the size limit."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise  # gone (moved by another run): not something wrong with the file
    except OSError as exc:
        if os.path.islink(path):
            raise InvalidFile("is a symbolic link; links are never followed") from exc
        raise InvalidFile(f"cannot be opened: {_short(exc)}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InvalidFile("is not a regular file")
    if info.st_size > limits.max_file_bytes:
        os.close(fd)
        raise InvalidFile(f"file is {info.st_size} bytes on disk; the limit is {limits.max_file_bytes}")
    return os.fdopen(fd, "rb")


def _check_parquet_metadata(handle: Any, limits: FileLimits) -> Any:
    """Rows and decoded size from the footer, refused before any data page is read."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle)
    metadata = parquet.metadata
    rows = metadata.num_rows
    if rows > limits.max_rows:
        raise InvalidFile(f"file holds {rows} rows; the limit is {limits.max_rows}")
    decoded = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        for column in range(group.num_columns):
            chunk = group.column(column)
            width = _DECODED_WIDTH.get(chunk.physical_type, _MIN_TEXT_WIDTH)
            # Run-length or dictionary encoding makes the encoded size tiny for repeated values: the
            # decoded size is at least one value per row.
            decoded += max(chunk.total_uncompressed_size, group.num_rows * width)
    if decoded > limits.max_uncompressed_bytes:
        raise InvalidFile(
            f"file decodes to about {decoded} bytes (from its metadata); the limit is {limits.max_uncompressed_bytes}"
        )
    return parquet


def read_landed_file(
    path: Path, limits: FileLimits | None = None, schema: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Read a Parquet or CSV file within ``limits``; any read failure becomes InvalidFile.

    With ``schema``, a Parquet file's columns are compared with it from the metadata, before reading.
    """
    limits = limits or FileLimits()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidFile(f"unsupported file type {suffix[:20]!r}; expected one of {SUPPORTED_SUFFIXES}")
    with _open_regular(path, limits) as handle:
        try:
            if suffix == ".parquet":
                parquet = _check_parquet_metadata(handle, limits)
                if schema is not None:
                    _check_columns(list(parquet.schema_arrow.names), schema)
                return _decoded(parquet.read()).to_pandas(types_mapper=pandas_type)
            return _read_csv(handle, limits)
        except InvalidFile:
            raise
        except Exception as exc:
            raise InvalidFile(f"unreadable {suffix[1:]} file: {_short(exc)}") from exc


def _decoded(table: Any) -> Any:
    """``table`` with its dictionary-encoded columns as plain values: pandas writes a categorical column
    (``astype("category")``) to Parquet so, and it is text or numbers like any other."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            values = table.column(index).cast(field.type.value_type)
            table = table.set_column(index, pa.field(field.name, field.type.value_type), values)
    return table


def _read_csv(handle: Any, limits: FileLimits) -> pd.DataFrame:
    # Everything as text first, so type errors are reported per column by conform().
    chunks = []
    rows = 0
    reader = pd.read_csv(
        handle, dtype=str, keep_default_na=False, na_values=[""], chunksize=_CSV_CHUNK_ROWS, compression=None
    )
    with reader:
        for chunk in reader:
            rows += len(chunk)
            if rows > limits.max_rows:
                raise InvalidFile(f"file holds more than {limits.max_rows} rows (the limit)")
            chunks.append(chunk)
    if not chunks:
        raise InvalidFile("file has no header")
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def _check_columns(columns: list[Any], schema: Mapping[str, str]) -> None:
    problems = []
    missing = [c for c in schema if c not in columns]
    extra = [c for c in columns if c not in schema]
    if missing:
        problems.append(f"missing columns {_names(missing)}")
    if extra:
        problems.append(f"unexpected columns {_names(extra)}")
    if len(set(map(str, columns))) != len(columns):
        problems.append("duplicate column names")
    if problems:
        raise InvalidFile("; ".join(problems))


def _to_utc_naive(series: pd.Series) -> pd.Series:
    """Timestamps as naive UTC: offsets converted, bare values taken as UTC, a mix of both refused."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    if pd.api.types.is_datetime64_dtype(series):
        return series.astype("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise TypeError(f"expected a timestamp, found {series.dtype}")
    values = series.dropna()
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("string", "empty"):
        import pyarrow as pa
        import pyarrow.compute as pc

        text = pc.utf8_trim_whitespace(pa.array(values, type=pa.string()))
        offsets = pc.sum(pc.match_substring_regex(text, _OFFSET, ignore_case=True)).as_py() or 0
        if 0 < offsets < len(values):
            raise TypeError(f"{len(values) - offsets} values have no UTC offset while {offsets} have one")
        if offsets:
            # RFC 3339 allows a lower-case "z" and producers write " UTC"; pandas' ISO 8601 parser takes neither.
            utc = pc.replace_substring_regex(text, pattern=_UTC_SUFFIX, replacement=r"\1Z")
            stamps = series.to_numpy(dtype=object, copy=True)
            stamps[series.notna().to_numpy()] = utc.to_numpy(zero_copy_only=False)
            series = pd.Series(stamps, index=series.index)
    elif kind not in ("datetime", "datetime64"):
        raise TypeError(f"expected timestamps, found {kind} values")
    converted = pd.to_datetime(series, errors="raise", format="ISO8601" if kind == "string" else None, utc=True)
    return converted.dt.tz_localize(None).astype("datetime64[ns]")


def _convert(series: pd.Series, column_type: str) -> pd.Series:
    if column_type == "string":
        if not (pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)):
            raise TypeError(f"expected text, found {series.dtype}")
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if kind not in ("string", "empty"):
            # Lists, bytes, numbers in an object column would fail (or change type) in the Arrow write.
            raise TypeError(f"expected text, found {kind} values")
        return series if series.dtype == TEXT else series.astype(TEXT)
    if column_type == "timestamp":
        return _to_utc_naive(series)
    if column_type == "bool":
        if pd.api.types.is_bool_dtype(series):
            return series
        mapped = series.astype(str).str.lower().map({"true": True, "false": False, "1": True, "0": False})
        if mapped.isna().any():
            raise TypeError("expected true/false values")
        return mapped.astype(bool)
    if column_type in ("int64", "float64"):
        if pd.api.types.is_bool_dtype(series):
            raise TypeError(f"expected {column_type}, found bool")
        numeric = pd.to_numeric(series, errors="raise")
        if column_type == "int64":
            if numeric.isna().any():
                raise TypeError("missing values in an integer column")
            if (numeric != numeric.round()).any():
                raise TypeError("non-integer values in an integer column")
            return numeric.astype("int64")
        return numeric.astype("float64")
    raise TypeError(f"unknown column type {column_type!r}")


def arrow_type(column_type: str) -> Any:
    """The Arrow type a declared column type is written as."""
    import pyarrow as pa

    return {
        "string": pa.string(),
        "timestamp": pa.timestamp("ns"),
        "bool": pa.bool_(),
        "int64": pa.int64(),
        "float64": pa.float64(),
    }[column_type]


def prove_arrow_types(frame: pd.DataFrame, schema: Mapping[str, str]) -> list[str]:
    """Problems converting each declared column to its Arrow type, named by column (empty: all convert).

    Both the declared conversion and the inference the table writer does must give the declared type.
    """
    import pyarrow as pa

    problems = []
    for column, column_type in schema.items():
        expected = arrow_type(column_type)
        try:
            if column_type == "string":
                # Text is converted once: a column that infers as string (or null) converts to string.
                inferred = pa.array(frame[column], from_pandas=True).type
                if pa.types.is_large_string(inferred):  # how pandas holds its Arrow-backed text
                    inferred = expected
                if not (inferred == expected or pa.types.is_null(inferred)):
                    pa.array(frame[column], type=expected, from_pandas=True)
            else:
                pa.array(frame[column], type=expected, from_pandas=True)
                inferred = pa.array(frame[column], from_pandas=True).type
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            problems.append(f"column {column!r} does not convert to {expected}: {_short(exc)}")
            continue
        if not (inferred == expected or pa.types.is_null(inferred)):
            problems.append(f"column {column!r} is written as {inferred}, not {expected}")
    return problems


def conform(
    frame: pd.DataFrame,
    schema: Mapping[str, str],
    *,
    day: dt.date,
    day_column: str,
    key_columns: tuple[str, ...],
) -> pd.DataFrame:
    """Check columns, types, emptiness, keys and day of a landed frame; return it typed and ordered.

    Raises InvalidFile with every problem found, so a user can fix a file in one pass.
    """
    problems: list[str] = []
    _check_columns(list(frame.columns), schema)
    if frame.empty:
        raise InvalidFile("file has no rows")
    typed = {}
    for column, column_type in schema.items():
        try:
            typed[column] = _convert(frame[column], column_type)
        except (TypeError, ValueError, OverflowError) as exc:
            problems.append(f"column {column!r} is not {column_type}: {_short(exc).split(': ', 1)[-1]}")
    if problems:
        raise InvalidFile("; ".join(problems))
    result = pd.DataFrame(typed)
    problems.extend(prove_arrow_types(result, schema))
    if problems:
        raise InvalidFile("; ".join(problems))
    for column in key_columns:
        nulls = int(result[column].isna().sum())
        if nulls:
            problems.append(f"{nulls} rows have no {column!r}")
    wrong_day = int((~within_days(result[day_column], day, day)).sum()) - int(result[day_column].isna().sum())
    if wrong_day:
        problems.append(f"{wrong_day} rows have {day_column!r} outside {day.isoformat()}")
    if problems:
        raise InvalidFile("; ".join(problems))
    return result
