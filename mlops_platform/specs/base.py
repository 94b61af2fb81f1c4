"""The model spec: everything that makes one model different from another.

A spec is plain data plus a few pure callables. The asset factory turns a spec into its whole asset
family, so adding a model means writing one spec module and nothing else.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ColumnType = Literal["int64", "float64", "string", "bool", "timestamp"]
Task = Literal["classification", "regression"]

# metric name -> (task, greater_is_better)
METRICS: dict[str, tuple[Task, bool]] = {
    "roc_auc": ("classification", True),
    "accuracy": ("classification", True),
    "f1": ("classification", True),
    "log_loss": ("classification", False),
    "r2": ("regression", True),
    "rmse": ("regression", False),
    "mae": ("regression", False),
}

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
# A synthetic generator: (day, seed, drift, rows) -> (events of that day, labels that land that day).
# (Frames are pandas DataFrames; typed loosely so that loading a spec never imports pandas.)
Generator = Callable[[dt.date, int, float, int], tuple[Any, Any]]


class Feature(BaseModel):
    """One model input. ``compute`` derives it from the raw events frame; None passes a column through."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str
    kind: Literal["numeric", "categorical"]
    compute: Callable[[Any], Any] | None = None
    description: str = ""


class Source(BaseModel):
    """The landed data: an event stream and a label stream whose labels arrive later."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    events: Mapping[str, ColumnType]
    labels: Mapping[str, ColumnType]
    label_delay_days: int = Field(ge=0, description="Days between an event and its label landing.")
    generator: Generator | None = Field(default=None, description="Synthetic source used by `mlops-platform simulate`.")


class MonitoringPolicy(BaseModel):
    """Drift and performance thresholds, and the guard on the retraining they trigger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drift_warn_threshold: float = Field(
        default=0.1, gt=0, description="Normalised Wasserstein / Jensen-Shannon score at which a column warns."
    )
    drift_error_threshold: float = Field(default=0.2, gt=0, description="Score at which a column is an error.")
    performance_tolerance: float = Field(
        default=0.05, ge=0, description="How much worse than the validation metric production may score."
    )
    retrain_on: Literal["warn", "error"] = Field(
        default="error", description="The least severe failed monitoring check that requests retraining."
    )
    retrain_on_performance: bool = Field(default=True, description="A failed performance check requests retraining.")
    cooldown_hours: float = Field(
        default=24, ge=0, description="No monitoring-triggered retrain within this many hours of the last."
    )
    max_retrains: int = Field(default=3, ge=1, description="At most this many triggered retrains per window.")
    window_hours: float = Field(default=168, gt=0, description="The rolling window of ``max_retrains``.")
    consecutive_days: int = Field(
        default=1, ge=1, le=7, description="Drift must fail on this many consecutive days before a retrain."
    )
    drift_exclude: tuple[str, ...] = Field(
        default=(),
        description=(
            "Features left out of drift scoring: ones constant within a day by construction (a weekend "
            "flag), whose one day always differs from a reference of many days."
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringPolicy:
        if self.drift_error_threshold < self.drift_warn_threshold:
            raise ValueError(
                f"monitoring: drift_error_threshold {self.drift_error_threshold} is below "
                f"drift_warn_threshold {self.drift_warn_threshold}"
            )
        return self


class ModelSpec(BaseModel):
    """A typed, validated description of one model and its data."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(description="Asset group, key prefix and registered model name.")
    description: str
    task: Task
    source: Source
    entity_key: str
    event_timestamp: str
    label: str
    label_timestamp: str
    features: tuple[Feature, ...]
    estimator: Callable[[], Any] = Field(description="Builds a fresh unfitted scikit-learn estimator.")
    metric: str
    metric_threshold: float = Field(
        description="Gate: the metric must reach this value (at least it, or at most it when lower is better)."
    )
    regression_tolerance: float = Field(
        ge=0, description="Gate: how much worse than the champion a challenger may score."
    )
    training_window_days: int = Field(ge=1, description="Label days a training set covers.")
    max_training_rows: int | None = Field(
        default=None,
        ge=1,
        description="Train on at most this many rows of the train split: a deterministic sample by entity hash "
        "(None: every row).",
    )
    retrain_cron: str = Field(default="0 4 * * *", description="Retrain at most once per tick.")
    start_date: dt.date = Field(description="First daily partition.")
    freshness_hours: int = Field(default=36, ge=1)
    skops_trusted_types: tuple[str, ...] = ()
    monitoring: MonitoringPolicy = Field(default_factory=MonitoringPolicy)
    requires_approval: bool = Field(
        default=False,
        description="A challenger that passed its gates becomes champion only once a person approves it "
        "(mlops-platform approve --model NAME --version N --by NAME).",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"spec name {value!r} must match {_NAME.pattern}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        events, labels = self.source.events, self.source.labels
        for column in (self.entity_key, self.event_timestamp):
            if column not in events:
                raise ValueError(f"spec {self.name}: {column!r} is not an event column")
            if column not in labels:
                raise ValueError(f"spec {self.name}: {column!r} is not a label column")
        for column in (self.label, self.label_timestamp):
            if column not in labels:
                raise ValueError(f"spec {self.name}: {column!r} is not a label column")
        for column in (self.event_timestamp,):
            if events[column] != "timestamp":
                raise ValueError(f"spec {self.name}: {column!r} must be a timestamp column")
        if labels[self.label_timestamp] != "timestamp":
            raise ValueError(f"spec {self.name}: {self.label_timestamp!r} must be a timestamp column")
        if self.metric not in METRICS:
            raise ValueError(f"spec {self.name}: unknown metric {self.metric!r}; choose from {sorted(METRICS)}")
        if METRICS[self.metric][0] != self.task:
            raise ValueError(f"spec {self.name}: metric {self.metric!r} does not fit task {self.task!r}")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"spec {self.name}: duplicate feature names in {names}")
        if not names:
            raise ValueError(f"spec {self.name}: at least one feature is required")
        for feature in self.features:
            if feature.compute is None and feature.name not in events:
                raise ValueError(
                    f"spec {self.name}: feature {feature.name!r} has no compute and is not an event column"
                )
        unknown = [name for name in self.monitoring.drift_exclude if name not in names]
        if unknown:
            raise ValueError(
                f"spec {self.name}: monitoring.drift_exclude names no feature: {unknown} (features: {names})"
            )
        return self

    @property
    def greater_is_better(self) -> bool:
        return METRICS[self.metric][1]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def registered_model_name(self) -> str:
        return self.name


def spec_code_version(spec: ModelSpec) -> str:
    """A short fingerprint of everything in the spec that changes what a model learns.

    Used as the asset code version, so Dagster shows training assets as changed when the spec changes.
    """
    import hashlib
    import inspect

    def source_of(fn: Callable[..., Any] | None) -> str:
        if fn is None:
            return ""
        try:
            return inspect.getsource(fn)
        except (OSError, TypeError):
            return getattr(fn, "__qualname__", repr(fn))

    parts = [
        spec.name,
        spec.task,
        spec.label,
        spec.metric,
        repr(sorted(spec.source.events.items())),
        repr(sorted(spec.source.labels.items())),
        source_of(spec.estimator),
        *(f"{f.name}:{f.kind}:{source_of(f.compute)}" for f in spec.features),
        str(spec.training_window_days),
        # Only when set, so that the fingerprint of a spec without a cap stays what it was.
        *([f"max_training_rows:{spec.max_training_rows}"] if spec.max_training_rows is not None else []),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
