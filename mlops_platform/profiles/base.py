"""The contract every profile (local disk or one cloud) fulfils.

A profile is everything that differs between where the platform runs: the Delta lake's storage
options, the IO manager of pickled objects, the MLflow artifact root, the variables that SDK-configured
clients need, the Dagster instance's compute logs. One class per profile, chosen by name from the
registry in ``mlops_platform.profiles``; nothing outside this package branches on the cloud.

Every method is pure configuration: it reads ``self.settings``, talks to no service and imports no
cloud SDK (the objects it returns import theirs when a step first uses them), so the code location
loads fast and the same settings always give the same result (idempotent).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mlops_platform.settings import Settings

MLFLOW_PREFIX = "mlflow"
COMPUTE_LOGS_PREFIX = "dagster/compute-logs"
OBJECTS_DIR = "_objects"


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def bucket_and_key(uri: str) -> tuple[str, str]:
    """(bucket or container, key prefix) of an object-store URI; abfs's ``container@account`` too."""
    rest = uri.split("://", 1)[1].rstrip("/")
    bucket, _, key = rest.partition("/")
    return bucket.split("@", 1)[0], key


class Profile(abc.ABC):
    """One place the platform can run. Subclasses set ``name`` and implement the abstract methods.

    Construct with validated ``Settings``; ``validate`` is called by ``Settings`` itself, so a
    ``Settings`` object always holds a profile whose settings fit.
    """

    name: ClassVar[str]
    # URI schemes of the profile's object store, as delta-rs and fsspec name them; () = local disk only.
    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings):
        self.settings = settings

    @abc.abstractmethod
    def validate(self) -> None:
        """Raise ``SettingsError`` naming the variable when a setting does not fit this profile
        (a missing bucket, another cloud's URI, an account this cloud needs). Never touches the network."""

    def delta_storage_options(self) -> dict[str, str]:
        """What delta-rs needs besides the URI (timeouts here; endpoint, region, account in subclasses).
        Never a credential: those come from the SDK's default chain."""
        options: dict[str, str] = {}
        seconds = self.settings.storage_timeout_seconds
        if seconds:
            options["timeout"] = f"{seconds}s"
            options["connect_timeout"] = f"{min(seconds, 10)}s"
        if self.settings.storage_retry_seconds:
            options["retry_timeout"] = f"{self.settings.storage_retry_seconds}s"
        return options

    def pickle_io_manager(self, root: str) -> Any:
        """The IO manager (resource key ``io_manager``) that pickles non-tabular outputs under ``root``:
        Dagster's filesystem one for a local path (any profile may keep objects on a mounted volume),
        the profile's object-store one otherwise. It creates no client until a step uses it."""
        if is_local(root):
            import dagster as dg

            return dg.FilesystemIOManager(base_dir=root.removeprefix("file://"))
        return self.object_store_pickles(root)

    @abc.abstractmethod
    def object_store_pickles(self, root: str) -> Any:
        """The pickle IO manager for ``root`` on this profile's object store (a URI of ``schemes``)."""

    def default_pickle_root(self) -> str:
        """Where pickled outputs go when MLOPS_OBJECTS_ROOT is unset: inside the lake prefix, so an
        identity scoped to the lake can write them."""
        return f"{self.settings.lake_root.rstrip('/')}/{OBJECTS_DIR}"

    def artifact_root(self, bucket_root: str) -> str:
        """MLflow's artifact root beside the lake (``bucket_root`` is the URI above the lake root)."""
        return f"{bucket_root}/{MLFLOW_PREFIX}"

    def client_environment(self) -> dict[str, str]:
        """Variables that SDK-configured clients (MLflow's artifact stores, google-cloud-storage) need
        for an endpoint override, which they read only from the environment. Nothing here is a secret."""
        return {}

    def compute_log_manager(self, root: str, upload_interval: int) -> dict[str, Any] | None:
        """The instance's ``compute_logs`` block for logs under ``root``; None keeps them on local disk."""
        return None

    def landing_zone(self, limits: dict[str, int]) -> Any:
        """The landing zone (resource key ``landing``, a ``storage.landing.LandingZone``) at the settings'
        landing and quarantine locations, with the landing limits set in the environment (``limits``):
        a folder on disk for a local path (any profile may keep it on a mounted volume), the profile's
        object store otherwise. Creates no client: the zone connects when a tick or a step first lists."""
        landing, quarantine = self.settings.landing_location, self.settings.quarantine_location
        if is_local(landing):
            from mlops_platform.storage.landing_local import LocalLandingZone

            return LocalLandingZone(
                landing_root=landing.removeprefix("file://"),
                quarantine_root=quarantine.removeprefix("file://"),
                **limits,
            )
        return self.object_landing_zone(landing, quarantine, limits)

    def landing_queue(self) -> Any:
        """The notification queue (resource key ``landing_queue``, a ``storage.landing_queues.LandingQueue``)
        at MLOPS_LANDING_QUEUE, or None: the landing sensors list the landing zone. Profiles whose cloud
        delivers object-created notifications to a queue override this."""
        return None

    def object_landing_zone(self, landing: str, quarantine: str, limits: dict[str, int]) -> Any:
        """The landing zone on this profile's object store (``landing``/``quarantine``: URIs of ``schemes``)."""
        from mlops_platform.settings import SettingsError

        raise SettingsError(f"MLOPS_LANDING_ROOT={landing!r}: the {self.name} profile has no object store")

    @abc.abstractmethod
    def deployer(self) -> Any:
        """The serving deployer (resource key ``deployer``, a ``serving.deployers.base.Deployer``) that the
        endpoint asset deploys champions through: the local serving app, SageMaker, Vertex AI, Azure ML.

        Contract: built from ``self.settings.serving`` alone, no network and no SDK import (the deployer
        creates its clients on first use); a secret (the serving token) reaches it as a
        ``dagster.EnvVar``. When a variable the target needs is unset, return
        ``unconfigured(kind, [variables])``: the definitions still load and the endpoint
        materialization fails with a message naming the variables."""

    def metrics_sink(self) -> Any:
        """The metrics sink (resource key ``metrics``, a ``profiles.metrics.MetricsSink``) that drift scores,
        realised and estimated performance and retrain decisions are also sent to: the cloud's own
        monitoring service (CloudWatch, Cloud Monitoring, Azure Monitor).

        Contract: built from ``self.settings`` alone, no network and no SDK import (the sink creates its
        client when it first sends; credentials come from the SDK's default chain, never a setting), and
        the same settings give an equal sink (idempotent). When a variable the service needs is unset,
        return ``UnconfiguredMetricsSink(missing=[variables])``: the definitions load, and each send is
        a warning naming the variables. The sink's ``put`` raises ``MetricsSinkError``; callers send through
        ``record``, which logs that as a warning, so a step never fails for its metrics. This default
        (local, and any profile without a monitoring service) sends nothing: nothing leaves the machine."""
        from mlops_platform.profiles.metrics import LocalMetricsSink

        return LocalMetricsSink()


def unconfigured(kind: str, missing: list[str]) -> Any:
    """A deployer whose every call fails naming the ``missing`` variables."""
    from mlops_platform.serving.deployers.base import UnconfiguredDeployer

    return UnconfiguredDeployer(kind=kind, missing=missing)


def missing_settings(required: dict[str, Any]) -> list[str]:
    """The variable names in ``required`` (variable -> value) whose value is unset."""
    return [variable for variable, value in required.items() if not value]


class CloudProfile(Profile):
    """A profile whose lake lives in an object store: MLOPS_STORAGE_ROOT is required and must use
    one of ``schemes`` (or be a local path, such as a mounted volume)."""

    def validate(self) -> None:
        from mlops_platform.settings import SettingsError

        settings = self.settings
        expected = " or ".join(f"{s}://" for s in self.schemes)
        if not settings.storage_root:
            raise SettingsError(
                f"MLOPS_PROFILE={self.name} needs MLOPS_STORAGE_ROOT, the lake's root URI ({expected}...)"
            )
        for variable, value in (
            ("MLOPS_STORAGE_ROOT", settings.storage_root),
            ("MLOPS_OBJECTS_ROOT", settings.objects_root),
            ("MLOPS_LANDING_ROOT", settings.landing_override),
            ("MLOPS_QUARANTINE_ROOT", settings.quarantine_override),
        ):
            if value is not None and not is_local(value) and value.split("://", 1)[0].lower() not in self.schemes:
                raise SettingsError(
                    f"{variable}={value!r} is not a URI of the {self.name} profile; expected {expected}..."
                )
        validate_landing(settings)


def validate_landing(settings: Settings) -> None:
    """The quarantine lives on the same store as the landing zone (a move between stores is no move),
    and a notification queue needs a landing zone on the object store it watches."""
    from mlops_platform.settings import SettingsError

    landing, quarantine = settings.landing_location, settings.quarantine_location
    if is_local(landing) != is_local(quarantine) or (
        not is_local(landing) and landing.split("://", 1)[0] != quarantine.split("://", 1)[0]
    ):
        raise SettingsError(
            f"MLOPS_QUARANTINE_ROOT={quarantine!r} must be on the same storage as the landing zone ({landing!r})"
        )
    if settings.landing_queue and is_local(landing):
        raise SettingsError(
            f"MLOPS_LANDING_QUEUE is set but the landing zone {landing!r} is on local disk; the queue carries "
            "an object store's notifications (set MLOPS_LANDING_ROOT to the bucket, or unset the queue)"
        )
