"""The whole asset family of both reference specs, materialized in-process on a temporary home.

One module-scoped platform is built once (30 days landed, ingested, trained, promoted, scored);
the tests then check lineage, reproduction, the promotion gates and rollback against it, in order.
"""

import json
import os
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from mlops_platform.ml.dataset import point_in_time_join
from mlops_platform.ml.metrics import score
from mlops_platform.ml.training import canonical_order, train
from mlops_platform.settings import Settings
from mlops_platform.storage.delta import read_days_at_versions, read_table
from mlops_platform.tracking.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION_TAG
from tests.conftest import Platform, day

DAYS = 30


@pytest.fixture(scope="module")
def trained(tmp_path_factory, churn, delivery):
    home = tmp_path_factory.mktemp("family")
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        platform = Platform(Settings(home=home / "home"), instance)
        platform.land(churn, days=DAYS, rows=1200)
        platform.land(delivery, days=DAYS, rows=600)
        for spec in (churn, delivery):
            platform.ingest(spec, DAYS)
            platform.train(spec)
            platform.run(spec, ["predictions"], partition_key=day(DAYS - 1))
        yield platform


def _registry(platform):
    return platform.resources["registry"]


def test_both_families_are_trained_promoted_and_scoring(trained, churn, delivery) -> None:
    for spec in (churn, delivery):
        registry = _registry(trained)
        assert registry.alias_version(spec.name, CHAMPION) == "1"
        assert registry.alias_version(spec.name, CHALLENGER) == "1"
        champion = trained.latest_metadata(spec, "champion")
        assert champion["action"] == "promote" and champion["champion_version"] == 1
        predictions = trained.latest_metadata(spec, "predictions", day(DAYS - 1))
        assert predictions["champion_version"] == 1
        assert predictions["dagster/row_count"] > 0
        model = trained.latest_metadata(spec, "model")
        assert model["mlflow_run_url"].startswith("http://127.0.0.1:5000/#/experiments/")
        assert isinstance(model[f"validation_{spec.metric}"], float)


def test_predictions_are_the_champion_pipeline_applied_to_the_days_features(trained, churn) -> None:
    meta = trained.latest_metadata(churn, "predictions", day(DAYS - 1))
    last_day = [pd.Timestamp(day(DAYS - 1)).date()]
    predictions = read_table(str(meta["delta_uri"]), int(meta["delta_version"]), days=last_day)
    features_meta = trained.latest_metadata(churn, "features", day(DAYS - 1))
    features = read_table(str(features_meta["delta_uri"]), int(features_meta["delta_version"]), days=last_day)
    pipeline = _registry(trained).load_model("churn", "1")
    expected = pipeline.predict_proba(features[churn.feature_names])[:, 1]
    assert predictions["probability"].tolist() == pytest.approx(expected.tolist())
    assert set(predictions["model_version"]) == {"1"}


def test_model_lineage_reproduces_the_training_set_and_the_model(trained, churn) -> None:
    registry = _registry(trained)
    run = registry.client().get_run(trained.latest_metadata(churn, "model")["mlflow_run_id"])
    tags = run.data.tags
    assert tags["dagster.asset_key"] == "churn/model"
    assert tags["dagster.run_id"]
    assert tags["mlops.code_version"]
    version = int(tags["mlops.training_set_version"])
    assert json.loads(tags["mlops.input_data_versions"]) == {"churn/training_set": version}

    stored = read_table(tags["mlops.training_set_uri"], version)
    # Rebuild it from the feature and label versions the training set recorded.
    training_meta = trained.latest_metadata(churn, "training_set")
    lake = trained.resources["lake"]
    features = read_days_at_versions(
        lake.uri(dg.AssetKey(["churn", "features"])),
        {pd.Timestamp(d).date(): v for d, v in training_meta["features_delta_versions"].items()},
    )
    labels = read_days_at_versions(
        lake.uri(dg.AssetKey(["churn", "labels"])),
        {pd.Timestamp(d).date(): v for d, v in training_meta["labels_delta_versions"].items()},
    )
    rebuilt = point_in_time_join(features, labels, churn)
    pd.testing.assert_frame_equal(canonical_order(rebuilt, churn), canonical_order(stored, churn), check_dtype=False)

    # Retraining on the stored version gives the metric MLflow recorded for the registered model.
    retrained = train(stored, churn)
    validation = stored[stored["split"] == "validation"]
    assert score(retrained, validation, churn) == pytest.approx(run.data.metrics["validation_roc_auc"])


def test_evaluation_scores_on_the_pinned_test_set(trained, churn) -> None:
    evaluation = trained.latest_metadata(churn, "evaluation")
    model = trained.latest_metadata(churn, "model")
    assert evaluation["training_set_version"] == model["training_set_version"]
    assert evaluation["test_rows"] == trained.latest_metadata(churn, "training_set")["rows_test"]


def _train_with(trained, spec, **update):
    variant = spec.model_copy(update=update)
    platform = Platform(trained.settings, trained.instance, specs=[variant])
    return platform.train(variant, raise_on_error=False)


def test_a_model_whose_reference_profile_fails_is_not_registered(trained, churn, monkeypatch) -> None:
    # A profile that cannot be built fails the step before a version exists, so no gate ever judges a
    # model that monitoring could not watch.
    import mlops_platform.assets.training as training

    def broken(*args, **kwargs):
        raise ValueError("profile broke")

    monkeypatch.setattr(training, "reference_profile", broken)
    result = trained.run(churn, ["training_set", "model"], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "profile broke" in str(failure.step_failure_data.error)
    registry = _registry(trained)
    assert not registry.version_exists("churn", "2")
    assert registry.alias_version("churn", CHALLENGER) == "1"


def test_a_failed_gate_blocks_promotion(trained, churn) -> None:
    def worse_estimator():
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="prior")

    result = _train_with(trained, churn, estimator=worse_estimator)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["meets_threshold"].passed
    assert not checks["no_regression_vs_champion"].passed
    assert "beyond tolerance" in checks["no_regression_vs_champion"].description
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["churn", "champion"]) not in materialized
    registry = _registry(trained)
    assert registry.alias_version("churn", CHALLENGER) == "2"
    assert registry.alias_version("churn", CHAMPION) == "1"  # not promoted past the failed gate


def test_promotion_then_rollback_job_and_cli(trained, churn, tmp_path) -> None:
    result = _train_with(trained, churn, metric_threshold=0.5, regression_tolerance=0.5)
    assert result.success
    registry = _registry(trained)
    assert registry.alias_version("churn", CHAMPION) == "3"
    assert registry.version_tags("churn", "3")[PREVIOUS_CHAMPION_TAG] == "1"

    job = trained.defs.resolve_job_def("churn_rollback")
    assert job.execute_in_process(instance=trained.instance).success
    assert registry.alias_version("churn", CHAMPION) == "1"
    rollback = trained.latest_metadata(churn, "champion")
    assert rollback["action"] == "rollback"
    assert (rollback["previous_champion_version"], rollback["champion_version"]) == (3, 1)
    operations = registry.client().get_experiment_by_name("mlops-operations")
    runs = registry.client().search_runs([operations.experiment_id])
    assert runs[0].data.params == {"action": "rollback", "model": "churn", "from_version": "3", "to_version": "1"}

    # Version 1 replaced no champion: the command refuses, says why, and changes nothing.
    env = {**os.environ, "MLOPS_HOME": str(trained.settings.home), "DAGSTER_HOME": str(tmp_path)}

    def rollback_command():
        return subprocess.run(
            [sys.executable, "-m", "mlops_platform", "rollback", "--model", "churn"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    done = rollback_command()
    assert done.returncode == 1, done.stderr
    assert "replaced no earlier champion" in done.stderr
    assert registry.alias_version("churn", CHAMPION) == "1"

    # Promote 3 again through the gates, then roll back from the command line.
    registry.promote("churn", "3")
    done = rollback_command()
    assert done.returncode == 0, done.stderr
    assert "rollback from version 3 to 1" in done.stdout
    assert registry.alias_version("churn", CHAMPION) == "1"
    with dg.DagsterInstance.from_config(str(tmp_path)) as cli_instance:
        event = cli_instance.get_latest_materialization_event(dg.AssetKey(["churn", "champion"]))
        assert event.asset_materialization.metadata["action"].value == "rollback"
