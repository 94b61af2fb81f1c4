"""The endpoint asset and its serves_champion check, through the local deployer and a real serving app."""

from __future__ import annotations

import dagster as dg
import httpx
import pytest

from mlops_platform.assets.common import Stage
from mlops_platform.assets.endpoint import SERVES_CHAMPION_CHECK, build_endpoint
from mlops_platform.serving.app import ServeConfig, create_app
from mlops_platform.serving.deployers.local import LocalDeployer
from mlops_platform.serving.model import LoadError, RegistrySource
from mlops_platform.tracking.registry import CHAMPION
from tests.serving.conftest import TOKEN, ServerThread

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class BreaksOn(RegistrySource):
    """The registry, except that one version fails to load (as a version whose artifact vanished)."""

    broken: str = "never"

    def load(self, name, version):
        if version == self.broken:
            raise LoadError(f"model {name!r} version {version} failed to load: artifact missing")
        return super().load(name, version)


@pytest.fixture(scope="module")
def local(models, churn, tmp_path_factory):
    source = BreaksOn(models.registry.tracking_uri, models.registry.artifact_root)
    config = ServeConfig(models={churn.name: churn}, token=TOKEN, state_file=tmp_path_factory.mktemp("s") / "d.json")
    with ServerThread(create_app(config, source)) as server:
        server.source = source
        yield server


def _run(models, local, churn, selection=None, raise_on_error=True):
    endpoint, check = build_endpoint(Stage(churn))
    return dg.materialize(
        [endpoint, check],
        selection=selection,
        resources={"registry": models.registry, "deployer": LocalDeployer(url=local.url, token=TOKEN)},
        raise_on_error=raise_on_error,
    )


def _served(local) -> str | None:
    return httpx.get(f"{local.url}/admin/models/churn", headers=AUTH).json()["version"]


def test_endpoint_deploys_the_champion_and_its_check_follows_rollbacks(models, local, churn) -> None:
    client = models.registry.client()
    assert _served(local) is None  # nothing served before an endpoint materialization
    client.set_registered_model_alias("churn", CHAMPION, "1")
    result = _run(models, local, churn)
    [materialization] = result.asset_materializations_for_node("churn__endpoint")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["target"] == "local" and meta["deployed_version"] == 1
    assert meta["url"] == f"{local.url}/models/churn/invocations"
    assert meta["smoke_latency_ms"] > 0 and meta["inference_path"] == "compiled" and "deployed_at" in meta
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == SERVES_CHAMPION_CHECK and check.passed
    assert _served(local) == "1"

    # The champion moves (a promotion or a rollback) and nobody redeployed: the check fails, visibly.
    client.set_registered_model_alias("churn", CHAMPION, "2")
    only_check = _run(
        models, local, churn, selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["churn", "endpoint"]))
    )
    [check] = only_check.get_asset_check_evaluations()
    assert not check.passed and "serves version 1; the champion is 2" in check.description
    _run(models, local, churn)
    assert _served(local) == "2"


def test_a_failed_deploy_fails_the_materialization_and_the_previous_version_keeps_serving(models, local, churn) -> None:
    client = models.registry.client()
    client.set_registered_model_alias("churn", CHAMPION, "2")
    _run(models, local, churn)
    local.source.broken = "1"
    try:
        client.set_registered_model_alias("churn", CHAMPION, "1")
        result = _run(models, local, churn, raise_on_error=False)
        assert not result.success
        failure = result.failure_data_for_node("churn__endpoint")
        assert "version 1 was not deployed to local" in failure.error.message
        assert "still serving version 2" in failure.error.message
        assert _served(local) == "2"
        described = httpx.get(f"{local.url}/admin/models/churn", headers=AUTH).json()
        assert described["last_failed_swap"]["version"] == "1"
    finally:
        local.source.broken = "never"
        client.set_registered_model_alias("churn", CHAMPION, "2")


def test_deploying_the_served_version_again_changes_nothing_and_dry_runs_send_nothing(local) -> None:
    deployer = LocalDeployer(url=local.url, token=TOKEN)
    served = _served(local)
    plan = deployer.deploy("churn", "1", dry_run=True)
    assert [r.to_dict() for r in plan] == [
        {"method": "PUT", "url": f"{local.url}/admin/models/churn", "body": {"version": "1"}}
    ]
    assert deployer.delete("churn", dry_run=True)[0].method == "DELETE"
    assert _served(local) == served
    assert deployer.deploy("churn", served).changed is False


def test_the_endpoint_follows_a_new_champion_materialization(churn) -> None:
    endpoint, _ = build_endpoint(Stage(churn))
    champion_key = dg.AssetKey(["churn", "champion"])
    with dg.instance_for_test() as instance:
        from mlops_platform.tracking.registry import MlflowRegistry

        defs_assets = dg.Definitions(
            assets=[endpoint],
            resources={
                "registry": MlflowRegistry(tracking_uri="sqlite:///unused.db", artifact_root="/unused"),
                "deployer": LocalDeployer(token=TOKEN),
            },
        )
        first = dg.evaluate_automation_conditions(defs=defs_assets, instance=instance)
        instance.report_runless_asset_event(dg.AssetMaterialization(champion_key))
        result = dg.evaluate_automation_conditions(defs=defs_assets, instance=instance, cursor=first.cursor)
        assert result.get_requested_partitions(endpoint.key) == {None}


def test_after_a_rollback_the_check_fails_until_automation_redeploys_the_previous_champion(
    models, local, churn, tmp_path
) -> None:
    """The platform's own wiring: the profile's deployer (URL and generated token from the settings),
    the real rollback job, and the endpoint's automation condition as the automation sensor evaluates it."""
    from mlops_platform.definitions import build_definitions
    from mlops_platform.serving.token import token_file
    from mlops_platform.settings import ServingSettings, Settings

    settings = Settings(
        home=tmp_path / "home",
        mlflow_tracking_uri=models.registry.tracking_uri,
        mlflow_artifact_root=models.registry.artifact_root,
        serving=ServingSettings(url=local.url),
    )
    token_file(settings.home).parent.mkdir(parents=True)
    token_file(settings.home).write_text(TOKEN + "\n")  # as `mlops-platform serve` generates it
    defs = build_definitions(settings, [churn])
    registry = models.registry
    registry.promote("churn", "1")
    registry.promote("churn", "2")  # version 2 replaced version 1: a rollback goes back to 1
    endpoint_key = dg.AssetKey(["churn", "endpoint"])
    assets = list(defs.assets or [])

    def materialize(selection) -> dg.ExecuteInProcessResult:
        return dg.materialize(assets, selection=selection, resources=defs.resources, instance=instance)

    with dg.instance_for_test() as instance:
        materialize(dg.AssetSelection.assets(endpoint_key))
        assert _served(local) == "2"
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor

        rolled = defs.resolve_job_def("churn_rollback").execute_in_process(instance=instance)
        assert rolled.success and registry.alias_version("churn", CHAMPION) == "1"
        [check] = materialize(dg.AssetSelection.checks_for_assets(endpoint_key)).get_asset_check_evaluations()
        assert not check.passed and "serves version 2; the champion is 1" in check.description

        # No person: the automation condition requests the endpoint, and its run redeploys version 1.
        evaluated = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        graph = defs.resolve_asset_graph()
        assert {k for k in graph.get_all_asset_keys() if evaluated.get_num_requested(k)} == {endpoint_key}
        result = materialize(dg.AssetSelection.assets(endpoint_key) | dg.AssetSelection.checks_for_assets(endpoint_key))
        [check] = result.get_asset_check_evaluations()
        assert check.passed and _served(local) == "1"


def test_an_unconfigured_cloud_deployer_fails_the_endpoint_naming_the_variables(models, churn) -> None:
    from mlops_platform.serving.deployers.base import UnconfiguredDeployer

    models.registry.client().set_registered_model_alias("churn", CHAMPION, "1")
    endpoint, check = build_endpoint(Stage(churn))
    deployer = UnconfiguredDeployer(kind="sagemaker", missing=["MLOPS_SAGEMAKER_ROLE_ARN", "MLOPS_SERVING_IMAGE_URI"])
    result = dg.materialize(
        [endpoint, check], resources={"registry": models.registry, "deployer": deployer}, raise_on_error=False
    )
    assert not result.success
    message = result.failure_data_for_node("churn__endpoint").error.message
    assert "the sagemaker deployer is not configured: set MLOPS_SAGEMAKER_ROLE_ARN, MLOPS_SERVING_IMAGE_URI" in message
