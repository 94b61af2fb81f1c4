"""Metrics and the promotion gates, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_platform.specs.base import METRICS, ModelSpec


def score(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> float:
    """The spec's metric of ``model`` on ``frame`` (which holds features and the label)."""
    from mlops_platform.ml.training import predict

    if frame.empty:
        raise ValueError(f"spec {spec.name!r}: cannot score {spec.metric} on an empty frame")
    return metric_of(predict(model, frame, spec), frame[spec.label], spec)


def metric_of(predicted: pd.DataFrame, y: pd.Series, spec: ModelSpec) -> float:
    """The spec's metric of ``predicted`` (``training.predict``'s frame) against the labels ``y``, so a
    caller that needs the predictions anyway does not ask the model twice."""
    from sklearn import metrics

    if predicted.empty:
        raise ValueError(f"spec {spec.name!r}: cannot score {spec.metric} on an empty frame")
    name = spec.metric
    if name in ("roc_auc", "log_loss"):
        if y.nunique() < 2:
            raise ValueError(f"spec {spec.name!r}: {name} needs both classes in the scored rows")
        proba = predicted["probability"].to_numpy()
        return float(metrics.roc_auc_score(y, proba) if name == "roc_auc" else metrics.log_loss(y, proba))
    point = predicted["prediction"].to_numpy()  # classes, or regression values
    if name == "accuracy":
        return float(metrics.accuracy_score(y, point))
    if name == "f1":
        return float(metrics.f1_score(y, point))
    if name == "r2":
        return float(metrics.r2_score(y, point))
    if name == "rmse":
        return float(np.sqrt(metrics.mean_squared_error(y, point)))
    if name == "mae":
        return float(metrics.mean_absolute_error(y, point))
    raise ValueError(f"unknown metric {name!r}; choose from {sorted(METRICS)}")


@dataclass(frozen=True)
class GateResult:
    passed: bool
    description: str


def threshold_gate(value: float, spec: ModelSpec) -> GateResult:
    """The challenger's metric reaches the spec's threshold."""
    if spec.greater_is_better:
        ok = value >= spec.metric_threshold
        relation = ">=" if ok else "<"
    else:
        ok = value <= spec.metric_threshold
        relation = "<=" if ok else ">"
    return GateResult(ok, f"{spec.metric} {value:.4f} {relation} threshold {spec.metric_threshold}")


def regression_gate(challenger: float, champion: float | None, spec: ModelSpec) -> GateResult:
    """The challenger is not worse than the champion by more than the spec's tolerance."""
    if champion is None:
        return GateResult(True, "no champion yet: nothing to regress against")
    worse_by = (champion - challenger) if spec.greater_is_better else (challenger - champion)
    ok = worse_by <= spec.regression_tolerance
    return GateResult(
        ok,
        f"challenger {spec.metric} {challenger:.4f} vs champion {champion:.4f}: "
        f"worse by {worse_by:.4f} ({'within' if ok else 'beyond'} tolerance {spec.regression_tolerance})",
    )
