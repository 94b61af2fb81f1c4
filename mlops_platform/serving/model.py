"""One loaded model version: its validators, its fast path (or the sklearn fallback), its predict.

A ``ServedModel`` is immutable once built: the app swaps whole objects, so a request that picked one
up finishes on it whatever happens to the app's table meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlops_platform.serving.compiled import CompiledModel, Unsupported, compile_pipeline, sample, verify
from mlops_platform.serving.schema import InputError, InputSchema, events_schema, features_schema

log = logging.getLogger("mlops_platform.serving")

COMPILED = "compiled"
SKLEARN = "sklearn"


class LoadError(RuntimeError):
    """A version that cannot be served: not found, not loadable, or its warm-up failed."""


class ModelSource(Protocol):
    """Where versions come from: the MLflow registry, or a model folder (the cloud containers)."""

    def load(self, name: str, version: str) -> tuple[Any, list[tuple[str, str]] | None]:
        """(fitted pipeline, signature inputs as (name, MLflow type)); LoadError naming what failed."""


@dataclass
class RegistrySource:
    """Versions from the MLflow registry, loaded the way the platform's assets load them (skops, trusted types)."""

    tracking_uri: str
    artifact_root: str = ""

    def load(self, name: str, version: str) -> tuple[Any, list[tuple[str, str]] | None]:
        from mlops_platform.tracking.registry import MlflowRegistry

        registry = MlflowRegistry(tracking_uri=self.tracking_uri, artifact_root=self.artifact_root or "/tmp")
        if not registry.version_exists(name, version):
            raise LoadError(f"model {name!r} has no version {version} in the registry")
        try:
            pipeline = registry.load_model(name, version)
        except Exception as exc:
            raise LoadError(f"model {name!r} version {version} failed to load: {type(exc).__name__}: {exc}") from exc
        return pipeline, _registry_signature(name, version)


def _registry_signature(name: str, version: str) -> list[tuple[str, str]] | None:
    try:
        from mlflow.models import get_model_info

        signature = get_model_info(f"models:/{name}/{version}").signature
    except Exception:  # noqa: BLE001 - an MLmodel without a signature is served against the spec's feature kinds
        return None
    return _signature_inputs(signature.inputs.to_dict() if signature is not None else None)


def _signature_inputs(inputs: Any) -> list[tuple[str, str]] | None:
    if not inputs:
        return None
    return [(str(col["name"]), str(col.get("type", "double"))) for col in inputs if "name" in col]


@dataclass
class DirectorySource:
    """One MLflow model folder (SageMaker's /opt/ml/model, Vertex's AIP_STORAGE_URI copy, Azure's
    AZUREML_MODEL_DIR): no registry, no Dagster. Only skops-serialized sklearn models are accepted."""

    path: Path
    extra_trusted_types: Sequence[str] = ()

    def load(self, name: str, version: str) -> tuple[Any, list[tuple[str, str]] | None]:
        import json

        import yaml

        root = Path(self.path).resolve()
        mlmodel = root / "MLmodel"
        if not mlmodel.is_file():
            raise LoadError(f"{root}: no MLmodel file, not an MLflow model folder")
        conf = yaml.safe_load(mlmodel.read_text()) or {}
        flavor = (conf.get("flavors") or {}).get("sklearn")
        if not isinstance(flavor, dict) or flavor.get("serialization_format") != "skops":
            raise LoadError(f"{root}: not a skops-serialized scikit-learn model (pickle formats are refused)")
        model_file = (root / str(flavor.get("pickled_model"))).resolve()
        if not model_file.is_relative_to(root) or not model_file.is_file():
            raise LoadError(f"{root}: the sklearn flavor's model file is not inside the folder")
        import skops.io

        trusted = sorted({"numpy.dtype", *(flavor.get("skops_trusted_types") or []), *self.extra_trusted_types})
        try:
            pipeline = skops.io.load(model_file, trusted=trusted)
        except Exception as exc:
            raise LoadError(f"{root}: model file failed to load: {type(exc).__name__}: {exc}") from exc
        inputs = None
        signature = conf.get("signature") or {}
        if isinstance(signature.get("inputs"), str):
            inputs = _signature_inputs(json.loads(signature["inputs"]))
        return pipeline, inputs


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    spec: Any
    pipeline: Any
    features: InputSchema
    events: InputSchema
    compiled: CompiledModel | None
    path: str  # COMPILED or SKLEARN
    fallback_reason: str | None
    max_abs_diff: float | None
    classes: Any
    loaded_at: str
    load_seconds: float
    feature_events_only: frozenset[str] = field(default_factory=frozenset)

    @property
    def classifier(self) -> bool:
        return self.spec.task == "classification"

    def schema_for(self, names: set[str]) -> InputSchema:
        """Events when the request carries a landed column that is not a feature, else features."""
        return self.events if names & self.feature_events_only else self.features

    def predict(self, columns: dict[str, list[Any]], n: int) -> dict[str, Any]:
        """Outputs for validated-or-not columns; InputError names the bad field."""
        schema = self.schema_for(set(columns))
        typed = schema.convert(columns)
        if schema is self.events:
            typed = self._features_from_events(typed)
        return self._predict_features(typed, n)

    def _features_from_events(self, typed: dict[str, list[Any]]) -> dict[str, list[Any]]:
        import pandas as pd

        from mlops_platform.ml.features import compute_features

        raw = pd.DataFrame(
            {name: _landed_series(values, self.events.by_name[name].type) for name, values in typed.items()}
        )
        try:
            frame = compute_features(raw, self.spec)
        except Exception as exc:  # noqa: BLE001 - reported, never swallowed: see below
            raise InputError(
                f"the spec's features could not be computed from these events ({type(exc).__name__})"
            ) from None
        return {f.name: frame[f.name].tolist() for f in self.spec.features}

    def _predict_features(self, typed: dict[str, list[Any]], n: int) -> dict[str, Any]:
        raw = self.compiled.predict(typed, n) if self.compiled is not None else self._sklearn(typed, n)
        if not self.classifier:
            return {"prediction": np.ascontiguousarray(raw, dtype=np.float64).reshape(-1)}
        return {
            "prediction": np.ascontiguousarray(self.classes[raw.argmax(axis=1)]),
            "probability": np.ascontiguousarray(raw[:, -1], dtype=np.float64),
        }

    def _sklearn(self, typed: dict[str, list[Any]], n: int) -> np.ndarray:
        frame = features_frame(self.spec, typed)
        if self.classifier:
            return self.pipeline.predict_proba(frame)
        return self.pipeline.predict(frame)

    def metadata(self) -> dict[str, Any]:
        return {
            "inference_path": self.path,
            "fallback_reason": self.fallback_reason,
            "max_abs_diff_vs_sklearn": self.max_abs_diff,
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 3),
            "task": self.spec.task,
        }


def _landed_series(values: list[Any], kind: str) -> Any:
    import pandas as pd

    if kind == "datetime":
        return pd.to_datetime(pd.Series(values, dtype=object))
    if kind == "long":
        return pd.Series(values, dtype="int64") if None not in values else pd.Series(values, dtype="float64")
    if kind == "double":
        return pd.Series(values, dtype="float64")
    if kind == "string":
        from mlops_platform.text import TEXT

        # Text as the features asset's compute functions see it (conform's dtype): no training/serving skew.
        return pd.Series(values, dtype=TEXT)
    if kind == "boolean" and None not in values:
        return pd.Series(values, dtype=bool)  # as conform types it: `~` on Python bools gives -1 and -2
    return pd.Series(values, dtype=object)


def features_frame(spec: Any, typed: dict[str, list[Any]]) -> Any:
    import pandas as pd

    data = {}
    for feature in spec.features:
        values = typed[feature.name]
        if feature.kind == "numeric":
            data[feature.name] = pd.Series([math.nan if v is None else v for v in values], dtype="float64")
        else:
            data[feature.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)


def build_served(name: str, version: str, spec: Any, source: ModelSource) -> ServedModel:
    """Load, compile, verify and warm up one version; LoadError (naming the version) when any step fails.

    The compiled path is used only when it reproduces the pipeline on a sample exercising every
    branch (max abs diff <= 1e-9); otherwise the sklearn pipeline serves and the reason is recorded.
    """
    from mlops_platform.serving.compiled import TOLERANCE

    started = time.perf_counter()
    pipeline, signature = source.load(name, version)
    numeric = [f.name for f in spec.features if f.kind == "numeric"]
    categorical = [f.name for f in spec.features if f.kind == "categorical"]
    classifier = spec.task == "classification"
    if classifier and not hasattr(pipeline, "predict_proba"):
        raise LoadError(f"model {name!r} version {version}: a classification spec, but the model has no predict_proba")
    features = features_schema(spec, signature)
    missing = [f for f in spec.feature_names if f not in features.name_set]
    if missing or len(features.names) != len(spec.feature_names):
        raise LoadError(
            f"model {name!r} version {version}: its signature does not match the spec's features ({missing})"
        )
    events = events_schema(spec)

    def reference(data: dict[str, list[Any]], n: int) -> np.ndarray:
        frame = features_frame(spec, data)
        return pipeline.predict_proba(frame) if classifier else pipeline.predict(frame)

    compiled: CompiledModel | None = None
    reason: str | None = None
    diff: float | None = None
    try:
        compiled = compile_pipeline(pipeline, numeric, categorical)
        data = sample(pipeline, numeric, categorical)
        n = len(next(iter(data.values())))
        try:
            reference(data, n)
        except Exception:  # noqa: BLE001 - reported, never swallowed: see below
            # sklearn refuses None in a categorical column it never saw None in: sample NaN only.
            data = {k: [math.nan if v is None else v for v in vals] for k, vals in data.items()}
        diff = verify(compiled, reference, data, n)
        if not diff <= TOLERANCE:
            reason = (
                f"compiled path differs from the pipeline by {diff:.3g} (> {TOLERANCE:g}) on the verification sample"
            )
            compiled = None
    except Unsupported as exc:
        reason = f"unsupported: {exc}"
        compiled = None
    except Exception as exc:  # noqa: BLE001 - a step behaving unexpectedly: serve through sklearn, say why
        reason = f"compilation failed: {type(exc).__name__}: {exc}"
        compiled = None
    classes = np.asarray(getattr(pipeline, "classes_", [])) if classifier else None
    served = ServedModel(
        name=name,
        version=str(version),
        spec=spec,
        pipeline=pipeline,
        features=features,
        events=events,
        compiled=compiled,
        path=COMPILED if compiled is not None else SKLEARN,
        fallback_reason=reason,
        max_abs_diff=diff,
        classes=classes,
        loaded_at=dt.datetime.now(dt.UTC).isoformat(),
        load_seconds=0.0,
        feature_events_only=frozenset(set(events.names) - set(features.names)),
    )
    warm_up(served)
    object.__setattr__(served, "load_seconds", time.perf_counter() - started)
    if reason:
        log.warning("model %s version %s serves through sklearn: %s", name, version, reason)
    return served


def warm_up(served: ServedModel) -> None:
    """One request through the whole request path (validation, features, prediction) must answer
    finite outputs, else the version does not take traffic."""
    row = {name: [None] for name in served.features.names}
    try:
        outputs = served.predict(row, 1)
    except Exception as exc:
        raise LoadError(
            f"model {served.name!r} version {served.version}: warm-up request failed: {type(exc).__name__}: {exc}"
        ) from exc
    for key, value in outputs.items():
        array = np.asarray(value)
        if array.shape[:1] != (1,) or (array.dtype.kind == "f" and not np.isfinite(array).all()):
            raise LoadError(
                f"model {served.name!r} version {served.version}: warm-up output {key!r} is not one finite value"
            )
