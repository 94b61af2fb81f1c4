"""The platform on PostgreSQL, as production runs it: the Dagster instance on dagster-postgres and the
MLflow tracking store and registry on ``postgresql://``, against a real PostgreSQL server that these
tests start on loopback and stop at the end.

The server comes from PostgreSQL's own binaries (``initdb``, ``pg_ctl``) found on PATH or under
/usr/lib/postgresql; where none are installed the suite is skipped with that reason. A team gets here
by setting ``MLOPS_MLFLOW_TRACKING_URI=postgresql://...`` and the instance's ``storage: postgres``
(deploy/helm does both).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from mlops_platform.settings import Settings, resources_for
from mlops_platform.storage.delta import read_table
from mlops_platform.tracking.registry import CHAMPION, model_versions
from tests.conftest import Platform, day

pytestmark = pytest.mark.slow

SERVER_USER = "postgres"  # PostgreSQL refuses to run as root; tests running as root start it as this user


def _binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    port: int
    user: str

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str) -> None:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Server]:
    binaries = _binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql")
    as_user: list[str] = []
    # Not under pytest's root-only temporary folder: the server's user must reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="mlops-postgres-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam(SERVER_USER)
        except KeyError:
            runuser = None
        if runuser is None:
            pytest.skip(f"running as root and no {SERVER_USER!r} user with runuser to start PostgreSQL as")
        as_user = [runuser, "-u", SERVER_USER, "--"]
        shutil.chown(root, SERVER_USER)
    data, log, port = root / "data", root / "server.log", _free_port()
    initialised = subprocess.run(
        [*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "mlops", "--auth=trust", "-E", "UTF8"],
        capture_output=True,
        text=True,
    )
    if initialised.returncode != 0:
        raise RuntimeError(f"initdb failed: {initialised.stderr}")
    options = f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=200 -c fsync=off"
    # -w: pg_ctl returns once the server accepts connections (or fails): the event, not a sleep.
    started = subprocess.run(
        [
            *as_user,
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            "120",
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{log.read_text() if log.exists() else ''}")
    server = Server(port=port, user="mlops")
    try:
        yield server
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Databases:
    dagster: str
    mlflow: str


@pytest.fixture
def databases(postgres, request) -> Databases:
    """A fresh pair of databases per test: the Dagster instance's and MLflow's."""
    suffix = request.node.name.replace("test_", "")[:40]
    names = Databases(dagster=f"dagster_{suffix}", mlflow=f"mlflow_{suffix}")
    for name in (names.dagster, names.mlflow):
        postgres.sql(f"CREATE DATABASE {name}")
    return Databases(dagster=postgres.url(names.dagster), mlflow=postgres.url(names.mlflow))


@pytest.fixture
def pg_instance(databases) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": databases.dagster}}}) as instance:
        yield instance


@pytest.fixture
def pg_settings(databases, tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", databases.mlflow)
    return Settings.from_env()


def _registry_client(databases: Databases):
    """A client of this test's MLflow database, registry included.

    ``MlflowClient(tracking_uri=...)`` alone is not enough: MLflow takes the registry URI from the process-wide
    ``mlflow.set_registry_uri`` before deriving it from the tracking URI, and the platform's log_model sets that
    to its profile's database. In this module an earlier test's training run leaves it pointing at that test's
    database, where a later test's versions 2 and 3 do not exist.
    """
    import mlflow

    return mlflow.MlflowClient(tracking_uri=databases.mlflow, registry_uri=databases.mlflow)


def _run_storage_is_postgres(instance: dg.DagsterInstance) -> bool:
    from dagster_postgres import PostgresRunStorage

    return isinstance(instance.run_storage, PostgresRunStorage)


def test_family_on_postgres_instance_and_mlflow(databases, pg_instance, pg_settings, delivery) -> None:
    assert _run_storage_is_postgres(pg_instance)
    platform = Platform(pg_settings, pg_instance, specs=[delivery])
    platform.land(delivery, days=3, rows=300)
    platform.ingest(delivery, 3)
    assert platform.train(delivery).success
    assert platform.run(delivery, ["predictions"], partition_key=day(2)).success

    registry = resources_for(pg_settings)["registry"]  # plain values (the definitions hold an EnvVar)
    assert registry.alias_version("delivery_eta", CHAMPION) == "1"
    scored = platform.latest_metadata(delivery, "predictions", day(2))
    assert scored["champion_version"] in (1, "1")
    # The records really are in PostgreSQL: a second instance on the same database sees the runs.
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": databases.dagster}}}) as other:
        keys = {k.to_user_string() for k in other.get_asset_keys()}
        assert {"delivery_eta/raw", "delivery_eta/features", "delivery_eta/champion"} <= keys
    # Both URIs stated: a client given only the tracking URI reads the registry of the process-wide registry
    # URI, which any earlier log_model in this process set to its own database (see _registry_client).
    client = _registry_client(databases)
    assert [str(v.version) for v in client.search_model_versions("name='delivery_eta'")] == ["1"]


CONCURRENT_TRAINER = """
import sys
import dagster as dg
from mlops_platform.settings import Settings, resources_for
from tests.conftest import Platform
from mlops_platform.specs import get_spec

with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": sys.argv[1]}}}) as instance:
    platform = Platform(Settings.from_env(), instance, specs=[get_spec("delivery_eta")])
    result = platform.run(get_spec("delivery_eta"), ["training_set", "model"], raise_on_error=False)
    versions = [e.materialization.metadata["model_version"].value for e in result.get_asset_materialization_events()
                if e.asset_key.path[-1] == "model"]
    print("ok" if result.success else "failed", versions)
"""


def test_concurrent_runs_register_models_without_the_sqlite_pool(databases, pg_instance, pg_settings, delivery) -> None:
    """On PostgreSQL several runs register versions at once (SQLite needs the ``mlflow`` pool of one)."""
    platform = Platform(pg_settings, pg_instance, specs=[delivery])
    platform.land(delivery, days=2, rows=200)
    platform.ingest(delivery, 2)

    # The state of a platform that trained before: the schema (the deployed MLflow server migrates it once
    # at start; concurrent first connections would race on creating it), the experiment and the model.
    registry = resources_for(pg_settings)["registry"]
    registry.experiment_id("mlops/delivery_eta")
    registry.client().create_registered_model("delivery_eta")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    trainers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_TRAINER, databases.dagster],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [trainer.communicate(timeout=400) for trainer in trainers]
    for trainer, (out, err) in zip(trainers, outputs, strict=True):
        assert trainer.returncode == 0 and out.strip().splitlines()[-1].startswith("ok"), err[-3000:]
    reported = sorted(int(v) for out, _ in outputs for v in out.strip().splitlines()[-1][3:].strip(" []").split(","))
    assert reported == [1, 2, 3]  # three registrations, each its own version number
    client = _registry_client(databases)
    held = {v: client.get_model_version("delivery_eta", str(v)) for v in reported}  # raises for a lost one
    assert len({version.run_id for version in held.values()}) == 3  # each from its own training run
    assert sorted(int(v.version) for v in model_versions(client, "delivery_eta")) == reported  # and nothing else


PROBE = """
import json, sys
import pandas as pd
from mlops_platform.settings import Settings, resources_for
registry = resources_for(Settings.from_env())["registry"]
version = registry.alias_version("delivery_eta", "champion")
result = {"champion": version}
if version is not None:
    result["predictions"] = registry.load_model("delivery_eta", version).predict(pd.read_parquet(sys.argv[1])).tolist()
print(json.dumps(result))
"""


def test_disaster_recovery_drill_on_postgres(postgres, databases, pg_instance, pg_settings, delivery, tmp_path) -> None:
    platform = Platform(pg_settings, pg_instance, specs=[delivery])
    platform.land(delivery, days=3, rows=300)
    platform.ingest(delivery, 3)
    assert platform.train(delivery).success
    meta = platform.latest_metadata(delivery, "features", day(2))
    rows = read_table(str(meta["delta_uri"]), int(meta["delta_version"]))[delivery.feature_names]
    rows_file = tmp_path / "rows.parquet"
    rows.to_parquet(rows_file)
    env = {**os.environ}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mlops_platform", *args], env=env, capture_output=True, text=True, timeout=300
        )

    def probe() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, str(rows_file)], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    before = probe()
    assert before["champion"] == "1"
    backup = tmp_path / "backup"
    exported = cli("registry", "export", "--to", str(backup))
    assert exported.returncode == 0, exported.stderr

    # The disaster: the MLflow database is gone (artifacts stay on the store, as on a bucket).
    database = databases.mlflow.rsplit("/", 1)[1]
    postgres.sql(f"DROP DATABASE {database} WITH (FORCE)")
    postgres.sql(f"CREATE DATABASE {database}")
    assert probe() == {"champion": None}

    imported = cli("registry", "import", "--from", str(backup), "--restore-aliases")
    assert imported.returncode == 0, imported.stderr
    after = probe()
    assert after["champion"] == "1"
    assert after["predictions"] == before["predictions"]
