"""Model training: a scikit-learn Pipeline with its preprocessing inside, so it takes raw features."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlops_platform.specs.base import ModelSpec


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
    """The model's input columns (in spec order) and its target."""
    return frame[spec.feature_names], frame[spec.label]


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
    inputs = frame[spec.feature_names]
    if spec.task != "classification":
        return pd.DataFrame({"prediction": model.predict(inputs)}, index=frame.index)
    proba = model.predict_proba(inputs)
    classes = model.classes_
    return pd.DataFrame({"prediction": classes[proba.argmax(axis=1)], "probability": proba[:, -1]}, index=frame.index)
