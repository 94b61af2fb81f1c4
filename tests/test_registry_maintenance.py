"""Searches of the MLflow registry see every page, and lake maintenance survives a lost log.

MLflow's SQLite store returns 100 registered models per page: 101 models are the smallest registry
where reading one page loses a model (its protected training set, its backup, its import clash).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable, write_deltalake

from mlops_platform.automation.maintenance import (
    TRAINING_SET_URI_TAG,
    TRAINING_SET_VERSION_TAG,
    registered_training_versions,
)
from mlops_platform.storage.maintenance import log_retention_needed, maintain_table, retention_hours
from mlops_platform.tracking.backup import BackupError, export_registry, import_registry
from mlops_platform.tracking.registry import MlflowRegistry, search_all

MODELS = 101  # one more than MLflow's page of registered models


def _registry(tmp_path: Path, name: str) -> MlflowRegistry:
    folder = tmp_path / name
    folder.mkdir()
    return MlflowRegistry(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=(folder / "art").as_uri())


def _many_models(registry: MlflowRegistry, count: int = MODELS) -> list[str]:
    client = registry.client()
    names = [f"model-{i:03d}" for i in range(count)]
    for name in names:
        client.create_registered_model(name)
    return names


def test_vacuum_protection_sees_models_beyond_the_first_page(tmp_path) -> None:
    registry = _registry(tmp_path, "reg")
    names = _many_models(registry)
    client = registry.client()
    run = client.create_run(registry.experiment_id("mlops/x"))
    last = names[-1]  # sorted last: on the second page
    client.create_model_version(
        last,
        f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={TRAINING_SET_URI_TAG: "file:///lake/x/training_set", TRAINING_SET_VERSION_TAG: "7"},
    )
    assert registered_training_versions(registry) == {"file:///lake/x/training_set": {7}}


def test_export_without_model_includes_models_beyond_the_first_page(tmp_path) -> None:
    registry = _registry(tmp_path, "reg")
    names = _many_models(registry)
    summary = export_registry(registry, str(tmp_path / "backup"))
    assert sorted(summary.models) == names


def test_import_clash_check_sees_models_beyond_the_first_page(tmp_path) -> None:
    source = _registry(tmp_path, "source")
    source.client().create_registered_model("model-100")
    export_registry(source, str(tmp_path / "backup"))
    target = _registry(tmp_path, "target")
    _many_models(target)
    with pytest.raises(BackupError, match=r"already holds \['model-100'\]"):
        import_registry(target, str(tmp_path / "backup"))


def test_search_all_follows_page_tokens(tmp_path) -> None:
    registry = _registry(tmp_path, "reg")
    names = _many_models(registry, 5)
    client = registry.client()
    assert len(client.search_registered_models(max_results=2)) == 2
    assert [m.name for m in search_all(client.search_registered_models, max_results=2)] == names


T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def test_log_retention_ignores_a_protected_version_whose_log_is_gone() -> None:
    # Versions 0-2 were cleaned from the log; 3 and 4 remain; 1 is still protected by an old model.
    times = {3: T0 + dt.timedelta(days=3), 4: T0 + dt.timedelta(days=40)}
    now = T0 + dt.timedelta(days=41)
    raised = log_retention_needed(times, [1, 3], now, dt.timedelta(days=30))
    assert raised == dt.timedelta(days=38 + 14)
    assert log_retention_needed(times, [1], now, dt.timedelta(days=30)) is None
    assert retention_hours(times, [1, 4], 4, now, 1) == 38 * 24 + 1


def test_maintenance_reports_a_protected_version_whose_log_is_gone(tmp_path) -> None:
    uri = str(tmp_path / "table")
    for value in range(4):
        write_deltalake(uri, pd.DataFrame({"x": [value]}), mode="append")
    table = DeltaTable(uri)
    table.create_checkpoint()
    for version in (0, 1):  # what log cleanup does once the checkpoint covers them
        (tmp_path / "table" / "_delta_log" / f"{version:020d}.json").unlink()
    # 0's commit is gone; 2's is left, but without 0 and 1 or a checkpoint before it, 2 cannot load.
    result = maintain_table(uri, [0, 2, 3], minimum_retention_hours=0)
    assert result.unreadable_versions == (0, 2)
    assert result.protected_versions == (3,)
    assert sorted(DeltaTable(uri).to_pandas()["x"].tolist()) == [0, 1, 2, 3]


def test_import_into_a_registry_holding_other_models_adds_them_and_touches_nothing_else(tmp_path) -> None:
    """The README's promise: import into a registry *without those models*; the others stay as they are."""
    source = _registry(tmp_path, "source")
    source.client().create_registered_model("imported", tags={"team": "a"})
    export_registry(source, str(tmp_path / "backup"))
    target = _registry(tmp_path, "target")
    others = _many_models(target, 3)
    target.client().set_registered_model_tag(others[0], "owner", "b")
    import_registry(target, str(tmp_path / "backup"))
    client = target.client()
    assert sorted(m.name for m in search_all(client.search_registered_models)) == sorted([*others, "imported"])
    assert client.get_registered_model("imported").tags.get("team") == "a"
    assert client.get_registered_model(others[0]).tags == {"owner": "b"}
