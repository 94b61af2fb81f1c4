"""The endpoint stage: the champion deployed through the profile's deployer, and a check that the
target really serves the champion (it fails after a rollback until the endpoint follows)."""

import datetime as dt

import dagster as dg

from mlops_platform.assets.common import TRANSIENT_RETRY, Stage, present
from mlops_platform.serving.deployers.base import Deployer
from mlops_platform.tracking.registry import MlflowRegistry

SERVES_CHAMPION_CHECK = "serves_champion"


def smoke_payload(spec) -> dict:
    """One features row with every feature null: always valid (the pipeline imputes every feature)."""
    return {"dataframe_records": [{name: None for name in spec.feature_names}]}


def build_endpoint(stage: Stage) -> list:
    """The ``<model>/endpoint`` asset and its ``serves_champion`` check."""
    spec = stage.spec
    endpoint_key, champion_key = stage.key("endpoint"), stage.key("champion")

    @dg.asset(
        key=endpoint_key,
        group_name=stage.group,
        deps=[champion_key],
        # Follows every champion materialization, a rollback's included (its job records one).
        automation_condition=dg.AutomationCondition.eager(),
        retry_policy=TRANSIENT_RETRY,
        kinds={"mlflow"},
    )
    def endpoint(
        context: dg.AssetExecutionContext, registry: MlflowRegistry, deployer: Deployer
    ) -> dg.MaterializeResult:
        """The champion deployed to the profile's serving target; target, URL, version and smoke latency recorded."""
        from mlops_platform.serving.deployers.base import DeployError
        from mlops_platform.tracking.registry import CHAMPION

        version = registry.alias_version(spec.registered_model_name, CHAMPION)
        if version is None:
            raise dg.Failure(f"{spec.name} has no champion yet: nothing to deploy", allow_retries=False)
        try:
            deployed = deployer.deploy(spec.registered_model_name, version)
            assert not isinstance(deployed, list)
            answered, seconds = deployer.smoke(spec.registered_model_name, smoke_payload(spec))
        except DeployError as exc:
            raise dg.Failure(
                description=f"{spec.name} version {version} was not deployed to {deployer.target}: {exc}",
                allow_retries=False,
            ) from exc
        if answered and answered != str(version):
            raise dg.Failure(
                f"{spec.name}: deployed version {version} to {deployer.target}, but the smoke request was "
                f"answered by version {answered}",
                allow_retries=False,
            )
        return dg.MaterializeResult(
            metadata=present(
                {
                    "target": deployer.target,
                    "url": dg.MetadataValue.url(deployed.url),
                    "deployed_version": int(version),
                    "changed": deployed.changed,
                    "deployed_at": dt.datetime.now(dt.UTC).isoformat(),
                    "smoke_latency_ms": dg.MetadataValue.float(round(seconds * 1000, 3)),
                    "inference_path": deployed.details.get("inference_path"),
                }
            )
        )

    @dg.asset_check(asset=endpoint_key, name=SERVES_CHAMPION_CHECK, blocking=False)
    def serves_champion(registry: MlflowRegistry, deployer: Deployer) -> dg.AssetCheckResult:
        """The version the target serves is the current champion."""
        from mlops_platform.tracking.registry import CHAMPION

        champion = registry.alias_version(spec.registered_model_name, CHAMPION)
        try:
            described = deployer.describe(spec.registered_model_name)
        except Exception as exc:  # noqa: BLE001 - any failure to answer is a failed check, shown in the UI
            return dg.AssetCheckResult(
                passed=False,
                description=f"{deployer.target} could not say what it serves: {type(exc).__name__}: {exc}",
                metadata={"champion_version": champion or "none"},
            )
        served = described.version if described else None
        passed = champion is not None and served == champion
        return dg.AssetCheckResult(
            passed=passed,
            description=(
                f"{deployer.target} serves version {served or 'nothing'}; the champion is {champion or 'none'}"
            ),
            metadata={"served_version": served or "none", "champion_version": champion or "none"},
        )

    return [endpoint, serves_champion]
