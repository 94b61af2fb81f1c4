"""The training stage: the model trained on the pinned training set and registered in MLflow."""

import json

import dagster as dg

from mlops_platform.assets.common import TRANSIENT_RETRY, Frame, Stage, retry_only_transient
from mlops_platform.tracking.registry import MlflowRegistry


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
