"""Export and import of the MLflow model registry, for disaster recovery.

An export is a folder (local or on a bucket, through MLflow's artifact repositories): ``registry.json``
with every registered model, version, alias and tag and each version's run parameters, metrics and
tags, plus ``models/<name>/<version>/`` holding the model files and, in the manifest, a SHA-256
digest of each version's files. The tracking URI it came from is recorded without credentials.

An import treats the export as untrusted input. Before it creates anything it checks the whole
export: every path stays inside the export folder (no absolute paths, ``..`` or links), every
version's files match their digest, every model is in the platform's own format (scikit-learn,
serialized with skops; pickle and cloudpickle are refused) and uses only the types the platform
trusts for it (its own list plus the model spec's ``skops_trusted_types``; the list in the file's
MLmodel is ignored), run tags do not claim MLflow's own ``mlflow.*`` tags, and no model already
exists in the target. Then it recreates the versions with their numbers: a version deleted in the
source leaves the same gap, so ``mlops.previous_champion``, predictions' ``model_version`` and the
Dagster metadata still name the same models. If creating fails half-way, the models and runs it
created are deleted again. Aliases (champion, challenger) are not set from the file: the target's
gates decide them, unless the operator asks with ``restore_aliases`` (``--restore-aliases``), which
the model's ``mlops.aliases_restored`` tag then records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_platform.tracking.registry import (
    TRUSTED_TYPES_TAG,
    MlflowRegistry,
    RegistryError,
    model_versions,
    redact_uri,
    search_all,
    sklearn_flavor,
    trusted_types,
)

if TYPE_CHECKING:
    from mlops_platform.specs.base import ModelSpec

# 2: per-version digests. Format 1 exports carry none, so their files cannot be verified.
FORMAT_VERSION = 2
MANIFEST = "registry.json"
ORIGINAL_VERSION_TAG = "mlops.restored_from_version"
EXPORTED_ALIASES_TAG = "mlops.exported_aliases"  # what the aliases were in the source, for the operator
ALIASES_RESTORED_TAG = "mlops.aliases_restored"  # set only when the operator restored them explicitly
IMPORTED_FROM_TAG = "mlops.imported_from"
_VERSION = re.compile(r"[1-9][0-9]{0,9}")


class BackupError(RuntimeError):
    """An export or import cannot proceed; the message says what and where."""


class BackupArgumentError(BackupError):
    """The caller asked for something that does not exist or cannot be used (the CLI exits 2)."""


@dataclass(frozen=True)
class BackupSummary:
    location: str  # without credentials
    models: dict[str, int]  # name -> number of versions


def _artifact_repository(uri: str):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(uri if "://" in uri else Path(uri).resolve().as_uri())


def _local_path(uri: str) -> Path | None:
    if "://" not in uri:
        return Path(uri)
    if uri.startswith("file://"):
        from mlflow.utils.file_utils import local_file_uri_to_path

        return Path(local_file_uri_to_path(uri))
    return None


def folder_digest(folder: Path) -> str:
    """SHA-256 over the relative paths and contents of every file under ``folder``, in sorted order.

    Links and special files are refused (BackupError): a digest of what a link points at would vouch
    for files outside the folder.
    """
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BackupError(f"{folder}: {relative} is a link or a special file; only plain files are accepted")
        if path.is_dir():
            continue
        content = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                content.update(block)
        digest.update(f"{relative}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()


def export_registry(registry: MlflowRegistry, destination: str, models: list[str] | None = None) -> BackupSummary:
    """Write every registered model (or only ``models``) with all versions to ``destination``.

    BackupArgumentError when ``destination`` is an existing file or a name in ``models`` is not a
    registered model; nothing is written then.
    """
    from mlflow.artifacts import download_artifacts

    local = _local_path(destination)
    if local is not None and local.exists() and not local.is_dir():
        raise BackupArgumentError(f"--to {destination}: is an existing file; give a folder (new or existing)")
    client = registry.client()
    registry._mlflow()  # download_artifacts resolves models:/ URIs through the global tracking URI
    known = sorted(m.name for m in search_all(client.search_registered_models))
    if models:
        missing = [name for name in models if name not in set(known)]
        if missing:
            shown = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
            raise BackupArgumentError(
                f"--model {', '.join(repr(m) for m in missing)}: no such registered model; known: {shown or 'none'}"
            )
    names = list(dict.fromkeys(models)) if models else known
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "tracking_uri": registry.redacted_tracking_uri,
        "models": [],
    }
    summary: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-export-") as tmp:
        root = Path(tmp)
        for name in names:
            model = client.get_registered_model(name)
            versions = model_versions(client, name)
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
                        "sha256": folder_digest(target),
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
    return BackupSummary(redact_uri(destination), summary)


@dataclass(frozen=True)
class _Version:
    number: int
    folder: Path
    description: str
    tags: dict[str, str]
    experiment: str
    params: dict[str, str]
    metrics: dict[str, float]
    run_tags: dict[str, str]


@dataclass(frozen=True)
class _Model:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, str]
    trusted: list[str]
    versions: list[_Version]


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BackupError(f"{where}: expected an object of strings")
    return dict(value)


def _inside(root: Path, *parts: str, where: str) -> Path:
    """``root/parts...`` when it resolves inside ``root`` through no link; BackupError otherwise."""
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or Path(part).is_absolute():
            raise BackupError(f"{where}: path part {part!r} would leave the export folder; refused")
    path = root.joinpath(*parts)
    resolved = path.resolve()
    steps = [root.joinpath(*parts[: i + 1]) for i in range(len(parts))]
    if not resolved.is_relative_to(root.resolve()) or any(step.is_symlink() for step in steps):
        raise BackupError(f"{where}: {path} is not inside the export folder {root}; refused")
    return resolved


def _check_model_files(folder: Path, trusted: list[str], spec_hint: str, where: str) -> None:
    import skops.io

    try:
        flavor = sklearn_flavor(folder, where)
    except RegistryError as exc:
        raise BackupError(str(exc)) from exc
    model_file = folder / str(flavor["pickled_model"])
    try:
        untrusted = sorted(set(skops.io.get_untrusted_types(file=model_file)) - set(trusted))
    except Exception as exc:  # any unreadable skops file is refused, with the reason
        raise BackupError(f"{where}: {model_file.name} is not a readable skops file ({type(exc).__name__})") from exc
    if untrusted:
        raise BackupError(
            f"{where}: the model holds types the platform does not trust: {untrusted}; "
            f"if they are expected, add them to {spec_hint}"
        )


def _validate(local: Path, manifest: Any, source: str, trusted_by_model: Mapping[str, Sequence[str]]) -> list[_Model]:
    """Every model of the export, checked in full; BackupError naming the first problem."""
    from mlops_platform.tracking.registry import check_experiment_name

    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), list):
        raise BackupError(f"{source}: {MANIFEST} has no list of models")
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(
            f"{source}: export format {manifest.get('format')!r}, expected {FORMAT_VERSION} "
            "(format 1 exports carry no digests; export again with this version)"
        )
    models_root = _inside(local, "models", where=source) if (local / "models").exists() else local / "models"
    result: list[_Model] = []
    seen: set[str] = set()
    for index, entry in enumerate(manifest["models"]):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise BackupError(f"{source}: model #{index + 1} has no name")
        where = f"{source}: model {name!r}"
        if name in seen:
            raise BackupError(f"{where} appears twice")
        seen.add(name)
        trusted = trusted_types(trusted_by_model.get(name))
        hint = (
            f"the skops_trusted_types of the spec registering {name!r}"
            if name in trusted_by_model
            else f"a model spec registering {name!r} (none does: only the platform's own types are trusted)"
        )
        versions: list[_Version] = []
        previous = 0
        exported = entry.get("versions")
        if not isinstance(exported, list):
            raise BackupError(f"{where}: no list of versions")
        for item in exported:
            number = item.get("version") if isinstance(item, dict) else None
            if not isinstance(number, str) or not _VERSION.fullmatch(number) or int(number) <= previous:
                raise BackupError(f"{where}: version {number!r} is not a number above {previous}")
            previous = int(number)
            at = f"{where} version {number}"
            folder = _inside(models_root, name, number, where=at)
            if not folder.is_dir():
                raise BackupError(f"{at}: its files are missing (models/{name}/{number})")
            digest = item.get("sha256")
            if not isinstance(digest, str):
                raise BackupError(f"{at}: no sha256 digest recorded; its files cannot be verified")
            if folder_digest(folder) != digest:
                raise BackupError(f"{at}: files do not match the sha256 digest recorded at export; refused")
            _check_model_files(folder, trusted, hint, at)
            run = item.get("run") or {"experiment": None, "params": {}, "metrics": {}, "tags": {}}
            if not isinstance(run, dict):
                raise BackupError(f"{at}: run is not an object")
            experiment = run.get("experiment") or f"mlops/{name}"
            if not isinstance(experiment, str):
                raise BackupError(f"{at}: experiment name is not a string")
            try:
                check_experiment_name(experiment)
            except RegistryError as exc:
                raise BackupError(f"{at}: {exc}") from exc
            run_tags = _strings(run.get("tags", {}), f"{at} run tags")
            forged = sorted(k for k in run_tags if k.startswith("mlflow."))
            if forged:
                raise BackupError(
                    f"{at}: run tags {forged} are MLflow's own (user, source); an export never holds them"
                )
            metrics = run.get("metrics", {})
            if not isinstance(metrics, dict) or not all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
                for k, v in metrics.items()
            ):
                raise BackupError(f"{at}: run metrics must map names to numbers")
            description = item.get("description") or ""
            if not isinstance(description, str):
                raise BackupError(f"{at}: description is not a string")
            versions.append(
                _Version(
                    number=int(number),
                    folder=folder,
                    description=description,
                    tags=_strings(item.get("tags", {}), f"{at} tags"),
                    experiment=experiment,
                    params=_strings(run.get("params", {}), f"{at} run params"),
                    metrics={k: float(v) for k, v in metrics.items()},
                    run_tags=run_tags,
                )
            )
        aliases = _strings(entry.get("aliases", {}), f"{where} aliases")
        numbers = {str(v.number) for v in versions}
        for alias, version in aliases.items():
            if version not in numbers:
                raise BackupError(f"{where}: alias {alias!r} points at version {version}, not exported")
        description = entry.get("description") or ""
        if not isinstance(description, str):
            raise BackupError(f"{where}: description is not a string")
        result.append(
            _Model(
                name=name,
                description=description,
                tags=_strings(entry.get("tags", {}), f"{where} tags"),
                aliases=aliases,
                trusted=trusted,
                versions=versions,
            )
        )
    return result


def _spec_trusted_types(specs: Sequence[ModelSpec] | None) -> dict[str, list[str]]:
    if specs is None:
        from mlops_platform.specs import discover_specs

        specs = discover_specs()
    return {spec.registered_model_name: list(spec.skops_trusted_types) for spec in specs}


def import_registry(
    registry: MlflowRegistry,
    source: str,
    *,
    restore_aliases: bool = False,
    specs: Sequence[ModelSpec] | None = None,
) -> BackupSummary:
    """Recreate the exported models in ``registry``, which must not already hold any of them.

    The whole export is checked before anything is created (see the module docstring); version
    numbers are kept. Aliases are only set with ``restore_aliases``. ``specs`` (default: the
    platform's registered specs) supply the trusted types per model. BackupError names the problem;
    the target is then as it was.
    """
    client = registry.client()
    registry._mlflow()
    shown = redact_uri(source)
    with tempfile.TemporaryDirectory(prefix="mlops-import-") as tmp:
        repository = _artifact_repository(source)
        try:
            local = Path(repository.download_artifacts("", dst_path=tmp))
        except Exception as exc:  # a missing or unreadable source is reported as such
            # MLflow raises when its listing fails part-way (a link out of the export) without waiting
            # for the copies it had started: wait for them, or removing the folder races with them.
            pool = getattr(repository, "thread_pool", None)
            if pool is not None:
                pool.shutdown(wait=True)
            raise BackupError(
                f"{shown}: cannot read the export ({type(exc).__name__}: {redact_uri(str(exc))})"
            ) from exc
        manifest_path = local / MANIFEST
        if not manifest_path.is_file() or manifest_path.is_symlink():
            raise BackupError(f"{shown} holds no {MANIFEST}: not a registry export")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BackupError(f"{shown}: {MANIFEST} is not valid JSON ({exc})") from exc
        models = _validate(local, manifest, shown, _spec_trusted_types(specs))
        existing = {m.name for m in search_all(client.search_registered_models)}
        clashes = sorted(existing & {m.name for m in models})
        if clashes:
            raise BackupError(f"the target registry already holds {clashes}; import into an empty registry")
        created_models: list[str] = []
        created_runs: list[str] = []
        try:
            for model in models:
                _create(registry, model, shown, restore_aliases, created_models, created_runs)
        except Exception as exc:
            _undo(client, created_models, created_runs)
            raise BackupError(
                f"{shown}: import failed ({type(exc).__name__}: {redact_uri(str(exc))}); "
                f"the {len(created_models)} model(s) created so far were deleted again"
            ) from exc
    return BackupSummary(shown, {m.name: len(m.versions) for m in models})


def _create(
    registry: MlflowRegistry,
    model: _Model,
    source: str,
    restore_aliases: bool,
    created_models: list[str],
    created_runs: list[str],
) -> None:
    client = registry.client()
    name = model.name
    imported = {"from": source, "at": dt.datetime.now(dt.UTC).isoformat()}
    tags = {**model.tags, IMPORTED_FROM_TAG: json.dumps(imported, sort_keys=True)}
    if model.aliases:
        tags[EXPORTED_ALIASES_TAG] = json.dumps(model.aliases, sort_keys=True)
    client.create_registered_model(name, tags=tags, description=model.description or None)
    created_models.append(name)
    next_number = 1
    for version in model.versions:
        run = client.create_run(registry.experiment_id(version.experiment), tags=version.run_tags)
        created_runs.append(run.info.run_id)
        for key, value in version.params.items():
            client.log_param(run.info.run_id, key, value)
        for metric, number in version.metrics.items():
            client.log_metric(run.info.run_id, metric, number)
        client.log_artifacts(run.info.run_id, str(version.folder), "model")
        client.set_terminated(run.info.run_id)
        source_uri = f"{run.info.artifact_uri}/model"
        # The registry numbers versions max + 1, deleted ones included: recreate a deleted version
        # and delete it again, so the numbers after it stay what they were.
        while next_number < version.number:
            gap = client.create_model_version(name, source_uri, run_id=run.info.run_id)
            client.delete_model_version(name, gap.version)
            next_number = int(gap.version) + 1
        created = client.create_model_version(
            name, source_uri, run_id=run.info.run_id, description=version.description or None
        )
        if int(created.version) != version.number:
            raise BackupError(f"{name}: the registry numbered version {version.number} as {created.version}")
        next_number = version.number + 1
        version_tags = {
            **version.tags,
            ORIGINAL_VERSION_TAG: str(version.number),
            TRUSTED_TYPES_TAG: ",".join(model.trusted),  # the platform's list, not the file's
        }
        for key, value in version_tags.items():
            client.set_model_version_tag(name, created.version, key, value)
    if restore_aliases and model.aliases:
        for alias, aliased in model.aliases.items():
            client.set_registered_model_alias(name, alias, aliased)
        restored = {**imported, "aliases": model.aliases}
        client.set_registered_model_tag(name, ALIASES_RESTORED_TAG, json.dumps(restored, sort_keys=True))


def _undo(client: Any, models: list[str], runs: list[str]) -> None:
    """Delete what a failed import created (runs are soft-deleted, as MLflow does)."""
    for name in reversed(models):
        client.delete_registered_model(name)
    for run_id in runs:
        client.delete_run(run_id)
