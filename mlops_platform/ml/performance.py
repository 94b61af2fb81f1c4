"""Model performance in production: realised once labels land, estimated from probabilities before.

The estimate is confidence-based performance estimation (CBPE, as NannyML does it): with calibrated
probabilities p, a row is a positive with probability p, so the expected confusion matrix (and the
expected ROC curve) follow from p alone, without labels. Pure: no Dagster, no MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

CALIBRATION_BINS = 20


def calibration_curve(probability: np.ndarray, label: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, tuple]:
    """Reliability curve (mean predicted, observed rate) over quantile bins, made non-decreasing."""
    probability, label = np.asarray(probability, dtype=float), np.asarray(label, dtype=float)
    if len(probability) == 0:
        raise ValueError("calibration needs at least one (probability, label) pair")
    order = np.argsort(probability, kind="stable")
    chunks = [c for c in np.array_split(order, min(bins, len(order))) if len(c)]
    x = np.array([probability[c].mean() for c in chunks])
    y = np.maximum.accumulate(np.array([label[c].mean() for c in chunks]))
    return {"x": tuple(float(v) for v in x), "y": tuple(float(v) for v in y)}


def calibrate(probability: np.ndarray, curve: Mapping[str, tuple] | None) -> np.ndarray:
    p = np.asarray(probability, dtype=float)
    if not curve or not curve.get("x"):
        return np.clip(p, 0.0, 1.0)
    return np.clip(np.interp(p, curve["x"], curve["y"]), 0.0, 1.0)


def estimate_metric(probability: np.ndarray, metric: str, curve: Mapping[str, tuple] | None = None) -> float | None:
    """CBPE: the metric's expected value given (calibrated) probabilities; None when it has no estimate."""
    p = calibrate(probability, curve)
    if len(p) == 0:
        return None
    # The model's own decision (its most probable class), scored with the calibrated probabilities.
    predicted = np.asarray(probability, dtype=float) >= 0.5
    if metric == "accuracy":
        return float(np.mean(np.where(predicted, p, 1 - p)))
    if metric == "f1":
        tp, fp, fn = p[predicted].sum(), (1 - p[predicted]).sum(), p[~predicted].sum()
        return float(2 * tp / (2 * tp + fp + fn)) if (2 * tp + fp + fn) > 0 else None
    if metric == "log_loss":
        eps = 1e-15
        raw = np.clip(np.asarray(probability, dtype=float), eps, 1 - eps)
        return float(np.mean(-(p * np.log(raw) + (1 - p) * np.log(1 - raw))))
    if metric == "roc_auc":
        order = np.argsort(-np.asarray(probability, dtype=float), kind="stable")
        pos, neg = p[order], 1 - p[order]
        if pos.sum() == 0 or neg.sum() == 0:
            return None
        tpr = np.concatenate([[0.0], np.cumsum(pos) / pos.sum()])
        fpr = np.concatenate([[0.0], np.cumsum(neg) / neg.sum()])
        return float(np.trapezoid(tpr, fpr))
    return None


# A realised metric fails the performance check only when it is worse than validation by more than the
# tolerance plus this many standard errors of the two metrics' sampling noise: 150 labels cannot tell an
# MAE of 4.0 minutes from one of 3.4 (the reference delivery model's second simulated day failed so).
NOISE_SIGMAS = 3.0


def metric_noise(
    metric: str,
    label: np.ndarray,
    prediction: np.ndarray,
    probability: np.ndarray | None,
    *,
    replicates: int = 200,
    max_rows: int = 5_000,
    seed: int = 0,
) -> float | None:
    """The standard error of ``realised_metric`` on these rows: ROC AUC's in closed form, any other
    metric's by bootstrap (None when too few resamples are computable, as with a single class). Above
    ``max_rows`` rows the bootstrap runs on samples of ``max_rows`` and is scaled by sqrt(max_rows / rows)."""
    label, prediction = np.asarray(label), np.asarray(prediction)
    rows = len(label)
    if rows < 2:
        return None
    if metric == "roc_auc":  # in closed form: a bootstrap of roc_auc_score costs about a second
        return _auc_standard_error(label, probability)
    rng = np.random.default_rng(seed)
    size = min(rows, max_rows)
    values = []
    for _ in range(replicates):
        pick = rng.integers(0, rows, size)
        sampled = None if probability is None else probability[pick]
        try:
            value = realised_metric(metric, label[pick], prediction[pick], sampled)
        except ValueError:
            continue
        if math.isfinite(value):
            values.append(value)
    if len(values) < replicates // 2:
        return None
    return float(np.std(values, ddof=1) * np.sqrt(size / rows))


def _auc_standard_error(label: np.ndarray, probability: np.ndarray | None) -> float | None:
    """Hanley and McNeil's (1982) standard error of a ROC AUC, from the AUC and the two class counts."""
    if probability is None:
        return None
    try:
        auc = realised_metric("roc_auc", label, probability, probability)
    except ValueError:
        return None
    positives = int(np.sum(label == 1))
    negatives = len(label) - positives
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    return float(math.sqrt(max(variance, 0.0)))


def within_tolerance(
    gap: float, tolerance: float, realised_se: float | None, validation_se: float | None
) -> tuple[bool, float]:
    """Whether a realised metric ``gap`` worse than validation is within ``tolerance`` plus the sampling
    noise of both metrics (NOISE_SIGMAS standard errors of their difference), and that noise allowance."""
    noise = NOISE_SIGMAS * math.hypot(realised_se or 0.0, validation_se or 0.0)
    return gap <= tolerance + noise, noise


def realised_metric(metric: str, label: np.ndarray, prediction: np.ndarray, probability: np.ndarray | None) -> float:
    """The metric on labelled rows: ValueError naming what is missing when it cannot be computed."""
    from sklearn import metrics

    label = np.asarray(label)
    if len(label) == 0:
        raise ValueError(f"{metric}: no labelled prediction to score")
    if metric in ("roc_auc", "log_loss"):
        if probability is None:
            raise ValueError(f"{metric} needs predicted probabilities")
        if len(np.unique(label)) < 2:
            raise ValueError(f"{metric} needs both classes among the {len(label)} labelled rows")
        return float(
            metrics.roc_auc_score(label, probability)
            if metric == "roc_auc"
            else metrics.log_loss(label, probability, labels=[0, 1])
        )
    functions = {
        "accuracy": metrics.accuracy_score,
        "f1": metrics.f1_score,
        "r2": metrics.r2_score,
        "mae": metrics.mean_absolute_error,
        "rmse": lambda y, p: float(np.sqrt(metrics.mean_squared_error(y, p))),
    }
    if metric not in functions:
        raise ValueError(f"unknown metric {metric!r}")
    return float(functions[metric](label, prediction))


@dataclass(frozen=True)
class Matched:
    frame: pd.DataFrame  # predictions with their label
    labels_without_prediction: int
    label_days: tuple[str, ...]


def match_labels(
    predictions: pd.DataFrame, labels: pd.DataFrame, entity_key: str, event_timestamp: str, label: str, label_ts: str
) -> Matched:
    """Each label joined to the prediction made for its event (entity, event time).

    The caller passes the labels of the predictions' events only; every label without a prediction
    row is counted (never silently dropped): an event nobody scored, or a key that does not match.
    """
    keys = [entity_key, event_timestamp]
    right = labels[[*keys, label, label_ts]].drop_duplicates(keys, keep="last")
    merged = right.merge(predictions.drop_duplicates(keys, keep="last"), on=keys, how="left", indicator=True)
    matched = merged[merged["_merge"] == "both"].drop(columns="_merge")
    without = int((merged["_merge"] == "left_only").sum())
    days = tuple(sorted({ts.date().isoformat() for ts in matched[label_ts]}))
    return Matched(matched.reset_index(drop=True), without, days)


def worse_by(value: float, reference: float, greater_is_better: bool) -> float:
    return (reference - value) if greater_is_better else (value - reference)
