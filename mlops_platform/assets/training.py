"""The training stage: the model trained on the pinned training set and registered in MLflow."""

import json

import dagster as dg

from mlops_platform.assets.common import TRAINING_TAGS, TRANSIENT_RETRY, Frame, Stage, retry_only_transient
from mlops_platform.storage.io_manager import LAZY
from mlops_platform.tracking.registry import MlflowRegistry

# Set by the retraining sensor on the runs it requests; copied to the model's MLflow run.
RETRAIN_REASON_RUN_TAG = "mlops/retrain_reason"
RETRAIN_REASON_MLFLOW_TAG = "mlops.retrain_reason"


# Validation rows enough for the prediction's reference distribution; a smaller split falls back to the
# train split's predictions (more values, but more confident than on new rows).
MIN_PREDICTION_REFERENCE = 1_000


def reference_profile(
    pipeline, train: Frame, validation: Frame, validation_predicted: Frame, spec, validation_metric: float
):
    """The profile of the train rows and of the model's predictions on held-out rows, with the calibration
    of its validation predictions (``training.predict``'s frame for ``validation``); pure, see ml.profile.

    Live predictions are made on rows the model never saw, so their reference is the validation split's
    predictions (a model is more confident on the rows it was fitted on: against those, a healthy day's
    predictions would look drifted); the train split's when validation has fewer than
    ``MIN_PREDICTION_REFERENCE`` rows.
    """
    from mlops_platform.ml.performance import calibration_curve, metric_noise
    from mlops_platform.ml.profile import build_profile
    from mlops_platform.ml.training import predict

    held_out = len(validation) >= MIN_PREDICTION_REFERENCE
    predicted = validation_predicted if held_out else predict(pipeline, train, spec)
    calibration, noise = None, None
    if len(validation):
        probability = validation_predicted["probability"].to_numpy() if spec.task == "classification" else None
        label = validation[spec.label].to_numpy()
        # How far the validation metric itself may be off: the performance check allows for it.
        noise = metric_noise(spec.metric, label, validation_predicted["prediction"].to_numpy(), probability)
        if probability is not None:
            calibration = calibration_curve(probability, label)
    return build_profile(
        train,
        {f.name: f.kind for f in spec.features},
        predicted["probability" if spec.task == "classification" else "prediction"],
        metric=spec.metric,
        validation_metric=validation_metric,
        calibration=calibration,
        validation_metric_se=noise,
    )


def build_model(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec
    model_key, training_key = stage.key("model"), stage.key("training_set")

    @dg.asset(
        key=model_key,
        group_name=stage.group,
        ins={"training_set": dg.AssetIn(training_key, metadata=LAZY)},
        automation_condition=dg.AutomationCondition.eager(),
        code_version=stage.code_version,
        retry_policy=TRANSIENT_RETRY,
        tags=TRAINING_TAGS,
        pool="mlflow",
        kinds={"mlflow", "scikitlearn"},
    )
    @retry_only_transient
    def model(context: dg.AssetExecutionContext, training_set: Frame, registry: MlflowRegistry) -> dict:
        """A scikit-learn pipeline trained on the pinned training set, registered in MLflow as challenger."""
        from mlops_platform.ml.metrics import metric_of
        from mlops_platform.ml.training import predict, train
        from mlops_platform.serving.signature import landed_input_example

        # Only the train sample and the validation split are read, never the whole training set.
        train_rows, validation, sample = _train_and_validation(training_set, spec)
        pipeline = train(train_rows, spec)
        # The validation split is predicted once, for the metric and the profile's calibration.
        validation_predicted = predict(pipeline, validation, spec) if len(validation) else validation.iloc[:0]
        metrics = {f"validation_{spec.metric}": metric_of(validation_predicted, validation[spec.label], spec)}
        training_version = int(training_set.attrs["delta_versions"]["all"])
        tags = {
            "mlops.spec": spec.name,
            "dagster.run_id": context.run.run_id,
            "dagster.asset_key": model_key.to_user_string(),
            "mlops.code_version": stage.code_version,
            "mlops.training_set_uri": training_set.attrs["delta_uri"],
            "mlops.training_set_version": str(training_version),
            "mlops.input_data_versions": json.dumps({training_key.to_user_string(): training_version}, sort_keys=True),
            "mlops.train_sample": sample.rule,
        }
        reason = context.run.tags.get(RETRAIN_REASON_RUN_TAG)
        if reason:
            tags[RETRAIN_REASON_MLFLOW_TAG] = reason
        validation_metric = metrics[f"validation_{spec.metric}"]
        profile = reference_profile(pipeline, train_rows, validation, validation_predicted, spec, validation_metric)
        record = registry.log_model(
            model_name=spec.registered_model_name,
            experiment=f"mlops/{spec.name}",
            pipeline=pipeline,
            # Integer columns stay integers, so MLflow's own pyfunc scores rows typed as they land.
            input_example=landed_input_example(train_rows, spec),
            metrics=metrics,
            params={
                "estimator": type(pipeline[-1]).__name__,
                "rows_train": sample.rows_used,
                "rows_train_available": sample.rows_available,
                "max_training_rows": spec.max_training_rows or "unlimited",
            },
            tags=tags,
            training_set_version=training_version,
            skops_trusted_types=list(spec.skops_trusted_types),
        )
        from mlops_platform.tracking.profiles import log_profile

        profile_sha256 = log_profile(registry, record.name, record.version, record.run_id, profile)
        context.add_output_metadata(
            {
                "reference_profile_sha256": profile_sha256,
                "mlflow_run_url": dg.MetadataValue.url(record.run_url),
                "mlflow_run_id": record.run_id,
                "model_version": int(record.version),
                "model_uri": record.model_uri,
                "training_set_version": training_version,
                "rows_trained_on": sample.rows_used,
                "rows_train_split": sample.rows_available,
                "train_sample": sample.rule,
                **{name: dg.MetadataValue.float(value) for name, value in metrics.items()},
                **({"retrain_reason": reason} if reason else {}),
            }
        )
        return record.to_dict()

    return model


def _train_and_validation(training_set, spec):
    """The train rows (all, or ``spec.max_training_rows`` sampled by entity hash) and the validation split.

    ``training_set`` is the pinned table (read by the scan, the train split in batches) or, when the
    asset is invoked directly, a frame.
    """
    from mlops_platform.ml.dataset import SPLIT_COLUMN
    from mlops_platform.ml.training import sample_train_split
    from mlops_platform.storage.delta import PinnedTable

    if isinstance(training_set, PinnedTable):
        where = f"{SPLIT_COLUMN} = 'train'"
        available = training_set.count(where)
        sample = sample_train_split(lambda: training_set.batches(where=where), available, spec)
        validation = training_set.read(where=f"{SPLIT_COLUMN} = 'validation'")
    else:
        train_split = training_set[training_set[SPLIT_COLUMN] == "train"]
        sample = sample_train_split(lambda: iter([train_split]), len(train_split), spec)
        validation = training_set[training_set[SPLIT_COLUMN] == "validation"]
    if not sample.rows_used:  # no train rows: an empty frame with the columns, so train() says so
        return validation.iloc[:0], validation, sample
    sample.frame[SPLIT_COLUMN] = "train"
    return sample.frame, validation, sample
