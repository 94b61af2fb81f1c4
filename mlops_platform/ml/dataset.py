"""Training sets: point-in-time join of features with labels, and a deterministic split."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_platform.specs.base import ModelSpec

SPLIT_COLUMN = "split"
DAY_COLUMN = "day"
# Buckets of a 0..99 hash of the entity id: 70% train, 10% validation, 20% test.
SPLIT_BOUNDS = (("train", 0, 70), ("validation", 70, 80), ("test", 80, 100))


@dataclass(frozen=True)
class TrainingSet:
    """A joined training set and the counts its metadata reports."""

    frame: pd.DataFrame
    window_start: dt.date
    window_end: dt.date
    labels_in_window: int  # the newest label of each (entity, event time) whose label day is in the window
    labels_superseded: int  # older labels of those keys, replaced by a revision that landed later
    labels_without_features: int  # labels in the window with no feature row at or before their event


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


def latest_labels(labels: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.Series]:
    """One label per (entity, event time): the newest by label time, then by the day it landed.

    A label revised on a later day (a customer first reported as staying, then as churned) replaces
    the earlier one instead of giving two contradictory rows. Returns the winners and, aligned with
    them, how many older labels each one superseded.
    """
    keys = [spec.entity_key, spec.event_timestamp]
    if not labels.index.is_unique:  # the counts below are aligned by index
        labels = labels.reset_index(drop=True)
    involved = labels.duplicated(subset=keys, keep=False)
    if not involved.any():  # the usual case: no label was revised, and nothing needs sorting
        return labels, pd.Series(0, index=labels.index)
    # Only the keys with several labels are ordered (a sort of the whole window costs seconds).
    order = [spec.label_timestamp, DAY_COLUMN] if DAY_COLUMN in labels.columns else [spec.label_timestamp]
    revised = labels[involved].sort_values(order, kind="stable")
    newest = ~revised.duplicated(subset=keys, keep="last")
    counts = revised.groupby(keys, sort=False).size().rename("_labels")
    winners = pd.concat([labels[~involved], revised[newest]])
    superseded = pd.Series(0, index=winners.index, dtype="int64")
    revised_winners = revised[newest]
    superseded.loc[revised_winners.index] = revised_winners[keys].join(counts, on=keys)["_labels"].to_numpy() - 1
    return winners, superseded


def build_training_set(features: pd.DataFrame, labels: pd.DataFrame, spec: ModelSpec) -> TrainingSet:
    """Each label in the window gets the newest feature row of its entity at or before its event time.

    Labels are first reduced to the newest per (entity, event time) across every day they landed on.
    Features written after the labelled event are never used, so no future information leaks in.
    Labels with no such feature row are dropped (and counted). A feature the spec gained after some
    feature partitions were written is null in those rows, and absent columns are added as null.
    """
    start, end = window_bounds(labels, spec)
    winners, superseded = latest_labels(labels, spec)
    label_days = winners[spec.label_timestamp].dt.date
    in_window = (label_days >= start) & (label_days <= end)
    left = winners.loc[in_window, [spec.entity_key, spec.event_timestamp, spec.label, spec.label_timestamp]]
    left = left.sort_values(spec.event_timestamp, kind="stable")
    right = features.reindex(columns=[spec.entity_key, spec.event_timestamp, *spec.feature_names])
    for feature in spec.features:
        if feature.name not in features.columns:
            right[feature.name] = right[feature.name].astype("float64" if feature.kind == "numeric" else object)
    right = right.rename(columns={spec.event_timestamp: "_feature_ts"}).sort_values("_feature_ts", kind="stable")
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
    return TrainingSet(
        frame=joined,
        window_start=start,
        window_end=end,
        labels_in_window=len(left),
        labels_superseded=int(superseded[in_window].sum()),
        labels_without_features=len(left) - len(joined),
    )


def point_in_time_join(features: pd.DataFrame, labels: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The rows of ``build_training_set``: the newest label of each event joined with its features."""
    return build_training_set(features, labels, spec).frame
