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
        ):
            if value is not None and not is_local(value):
                raise SettingsError(f"{variable}={value!r}: the local profile keeps its data on local disk")

    def pickle_io_manager(self, root: str) -> Any:
        import dagster as dg

        return dg.FilesystemIOManager(base_dir=root.removeprefix("file://"))

    def default_pickle_root(self) -> str:
        return str(self.settings.home / "objects")
