"""The code location: loads, holds both families, and stays light to import."""

import subprocess
import sys

import dagster as dg
import pytest

from mlops_platform.definitions import build_definitions, defs
from mlops_platform.settings import Settings, SettingsError


def test_definitions_load_with_both_families(settings) -> None:
    definitions = build_definitions(settings)
    graph = definitions.resolve_asset_graph()
    for spec in ("churn", "delivery_eta"):
        for name in ("raw", "labels", "features", "training_set", "model", "evaluation", "champion", "predictions"):
            key = dg.AssetKey([spec, name])
            assert key in graph.get_all_asset_keys()
            assert graph.get(key).group_name == spec
        definitions.resolve_job_def(f"{spec}_train")
        definitions.resolve_job_def(f"{spec}_rollback")
        definitions.resolve_schedule_def(f"{spec}_daily_ingest")
        assert definitions.resolve_sensor_def(f"{spec}_landing_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    automation = definitions.resolve_sensor_def("mlops_automation")
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    dg.Definitions.validate_loadable(definitions)


def test_the_decorated_loader_builds_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    loaded = defs()
    assert loaded.resources["lake"].root_uri == str(tmp_path / "lake")


def test_the_executor_is_a_setting(tmp_path) -> None:
    from mlops_platform.settings import executor_for

    assert executor_for(Settings(home=tmp_path)) is dg.in_process_executor
    assert executor_for(Settings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_EXECUTOR": "k8s"})).name == "k8s"
    assert executor_for(Settings(home=tmp_path, executor="multiprocess")) is dg.multiprocess_executor
    with pytest.raises(SettingsError, match="MLOPS_EXECUTOR='celery' is not an executor"):
        Settings.from_env({"MLOPS_EXECUTOR": "celery"})


def test_profile_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match="MLOPS_PROFILE='moon' is not a profile"):
        Settings.from_env({"MLOPS_PROFILE": "moon"})
    settings = Settings.from_env({"MLOPS_HOME": "/srv/mlops"})
    assert settings.tracking_uri == "sqlite:////srv/mlops/mlflow/mlflow.db"
    assert settings.artifact_root == "file:///srv/mlops/mlflow/artifacts"
    custom = Settings.from_env({"MLOPS_HOME": "/x", "MLOPS_MLFLOW_TRACKING_URI": "postgresql://db/mlflow"})
    assert custom.tracking_uri == "postgresql://db/mlflow"
    # The cloud profiles are available: one setting (plus the bucket) moves the lake and its siblings.
    with pytest.raises(SettingsError, match="MLOPS_PROFILE=aws needs MLOPS_STORAGE_ROOT"):
        Settings.from_env({"MLOPS_PROFILE": "aws", "MLOPS_HOME": "/x"})
    aws = Settings.from_env({"MLOPS_PROFILE": "aws", "MLOPS_HOME": "/x", "MLOPS_STORAGE_ROOT": "s3://data/lake"})
    assert (aws.profile, aws.lake_root, aws.artifact_root) == ("aws", "s3://data/lake", "s3://data/mlflow")
    assert aws.tracking_uri == "sqlite:////x/mlflow/mlflow.db"  # one machine; a team sets a database URL


def test_loading_the_code_location_imports_no_heavy_ml_library(tmp_path) -> None:
    code = (
        "import sys; import mlops_platform.definitions as d; d.defs();"
        "heavy = [m for m in ('mlflow', 'sklearn', 'deltalake', 'dagster_mlflow') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"MLOPS_HOME": str(tmp_path), "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
