"""The disaster-recovery drill, run locally with the commands the runbook names.

Materialize, export the registry, destroy the local MLflow state, import it back: the champion loaded
from the restored registry scores the same rows exactly as before. A Delta table is restored to an
earlier version as a new commit.
"""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from mlops_platform.storage.delta import read_table
from mlops_platform.tracking.registry import CHAMPION, PREVIOUS_CHAMPION_TAG
from tests.conftest import day


def _cli(platform, *args):
    env = {**os.environ, "MLOPS_HOME": str(platform.settings.home)}
    return subprocess.run(
        [sys.executable, "-m", "mlops_platform", *args], env=env, capture_output=True, text=True, timeout=300
    )


CHAMPION_PROBE = """
import json, sys
import pandas as pd
from mlops_platform.settings import Settings, resources_for
registry = resources_for(Settings.from_env())["registry"]
version = registry.alias_version("delivery_eta", "champion")
result = {"champion": version}
if version is not None:
    model = registry.load_model("delivery_eta", version)
    result["tags"] = registry.version_tags("delivery_eta", version)
    result["predictions"] = model.predict(pd.read_parquet(sys.argv[1])).tolist()
print(json.dumps(result))
"""


def _champion_in_fresh_process(platform, rows_file) -> dict:
    env = {**os.environ, "MLOPS_HOME": str(platform.settings.home)}
    done = subprocess.run(
        [sys.executable, "-c", CHAMPION_PROBE, str(rows_file)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_registry_export_destroy_import_gives_the_same_predictions(platform, delivery, tmp_path) -> None:
    platform.land(delivery, days=4, rows=300)
    platform.ingest(delivery, 4)
    platform.train(delivery)
    platform.land(delivery, days=1, rows=300, start=pd.Timestamp(day(4)).date(), seed=11)
    platform.ingest(delivery, 1, start_offset=4)
    platform.train(delivery)  # version 2 replaces 1 as champion
    registry = platform.resources["registry"]
    assert registry.alias_version("delivery_eta", CHAMPION) == "2"

    features_meta = platform.latest_metadata(delivery, "features", day(4))
    rows = read_table(str(features_meta["delta_uri"]), int(features_meta["delta_version"]))
    before = registry.load_model("delivery_eta", "2").predict(rows[delivery.feature_names])

    backup = tmp_path / "backup"
    exported = _cli(platform, "registry", "export", "--to", str(backup))
    assert exported.returncode == 0, exported.stderr
    assert "delivery_eta: 2 version(s) exported" in exported.stdout

    shutil.rmtree(platform.settings.home / "mlflow")  # the disaster: tracking database and artifacts gone
    rows_file = tmp_path / "rows.parquet"
    rows[delivery.feature_names].to_parquet(rows_file)
    # A fresh process: this one's MLflow store still holds the deleted database open.
    assert _champion_in_fresh_process(platform, rows_file) == {"champion": None}

    # The operator restores the aliases explicitly: no gate ran in the new registry.
    imported = _cli(platform, "registry", "import", "--from", str(backup), "--restore-aliases")
    assert imported.returncode == 0, imported.stderr
    restored = _champion_in_fresh_process(platform, rows_file)
    assert restored["champion"] == "2"
    assert restored["tags"][PREVIOUS_CHAMPION_TAG] == "1"
    assert restored["tags"]["mlops.training_set_version"]
    assert restored["predictions"] == before.tolist()

    again = _cli(platform, "registry", "import", "--from", str(backup))
    assert again.returncode == 1 and "already holds ['delivery_eta']" in again.stderr
    missing = _cli(platform, "registry", "import", "--from", str(tmp_path / "nowhere"))
    assert missing.returncode != 0


def test_delta_restore_command(platform, churn) -> None:
    platform.land(churn, days=2, rows=100)
    platform.ingest(churn, 2)
    uri = str(platform.latest_metadata(churn, "features", day(1))["delta_uri"])
    done = _cli(platform, "delta", "restore", "--asset", "churn/features", "--version", "0")
    assert done.returncode == 0, done.stderr
    assert f"restored {uri} to version 0 as new version 2" in done.stdout
    pd.testing.assert_frame_equal(read_table(uri, 2), read_table(uri, 0))
    assert len(read_table(uri, 1)) == 200  # the version restored over is still there

    bad = _cli(platform, "delta", "restore", "--table", uri, "--version", "9")
    assert bad.returncode == 2 and "versions 0..2; 9 is not one of them" in bad.stderr  # a bad argument


@pytest.mark.parametrize("args", [["delta", "restore", "--asset", "x/y"], ["registry", "export"]])
def test_missing_arguments_are_named(platform, args) -> None:
    done = _cli(platform, *args)
    assert done.returncode == 2
    assert "required" in done.stderr
