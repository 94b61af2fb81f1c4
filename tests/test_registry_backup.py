"""Registry export/import against a real MLflow store (SQLite in tmp_path), treating the export as
untrusted input: version numbers survive deleted versions, hostile exports are refused before the
target changes, aliases come back only when the operator asks, credentials never reach the export.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops_platform.tracking.backup import (
    ALIASES_RESTORED_TAG,
    MANIFEST,
    BackupArgumentError,
    BackupError,
    export_registry,
    import_registry,
)
from mlops_platform.tracking.registry import (
    CHAMPION,
    PREVIOUS_CHAMPION_TAG,
    TRUSTED_TYPES_TAG,
    ChampionMovedError,
    MlflowRegistry,
    RegistryError,
    redact_uri,
    search_all,
)

FRAME = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
LABELS = [0, 0, 0, 1, 1, 1]


def _registry(tmp_path: Path, name: str) -> MlflowRegistry:
    folder = tmp_path / name
    folder.mkdir()
    return MlflowRegistry(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=(folder / "art").as_uri())


def _log(registry: MlflowRegistry, name: str = "m", seed: int = 0) -> str:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(random_state=seed)).fit(FRAME, LABELS)
    record = registry.log_model(
        model_name=name,
        experiment=f"mlops/{name}",
        pipeline=pipeline,
        input_example=FRAME.head(2),
        metrics={"auc": 0.9},
        params={"seed": seed},
        tags={"mlops.training_set_uri": "file:///lake/m/training_set", "mlops.training_set_version": "3"},
        training_set_version=3,
    )
    return record.version


def _more_versions(registry: MlflowRegistry, name: str, count: int) -> None:
    """Register the first version's model ``count`` more times: versions without another fit."""
    client = registry.client()
    first = client.get_model_version(name, "1")
    for _ in range(count):
        version = client.create_model_version(name, first.source, run_id=first.run_id)
        client.set_model_version_tag(name, version.version, TRUSTED_TYPES_TAG, first.tags[TRUSTED_TYPES_TAG])


@pytest.fixture
def source(tmp_path: Path) -> MlflowRegistry:
    """Versions 1-4 of ``m``, champion history 1 -> 3 -> 4, version 2 deleted."""
    registry = _registry(tmp_path, "source")
    _log(registry)
    _more_versions(registry, "m", 3)
    registry.promote("m", "1")
    registry.promote("m", "3")
    registry.promote("m", "4")
    registry.client().delete_model_version("m", "2")
    return registry


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_import_keeps_version_numbers_across_a_deleted_version(source, tmp_path) -> None:
    backup = tmp_path / "backup"
    export_registry(source, str(backup))
    target = _registry(tmp_path, "target")
    summary = import_registry(target, str(backup), restore_aliases=True)
    assert summary.models == {"m": 3}
    client = target.client()
    assert [v.version for v in search_all(client.search_model_versions)] and sorted(
        int(v.version) for v in search_all(client.search_model_versions)
    ) == [1, 3, 4]
    assert target.alias_version("m", CHAMPION) == "4"
    assert target.version_tags("m", "4")[PREVIOUS_CHAMPION_TAG] == "3"
    # Rollback in the restored registry does what it did in the source: 4 -> 3, then 3 -> 1.
    assert target.rollback("m") == ("4", "3")
    assert target.rollback("m") == ("3", "1")
    assert target.load_model("m", "3").predict(FRAME).tolist() == source.load_model("m", "3").predict(FRAME).tolist()
    tag = json.loads(client.get_registered_model("m").tags[ALIASES_RESTORED_TAG])
    assert tag["aliases"]["champion"] == "4"


def test_rollback_to_a_deleted_version_is_refused_with_the_reason(tmp_path) -> None:
    registry = _registry(tmp_path, "reg")
    _log(registry)
    _more_versions(registry, "m", 1)
    registry.promote("m", "1")
    registry.promote("m", "2")
    registry.client().delete_model_version("m", "1")
    with pytest.raises(RegistryError, match=r"replaced version 1, which is no longer in the registry"):
        registry.rollback("m")
    assert registry.alias_version("m", CHAMPION) == "2"


def test_promote_is_compare_and_set_on_the_champion_the_evaluation_saw(tmp_path) -> None:
    registry = _registry(tmp_path, "reg")
    _log(registry)
    _more_versions(registry, "m", 2)
    assert registry.promote("m", "1", expected_current=None) is None
    # Run A evaluated 2 against champion 1; run B evaluated 3 against champion 1 and promoted first.
    assert registry.promote("m", "3", expected_current="1") == "1"
    with pytest.raises(ChampionMovedError, match=r"champion is version 3, not version 1"):
        registry.promote("m", "2", expected_current="1")
    assert registry.alias_version("m", CHAMPION) == "3"
    assert PREVIOUS_CHAMPION_TAG not in registry.version_tags("m", "2")
    with pytest.raises(ChampionMovedError, match=r"champion is version 3, not version none"):
        registry.promote("m", "2", expected_current=None)
    assert registry.promote("m", "2") == "3"  # without the argument: as before
    with pytest.raises(RegistryError, match=r"version 9: no such version"):
        registry.promote("m", "9")


def test_export_of_a_model_named_with_a_quote(tmp_path) -> None:
    registry = _registry(tmp_path, "reg")
    _log(registry, "o'brien")
    summary = export_registry(registry, str(tmp_path / "backup"))
    assert summary.models == {"o'brien": 1}
    assert [v["version"] for v in _manifest(tmp_path / "backup")["models"][0]["versions"]] == ["1"]


def test_export_refuses_a_file_and_an_unknown_model(tmp_path) -> None:
    registry = _registry(tmp_path, "reg")
    _log(registry)
    existing = tmp_path / "backup.tar"
    existing.write_text("keep me")
    with pytest.raises(BackupArgumentError, match=r"is an existing file"):
        export_registry(registry, str(existing))
    with pytest.raises(BackupArgumentError, match=r"is an existing file"):
        export_registry(registry, existing.as_uri())
    assert existing.read_text() == "keep me"
    with pytest.raises(BackupArgumentError, match=r"--model 'nope': no such registered model; known: m"):
        export_registry(registry, str(tmp_path / "out"), ["nope"])
    assert not (tmp_path / "out").exists()


def test_export_records_the_tracking_uri_without_credentials(tmp_path, monkeypatch) -> None:
    registry = _registry(tmp_path, "reg")
    _log(registry)
    real = registry.tracking_uri

    def mlflow_module(self):
        import mlflow

        mlflow.set_tracking_uri(real)
        mlflow.set_registry_uri(real)
        return mlflow

    # A team's server URL with a password; the store behind it is the SQLite one.
    monkeypatch.setattr(MlflowRegistry, "client", lambda self: MlflowClient(tracking_uri=real, registry_uri=real))
    monkeypatch.setattr(MlflowRegistry, "_mlflow", mlflow_module)
    with_password = MlflowRegistry(tracking_uri="https://ops:s3cret@mlflow.internal", artifact_root="file:///x")
    summary = export_registry(with_password, str(tmp_path / "backup"))
    assert _manifest(tmp_path / "backup")["tracking_uri"] == "https://ops:***@mlflow.internal"
    assert summary.models == {"m": 1}
    for path in (tmp_path / "backup").rglob("*"):
        assert not path.is_file() or b"s3cret" not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://mlflow:s3cret@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        ("http://user:p@ss@host/x", "http://user:***@host/x"),
        ("http://mlflow@db:5432/x", "http://mlflow@db:5432/x"),
        ("http://host:5000/#/experiments/1", "http://host:5000/#/experiments/1"),
        (
            "https://acct.blob.core.windows.net/c?sv=1&sig=abc%2F&se=2",
            "https://acct.blob.core.windows.net/c?sv=1&sig=***&se=2",
        ),
        ("s3://b/k?X-Amz-Credential=AK/x&X-Amz-Signature=ff", "s3://b/k?X-Amz-Credential=***&X-Amz-Signature=***"),
        ("postgresql://db/mlflow?password=pw&sslmode=require", "postgresql://db/mlflow?password=***&sslmode=require"),
        ("cannot connect to mysql://root:pw@db/x: refused", "cannot connect to mysql://root:***@db/x: refused"),
        ("sqlite:////srv/mlflow.db", "sqlite:////srv/mlflow.db"),
        ("", ""),
    ],
)
def test_redact_uri(uri, expected) -> None:
    assert redact_uri(uri) == expected


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    registry = _registry(tmp_path, "source")
    _log(registry)
    registry.promote("m", "1")
    _log(registry, "other")
    export_registry(registry, str(tmp_path / "backup"))
    return tmp_path / "backup"


def _assert_unchanged(target: MlflowRegistry) -> None:
    client = target.client()
    assert list(search_all(client.search_registered_models)) == []
    assert list(search_all(client.search_model_versions)) == []


def test_import_does_not_set_aliases_unless_asked(exported, tmp_path) -> None:
    target = _registry(tmp_path, "target")
    import_registry(target, str(exported))
    assert target.alias_version("m", CHAMPION) is None  # the target's gates decide
    tags = target.client().get_registered_model("m").tags
    assert json.loads(tags["mlops.exported_aliases"])[CHAMPION] == "1"
    assert ALIASES_RESTORED_TAG not in tags


def test_import_refuses_a_cloudpickle_model_and_creates_nothing(exported, tmp_path) -> None:
    folder = exported / "models" / "other" / "1"
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"]["serialization_format"] = "cloudpickle"
    mlmodel["flavors"]["sklearn"]["pickled_model"] = "model.pkl"
    (folder / "model.pkl").write_bytes(b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    _refresh_digest(exported, "other", "1")  # an attacker rewrites the digest too
    target = _registry(tmp_path, "target")
    with pytest.raises(BackupError, match=r"model 'other' version 1: serialization format 'cloudpickle' refused"):
        import_registry(target, str(exported))
    _assert_unchanged(target)


def test_import_refuses_untrusted_types_whatever_the_mlmodel_trusts(exported, tmp_path) -> None:
    import skops.io

    folder = exported / "models" / "other" / "1"
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    skops.io.dump({"x": pd.Timedelta(1)}, folder / mlmodel["flavors"]["sklearn"]["pickled_model"])
    mlmodel["flavors"]["sklearn"]["skops_trusted_types"] = ["pandas._libs.tslibs.timedeltas.Timedelta"]
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    _refresh_digest(exported, "other", "1")
    target = _registry(tmp_path, "target")
    with pytest.raises(BackupError, match=r"holds types the platform does not trust: \['pandas\._libs"):
        import_registry(target, str(exported))
    _assert_unchanged(target)


def test_import_refuses_files_that_do_not_match_their_digest(exported, tmp_path) -> None:
    folder = exported / "models" / "other" / "1"
    (folder / "extra.txt").write_text("added after the export")
    target = _registry(tmp_path, "target")
    with pytest.raises(BackupError, match=r"'other' version 1: files do not match the sha256 digest"):
        import_registry(target, str(exported))
    _assert_unchanged(target)


@pytest.mark.parametrize("version", ["/etc", "../../outside", "1/../../x"])
def test_import_refuses_paths_outside_the_export(exported, tmp_path, version) -> None:
    manifest = _manifest(exported)
    manifest["models"][1]["versions"][0]["version"] = version
    _write_manifest(exported, manifest)
    target = _registry(tmp_path, "target")
    with pytest.raises(BackupError, match=r"model 'other'"):
        import_registry(target, str(exported))
    _assert_unchanged(target)


def test_import_refuses_a_version_folder_that_is_a_link(exported, tmp_path) -> None:
    secret = tmp_path / "secret"
    (exported / "models" / "other" / "1").rename(secret)  # the same files, now outside the export
    (exported / "models" / "other" / "1").symlink_to(secret, target_is_directory=True)
    target = _registry(tmp_path, "target")
    with pytest.raises(BackupError):
        import_registry(target, str(exported))
    _assert_unchanged(target)


def test_import_refuses_forged_mlflow_run_tags(exported, tmp_path) -> None:
    manifest = _manifest(exported)
    manifest["models"][1]["versions"][0]["run"]["tags"]["mlflow.user"] = "ceo"
    _write_manifest(exported, manifest)
    target = _registry(tmp_path, "target")
    with pytest.raises(BackupError, match=r"run tags \['mlflow.user'\] are MLflow's own"):
        import_registry(target, str(exported))
    _assert_unchanged(target)


def test_import_refuses_an_experiment_outside_the_artifact_root(exported, tmp_path) -> None:
    manifest = _manifest(exported)
    manifest["models"][1]["versions"][0]["run"]["experiment"] = ".."
    _write_manifest(exported, manifest)
    target = _registry(tmp_path, "target")
    with pytest.raises(BackupError, match=r"experiment name '\.\.' would not stay inside the artifact root"):
        import_registry(target, str(exported))
    _assert_unchanged(target)
    with pytest.raises(RegistryError, match=r"experiment name '\.\.'"):
        target.experiment_id("..")


def test_imported_versions_load_with_the_platforms_trusted_types(exported, tmp_path) -> None:
    manifest = _manifest(exported)
    manifest["models"][0]["versions"][0]["tags"][TRUSTED_TYPES_TAG] = "builtins.eval"
    _write_manifest(exported, manifest)
    target = _registry(tmp_path, "target")
    import_registry(target, str(exported))
    assert target.version_tags("m", "1")[TRUSTED_TYPES_TAG] == "numpy.dtype"
    assert target.load_model("m", "1").predict(FRAME).tolist() == LABELS


def test_load_model_refuses_a_pickled_model(tmp_path) -> None:
    registry = _registry(tmp_path, "reg")
    import mlflow

    registry._mlflow()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(FRAME, LABELS)
    with mlflow.start_run(experiment_id=registry.experiment_id("mlops/p")):
        mlflow.sklearn.log_model(pipeline, name="model", serialization_format="cloudpickle", registered_model_name="p")
    with pytest.raises(RegistryError, match=r"serialization format 'cloudpickle' refused"):
        registry.load_model("p", "1")


def _refresh_digest(exported: Path, name: str, version: str) -> None:
    from mlops_platform.tracking.backup import folder_digest

    manifest = _manifest(exported)
    for model in manifest["models"]:
        for entry in model["versions"]:
            if model["name"] == name and entry["version"] == version:
                entry["sha256"] = folder_digest(exported / "models" / name / version)
    _write_manifest(exported, manifest)
