"""Training sets: point-in-time join of features with labels, and a deterministic split."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from mlops_platform.ml.days import day_of, within_days
from mlops_platform.specs.base import ModelSpec
from mlops_platform.text import TEXT, as_text

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
    return pd.Series(split, index=entity_ids.index, name=SPLIT_COLUMN).astype(TEXT)


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
    in_window = within_days(winners[spec.label_timestamp], start, end)
    left = winners.loc[in_window, [spec.entity_key, spec.event_timestamp, spec.label, spec.label_timestamp]]
    left = left.sort_values(spec.event_timestamp, kind="stable")
    right = features.reindex(columns=[spec.entity_key, spec.event_timestamp, *spec.feature_names])
    for feature in spec.features:
        if feature.name not in features.columns:
            right[feature.name] = right[feature.name].astype("float64" if feature.kind == "numeric" else TEXT)
    right = right.rename(columns={spec.event_timestamp: "_feature_ts"}).sort_values("_feature_ts", kind="stable")
    left, right = same_text_keys(left, right, spec.entity_key)
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


def same_text_keys(left: pd.DataFrame, right: pd.DataFrame, key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames with ``key`` as TEXT when one side holds it as TEXT and the other as Python strings:
    ``merge_asof`` refuses keys of two dtypes, and text read from Delta and text a caller built are the same."""
    dtypes = (left[key].dtype, right[key].dtype)
    if dtypes[0] == dtypes[1] or TEXT not in dtypes:
        return left, right
    return left.assign(**{key: as_text(left[key])}), right.assign(**{key: as_text(right[key])})


def point_in_time_join(features: pd.DataFrame, labels: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The rows of ``build_training_set``: the newest label of each event joined with its features."""
    return build_training_set(features, labels, spec).frame


class DaySource(Protocol):
    """Day partitions read on demand (``storage.delta.PinnedDays`` reads them at their pinned versions)."""

    def rows_by_day(self) -> dict[dt.date, int]: ...

    def read(
        self, days: Iterable[dt.date] | None = None, *, where: str | None = None, columns: Iterable[str] | None = None
    ) -> pd.DataFrame: ...


# Rows of features plus labels joined in one batch of consecutive event days (a day is never split).
JOIN_BATCH_ROWS = 2_000_000


class StreamedTrainingSet:
    """The training set of ``build_training_set``, computed out of core, batch by batch of event days.

    Calling it yields the joined rows in frames, each sorted by event time and entity (the table is a
    set of rows; training imposes its own order); the counts are complete once the stream is
    exhausted, and a new call starts again from scratch.

    Why the same rows: the window and the newest label of each (entity, event time) are decided from
    the labels exactly as in memory (every label of an event day is read with its batch, from every
    label day up to the window's end). A label's feature row is the newest of its entity at or before
    its event time, and features are partitioned by the day of their event time, so that row lies in
    the label's own batch or in an earlier one. Pass one joins each batch's labels with the batch's own
    features (the same ``merge_asof``); a match there is the newest, since earlier batches hold only
    older rows. The labels left without a match are kept, and only if there are any, pass two reads the
    feature days again, keeping the newest row of just those labels' entities, and joins each with the
    state before its batch. Memory: one batch, plus those unmatched labels and their entities' rows
    (with daily snapshots, or events labelled on their own day, almost none).
    """

    def __init__(self, features: DaySource, labels: DaySource, spec: ModelSpec, batch_rows: int = JOIN_BATCH_ROWS):
        self.features, self.labels, self.spec, self.batch_rows = features, labels, spec, batch_rows
        self.label_days = {d: n for d, n in labels.rows_by_day().items() if n}
        if not self.label_days:
            raise ValueError(f"spec {spec.name!r}: no labels have landed yet, so there is nothing to train on")
        newest = labels.read([max(self.label_days)], columns=[spec.label_timestamp])
        self.window_end = newest[spec.label_timestamp].max().date()
        self.window_start = self.window_end - dt.timedelta(days=spec.training_window_days - 1)
        self._reset()

    def _reset(self) -> None:
        self.labels_in_window = self.labels_superseded = self.rows = 0
        self.labels_matched_late = 0  # labels whose feature row lay in an earlier batch (pass two)
        self.split_rows = dict.fromkeys((name for name, _, _ in SPLIT_BOUNDS), 0)

    @property
    def labels_without_features(self) -> int:
        return self.labels_in_window - self.rows

    def _event_days(self) -> dict[dt.date, int]:
        """Labels of the window per event day, read one label day at a time (event times only)."""
        spec = self.spec
        counts: dict[dt.date, int] = {}
        window = [d for d in sorted(self.label_days) if self.window_start <= d <= self.window_end]
        for day in window:
            stamps = self.labels.read([day], columns=[spec.event_timestamp])[spec.event_timestamp]
            for event_day, n in day_of(stamps).value_counts().items():
                counts[event_day] = counts.get(event_day, 0) + int(n)
        return counts

    def __call__(self) -> Iterator[pd.DataFrame]:
        self._reset()
        event_days = self._event_days()
        if not event_days:
            return
        last_event_day = max(event_days)
        feature_days = {d: n for d, n in self.features.rows_by_day().items() if d <= last_event_day}
        load = {d: feature_days.get(d, 0) + event_days.get(d, 0) for d in {*feature_days, *event_days}}
        from mlops_platform.storage.delta import plan_batches

        batches = plan_batches(load, self.batch_rows)
        unmatched: dict[int, pd.DataFrame] = {}
        for index, batch in enumerate(batches):
            if not any(d in event_days for d in batch):
                continue
            left = self._window_labels(batch)
            right = self._features(batch, feature_days)
            joined, rest = self._join_and_rest(left, right) if right is not None else (left.iloc[:0], left)
            if len(rest):
                unmatched[index] = rest
            yield from self._emit(joined)
        if unmatched:
            yield from self._second_pass(batches, feature_days, unmatched)

    def _second_pass(
        self, batches: list[list[dt.date]], feature_days: Mapping[dt.date, int], unmatched: dict[int, pd.DataFrame]
    ) -> Iterator[pd.DataFrame]:
        """Labels that found no feature row in their own batch, joined with the newest earlier row of
        their entity (state of just those entities, carried forward over the feature days)."""
        spec = self.spec
        # The first batch's unmatched labels have no earlier batch to find a row in.
        unmatched = {index: frame for index, frame in unmatched.items() if index > 0}
        if not unmatched:
            return
        last = max(unmatched)
        entities = pd.Index(pd.concat([frame[spec.entity_key] for frame in unmatched.values()]).unique())
        state: pd.DataFrame | None = None
        for index, batch in enumerate(batches[: last + 1]):
            if index in unmatched and state is not None and len(state):
                joined = self._join(unmatched[index], state)
                self.labels_matched_late += len(joined)
                yield from self._emit(joined)
            if index == last:  # no label left to join: the last batch's rows would be read for nothing
                break
            right = self._features(batch, feature_days, entities=entities)
            if right is not None:
                both = right if state is None else pd.concat([state, right], ignore_index=True)
                state = both.drop_duplicates(subset=[spec.entity_key], keep="last")

    def _emit(self, joined: pd.DataFrame) -> Iterator[pd.DataFrame]:
        if len(joined):
            self.rows += len(joined)
            for name, n in joined[SPLIT_COLUMN].value_counts().items():
                self.split_rows[str(name)] += int(n)
            yield joined

    def _features(
        self, batch: list[dt.date], feature_days: Mapping[dt.date, int], entities: pd.Index | None = None
    ) -> pd.DataFrame | None:
        """The batch's feature rows (of ``entities`` only, when given), sorted by feature time."""
        spec = self.spec
        columns = [spec.entity_key, spec.event_timestamp, *spec.feature_names]
        days = [d for d in batch if d in feature_days]
        if not days:
            return None
        features = self.features.read(days, columns=columns)
        if entities is not None:
            features = features[features[spec.entity_key].isin(entities)]
        right = features.reindex(columns=columns)
        for feature in spec.features:
            if feature.name not in features.columns:
                right[feature.name] = right[feature.name].astype("float64" if feature.kind == "numeric" else TEXT)
        return right.rename(columns={spec.event_timestamp: "_feature_ts"}).sort_values("_feature_ts", kind="stable")

    def _window_labels(self, batch: list[dt.date]) -> pd.DataFrame:
        """The newest label of each (entity, event time) of the batch's event days whose label day is in the window."""
        spec = self.spec
        low = dt.datetime.combine(batch[0], dt.time())
        high = dt.datetime.combine(batch[-1] + dt.timedelta(days=1), dt.time())
        ts = f'"{spec.event_timestamp}"'
        where = f"{ts} >= TIMESTAMP '{low.isoformat()}' AND {ts} < TIMESTAMP '{high.isoformat()}'"
        days = [d for d in self.label_days if d <= self.window_end]
        columns = [spec.entity_key, spec.event_timestamp, spec.label, spec.label_timestamp, DAY_COLUMN]
        labels = self.labels.read(days, where=where, columns=columns)
        winners, superseded = latest_labels(labels, spec)
        in_window = within_days(winners[spec.label_timestamp], self.window_start, self.window_end)
        self.labels_in_window += int(in_window.sum())
        self.labels_superseded += int(superseded[in_window].sum())
        left = winners.loc[in_window, [spec.entity_key, spec.event_timestamp, spec.label, spec.label_timestamp]]
        return left.sort_values(spec.event_timestamp, kind="stable")

    def _join(self, left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
        return self._join_and_rest(left, right)[0]

    def _join_and_rest(self, left: pd.DataFrame, right: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The labels of ``left`` joined with their feature rows in ``right``, and the labels left without."""
        spec = self.spec
        left, right = same_text_keys(left, right, spec.entity_key)
        joined = pd.merge_asof(
            left,
            right,
            left_on=spec.event_timestamp,
            right_on="_feature_ts",
            by=spec.entity_key,
            direction="backward",
            allow_exact_matches=True,
        )
        missing = joined["_feature_ts"].isna().to_numpy()  # merge_asof keeps the rows of ``left`` in order
        rest = left[missing]
        joined = joined[~missing].drop(columns=["_feature_ts"])
        joined = joined.sort_values([spec.event_timestamp, spec.entity_key], kind="stable").reset_index(drop=True)
        joined[SPLIT_COLUMN] = assign_split(joined[spec.entity_key])
        return joined, rest
