"""The training stage: the pinned training set, and the model trained on it and registered in MLflow."""

import json

import dagster as dg

from mlops_platform.assets.common import DELTA, TRANSIENT_RETRY, Frame, Stage, retry_only_transient
from mlops_platform.automation.conditions import retrain_on
from mlops_platform.tracking.registry import MlflowRegistry


def build_training_set(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec

    @dg.asset(
        key=stage.key("training_set"),
        group_name=stage.group,
        io_manager_key=DELTA,
        ins={"features": dg.AssetIn(stage.key("features")), "labels": dg.AssetIn(stage.key("labels"))},
        automation_condition=retrain_on(spec.retrain_cron),
        retry_policy=TRANSIENT_RETRY,
        code_version=stage.code_version,
        kinds={"delta", "pandas"},
    )
    @retry_only_transient
    def training_set(context: dg.AssetExecutionContext, features: Frame, labels: Frame) -> Frame:
        """Labels of the training window joined point-in-time with features, split by entity hash."""
        from mlops_platform.ml.dataset import point_in_time_join, window_bounds

        start, end = window_bounds(labels, spec)
        joined = point_in_time_join(features, labels, spec)
        if joined.empty:
            raise ValueError(
                f"{spec.name}: no label between {start} and {end} has a feature row at or before its event"
            )
        label_days = labels[spec.label_timestamp].dt.date
        labels_in_window = int(((label_days >= start) & (label_days <= end)).sum())
        counts = joined["split"].value_counts()
        context.add_output_metadata(
            {
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "features_delta_versions": dg.MetadataValue.json(features.attrs["delta_versions"]),
                "labels_delta_versions": dg.MetadataValue.json(labels.attrs["delta_versions"]),
                "labels_without_features": labels_in_window - len(joined),
                **{f"rows_{name}": int(counts.get(name, 0)) for name in ("train", "validation", "test")},
            }
        )
        return joined

    return training_set


def build_model(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec
    model_key, training_key = stage.key("model"), stage.key("training_set")

    @dg.asset(
        key=model_key,
        group_name=stage.group,
        ins={"training_set": dg.AssetIn(training_key)},
        automation_condition=dg.AutomationCondition.eager(),
        code_version=stage.code_version,
        retry_policy=TRANSIENT_RETRY,
        pool="mlflow",
        kinds={"mlflow", "scikitlearn"},
    )
    @retry_only_transient
    def model(context: dg.AssetExecutionContext, training_set: Frame, registry: MlflowRegistry) -> dict:
        """A scikit-learn pipeline trained on the pinned training set, registered in MLflow as challenger."""
        from mlops_platform.ml.metrics import score
        from mlops_platform.ml.training import train

        pipeline = train(training_set, spec)
        validation = training_set[training_set["split"] == "validation"]
        metrics = {f"validation_{spec.metric}": score(pipeline, validation, spec)}
        training_version = int(training_set.attrs["delta_versions"]["all"])
        tags = {
            "mlops.spec": spec.name,
            "dagster.run_id": context.run.run_id,
            "dagster.asset_key": model_key.to_user_string(),
            "mlops.code_version": stage.code_version,
            "mlops.training_set_uri": training_set.attrs["delta_uri"],
            "mlops.training_set_version": str(training_version),
            "mlops.input_data_versions": json.dumps({training_key.to_user_string(): training_version}, sort_keys=True),
        }
        record = registry.log_model(
            model_name=spec.registered_model_name,
            experiment=f"mlops/{spec.name}",
            pipeline=pipeline,
            input_example=training_set[spec.feature_names].head(5),
            metrics=metrics,
            params={
                "estimator": type(pipeline[-1]).__name__,
                "rows_train": int((training_set["split"] == "train").sum()),
            },
            tags=tags,
            training_set_version=training_version,
            skops_trusted_types=list(spec.skops_trusted_types),
        )
        context.add_output_metadata(
            {
                "mlflow_run_url": dg.MetadataValue.url(record.run_url),
                "mlflow_run_id": record.run_id,
                "model_version": int(record.version),
                "model_uri": record.model_uri,
                "training_set_version": training_version,
                **{name: dg.MetadataValue.float(value) for name, value in metrics.items()},
            }
        )
        return record.to_dict()

    return model
