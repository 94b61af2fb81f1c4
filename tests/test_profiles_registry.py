"""A fifth profile is one class and one registration: nothing else in the platform changes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from mlops_platform.definitions import build_definitions
from mlops_platform.profiles import PROFILES, register_profile
from mlops_platform.profiles.aws import AwsProfile
from mlops_platform.settings import Settings, SettingsError, instance_config_for, resources_for


class MinioProfile(AwsProfile):
    """S3 API on premises: always an endpoint, path-style, plain HTTP allowed inside the cluster."""

    name = "minio"

    def validate(self) -> None:
        super().validate()
        if not self.settings.storage_endpoint_url:
            raise SettingsError("MLOPS_PROFILE=minio needs MLOPS_STORAGE_ENDPOINT_URL, the MinIO server")

    def delta_storage_options(self) -> dict[str, str]:
        return {**super().delta_storage_options(), "AWS_S3_ALLOW_UNSAFE_RENAME": "false"}

    def compute_log_manager(self, root: str, upload_interval: int) -> dict[str, Any] | None:
        return None  # logs stay on the pods' volume on premises


@pytest.fixture
def minio():
    register_profile(MinioProfile)
    yield
    PROFILES.pop("minio")


def test_a_profile_defined_here_is_selected_by_name_and_builds_the_platform(minio, tmp_path: Path) -> None:
    env = {
        "MLOPS_PROFILE": "minio",
        "MLOPS_HOME": str(tmp_path),
        "MLOPS_STORAGE_ROOT": "s3://lake-bucket/lake",
        "MLOPS_STORAGE_ENDPOINT_URL": "http://minio.internal:9000",
    }
    settings = Settings.from_env(env)
    assert isinstance(settings.cloud, MinioProfile)
    resources = resources_for(settings)
    assert resources["lake"].storage_options == {
        "AWS_ENDPOINT_URL": "http://minio.internal:9000",
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "false",
    }
    assert resources["registry"].artifact_root == "s3://lake-bucket/mlflow"
    assert instance_config_for(settings) == {}
    dg.Definitions.validate_loadable(build_definitions(settings))


def test_the_new_profile_validates_its_own_settings(minio, tmp_path: Path) -> None:
    env = {"MLOPS_PROFILE": "minio", "MLOPS_HOME": str(tmp_path), "MLOPS_STORAGE_ROOT": "s3://b/lake"}
    with pytest.raises(SettingsError, match="MLOPS_PROFILE=minio needs MLOPS_STORAGE_ENDPOINT_URL"):
        Settings.from_env(env)


def test_an_unknown_profile_lists_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=re.escape("MLOPS_PROFILE='nimbus' is not a profile; choose one of local")):
        Settings.from_env({"MLOPS_PROFILE": "nimbus", "MLOPS_HOME": str(tmp_path)})


def test_registering_another_class_under_a_taken_name_is_refused() -> None:
    class Impostor(AwsProfile):
        name = "aws"

    with pytest.raises(
        ValueError, match=re.escape("profile 'aws' is already registered by mlops_platform.profiles.aws")
    ):
        register_profile(Impostor)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MLOPS_MLFLOW_TRACKING_URI", "bogus://x", "MLOPS_MLFLOW_TRACKING_URI has scheme 'bogus'"),
        ("MLOPS_STORAGE_ENDPOINT_URL", "minio:9000", "MLOPS_STORAGE_ENDPOINT_URL must be an http:// or https:// URL"),
        ("MLOPS_STORAGE_ENDPOINT_URL", "http://host:port", "MLOPS_STORAGE_ENDPOINT_URL has a malformed port"),
        ("MLOPS_MLFLOW_ARTIFACT_ROOT", "relative/dir", "MLOPS_MLFLOW_ARTIFACT_ROOT='relative/dir' must be an absolute"),
        ("MLOPS_MLFLOW_ARTIFACT_ROOT", "ftps2://x/y", "MLOPS_MLFLOW_ARTIFACT_ROOT has scheme 'ftps2'"),
        ("MLOPS_MLFLOW_UI_URL", "127.0.0.1:5000", "MLOPS_MLFLOW_UI_URL must be an http:// or https:// URL"),
        ("MLOPS_SPECS", "my models.churn", "MLOPS_SPECS names 'my models.churn'"),
    ],
)
def test_malformed_urls_are_refused_naming_the_variable(variable, value, message, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({"MLOPS_HOME": str(tmp_path), variable: value})


def test_a_home_that_is_a_file_or_empty_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "home.txt"
    file.write_text("not a folder")
    with pytest.raises(SettingsError, match=r"MLOPS_HOME=.*is a file, not a folder"):
        Settings.from_env({"MLOPS_HOME": str(file)})
    with pytest.raises(SettingsError, match="MLOPS_HOME is set but empty"):
        Settings.from_env({"MLOPS_HOME": "  "})


def test_the_tracking_uri_reaches_the_ui_as_a_variable_name_not_a_password(monkeypatch, tmp_path: Path) -> None:
    uri = "postgresql://mlflow:s3cr3t@db.internal:5432/mlflow"
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    resources = resources_for(Settings.from_env(), secrets_as_env_vars=True)
    registry = resources["registry"]
    # What the webserver shows as the resource's configuration: the variable, not its value.
    configured = registry._get_non_default_public_field_values()["tracking_uri"]
    assert isinstance(configured, dg.EnvVar) and configured.env_var_name == "MLOPS_MLFLOW_TRACKING_URI"
    assert "s3cr3t" not in repr(registry._get_non_default_public_field_values())
    # What a step's resource sees once Dagster resolves it.
    with dg.build_resources({"registry": registry}) as built:
        assert built.registry.tracking_uri == uri
    assert resources_for(Settings.from_env())["registry"].tracking_uri == uri  # the CLI's direct use


def test_landing_limits_are_settings(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"MLOPS_HOME": str(tmp_path), "MLOPS_LANDING_MAX_ROWS": "1000", "MLOPS_LANDING_MAX_FUTURE_DAYS": "0"}
    )
    landing = resources_for(settings)["landing"]
    assert (landing.max_rows, landing.max_future_days) == (1000, 0)
    with pytest.raises(SettingsError, match=re.escape("MLOPS_LANDING_MAX_FILE_BYTES='1GB' is not a whole number")):
        Settings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_LANDING_MAX_FILE_BYTES": "1GB"})
    with pytest.raises(SettingsError, match=re.escape("MLOPS_LANDING_MAX_ROWS='0' must be positive")):
        Settings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_LANDING_MAX_ROWS": "0"})
