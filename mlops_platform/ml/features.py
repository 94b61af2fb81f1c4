"""Feature computation: raw events of a day -> one point-in-time keyed feature row per event."""

from __future__ import annotations

import pandas as pd

from mlops_platform.ml.days import day_of
from mlops_platform.specs.base import ModelSpec
from mlops_platform.text import TEXT, as_text, column_values

DAY_COLUMN = "day"


def compute_features(raw: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Key columns (entity, event time, day) plus every feature of the spec, in spec order."""
    out = pd.DataFrame(
        {
            spec.entity_key: column_values(raw[spec.entity_key]),
            spec.event_timestamp: raw[spec.event_timestamp].to_numpy(),
        }
    )
    for feature in spec.features:
        if feature.compute is None and feature.name not in raw.columns and feature.name in spec.source.events:
            # A landed column the spec gained after this day's raw partition was written: the partition,
            # read at its recorded version, has no such column, and its rows have no value for it.
            values = pd.Series([None] * len(raw), dtype=object)
        else:
            values = raw[feature.name] if feature.compute is None else feature.compute(raw)
        if len(values) != len(raw):
            raise ValueError(
                f"feature {feature.name!r} of spec {spec.name!r} returned {len(values)} values for {len(raw)} rows"
            )
        values = pd.Series(values)
        if feature.kind == "categorical":
            text = as_text(values)
            out[feature.name] = column_values(text) if text.dtype == TEXT else values.to_numpy().astype(object)
        else:
            out[feature.name] = pd.to_numeric(values.to_numpy()).astype("float64")
    out[DAY_COLUMN] = day_of(out[spec.event_timestamp])
    return out
