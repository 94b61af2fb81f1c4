"""Reading and validating landed files against a spec's declared schema."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

SUPPORTED_SUFFIXES = (".parquet", ".csv")


class InvalidFile(ValueError):
    """A landed file cannot be ingested; the message says what is wrong with it."""


def read_landed_file(path: Path) -> pd.DataFrame:
    """Read a Parquet or CSV file; any read failure becomes InvalidFile naming the file."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidFile(f"unsupported file type {suffix!r}; expected one of {SUPPORTED_SUFFIXES}")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        # Everything as text first, so type errors are reported per column by conform().
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise InvalidFile(f"unreadable {suffix[1:]} file: {type(exc).__name__}: {exc}") from exc


def _convert(series: pd.Series, column_type: str) -> pd.Series:
    if column_type == "string":
        if not (pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)):
            raise TypeError(f"expected text, found {series.dtype}")
        return series.astype(object)
    if column_type == "timestamp":
        if pd.api.types.is_datetime64_dtype(series):
            return series.astype("datetime64[ns]")
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise TypeError(f"expected a timestamp, found {series.dtype}")
        converted = pd.to_datetime(series, errors="raise", format="ISO8601")
        if getattr(converted.dt, "tz", None) is not None:
            converted = converted.dt.tz_convert("UTC").dt.tz_localize(None)
        return converted.astype("datetime64[ns]")
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
    missing = [c for c in schema if c not in frame.columns]
    extra = [c for c in frame.columns if c not in schema]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    if problems:
        raise InvalidFile("; ".join(problems))
    if frame.empty:
        raise InvalidFile("file has no rows")
    typed = {}
    for column, column_type in schema.items():
        try:
            typed[column] = _convert(frame[column], column_type)
        except (TypeError, ValueError) as exc:
            problems.append(f"column {column!r} is not {column_type}: {exc}")
    if problems:
        raise InvalidFile("; ".join(problems))
    result = pd.DataFrame(typed)
    for column in key_columns:
        nulls = int(result[column].isna().sum())
        if nulls:
            problems.append(f"{nulls} rows have no {column!r}")
    days = result[day_column].dt.date
    wrong_day = int((days != day).sum())
    if wrong_day:
        problems.append(f"{wrong_day} rows have {day_column!r} outside {day.isoformat()}")
    if problems:
        raise InvalidFile("; ".join(problems))
    return result
