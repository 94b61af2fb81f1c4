"""Shared fixtures: a temporary platform home with landed demo data and a Dagster instance."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from mlops_platform.definitions import build_definitions
from mlops_platform.settings import Settings
from mlops_platform.simulate import simulate
from mlops_platform.specs import ModelSpec, get_spec

START = dt.date(2026, 10, 1)


def day(offset: int) -> str:
    return (START + dt.timedelta(days=offset)).isoformat()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def churn() -> ModelSpec:
    return get_spec("churn")


@pytest.fixture(scope="session")
def delivery() -> ModelSpec:
    return get_spec("delivery_eta")


class Platform:
    """A platform on a temporary home: definitions, resources and helpers to run assets."""

    def __init__(self, settings: Settings, instance: dg.DagsterInstance, specs: list[ModelSpec] | None = None):
        self.settings = settings
        self.instance = instance
        self.defs = build_definitions(settings, specs)
        self.resources = self.defs.resources
        self.assets = list(self.defs.assets or [])

    def land(self, spec: ModelSpec, days: int, start: dt.date = START, **kwargs) -> None:
        # Through the profile's landing zone: a folder on disk, or the bucket on a cloud profile.
        simulate(spec, self.settings.cloud.landing_zone(self.settings.landing_limits), start=start, days=days, **kwargs)

    def run(
        self, spec: ModelSpec, names: list[str], partition_key: str | None = None, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        selection = dg.AssetSelection.assets(*[dg.AssetKey([spec.name, n]) for n in names])
        return dg.materialize(
            self.assets,
            selection=selection,
            partition_key=partition_key,
            resources=self.resources,
            instance=self.instance,
            raise_on_error=raise_on_error,
        )

    def ingest(self, spec: ModelSpec, days: int, start_offset: int = 0) -> None:
        for offset in range(start_offset, start_offset + days):
            self.run(spec, ["raw", "labels", "features"], partition_key=day(offset))

    def train(self, spec: ModelSpec, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        return self.run(spec, ["training_set", "model", "evaluation", "champion"], raise_on_error=raise_on_error)

    def latest_metadata(self, spec: ModelSpec, name: str, partition: str | None = None) -> dict:
        key = dg.AssetKey([spec.name, name])
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
        ).records
        assert records, f"{key.to_user_string()} was never materialized"
        materialization = records[0].asset_materialization
        assert materialization is not None
        return {k: v.value for k, v in materialization.metadata.items()}


@pytest.fixture
def platform(settings: Settings, instance: dg.DagsterInstance) -> Platform:
    return Platform(settings, instance)
