"""Profiles: one class per place the platform runs, chosen by the name in MLOPS_PROFILE.

Adding a profile is one module with a ``Profile`` subclass and one line in ``PROFILES`` (or, from a
team's own package, one call to ``register_profile``).
"""

from __future__ import annotations

from mlops_platform.profiles.aws import AwsProfile
from mlops_platform.profiles.azure import AzureProfile
from mlops_platform.profiles.base import CloudProfile, Profile
from mlops_platform.profiles.gcp import GcpProfile
from mlops_platform.profiles.local import LocalProfile

__all__ = ["PROFILES", "CloudProfile", "Profile", "profile_class", "register_profile"]

PROFILES: dict[str, type[Profile]] = {
    LocalProfile.name: LocalProfile,
    AwsProfile.name: AwsProfile,
    GcpProfile.name: GcpProfile,
    AzureProfile.name: AzureProfile,
}


def register_profile(cls: type[Profile]) -> type[Profile]:
    """Make ``cls`` selectable as MLOPS_PROFILE=<cls.name>; usable as a class decorator."""
    existing = PROFILES.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"profile {cls.name!r} is already registered by {existing.__module__}.{existing.__qualname__}")
    PROFILES[cls.name] = cls
    return cls


def profile_class(name: str) -> type[Profile]:
    """The class registered under ``name``; the error lists the known names."""
    from mlops_platform.settings import SettingsError

    if name not in PROFILES:
        raise SettingsError(f"MLOPS_PROFILE={name!r} is not a profile; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
