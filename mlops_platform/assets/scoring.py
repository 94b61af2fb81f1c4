"""The scoring stage: each day's feature rows scored by the champion current at run time."""

import dagster as dg

from mlops_platform.assets.common import DELTA, TRANSIENT_RETRY, Frame, Stage, present, retry_only_transient
from mlops_platform.automation.conditions import follows_upstream
from mlops_platform.storage.delta import DAY_COLUMN
from mlops_platform.storage.io_manager import LAZY
from mlops_platform.tracking.registry import MlflowRegistry


def build_predictions(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec
    champion_key = stage.key("champion")

    @dg.asset(
        key=stage.key("predictions"),
        group_name=stage.group,
        partitions_def=stage.partitions,
        io_manager_key=DELTA,
        ins={"features": dg.AssetIn(stage.key("features"), metadata=LAZY)},
        deps=[champion_key],
        automation_condition=follows_upstream(ignore=dg.AssetSelection.assets(champion_key)),
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=stage.freshness,
        retry_policy=TRANSIENT_RETRY,
        kinds={"delta", "mlflow"},
        metadata={"partition_column": DAY_COLUMN},
    )
    @retry_only_transient
    def predictions(context: dg.AssetExecutionContext, features: Frame, registry: MlflowRegistry) -> Frame:
        """The day's feature rows scored by the current champion; the version used is recorded."""
        from mlops_platform.storage.delta import DayBatches, PinnedDays
        from mlops_platform.tracking.registry import CHAMPION

        version = registry.alias_version(spec.registered_model_name, CHAMPION)
        if version is None:
            raise dg.Failure(f"{spec.name} has no champion yet: promote a model before scoring", allow_retries=False)
        model = registry.load_model(spec.registered_model_name, version)
        context.add_output_metadata(
            {
                "champion_version": int(version),
                "features_delta_versions": dg.MetadataValue.json(features.attrs["delta_versions"]),
            }
        )
        totals = {"rows": 0, "sum": 0.0}

        def scored(frame: Frame) -> Frame:
            result = score_rows(model, frame, spec, version)
            totals["rows"] += len(result)
            totals["sum"] += float(result["prediction"].sum())
            return result

        def summary() -> dict:
            mean = totals["sum"] / totals["rows"] if totals["rows"] else None
            return present({"mean_prediction": None if mean is None else dg.MetadataValue.float(mean)})

        if not isinstance(features, PinnedDays):  # invoked directly with a frame
            result = scored(features)
            context.add_output_metadata(summary())
            return result
        # A range run scores a batch of whole days at a time; the model is loaded once.
        batches = ((days, scored(frame)) for days, frame in features.batches())
        return DayBatches(batches, summary=summary)

    return predictions


def score_rows(model, features: Frame, spec, version: str) -> Frame:
    """Keys, prediction (and probability), and the model version, for every feature row."""
    import pandas as pd

    from mlops_platform.text import TEXT

    scored = features[[spec.entity_key, spec.event_timestamp, DAY_COLUMN]].copy()
    if len(features):
        from mlops_platform.ml.training import predict

        predicted = predict(model, features, spec)
        for column in predicted.columns:
            scored[column] = predicted[column].to_numpy()
    else:
        scored["prediction"] = pd.Series(dtype="float64")
        if spec.task == "classification":
            scored["probability"] = pd.Series(dtype="float64")
    scored["prediction"] = scored["prediction"].astype("float64")
    scored["model_version"] = pd.Series(version, index=scored.index, dtype=TEXT)
    return scored
