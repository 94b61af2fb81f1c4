"""Model specs. Every module in this package that defines ``SPEC`` is a registered model."""

from __future__ import annotations

import importlib
import pkgutil

from mlops_platform.specs.base import Feature, ModelSpec, Source

__all__ = ["Feature", "ModelSpec", "Source", "discover_specs", "get_spec"]


def discover_specs() -> list[ModelSpec]:
    """All specs defined in this package, sorted by name; duplicate names are an error."""
    specs: dict[str, ModelSpec] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        spec = getattr(module, "SPEC", None)
        if spec is None:
            continue
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"{module.__name__}.SPEC is a {type(spec).__name__}, not a ModelSpec")
        if spec.name in specs:
            raise ValueError(f"two specs are named {spec.name!r} ({module.__name__})")
        specs[spec.name] = spec
    return [specs[name] for name in sorted(specs)]


def get_spec(name: str, specs: list[ModelSpec] | None = None) -> ModelSpec:
    """The spec called ``name``; the error lists the known names."""
    known = {spec.name: spec for spec in (specs if specs is not None else discover_specs())}
    if name not in known:
        raise KeyError(f"no model spec named {name!r}; known: {', '.join(sorted(known)) or 'none'}")
    return known[name]
