"""The gcp profile against GCS: gcp-storage-emulator (PyPI), a separate process on a loopback port
(or a real bucket, see conftest.py).

What runs against the emulator: the pickle IO manager (dagster-gcp), MLflow's gs:// artifact store
and dagster-gcp's GCSComputeLogManager. delta-rs cannot write to this emulator (it speaks only the
JSON API; delta-rs's GCS client uses the XML API, answered with 501) and no other GCS server installs
here, so the lake of this suite stays on local disk and Delta on gs:// is covered by configuration
tests (tests/cloud/test_profiles.py): the exact URI and storage options delta-rs receives. Against a
real bucket the lake is on gs:// as well.
"""

from __future__ import annotations

import pickle

import dagster as dg
import pytest

from mlops_platform.settings import COMPUTE_LOGS_PREFIX, instance_config_for
from tests.cloud import scenarios
from tests.cloud.suite import LandingSuite

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(gcs, delivery, tmp_path_factory):
    from tests.cloud.suite import family_platform

    yield from family_platform(gcs, delivery, tmp_path_factory.mktemp("gcs-platform"))


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    return bucket, key


def _read(uri: str) -> bytes:
    from google.cloud import storage

    bucket, key = _split(uri)
    return storage.Client().bucket(bucket).blob(key).download_as_bytes()


def _list(uri: str) -> dict[str, bytes]:
    from google.cloud import storage

    bucket, prefix = _split(uri)
    return {b.name: b.download_as_bytes() for b in storage.Client().bucket(bucket).list_blobs(prefix=prefix)}


def _logs_root(settings) -> str:
    bucket, _ = _split(settings.pickle_root)
    return f"{settings.bucket_root or f'gs://{bucket}'}/{COMPUTE_LOGS_PREFIX}"


def test_the_family_materializes_with_objects_and_artifacts_on_gcs(platform, delivery) -> None:
    settings = platform.settings
    assert settings.profile == "gcp" and settings.pickle_root.startswith("gs://")
    scenarios.assert_family_lineage(platform, delivery)
    record = pickle.loads(_read(f"{settings.pickle_root}/{delivery.name}/model"))
    assert record["version"] == "1" and record["name"] == delivery.registered_model_name
    # The registered model's files are in the bucket, where MLflow's gs:// store put them.
    run = platform.resources["registry"].client().get_run(record["run_id"])
    assert run.info.artifact_uri.startswith(f"{settings.artifact_root}/")
    assert any(name.endswith("/MLmodel") for name in _list(settings.artifact_root)), settings.artifact_root


def test_downstream_loads_the_pinned_version(platform, delivery) -> None:
    scenarios.assert_downstream_loads_the_recorded_version(platform, delivery)


def test_compute_logs_go_to_the_bucket(platform, tmp_path) -> None:
    root = _logs_root(platform.settings)
    config = instance_config_for(platform.settings, root=root)
    assert config["compute_logs"]["class"] == "GCSComputeLogManager"

    @dg.asset
    def says_hello() -> None:
        print("hello from a step")

    with dg.instance_for_test(overrides=config, temp_dir=str(tmp_path)) as instance:
        assert dg.materialize([says_hello], instance=instance).success
    logs = _list(root)
    assert any(name.endswith(".out") and b"hello from a step" in body for name, body in logs.items()), list(logs)


def test_a_gcs_outage_is_retried_until_the_server_is_back(gcs, platform, delivery) -> None:
    server = gcs.require_server()
    # champion reads the evaluation record from the bucket: the server goes away and comes back.
    result = scenarios.run_through_outage(
        server.stop, server.start, platform.instance, lambda: platform.run(delivery, ["champion"], raise_on_error=False)
    )
    assert result.success, scenarios.failure_messages(result)
    assert scenarios.retry_events(result) >= 1


def test_a_lasting_gcs_outage_fails_naming_gcs_and_the_uri(gcs, platform, delivery) -> None:
    server = gcs.require_server()
    server.stop()
    try:
        result = platform.run(delivery, ["champion"], raise_on_error=False)
    finally:
        server.start()
    assert not result.success
    assert scenarios.retry_events(result) == 3
    message = scenarios.failure_messages(result)
    uri = f"{platform.settings.pickle_root}/{delivery.name}/evaluation"
    assert "GCS unavailable" in message and uri in message, message
    # The object is intact once the server is back.
    assert pickle.loads(_read(uri))["passed"]


class TestGcsLanding(LandingSuite):
    """The landing zone on the GCS emulator (MLOPS_LANDING_ROOT=gs://...; the lake stays local here)."""

    def objects_under(self, cloud, uri: str) -> dict[str, bytes]:
        from google.cloud import storage

        bucket, prefix = _split(uri)
        client = storage.Client(project="mlops-test")
        return {b.name: b.download_as_bytes() for b in client.list_blobs(bucket, prefix=prefix)}

    @pytest.fixture
    def cloud(self, gcs):
        return gcs

    @pytest.fixture
    def spec(self, delivery):
        return delivery
