"""The contract every serving target fulfils (the local app, SageMaker, Vertex AI, Azure ML).

A deployer is a Dagster resource chosen by the profile (resource key ``deployer``); the endpoint
asset calls it and never branches on the cloud. Every mutating method has a dry run that returns the
exact requests it would send, and sends nothing.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any

import dagster as dg


class DeployError(RuntimeError):
    """The target refused or failed a deployment; the previous deployment keeps serving.
    The message names the target, the model and the version."""


@dataclass(frozen=True)
class PlannedRequest:
    """One request a deployer sends: method, URL (or API operation) and body."""

    method: str
    url: str
    body: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Deployment:
    """What a target serves for one model."""

    target: str
    model: str
    version: str | None
    url: str
    changed: bool = False
    details: dict[str, Any] = field(default_factory=dict)


class Deployer(dg.ConfigurableResource, abc.ABC):
    """Puts a registered model version behind an HTTP endpoint on one target."""

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """A short name of the target kind: local, sagemaker, vertex, azureml."""

    @abc.abstractmethod
    def deploy(self, model: str, version: str, dry_run: bool = False) -> Deployment | list[PlannedRequest]:
        """Serve ``version`` of ``model``. Idempotent: deploying the version already served changes
        nothing (``changed=False``). Returns when the new version serves, or raises DeployError with
        the previous deployment still serving. ``dry_run``: the requests it would send, sending none
        that mutate (reads to decide the plan are allowed)."""

    @abc.abstractmethod
    def describe(self, model: str) -> Deployment | None:
        """What the target serves for ``model`` now (None: nothing). Never mutates."""

    @abc.abstractmethod
    def delete(self, model: str, dry_run: bool = False) -> bool | list[PlannedRequest]:
        """Stop serving ``model``; True when something was removed. Idempotent."""

    @abc.abstractmethod
    def smoke(self, model: str, payload: dict[str, Any]) -> tuple[str, float]:
        """Send one scoring request (MLflow format ``payload``); (version that answered, seconds)."""


def registry_artifact_uri(tracking_uri: str, model: str, version: str) -> str:
    """Where the registry keeps the MLflow model folder of ``model`` version ``version`` (its download URI)."""
    from mlflow import MlflowClient

    try:
        return str(
            MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).get_model_version_download_uri(
                model, version
            )
        )
    except Exception as exc:
        raise DeployError(f"{model} version {version}: the registry has no artifact location ({exc})") from exc


class UnconfiguredDeployer(Deployer):
    """The deployer of a profile whose serving settings are incomplete: the definitions load, and every
    call fails with a message naming the variables to set (the endpoint materialization shows it)."""

    kind: str
    missing: list[str]

    @property
    def target(self) -> str:
        return self.kind

    def _refuse(self) -> DeployError:
        return DeployError(f"the {self.kind} deployer is not configured: set {', '.join(self.missing)}")

    def deploy(self, model: str, version: str, dry_run: bool = False) -> Deployment | list[PlannedRequest]:
        raise self._refuse()

    def describe(self, model: str) -> Deployment | None:
        raise self._refuse()

    def delete(self, model: str, dry_run: bool = False) -> bool | list[PlannedRequest]:
        raise self._refuse()

    def smoke(self, model: str, payload: dict[str, Any]) -> tuple[str, float]:
        raise self._refuse()
