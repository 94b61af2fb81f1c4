"""The local profile: everything on this machine's disk, under MLOPS_HOME."""

from __future__ import annotations

from typing import Any

from mlops_platform.profiles.base import Profile, is_local


class LocalProfile(Profile):
    name = "local"

    def validate(self) -> None:
        from mlops_platform.settings import SettingsError

        for variable, value in (
            ("MLOPS_STORAGE_ROOT", self.settings.storage_root),
            ("MLOPS_OBJECTS_ROOT", self.settings.objects_root),
            ("MLOPS_LANDING_ROOT", self.settings.landing_override),
            ("MLOPS_QUARANTINE_ROOT", self.settings.quarantine_override),
        ):
            if value is not None and not is_local(value):
                raise SettingsError(f"{variable}={value!r}: the local profile keeps its data on local disk")
        if self.settings.landing_queue:
            raise SettingsError("MLOPS_LANDING_QUEUE: the local profile lists its landing folder; it has no queue")

    def object_store_pickles(self, root: str) -> Any:
        from mlops_platform.settings import SettingsError

        # validate() already refuses such a root; this is the contract's answer if called directly.
        raise SettingsError(f"MLOPS_OBJECTS_ROOT={root!r}: the local profile keeps its data on local disk")

    def default_pickle_root(self) -> str:
        return str(self.settings.home / "objects")

    def deployer(self) -> Any:
        """The running ``mlops-platform serve`` app at MLOPS_SERVING_URL; its token is MLOPS_SERVING_TOKEN
        (as an EnvVar) or, unset, the one the app generated under MLOPS_HOME/serving/token."""
        import dagster as dg

        from mlops_platform.serving.deployers.local import LocalDeployer
        from mlops_platform.serving.token import TOKEN_VAR, token_file

        serving = self.settings.serving
        return LocalDeployer(
            url=serving.url,
            token=dg.EnvVar(TOKEN_VAR) if serving.token_set else None,
            token_file=str(token_file(self.settings.home)),
        )
