"""Training sets: point-in-time join of features with labels, and a deterministic split."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from mlops_platform.specs.base import ModelSpec

SPLIT_COLUMN = "split"
# Buckets of a 0..99 hash of the entity id: 70% train, 10% validation, 20% test.
SPLIT_BOUNDS = (("train", 0, 70), ("validation", 70, 80), ("test", 80, 100))


def assign_split(entity_ids: pd.Series) -> pd.Series:
    """train/validation/test by a stable hash of the entity id: same id, same split, every run."""
    buckets = pd.util.hash_pandas_object(entity_ids.astype(str), index=False).to_numpy() % 100
    split = np.empty(len(buckets), dtype=object)
    for name, low, high in SPLIT_BOUNDS:
        split[(buckets >= low) & (buckets < high)] = name
    return pd.Series(split, index=entity_ids.index, name=SPLIT_COLUMN)


def window_bounds(labels: pd.DataFrame, spec: ModelSpec) -> tuple[dt.date, dt.date]:
    """The label days a training set covers: the last ``training_window_days`` up to the newest label."""
    if labels.empty:
        raise ValueError(f"spec {spec.name!r}: no labels have landed yet, so there is nothing to train on")
    end = labels[spec.label_timestamp].max().date()
    return end - dt.timedelta(days=spec.training_window_days - 1), end


def point_in_time_join(features: pd.DataFrame, labels: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Each label in the window gets the newest feature row of its entity at or before its event time.

    Features written after the labelled event are never used, so no future information leaks in.
    Labels with no such feature row are dropped (the caller records how many).
    """
    start, end = window_bounds(labels, spec)
    label_days = labels[spec.label_timestamp].dt.date
    in_window = labels[(label_days >= start) & (label_days <= end)]
    left = in_window[[spec.entity_key, spec.event_timestamp, spec.label, spec.label_timestamp]]
    left = left.sort_values(spec.event_timestamp, kind="stable")
    right = features[[spec.entity_key, spec.event_timestamp, *spec.feature_names]].rename(
        columns={spec.event_timestamp: "_feature_ts"}
    )
    right = right.sort_values("_feature_ts", kind="stable")
    joined = pd.merge_asof(
        left,
        right,
        left_on=spec.event_timestamp,
        right_on="_feature_ts",
        by=spec.entity_key,
        direction="backward",
        allow_exact_matches=True,
    )
    joined = joined.dropna(subset=["_feature_ts"]).drop(columns=["_feature_ts"])
    joined = joined.sort_values([spec.event_timestamp, spec.entity_key], kind="stable")
    joined = joined.reset_index(drop=True)
    joined[SPLIT_COLUMN] = assign_split(joined[spec.entity_key])
    return joined
