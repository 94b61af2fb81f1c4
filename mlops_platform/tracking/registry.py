"""The platform's MLflow resource: training runs, registered versions and champion/challenger aliases.

mlflow is imported inside the methods: the code location must load without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "mlops.previous_champion"
# Types the platform's own preprocessing (OneHotEncoder's dtype) stores; skops refuses them unless trusted.
PIPELINE_TRUSTED_TYPES = ("numpy.dtype",)


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version and the lineage it was trained on."""

    name: str
    version: str
    run_id: str
    run_url: str
    model_uri: str
    training_set_version: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MlflowRegistry(dg.ConfigurableResource):
    """Tracking store, artifact root and registry of one profile."""

    tracking_uri: str
    artifact_root: str
    ui_url: str = "http://127.0.0.1:5000"

    def _mlflow(self):
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """Id of experiment ``name``, created with its artifacts under the profile's artifact root."""
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{name.replace('/', '_')}"
        try:
            return client.create_experiment(name, artifact_location=location)
        except Exception:
            # Another process created it between our lookup and create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def log_model(
        self,
        *,
        model_name: str,
        experiment: str,
        pipeline: Any,
        input_example: pd.DataFrame,
        metrics: dict[str, float],
        params: dict[str, Any],
        tags: dict[str, str],
        training_set_version: int,
        skops_trusted_types: list[str] | None = None,
    ) -> ModelRecord:
        """One MLflow run holding the fitted pipeline, registered as a new version aliased challenger."""
        mlflow = self._mlflow()
        from mlflow.models import infer_signature

        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run:
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            prediction = _predict_for_signature(pipeline, input_example)
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=infer_signature(input_example, prediction),
                input_example=input_example,
                registered_model_name=model_name,
                skops_trusted_types=[*PIPELINE_TRUSTED_TYPES, *(skops_trusted_types or [])],
                # Stated, not inferred: inference loads the model in a subprocess and costs seconds.
                pip_requirements=_serving_requirements(),
                pyfunc_predict_fn="predict_proba" if hasattr(pipeline, "predict_proba") else "predict",
            )
            run_id = run.info.run_id
        version = str(info.registered_model_version)
        client = self.client()
        client.set_registered_model_alias(model_name, CHALLENGER, version)
        for key, value in tags.items():
            client.set_model_version_tag(model_name, version, key, value)
        return ModelRecord(
            name=model_name,
            version=version,
            run_id=run_id,
            run_url=self.run_url(experiment_id, run_id),
            model_uri=f"models:/{model_name}/{version}",
            training_set_version=training_set_version,
            metrics=metrics,
        )

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """The version an alias points to, or None when the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(model_name, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def version_tags(self, model_name: str, version: str) -> dict[str, str]:
        return dict(self.client().get_model_version(model_name, version).tags)

    def load_model(self, model_name: str, version: str) -> Any:
        mlflow = self._mlflow()
        return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")

    def promote(self, model_name: str, version: str) -> str | None:
        """Point champion at ``version``; the version remembers the champion it replaced."""
        previous = self.alias_version(model_name, CHAMPION)
        client = self.client()
        if previous is not None and previous != version:
            client.set_model_version_tag(model_name, version, PREVIOUS_CHAMPION_TAG, previous)
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return previous

    def rollback(self, model_name: str) -> tuple[str, str]:
        """Point champion back at the champion before the current one; return (from, to)."""
        current = self.alias_version(model_name, CHAMPION)
        if current is None:
            raise ValueError(f"model {model_name!r} has no champion to roll back")
        previous = self.version_tags(model_name, current).get(PREVIOUS_CHAMPION_TAG)
        if previous is None:
            raise ValueError(
                f"champion version {current} of {model_name!r} replaced no earlier champion; nothing to roll back to"
            )
        self.client().set_registered_model_alias(model_name, CHAMPION, previous)
        return current, previous


def _serving_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "pandas", "numpy", "skops")]


def _predict_for_signature(pipeline: Any, frame: pd.DataFrame) -> Any:
    if hasattr(pipeline, "predict_proba"):
        return pipeline.predict_proba(frame)
    return pipeline.predict(frame)
