"""Operational jobs: champion rollback, tracked as an MLflow run through dagster-mlflow."""

import datetime as dt
from typing import Any

import dagster as dg

from mlops_platform.specs.base import ModelSpec
from mlops_platform.tracking.registry import MlflowRegistry

OPERATIONS_EXPERIMENT = "mlops-operations"


@dg.resource(
    config_schema={
        "experiment_name": str,
        "mlflow_tracking_uri": dg.StringSource,  # {"env": VAR} keeps a password out of the UI
        "artifact_root": str,
    },
    description="dagster-mlflow's run-level tracking, imported only when a run needs it.",
)
def lazy_mlflow_tracking(init_context: dg.InitResourceContext):
    """dagster-mlflow's ``mlflow_tracking`` resource, built on first use.

    dagster_mlflow imports mlflow at module level, which would slow every code location load; this
    wrapper defers that import to the runs that use it, and creates the experiment with its artifacts
    under the profile's artifact root (mlflow.set_experiment alone would put them in ./mlruns).
    """
    from dagster_mlflow.resources import mlflow_tracking

    config = init_context.resource_config
    MlflowRegistry(tracking_uri=config["mlflow_tracking_uri"], artifact_root=config["artifact_root"]).experiment_id(
        config["experiment_name"]
    )
    return mlflow_tracking.resource_fn(init_context)  # type: ignore[call-arg]


def build_rollback_job(spec: ModelSpec, champion_key: dg.AssetKey) -> dg.JobDefinition:
    """A job that re-points the champion alias to the previous champion and records it."""

    @dg.op(
        name=f"{spec.name}__rollback_champion",
        description=f"Roll the {spec.name} champion back to the version it replaced.",
    )
    def rollback_champion(
        context: dg.OpExecutionContext, registry: MlflowRegistry, mlflow: dg.ResourceParam[Any]
    ) -> None:
        tracking = mlflow
        try:
            rolled_from, rolled_to = registry.rollback(spec.registered_model_name)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc
        decided_at = dt.datetime.now(dt.UTC).isoformat()
        tracking.log_params(
            {
                "action": "rollback",
                "model": spec.registered_model_name,
                "from_version": rolled_from,
                "to_version": rolled_to,
            }
        )
        tracking.set_tags({"mlops.spec": spec.name, "mlops.action": "rollback"})
        tracking.end_run()
        context.log_event(
            dg.AssetMaterialization(
                asset_key=champion_key,
                description=f"rollback from version {rolled_from} to {rolled_to}",
                metadata={
                    "action": "rollback",
                    "champion_version": int(rolled_to),
                    "previous_champion_version": int(rolled_from),
                    "decided_at": decided_at,
                },
            )
        )
        context.log.info(f"{spec.name}: champion rolled back from version {rolled_from} to {rolled_to}")

    @dg.job(
        name=f"{spec.name}_rollback", description=f"Roll back the {spec.name} champion.", tags={"mlops/spec": spec.name}
    )
    def rollback_job():
        rollback_champion()

    return rollback_job
