"""The one profile resolver.

Every environment-dependent choice (where data lives, which MLflow store, which IO managers) is made
here and nowhere else. Nothing is read from the environment at import time: callers ask
``Settings.from_env()`` when definitions load, and ``resources_for(settings)`` returns the whole
resource set of that profile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Profile = Literal["local", "aws", "gcp", "azure"]
PROFILES: tuple[str, ...] = ("local", "aws", "gcp", "azure")
NOT_YET_AVAILABLE = {"aws", "gcp", "azure"}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseModel):
    """Resolved platform settings. Build with ``Settings.from_env()`` or directly in tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = "local"
    home: Path = Field(description="Root folder of local state (MLOPS_HOME).")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking/registry backend; default SQLite under home."
    )
    mlflow_artifact_root: str | None = Field(
        default=None, description="Where MLflow stores artifacts; default a folder under home."
    )
    mlflow_ui_url: str = Field(default="http://127.0.0.1:5000", description="Base URL used for MLflow run links.")

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        profile = env.get("MLOPS_PROFILE", "local").strip().lower() or "local"
        if profile not in PROFILES:
            raise SettingsError(f"MLOPS_PROFILE={profile!r} is not a profile; choose one of {', '.join(PROFILES)}")
        if profile in NOT_YET_AVAILABLE:
            raise SettingsError(f"MLOPS_PROFILE={profile!r} is not available in this release; use 'local'")
        home = Path(env.get("MLOPS_HOME") or Path.cwd() / ".mlops")
        return cls(
            profile=profile,  # type: ignore[arg-type]
            home=home,
            mlflow_tracking_uri=env.get("MLOPS_MLFLOW_TRACKING_URI") or None,
            mlflow_artifact_root=env.get("MLOPS_MLFLOW_ARTIFACT_ROOT") or None,
            mlflow_ui_url=env.get("MLOPS_MLFLOW_UI_URL") or "http://127.0.0.1:5000",
        )

    # Locations derived from the profile. Callers never build these paths themselves.
    @property
    def lake_root(self) -> str:
        return str(self.home / "lake")

    @property
    def landing_root(self) -> Path:
        return self.home / "landing"

    @property
    def quarantine_root(self) -> Path:
        return self.home / "quarantine"

    @property
    def pickle_root(self) -> str:
        return str(self.home / "objects")

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return self.mlflow_artifact_root or (self.home / "mlflow" / "artifacts").as_uri()


def executor_for(settings: Settings) -> Any:
    """How a run executes its steps. Locally, in the run's own process: a step subprocess would
    re-import the code location (seconds each on 2 cores) for steps that run one after another anyway.
    """
    import dagster as dg

    return dg.in_process_executor


def resources_for(settings: Settings) -> dict[str, Any]:
    """The whole resource set of the profile: IO managers, landing zone and MLflow registry."""
    import dagster as dg

    from mlops_platform.automation.operations import OPERATIONS_EXPERIMENT, lazy_mlflow_tracking
    from mlops_platform.storage.io_manager import DeltaIOManager, Lake
    from mlops_platform.storage.landing import LandingZone
    from mlops_platform.tracking.registry import MlflowRegistry

    lake = Lake(root_uri=settings.lake_root)
    return {
        "lake": lake,
        "io_manager": dg.FilesystemIOManager(base_dir=settings.pickle_root),
        "delta_io_manager": DeltaIOManager(lake=lake),
        "landing": LandingZone(
            landing_root=str(settings.landing_root),
            quarantine_root=str(settings.quarantine_root),
        ),
        "registry": MlflowRegistry(
            tracking_uri=settings.tracking_uri,
            artifact_root=settings.artifact_root,
            ui_url=settings.mlflow_ui_url,
        ),
        "mlflow": lazy_mlflow_tracking.configured(
            {
                "experiment_name": OPERATIONS_EXPERIMENT,
                "mlflow_tracking_uri": settings.tracking_uri,
                "artifact_root": settings.artifact_root,
            }
        ),
    }
