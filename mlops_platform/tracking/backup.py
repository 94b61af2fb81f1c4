"""Export and import of the MLflow model registry, for disaster recovery.

An export is a folder (local or on a bucket, through MLflow's artifact repositories): ``registry.json``
with every registered model, version, alias and tag and each version's run parameters, metrics and
tags, plus ``models/<name>/<version>/`` holding the model files. Importing into an empty registry
recreates the versions in order, so version numbers, aliases and the champion history come back as
they were; the versions' files are uploaded under the target registry's artifact root.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_platform.tracking.registry import PREVIOUS_CHAMPION_TAG, MlflowRegistry

FORMAT_VERSION = 1
MANIFEST = "registry.json"
ORIGINAL_VERSION_TAG = "mlops.restored_from_version"


class BackupError(RuntimeError):
    """An export or import cannot proceed; the message says what and where."""


@dataclass(frozen=True)
class BackupSummary:
    location: str
    models: dict[str, int]  # name -> number of versions


def _artifact_repository(uri: str):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(uri if "://" in uri else Path(uri).resolve().as_uri())


def export_registry(registry: MlflowRegistry, destination: str, models: list[str] | None = None) -> BackupSummary:
    """Write every registered model (or only ``models``) with all versions to ``destination``."""
    from mlflow.artifacts import download_artifacts

    client = registry.client()
    registry._mlflow()  # download_artifacts resolves models:/ URIs through the global tracking URI
    names = models or sorted(m.name for m in client.search_registered_models())
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "tracking_uri": registry.tracking_uri,
        "models": [],
    }
    summary: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-export-") as tmp:
        root = Path(tmp)
        for name in names:
            model = client.get_registered_model(name)
            versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
            entry: dict[str, Any] = {
                "name": name,
                "description": model.description or "",
                "tags": dict(model.tags),
                "aliases": {a: str(v) for a, v in model.aliases.items()} if isinstance(model.aliases, dict) else {},
                "versions": [],
            }
            if not entry["aliases"]:
                entry["aliases"] = {alias: str(v.version) for v in versions for alias in (v.aliases or [])}
            for version in versions:
                run = client.get_run(version.run_id) if version.run_id else None
                experiment = client.get_experiment(run.info.experiment_id).name if run else None
                target = root / "models" / name / str(version.version)
                download_artifacts(f"models:/{name}/{version.version}", dst_path=str(target))
                entry["versions"].append(
                    {
                        "version": str(version.version),
                        "description": version.description or "",
                        "tags": dict(version.tags),
                        "run": None
                        if run is None
                        else {
                            "experiment": experiment,
                            "params": dict(run.data.params),
                            "metrics": dict(run.data.metrics),
                            "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
                        },
                    }
                )
            manifest["models"].append(entry)
            summary[name] = len(versions)
        (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _artifact_repository(destination).log_artifacts(str(root))
    return BackupSummary(destination, summary)


def import_registry(registry: MlflowRegistry, source: str) -> BackupSummary:
    """Recreate the exported models in ``registry``, which must not already hold any of them."""
    client = registry.client()
    mlflow = registry._mlflow()
    with tempfile.TemporaryDirectory(prefix="mlops-import-") as tmp:
        local = Path(_artifact_repository(source).download_artifacts("", dst_path=tmp))
        manifest_path = local / MANIFEST
        if not manifest_path.is_file():
            raise BackupError(f"{source} holds no {MANIFEST}: not a registry export")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT_VERSION:
            raise BackupError(f"{source}: export format {manifest.get('format')!r}, expected {FORMAT_VERSION}")
        existing = {m.name for m in client.search_registered_models()}
        clashes = sorted(existing & {m["name"] for m in manifest["models"]})
        if clashes:
            raise BackupError(f"the target registry already holds {clashes}; import into an empty registry")
        summary: dict[str, int] = {}
        for entry in manifest["models"]:
            name = entry["name"]
            client.create_registered_model(name, tags=entry["tags"], description=entry["description"] or None)
            mapping: dict[str, str] = {}
            for exported in entry["versions"]:
                run_info = exported["run"] or {"experiment": f"mlops/{name}", "params": {}, "metrics": {}, "tags": {}}
                experiment_id = registry.experiment_id(run_info["experiment"] or f"mlops/{name}")
                run = client.create_run(experiment_id, tags=run_info["tags"])
                for key, value in run_info["params"].items():
                    client.log_param(run.info.run_id, key, value)
                for key, value in run_info["metrics"].items():
                    client.log_metric(run.info.run_id, key, value)
                client.log_artifacts(run.info.run_id, str(local / "models" / name / exported["version"]), "model")
                client.set_terminated(run.info.run_id)
                created = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
                mapping[exported["version"]] = str(created.version)
                if exported["description"]:
                    client.update_model_version(name, created.version, description=exported["description"])
                tags = {**exported["tags"], ORIGINAL_VERSION_TAG: exported["version"]}
                for key, value in tags.items():
                    if key == PREVIOUS_CHAMPION_TAG:
                        value = mapping.get(value, value)
                    client.set_model_version_tag(name, created.version, key, value)
            for alias, version in entry["aliases"].items():
                if version not in mapping:
                    raise BackupError(f"{source}: alias {alias!r} of {name} points at version {version}, not exported")
                client.set_registered_model_alias(name, alias, mapping[version])
            summary[name] = len(mapping)
    return BackupSummary(source, summary)
