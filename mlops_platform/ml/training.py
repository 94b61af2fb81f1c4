"""Model training: a scikit-learn Pipeline with its preprocessing inside, so it takes raw features."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_platform.specs.base import ModelSpec
from mlops_platform.text import objects


def build_pipeline(spec: ModelSpec) -> Any:
    """Imputation, scaling and one-hot encoding in front of the spec's estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.name for f in spec.features if f.kind == "numeric"]
    categorical = [f.name for f in spec.features if f.kind == "categorical"]
    transformers = []
    if numeric:
        transformers.append(
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric)
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("model", spec.estimator())])


def features_and_target(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.Series]:
    """The model's input columns (in spec order, text as Python strings) and its target."""
    return objects(frame[spec.feature_names]), frame[spec.label]


def canonical_order(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Rows sorted by event time and entity: tables are sets, and a fit must not depend on scan order."""
    return frame.sort_values([spec.event_timestamp, spec.entity_key], kind="stable").reset_index(drop=True)


def train(training_set: pd.DataFrame, spec: ModelSpec) -> Any:
    """Fit a fresh pipeline on the train split, in canonical row order."""
    train_rows = canonical_order(training_set[training_set["split"] == "train"], spec)
    if train_rows.empty:
        raise ValueError(f"spec {spec.name!r}: the training set has no train rows")
    if spec.task == "classification" and train_rows[spec.label].nunique() < 2:
        raise ValueError(f"spec {spec.name!r}: the train split holds a single class; cannot fit a classifier")
    x, y = features_and_target(train_rows, spec)
    pipeline = build_pipeline(spec)
    pipeline.fit(x, y)
    return pipeline


def predict(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """``prediction`` for every row, and for a classifier the positive class ``probability``.

    A classifier is asked once, for probabilities; its predicted class is derived from them exactly as
    scikit-learn's own ``predict`` does (the most probable class).
    """
    inputs = objects(frame[spec.feature_names])
    if spec.task != "classification":
        return pd.DataFrame({"prediction": model.predict(inputs)}, index=frame.index)
    proba = model.predict_proba(inputs)
    classes = model.classes_
    return pd.DataFrame({"prediction": classes[proba.argmax(axis=1)], "probability": proba[:, -1]}, index=frame.index)


# Sample keys: a second draw from the same 64-bit entity hash whose last two decimal digits pick the
# split (dataset.assign_split), so a sample is reproducible from the training set version alone.
SAMPLE_KEY_RANGE = 1_000_000


def sample_keys(entity_ids: pd.Series) -> np.ndarray:
    """A number in [0, 1) per row from the entity hash the split uses: same entity, same key, every run."""
    hashed = pd.util.hash_pandas_object(entity_ids.astype(str), index=False).to_numpy()
    return ((hashed // 100) % SAMPLE_KEY_RANGE) / SAMPLE_KEY_RANGE


@dataclass(frozen=True)
class TrainSample:
    """The rows a model is fitted on, and how they were drawn from the train split."""

    frame: pd.DataFrame
    rows_available: int  # rows of the train split
    rows_used: int
    rule: str


def sample_train_split(
    batches: Callable[[], Iterable[pd.DataFrame]], rows_available: int, spec: ModelSpec
) -> TrainSample:
    """The train split, or with ``spec.max_training_rows`` the rows with the smallest sample keys (entity
    hash, then event time and entity), read batch by batch so only the sample is ever held.

    ``batches`` yields the train split's rows (a factory, in case a second pass is needed). The sample is
    a function of the rows alone, not of their order, so the same training set version gives the same
    sample in every run.
    """
    limit = spec.max_training_rows
    if limit is None or rows_available <= limit:
        frames = list(batches())
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else (frames[0] if frames else pd.DataFrame())
        return TrainSample(frame, rows_available, len(frame), "all rows of the train split")
    # Rows whose key is below a margin over the fraction wanted; the smallest keys win at the end.
    margin = min(1.0, 1.2 * limit / rows_available + 0.001)
    while True:
        kept: list[pd.DataFrame] = []
        for frame in batches():
            keys = sample_keys(frame[spec.entity_key])
            chosen = frame[keys < margin].copy()
            chosen["_sample_key"] = keys[keys < margin]
            kept.append(chosen)
        candidates = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
        if len(candidates) >= limit or margin >= 1.0:
            break
        margin = 1.0  # the hash put fewer rows below the margin than expected: take every key
    order = ["_sample_key", spec.event_timestamp, spec.entity_key]
    sample = candidates.sort_values(order, kind="stable").head(limit).drop(columns=["_sample_key"])
    rule = f"{limit} rows of {rows_available} with the smallest entity-hash sample keys"
    return TrainSample(sample.reset_index(drop=True), rows_available, len(sample), rule)


def predictions_in_batches(model: Any, batches: Iterable[pd.DataFrame], spec: ModelSpec) -> pd.DataFrame:
    """The label, ``prediction`` (and ``probability``) of every row, scoring one batch at a time."""
    parts = []
    for frame in batches:
        if len(frame):
            predicted = predict(model, frame, spec)
            predicted[spec.label] = frame[spec.label].to_numpy()
            parts.append(predicted.reset_index(drop=True))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
