"""The tests every Delta-capable cloud passes; test_s3.py and test_azure.py run them on their server.

A subclass provides the module-scoped fixtures ``cloud`` (a running server, tests/cloud/conftest.py)
and ``platform`` (the reference spec's family materialized on it, ``family_platform``), and says how
its server goes down (``outage``) and how its store is named in messages (``storage``).
"""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import dagster as dg
import pandas as pd

from mlops_platform.settings import COMPUTE_LOGS_PREFIX, instance_config_for
from mlops_platform.specs import ModelSpec
from mlops_platform.storage.landing import REASON_SUFFIX
from tests.cloud import scenarios
from tests.cloud.conftest import Cloud
from tests.conftest import Platform, day


def family_platform(cloud: Cloud, spec: ModelSpec, tmp: Path):
    """A platform on ``cloud`` with ``spec``'s whole family materialized (a generator for fixtures)."""
    (tmp / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp / "dagster")) as instance:
        platform = Platform(cloud.settings(scenarios.home(tmp)), instance, [spec])
        scenarios.materialize_family(platform, spec)
        yield platform


class LandingSuite:
    """The landing zone on the bucket (issue 9): the same layout, quarantine and sensor as on disk.
    A subclass provides ``cloud``, ``platform`` (its family on the bucket) and ``spec``."""

    def objects_under(self, cloud: Cloud, uri: str) -> dict[str, bytes]:
        """Every object below ``uri`` (a prefix), by key."""
        raise NotImplementedError

    def test_bad_files_are_quarantined_on_the_bucket_and_good_ones_ingested(
        self, cloud: Cloud, platform: Platform, spec
    ) -> None:
        landing = platform.settings.cloud.landing_zone(platform.settings.landing_limits)
        assert landing.landing_root == platform.settings.landing_location and "://" in landing.landing_root
        when = scenarios.START + dt.timedelta(days=scenarios.DAYS + 3)  # a day no other test lands
        key = when.isoformat()
        landing.land(spec.name, when, "events-good.parquet", scenarios.events_file(spec, when))
        landing.land(spec.name, when, "events-bad.csv", b"no,such,columns\n1,2,3\n")
        landing.land(spec.name, when, "notes.txt", b"not a stream")
        landed = self.objects_under(cloud, f"{landing.spec_root(spec.name)}/{key}/")
        result = platform.run(spec, ["raw", "labels"], key, raise_on_error=False)
        assert result.success, scenarios.failure_messages(result)
        raw = platform.latest_metadata(spec, "raw", key)
        assert raw["files_ingested"] == {key: ["events-good.parquet"]}
        reasons = {uri.rsplit("/", 1)[1]: reason for uri, reason in landing.quarantined(spec.name, key).items()}
        assert sorted(reasons) == ["events-bad.csv", "notes.txt"]
        assert "missing column" in reasons["events-bad.csv"] or "column" in reasons["events-bad.csv"]
        assert reasons["notes.txt"] == "file name must start with 'events-' or 'labels-'"
        check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "files_valid")
        assert not check.passed
        # Nothing lost: every landed object is still in the landing zone or, byte for byte, in quarantine.
        quarantine = self.objects_under(cloud, f"{landing.quarantine_folder(spec.name)}/{key}/")
        kept = {k.rsplit("/", 1)[1]: v for k, v in quarantine.items() if not k.endswith(REASON_SUFFIX)}
        here = {
            k.rsplit("/", 1)[1]: v
            for k, v in self.objects_under(cloud, f"{landing.spec_root(spec.name)}/{key}/").items()
        }
        assert {**kept, **here} == {k.rsplit("/", 1)[1]: v for k, v in landed.items()}
        # Ingesting the day again gives the same rows and moves nothing more.
        again = platform.run(spec, ["raw", "labels"], key)
        assert again.success
        assert platform.latest_metadata(spec, "raw", key)["dagster/row_count"] == raw["dagster/row_count"]
        assert self.objects_under(cloud, f"{landing.quarantine_folder(spec.name)}/{key}/").keys() == quarantine.keys()

    def test_the_landing_sensor_lists_the_bucket_and_a_replaced_object_reruns_its_day(
        self, platform: Platform, spec
    ) -> None:
        from mlops_platform.automation.sensors import landing_tick

        landing = platform.settings.cloud.landing_zone(platform.settings.landing_limits)
        when = scenarios.START + dt.timedelta(days=scenarios.DAYS + 4)
        today = when + dt.timedelta(days=1)
        landing.land(spec.name, when, "events-a.parquet", scenarios.events_file(spec, when, seed=1))
        first, cursor, _ = landing_tick(spec, landing, None, today, scenarios.LOG)
        assert [r.partition_key for r in first if r.partition_key] == [when.isoformat()] or first
        unchanged, cursor, summary = landing_tick(spec, landing, cursor, today, scenarios.LOG)
        assert unchanged == [], summary  # the same objects, the same ETags: nothing requested again
        landing.land(spec.name, when, "events-a.parquet", scenarios.events_file(spec, when, seed=2))
        replaced, cursor, _ = landing_tick(spec, landing, cursor, today, scenarios.LOG)
        assert [r.partition_key for r in replaced] == [when.isoformat()]
        assert replaced[0].run_key != (first[-1].run_key if first else None)


class CloudSuite(LandingSuite):
    profile: str
    storage: str  # how StorageUnavailable names the store
    outage: tuple[str, str]  # Server methods that take it down and bring it back

    def read_object(self, cloud: Cloud, uri: str) -> bytes:
        raise NotImplementedError

    def compute_log_instance(self, cloud: Cloud, settings, tmp: Path):
        return dg.instance_for_test(overrides=instance_config_for(settings), temp_dir=str(tmp))

    # The family, its lineage and time travel.
    def test_the_family_materializes_with_its_lineage(self, platform: Platform, spec: ModelSpec) -> None:
        assert platform.resources["lake"].root_uri == platform.settings.storage_root
        assert platform.settings.profile == type(self).profile
        scenarios.assert_family_lineage(platform, spec)

    def test_the_model_record_is_pickled_on_the_bucket(self, cloud: Cloud, platform: Platform, spec) -> None:
        uri = f"{platform.settings.pickle_root}/{spec.name}/model"
        record = pickle.loads(self.read_object(cloud, uri))
        assert record["version"] == "1" and record["name"] == spec.registered_model_name

    def test_downstream_loads_the_pinned_version(self, platform: Platform, spec: ModelSpec) -> None:
        scenarios.assert_downstream_loads_the_recorded_version(platform, spec)

    def test_concurrent_appenders_lose_no_commit(self, platform: Platform) -> None:
        lake = platform.resources["lake"]
        scenarios.concurrent_appends(f"{lake.root_uri}/concurrency/appends", lake.storage_options, writers=8, appends=5)

    # Outages: retried while they last less than the RetryPolicy, a clear failure when they outlast it.
    def test_an_outage_is_retried_until_the_server_is_back(self, cloud: Cloud, platform: Platform, spec) -> None:
        platform.land(spec, days=1, start=scenarios.START + dt.timedelta(days=scenarios.DAYS))
        partition = day(scenarios.DAYS)
        lake = platform.resources["lake"]
        raw_uri = lake.uri(dg.AssetKey([spec.name, "raw"]))
        before = scenarios.table_history(raw_uri, lake.storage_options)
        down, up = (getattr(cloud.require_server(), name) for name in self.outage)
        result = scenarios.run_through_outage(
            down, up, platform.instance, lambda: platform.run(spec, ["raw", "labels"], partition, raise_on_error=False)
        )
        assert result.success, scenarios.failure_messages(result)
        assert scenarios.retry_events(result) >= 1
        written = platform.latest_metadata(spec, "raw", partition)["delta_version"]
        assert written > max(before)
        assert scenarios.table_history(raw_uri, lake.storage_options)[: len(before)] == before

    def test_a_lasting_outage_fails_naming_the_storage_and_the_uri(
        self, cloud: Cloud, platform: Platform, spec
    ) -> None:
        lake = platform.resources["lake"]
        raw_uri = lake.uri(dg.AssetKey([spec.name, "raw"]))
        before = scenarios.table_history(raw_uri, lake.storage_options)
        latest = scenarios.read_latest(raw_uri, lake.storage_options)
        down, up = (getattr(cloud.require_server(), name) for name in self.outage)
        down()
        try:
            result = platform.run(spec, ["raw", "labels"], day(scenarios.DAYS), raise_on_error=False)
        finally:
            up()
        assert not result.success
        assert scenarios.retry_events(result) == 3  # TRANSIENT_RETRY's max_retries, then the run fails
        message = scenarios.failure_messages(result)
        # The first call to fail names its URI: listing the day on the bucket, or the raw table.
        landing_root = platform.settings.landing_location
        assert f"{self.storage} unavailable" in message, message
        assert raw_uri in message or (f"{landing_root}/{spec.name}/" in message and "://" in landing_root), message
        # Nothing half-written became a version: the log is as it was and the table reads as before.
        assert scenarios.table_history(raw_uri, lake.storage_options) == before
        pd.testing.assert_frame_equal(scenarios.read_latest(raw_uri, lake.storage_options), latest)

    # The Dagster instance side: step compute logs in the bucket.
    def test_compute_logs_go_to_the_bucket(self, cloud: Cloud, platform: Platform, tmp_path) -> None:
        config = instance_config_for(platform.settings)["compute_logs"]

        @dg.asset
        def says_hello() -> None:
            print("hello from a step")

        assert config["config"]["prefix"].endswith(COMPUTE_LOGS_PREFIX)
        with self.compute_log_instance(cloud, platform.settings, tmp_path) as instance:
            result = dg.materialize([says_hello], instance=instance)
            assert result.success
            logs = self.objects_under(cloud, f"{platform.settings.bucket_root}/{COMPUTE_LOGS_PREFIX}")
        assert any(key.endswith(".out") and b"hello from a step" in body for key, body in logs.items()), list(logs)

    # Compaction and vacuum keep whatever a model or a recorded materialization points at.
    def test_lake_maintenance_keeps_every_pinned_version(self, platform: Platform, spec: ModelSpec) -> None:
        from mlops_platform.automation.maintenance import build_maintenance_job

        lake = platform.resources["lake"]
        uri = {name: lake.uri(dg.AssetKey([spec.name, name])) for name in ("raw", "features", "training_set")}
        superseded = platform.latest_metadata(spec, "raw", day(0))["delta_version"]
        platform.run(spec, ["raw", "labels", "features"], day(0))  # day 0 again: its old versions are superseded
        result = build_maintenance_job().execute_in_process(
            resources=platform.resources,
            instance=platform.instance,
            run_config={"ops": {"compact_and_vacuum_lake": {"config": {"min_retention_hours": 0}}}},
        )
        assert result.success
        tables = result.output_for_node("compact_and_vacuum_lake")
        training = platform.latest_metadata(spec, "training_set")
        model = platform.latest_metadata(spec, "model")
        assert model["training_set_version"] in tables[uri["training_set"]]["protected_versions"]
        # The versions the registered model's training set was built from (its lineage) ...
        assert set(training["features_delta_versions"].values()) <= set(tables[uri["features"]]["protected_versions"])
        # ... and what the newest materialization of each partition recorded; a superseded write is not.
        assert (
            platform.latest_metadata(spec, "raw", day(0))["delta_version"] in tables[uri["raw"]]["protected_versions"]
        )
        assert superseded not in tables[uri["raw"]]["protected_versions"]
        # Everything pinned still reads: the model reproduces from its lineage, downstream loads its inputs.
        scenarios.assert_family_lineage(platform, spec)
        assert platform.run(spec, ["predictions"], partition_key=day(0)).success
