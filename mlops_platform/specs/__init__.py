"""Model specs. By default every module in this package that defines ``SPEC`` is a registered model;
MLOPS_SPECS names a team's own modules instead (each defines ``SPEC`` or ``SPECS``)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence

from mlops_platform.specs.base import Feature, ModelSpec, Source

__all__ = ["Feature", "ModelSpec", "Source", "discover_specs", "get_spec"]


def discover_specs(modules: Sequence[str] = ()) -> list[ModelSpec]:
    """The specs of ``modules`` (each defines ``SPEC`` or ``SPECS``), or by default every reference
    spec in this package; sorted by name. Two specs with one name are an error naming both modules."""
    if not modules:
        modules = [f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if info.name != "base"]
    found: dict[str, tuple[ModelSpec, str]] = {}
    for name in modules:
        for spec in _specs_of(name):
            if spec.name in found:
                raise ValueError(f"two specs are named {spec.name!r}: one in {found[spec.name][1]}, one in {name}")
            found[spec.name] = (spec, name)
    return [found[name][0] for name in sorted(found)]


def _specs_of(module_name: str) -> list[ModelSpec]:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"MLOPS_SPECS names {module_name!r}, which cannot be imported: {exc}") from exc
    if hasattr(module, "SPECS"):
        specs = list(module.SPECS)
    elif hasattr(module, "SPEC"):
        specs = [module.SPEC]
    else:
        if module_name.startswith(f"{__name__}."):
            return []  # a helper module of the reference package
        raise ValueError(f"module {module_name} defines neither SPEC nor SPECS")
    for spec in specs:
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"{module_name} holds a {type(spec).__name__} where a ModelSpec belongs")
    return specs


def get_spec(name: str, specs: list[ModelSpec] | None = None) -> ModelSpec:
    """The spec called ``name``; the error lists the known names."""
    known = {spec.name: spec for spec in (specs if specs is not None else discover_specs())}
    if name not in known:
        raise KeyError(f"no model spec named {name!r}; known: {', '.join(sorted(known)) or 'none'}")
    return known[name]
