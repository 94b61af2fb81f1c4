"""Request validation, compiled once per loaded version: the request body -> typed columns.

Two input schemas per model: the spec's landed event columns (a client sending events as they land;
the app computes the features) and the model's signature (a client sending the features). Every
error names the field and the problem, never a value from the request.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The platform's landed dtypes and MLflow's signature types, as the validator's types.
LANDED_TYPES = {"int64": "long", "float64": "double", "string": "string", "bool": "boolean", "timestamp": "datetime"}
SIGNATURE_TYPES = {
    "double": "double",
    "float": "double",
    "long": "long",
    "integer": "long",
    "string": "string",
    "boolean": "boolean",
    "datetime": "datetime",
}
V2_DATATYPES = {
    "double": ("FP64", "FP32", "INT64", "INT32"),
    "long": ("INT64", "INT32", "FP64"),
    "string": ("BYTES",),
    "boolean": ("BOOL",),
    "datetime": ("BYTES",),
}
V2_OUTPUT_TYPE = {"double": "FP64", "long": "INT64", "string": "BYTES", "boolean": "BOOL", "datetime": "BYTES"}


class InputError(ValueError):
    """A request the app refuses: ``status`` is the HTTP status, the message names the field."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status
        self.message = message


def _double(field: str, nullable: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            if nullable:
                return math.nan
            raise InputError(f"field {field!r}: null is not allowed")
        if type(value) is float:
            if math.isfinite(value):
                return value
            raise InputError(f"field {field!r}: not a finite number (NaN and infinity are refused)")
        if type(value) is int:
            return float(value)
        raise InputError(f"field {field!r}: expected a number, got {_kind(value)}")

    return convert


def _long(field: str, nullable: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise InputError(f"field {field!r}: null is not allowed")
        if type(value) is int:
            return value
        if type(value) is float:
            if not math.isfinite(value):
                raise InputError(f"field {field!r}: not a finite number (NaN and infinity are refused)")
            if value.is_integer():
                return int(value)
            raise InputError(f"field {field!r}: expected an integer, got a fractional number")
        raise InputError(f"field {field!r}: expected an integer, got {_kind(value)}")

    return convert


def _string(field: str, nullable: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is str:
            return value
        if value is None:
            if nullable:
                return None
            raise InputError(f"field {field!r}: null is not allowed")
        raise InputError(f"field {field!r}: expected a string, got {_kind(value)}")

    return convert


def _boolean(field: str, nullable: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is bool:
            return value
        if value is None:
            if nullable:
                return None
            raise InputError(f"field {field!r}: null is not allowed")
        raise InputError(f"field {field!r}: expected true or false, got {_kind(value)}")

    return convert


def _datetime(field: str, nullable: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise InputError(f"field {field!r}: null is not allowed")
        if type(value) is not str:
            raise InputError(f"field {field!r}: expected an ISO-8601 timestamp string, got {_kind(value)}")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"field {field!r}: not an ISO-8601 timestamp") from None
        if parsed.tzinfo is not None:
            # Landed timestamps are naive UTC.
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed

    return convert


CONVERTERS = {"double": _double, "long": _long, "string": _string, "boolean": _boolean, "datetime": _datetime}
# The Python type each converter passes through unchanged (a double also only when finite).
EXACT_TYPES: dict[str, type] = {"double": float, "long": int, "string": str, "boolean": bool}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # double | long | string | boolean | datetime
    nullable: bool = True


class InputSchema:
    """The fields one input mode accepts, with a converter per field built once."""

    def __init__(self, fields: Sequence[Field]):
        self.fields = tuple(fields)
        self.names = tuple(f.name for f in fields)
        self.name_set = frozenset(self.names)
        self.by_name = {f.name: f for f in fields}
        self._convert = {f.name: CONVERTERS[f.type](f.name, f.nullable) for f in fields}
        self._exact = {f.name: EXACT_TYPES.get(f.type) for f in fields}

    def check_names(self, names: Iterable[str]) -> None:
        given = set(names)
        missing = [n for n in self.names if n not in given]
        extra = sorted(given - self.name_set)
        problems = []
        if missing:
            problems.append("missing field(s) " + ", ".join(repr(n) for n in missing))
        if extra:
            problems.append("unknown field(s) " + ", ".join(repr(n) for n in extra))
        if problems:
            raise InputError("; ".join(problems))

    def convert(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
        """Typed columns, in schema order; InputError naming the first bad field."""
        if columns.keys() != self.name_set:
            self.check_names(columns.keys())
        out = {}
        for name in self.names:
            values = columns[name]
            # A column holding only the field's own type (and, for numbers, only finite ones) is
            # already what the converter would return: one pass over the types instead of a call
            # per value. Anything else (nulls, ints for a double, NaN) goes value by value.
            exact = self._exact[name]
            if (
                exact is not None
                and set(map(type, values)) == {exact}
                and (exact is not float or math.isfinite(sum(values)))
            ):
                out[name] = values if type(values) is list else list(values)
                continue
            convert = self._convert[name]
            out[name] = [convert(v) for v in values]
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": f.name, "datatype": V2_OUTPUT_TYPE[f.type], "shape": [-1], "nullable": f.nullable}
            for f in self.fields
        ]


def events_schema(spec: Any) -> InputSchema:
    """The spec's landed event columns; its entity key and event time may not be null."""
    keys = {spec.entity_key, spec.event_timestamp}
    return InputSchema(
        [Field(name, LANDED_TYPES[dtype], nullable=name not in keys) for name, dtype in spec.source.events.items()]
    )


def features_schema(spec: Any, signature_inputs: Sequence[tuple[str, str]] | None) -> InputSchema:
    """The model's signature inputs (name, MLflow type), or the spec's feature kinds without one.
    Every feature may be null: the pipeline imputes it."""
    if signature_inputs:
        return InputSchema([Field(name, SIGNATURE_TYPES.get(kind, "double")) for name, kind in signature_inputs])
    return InputSchema([Field(f.name, "double" if f.kind == "numeric" else "string") for f in spec.features])


# --- request bodies -> (columns, rows) -------------------------------------------------------------


def _records_to_columns(records: Any, where: str) -> tuple[dict[str, list[Any]], int]:
    if not isinstance(records, list):
        raise InputError(f"{where}: expected a list of objects")
    if not records:
        raise InputError(f"{where}: the batch is empty; send at least one row")
    first = records[0]
    if not isinstance(first, dict):
        raise InputError(f"{where}: row 0 is not an object")
    names = list(first)
    width = len(names)
    # Rows of row 0's size holding each of its names hold exactly its fields: checked per column
    # by the lookups themselves (KeyError), then the slow pass below says which row differs.
    if set(map(type, records)) == {dict} and set(map(len, records)) == {width}:
        try:
            return {n: [record[n] for record in records] for n in names}, len(records)
        except KeyError:
            pass
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(f"{where}: row {i} is not an object")
        if len(record) != width or any(n not in record for n in names):
            differ = sorted(set(record) ^ set(names))
            raise InputError(f"{where}: row {i} has other fields than row 0 ({', '.join(map(repr, differ))})")
    return {n: [record[n] for record in records] for n in names}, len(records)


def _split_to_columns(split: Any) -> tuple[dict[str, list[Any]], int]:
    if (
        not isinstance(split, dict)
        or not isinstance(split.get("columns"), list)
        or not isinstance(split.get("data"), list)
    ):
        raise InputError("dataframe_split: expected an object with 'columns' and 'data' lists")
    names = split["columns"]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise InputError("dataframe_split: 'columns' must be distinct strings")
    data = split["data"]
    if not data:
        raise InputError("dataframe_split: the batch is empty; send at least one row")
    columns: dict[str, list[Any]] = {n: [] for n in names}
    lists = [columns[n] for n in names]
    width = len(names)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise InputError(f"dataframe_split: row {i} does not have {width} values, one per column")
        for target, value in zip(lists, row, strict=True):
            target.append(value)
    return columns, len(data)


def _column_dict(value: dict, where: str) -> tuple[dict[str, list[Any]], int]:
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if -1 in lengths or len(lengths) != 1:
        raise InputError(f"{where}: as an object, every field must hold a list of the same length")
    n = lengths.pop()
    if n == 0:
        raise InputError(f"{where}: the batch is empty; send at least one row")
    return {k: list(v) for k, v in value.items()}, n


def mlflow_columns(body: Any) -> tuple[dict[str, list[Any]], int]:
    """MLflow's scoring format: ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``."""
    if not isinstance(body, dict):
        raise InputError("body: expected a JSON object with dataframe_split, dataframe_records, instances or inputs")
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in body]
    if len(keys) != 1:
        raise InputError("body: expected exactly one of dataframe_split, dataframe_records, instances, inputs")
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        return _split_to_columns(value)
    if isinstance(value, dict):
        return _column_dict(value, key)
    return _records_to_columns(value, key)


def v2_columns(body: Any, schema_for: Callable[[set[str]], InputSchema]) -> tuple[dict[str, list[Any]], int]:
    """The Open Inference Protocol v2 request: one tensor per column (shape [n] or [n, 1])."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise InputError("body: expected an object with an 'inputs' list of tensors")
    tensors = body["inputs"]
    if not tensors:
        raise InputError("inputs: no tensor given")
    columns: dict[str, list[Any]] = {}
    datatypes: dict[str, str] = {}
    n = None
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InputError(f"inputs[{i}]: expected a tensor object with a 'name'")
        name = tensor["name"]
        shape, data, datatype = tensor.get("shape"), tensor.get("data"), tensor.get("datatype")
        if name in columns:
            raise InputError(f"input {name!r}: given twice")
        if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape) or not 1 <= len(shape) <= 2:
            raise InputError(f"input {name!r}: shape must be [rows] or [rows, 1]")
        if len(shape) == 2 and shape[1] != 1:
            raise InputError(f"input {name!r}: one tensor per column, so shape [rows, 1], not [rows, {shape[1]}]")
        if not isinstance(data, list):
            raise InputError(f"input {name!r}: 'data' must be a list")
        if data and isinstance(data[0], list):
            data = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]
        if len(data) != shape[0]:
            raise InputError(f"input {name!r}: shape says {shape[0]} rows, data holds {len(data)}")
        if n is None:
            n = shape[0]
        elif shape[0] != n:
            raise InputError(f"input {name!r}: {shape[0]} rows where the other inputs have {n}")
        if not isinstance(datatype, str):
            raise InputError(f"input {name!r}: 'datatype' is missing")
        columns[name], datatypes[name] = data, datatype
    if not n:
        raise InputError("inputs: the batch is empty; send at least one row")
    schema = schema_for(set(columns))
    for name, datatype in datatypes.items():
        field = schema.by_name.get(name)
        if field is not None and datatype not in V2_DATATYPES[field.type]:
            raise InputError(
                f"input {name!r}: datatype {datatype} does not fit, expected {' or '.join(V2_DATATYPES[field.type])}"
            )
    return columns, n
