"""Monitoring through the churn family: profiles stored with versions, drift, performance, guarded retraining.

One module-scoped platform: 20 calm days landed, ingested (one range run), trained, promoted and scored,
then a drifted week driven day by day through ingest, scoring, drift and the retraining sensor, on a clock
the test moves, with the retrains the sensor requests run through the family's gates.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from mlops_platform.assets.monitoring import NO_DRIFT_CHECK, PERFORMANCE_CHECK
from mlops_platform.automation import retraining
from mlops_platform.automation.retraining import RETRAIN_REASON_TAG, build_retraining_sensor
from mlops_platform.ml.profile import ReferenceProfile
from mlops_platform.settings import Settings
from mlops_platform.specs.base import MonitoringPolicy
from mlops_platform.tracking.profiles import PROFILE_TAG, MissingProfileError, load_profile
from mlops_platform.tracking.registry import CHAMPION
from tests.conftest import Platform, day

CALM_DAYS = 20
DRIFTED = range(20, 27)
ROWS = 400
T0 = dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)
TRAIN = ["training_set", "model", "evaluation", "champion"]


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, churn):
    spec = churn.model_copy(
        update={"monitoring": MonitoringPolicy(cooldown_hours=60, max_retrains=2, window_hours=168)}
    )
    home = tmp_path_factory.mktemp("monitoring")
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        platform = Platform(Settings(home=home / "home"), instance, specs=[spec])
        platform.land(spec, days=CALM_DAYS, rows=ROWS)
        dg.materialize(  # the calm days in one range run, as the landing sensor hands them over
            platform.assets,
            selection=dg.AssetSelection.assets(*(dg.AssetKey([spec.name, n]) for n in ("raw", "labels", "features"))),
            resources=platform.resources,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": day(0),
                "dagster/asset_partition_range_end": day(CALM_DAYS - 1),
            },
        )
        platform.train(spec)
        platform.run(spec, ["predictions"], partition_key=day(CALM_DAYS - 1))
        yield spec, platform


def test_the_profile_is_stored_with_the_model_version(monitored) -> None:
    spec, platform = monitored
    registry = platform.resources["registry"]
    tags = registry.version_tags(spec.name, "1")
    model = platform.latest_metadata(spec, "model")
    assert tags[PROFILE_TAG] == model["reference_profile_sha256"] and len(tags[PROFILE_TAG]) == 64
    profile = load_profile(registry, spec.name, "1")
    assert isinstance(profile, ReferenceProfile) and profile.sha256() == tags[PROFILE_TAG]
    assert set(profile.features) == set(spec.feature_names)
    assert profile.validation_metric == pytest.approx(model["validation_roc_auc"])
    assert len(profile.to_json()) <= 200_000
    assert profile.calibration is not None  # a classifier's validation reliability curve, for CBPE


def test_a_calm_day_shows_no_drift_with_every_score(monitored) -> None:
    spec, platform = monitored
    result = platform.run(spec, ["drift"], partition_key=day(CALM_DAYS - 1))
    check = _checks(result)[NO_DRIFT_CHECK]
    assert check.passed, check.description
    meta = platform.latest_metadata(spec, "drift", day(CALM_DAYS - 1))
    assert meta["decision"] == "ok" and meta["profile_model_version"] == 1
    for name in [*spec.feature_names, "prediction"]:
        assert isinstance(meta[f"score_{name}"], float)
    assert "| usage_hours_30d | wasserstein_norm |" in meta["columns"]


def test_performance_estimated_and_realised_side_by_side(monitored) -> None:
    spec, platform = monitored
    # Events of day 5 were labelled on day 19 (14 days later); day 19's labels have not landed.
    platform.run(spec, ["predictions"], partition_key=day(5))
    result = platform.run(spec, ["performance"], partition_key=day(5))
    check = _checks(result)[PERFORMANCE_CHECK]
    meta = platform.latest_metadata(spec, "performance", day(5))
    assert meta["labelled_predictions"] > 0 and meta["labels_without_prediction"] == 0
    assert isinstance(meta["realised_roc_auc"], float) and isinstance(meta["estimated_roc_auc"], float)
    assert abs(meta["estimate_error"]) < 0.1
    assert meta["label_days"] == day(19)
    assert check.passed == (meta["status"] == "ok"), check.description
    pending = platform.run(spec, ["performance"], partition_key=day(CALM_DAYS - 1))
    meta = platform.latest_metadata(spec, "performance", day(CALM_DAYS - 1))
    assert meta["status"] in ("pending", "warn") and "realised_roc_auc" not in meta
    assert "labels not landed yet" in _checks(pending)[PERFORMANCE_CHECK].description


def test_a_drifted_week_retrains_once_per_cooldown_then_the_gates_decide(monitored, monkeypatch) -> None:
    spec, platform = monitored
    train_job = dg.define_asset_job(
        f"{spec.name}_train", selection=dg.AssetSelection.assets(*(dg.AssetKey([spec.name, n]) for n in TRAIN))
    )
    sensor = build_retraining_sensor(spec, train_job)
    two_days = build_retraining_sensor(
        spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"consecutive_days": 2})}), train_job
    )
    cursors: dict[str, str | None] = {"main": None, "two": None}
    platform.land(spec, days=len(DRIFTED), start=dt.date.fromisoformat(day(DRIFTED[0])), rows=ROWS, drift=1.0)
    outcomes, two_day_outcomes, retrain_runs, measured_against = [], [], [], []
    registry = platform.resources["registry"]
    for offset in DRIFTED:
        now = T0 + dt.timedelta(days=offset - DRIFTED[0])
        monkeypatch.setattr(retraining, "utcnow", lambda now=now: now)
        platform.ingest(spec, 1, start_offset=offset)
        check = _checks(platform.run(spec, ["predictions", "drift"], partition_key=day(offset)))[NO_DRIFT_CHECK]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR, check.description
        meta = platform.latest_metadata(spec, "drift", day(offset))
        # Always the champion of the day: after a promoted retrain, the new version's profile.
        assert str(meta["profile_model_version"]) == registry.alias_version(spec.name, CHAMPION)
        assert meta["profile_model_version"] == int(meta["predictions_model_versions"])
        assert (
            "**usage_hours_30d**" in meta["reference_vs_day"]
            and "| bin | reference | current |" in meta["reference_vs_day"]
        )
        measured_against.append(meta["profile_model_version"])
        for name, built, log in (("main", sensor, outcomes), ("two", two_days, two_day_outcomes)):
            context = dg.build_sensor_context(instance=platform.instance, cursor=cursors[name])
            data = built.evaluate_tick(context)
            cursors[name] = data.cursor
            log.append("run" if data.run_requests else (data.skip_message or ""))
            if name == "main" and data.run_requests:
                request = data.run_requests[0]
                assert request.tags[RETRAIN_REASON_TAG].startswith(f"{spec.name}/no_drift error on {day(offset)}")
                retrain_runs.append(_retrain(spec, platform, request.tags))
    # Day 1 retrains; days 2-3 are inside the 60 h cooldown; day 4 retrains; days 5-6 cooldown; day 7 the cap.
    assert outcomes[0] == "run" and outcomes[3] == "run"
    for index in (1, 2, 4, 5):
        assert "cooldown until" in outcomes[index], outcomes[index]
    assert "cap reached: 2 of 2 retrains" in outcomes[6], outcomes[6]
    assert "needs 2 consecutive failed days" in two_day_outcomes[0] and two_day_outcomes[1] == "run"
    assert len(retrain_runs) == 2
    assert len({version for version, _ in retrain_runs}) == 2
    # The gates decided each retrain: the first challenger passed and became champion; the second, trained on
    # more of the labels that landed during the drifted week, fell below the spec's roc_auc threshold (0.7).
    # Drift measures against the champion of the day: version 2 from the day after the first retrain on.
    assert retrain_runs == [("2", True), ("3", False)], retrain_runs
    assert measured_against == [1, 2, 2, 2, 2, 2, 2], measured_against


def _retrain(spec, platform: Platform, tags: dict[str, str]) -> tuple[str, bool]:
    """Run the training job as the sensor requested it; check the reason and that the gates decided."""
    registry = platform.resources["registry"]
    before = registry.alias_version(spec.name, CHAMPION)
    result = dg.materialize(
        platform.assets,
        selection=dg.AssetSelection.assets(*(dg.AssetKey([spec.name, n]) for n in TRAIN)),
        resources=platform.resources,
        instance=platform.instance,
        tags=tags,
        raise_on_error=False,
    )
    model = next(
        m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey([spec.name, "model"])
    )
    metadata = model.materialization.metadata
    version = str(metadata["model_version"].value)
    run = registry.client().get_run(str(metadata["mlflow_run_id"].value))
    assert run.data.tags["mlops.retrain_reason"] == tags[RETRAIN_REASON_TAG]
    assert metadata["retrain_reason"].value == tags[RETRAIN_REASON_TAG]
    assert load_profile(registry, spec.name, version).sha256() == metadata["reference_profile_sha256"].value
    gates = _checks(result)
    assert {"meets_threshold", "no_regression_vs_champion"} <= set(gates)
    promoted = all(g.passed for g in gates.values())
    # The gates decide: a passing challenger becomes champion, a failing one leaves the champion alone.
    assert registry.alias_version(spec.name, CHAMPION) == (version if promoted else before)
    assert result.success == promoted
    if not promoted:
        assert not gates["meets_threshold"].passed, {n: g.description for n, g in gates.items()}
    return version, promoted


def test_a_version_without_profile_fails_drift_naming_it(monitored) -> None:
    spec, platform = monitored
    registry = platform.resources["registry"]
    champion = registry.alias_version(spec.name, CHAMPION)
    client = registry.client()
    platform.run(spec, ["predictions"], partition_key=day(CALM_DAYS - 1))  # scored by today's champion
    client.delete_model_version_tag(spec.name, champion, PROFILE_TAG)
    try:
        with pytest.raises(MissingProfileError, match=f"version {champion} has no reference profile"):
            load_profile(registry, spec.name, champion)
        result = platform.run(spec, ["drift"], partition_key=day(CALM_DAYS - 1), raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        message = failure.step_failure_data.error.message
        assert f"version {champion} has no reference profile" in message and "retrain it" in message
        # Performance needs only the validation metric, which the version's MLflow run still has.
        check = _checks(platform.run(spec, ["performance"], partition_key=day(CALM_DAYS - 1)))[PERFORMANCE_CHECK]
        meta = platform.latest_metadata(spec, "performance", day(CALM_DAYS - 1))
        assert meta["model_version"] == int(champion) and isinstance(meta["validation_roc_auc"], float)
        assert "has no reference profile" in check.description
        assert "validation roc_auc read from its MLflow run, estimate uncalibrated" in check.description
    finally:
        client.set_model_version_tag(spec.name, champion, PROFILE_TAG, load_profile_hash(platform, spec, champion))


def load_profile_hash(platform, spec, version: str) -> str:
    records = platform.instance.fetch_materializations(dg.AssetKey([spec.name, "model"]), limit=50).records
    for record in records:
        meta = record.asset_materialization.metadata
        if str(meta["model_version"].value) == version:
            return str(meta["reference_profile_sha256"].value)
    raise AssertionError(f"no model materialization of version {version}")
