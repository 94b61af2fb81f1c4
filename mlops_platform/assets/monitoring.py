"""The monitoring stage: each day's drift against the champion's reference profile, and performance.

``drift`` (daily): every feature and the prediction of the day vs the profile stored with the champion;
check ``no_drift`` (WARN / ERROR). ``performance`` (daily, by event day): the metric estimated from the
predicted probabilities as soon as the day is scored, and the realised metric beside it once the labels
land; check ``performance_within_tolerance``. Failed checks drive automation.retraining.
"""

import datetime as dt

import dagster as dg

from mlops_platform.assets.common import (
    TRANSIENT_RETRY,
    Frame,
    Stage,
    chosen_beta_features,
    present,
    retry_only_transient,
)
from mlops_platform.automation.conditions import follows_upstream
from mlops_platform.profiles.metrics import Metric, MetricsSink
from mlops_platform.storage.io_manager import Lake
from mlops_platform.tracking.registry import MlflowRegistry

NO_DRIFT_CHECK = "no_drift"
PERFORMANCE_CHECK = "performance_within_tolerance"
# The decision a check evaluation records, read by the retraining sensor: ok, warn, error, no_data, pending.
DECISION_KEY = "decision"


def _thresholds(stage: Stage):
    from mlops_platform.ml.drift import Thresholds

    policy = stage.spec.monitoring
    return Thresholds(warn=policy.drift_warn_threshold, error=policy.drift_error_threshold)


def _escaped(text: str) -> str:
    """Notes quote the data's own categories: keep them from breaking the markdown table."""
    return text.replace("|", "\\|").replace("\n", " ")


def _table(report) -> str:
    lines = ["| column | method | score | warn at | error at | null % (ref / day) | decision | note |"]
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
    for c in report.columns:
        score = "n/a" if c.score is None else f"{c.score:.4f}"
        lines.append(
            f"| {c.column} | {c.method} | {score} | {c.warn_at:.3f} | {c.error_at:.3f} | "
            f"{c.null_rate_reference:.1%} / {c.null_rate_current:.1%} | {c.decision} | {_escaped(c.note)} |"
        )
    return "\n".join(lines)


def build_drift(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec
    drift_key = stage.key("drift")

    @dg.asset(
        key=drift_key,
        group_name=stage.group,
        partitions_def=stage.partitions,
        ins={"features": dg.AssetIn(stage.key("features")), "predictions": dg.AssetIn(stage.key("predictions"))},
        automation_condition=follows_upstream(),
        check_specs=[
            dg.AssetCheckSpec(
                NO_DRIFT_CHECK,
                asset=drift_key,
                partitions_def=stage.partitions,
                description=(
                    f"No feature or prediction drifted beyond {spec.monitoring.drift_warn_threshold} (WARN) or "
                    f"{spec.monitoring.drift_error_threshold} (ERROR), or the noise level at the day's size."
                ),
            )
        ],
        retry_policy=TRANSIENT_RETRY,
        kinds={"mlflow", "pandas"},
    )
    @retry_only_transient
    def drift(
        context: dg.AssetExecutionContext,
        features: Frame,
        predictions: Frame,
        registry: MlflowRegistry,
        metrics: MetricsSink,
    ):
        """The day's features and predictions against the champion's reference profile (effect sizes)."""
        from mlops_platform.ml.drift import chart, compare
        from mlops_platform.ml.profile import PREDICTION
        from mlops_platform.tracking.profiles import MissingProfileError, load_profile
        from mlops_platform.tracking.registry import CHAMPION

        version = registry.alias_version(spec.registered_model_name, CHAMPION)
        if version is None:
            raise dg.Failure(f"{spec.name} has no champion: no reference profile to measure drift against")
        # MissingProfileError (a version trained before profiles existed) fails the step, naming the version.
        profile = load_profile(registry, spec.registered_model_name, version)
        prediction_column = "probability" if spec.task == "classification" else "prediction"
        prediction = predictions[prediction_column] if prediction_column in predictions.columns else None
        scored_by = _versions(predictions)
        # A prediction is compared with what its own model predicted on held-out rows: the day may have
        # been scored by the champion before this one.
        prediction_profile, prediction_note = profile, None
        if prediction is not None and scored_by and scored_by[0] != version:
            try:
                prediction_profile = load_profile(registry, spec.registered_model_name, scored_by[0])
            except MissingProfileError as exc:
                prediction, prediction_note = None, f"prediction drift not measured: {exc}"
        excluded = spec.monitoring.drift_exclude
        report = compare(profile, features, prediction, _thresholds(stage), prediction_profile, exclude=excluded)
        charts = [
            chart(
                prediction_profile.columns[PREDICTION] if c.column == "prediction" else profile.columns[c.column],
                prediction if c.column == "prediction" else features[c.column],
            )
            for c in report.drifted
        ]
        summary = report.summary() + (f"; {prediction_note}" if prediction_note else "")
        if excluded:
            summary += f"; not scored (monitoring.drift_exclude): {', '.join(excluded)}"
        metadata = {
            "rows": report.rows,
            "decision": report.decision,
            "summary": summary,
            "profile_model_version": int(version),
            "predictions_model_versions": ",".join(scored_by) or None,
            "drifted_columns": len(report.drifted),
            "columns": dg.MetadataValue.md(_table(report)),
            "reference_vs_day": dg.MetadataValue.md("\n\n".join(charts)) if charts else None,
            "features_delta_versions": dg.MetadataValue.json(features.attrs.get("delta_versions", {})),
            **{
                f"score_{c.column}": dg.MetadataValue.float(float(c.score))
                for c in report.columns
                if c.score is not None
            },
        }
        decision = report.decision
        model = {"model": spec.name}
        metrics.record(
            [
                *(
                    Metric("drift_score", float(c.score), {**model, "column": c.column})
                    for c in report.columns
                    if c.score is not None
                ),
                Metric("drifted_columns", float(len(report.drifted)), model),
            ],
            context.log,
        )
        check = dg.AssetCheckResult(
            check_name=NO_DRIFT_CHECK,
            passed=decision == "ok",
            severity=dg.AssetCheckSeverity.ERROR if decision == "error" else dg.AssetCheckSeverity.WARN,
            description=summary,
            metadata=present(
                {
                    DECISION_KEY: decision,
                    "drifted": ",".join(c.column for c in report.drifted) or None,
                    "max_score": max((c.score for c in report.columns if c.score is not None), default=None),
                }
            ),
        )
        return dg.MaterializeResult(metadata=present(metadata), check_results=[check])

    return drift


def build_performance(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec
    performance_key, labels_key, predictions_key = (
        stage.key("performance"),
        stage.key("labels"),
        stage.key("predictions"),
    )
    delay = spec.source.label_delay_days
    tolerance = spec.monitoring.performance_tolerance

    @dg.asset(
        key=performance_key,
        group_name=stage.group,
        partitions_def=stage.partitions,
        ins={"predictions": dg.AssetIn(predictions_key)},
        # Labels of the day's events land ``label_delay_days`` later (or the day after, past midnight): two
        # label days, read in the body at the versions their materializations recorded, days not landed skipped.
        # Each of them landing re-runs the day once; other label days never touch it.
        deps=[
            dg.AssetDep(
                labels_key,
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=delay, end_offset=delay + 1, allow_nonexistent_upstream_partitions=True
                ),
            )
        ],
        automation_condition=(
            (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
            & ~dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets(labels_key))
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()
        ).with_label("scored, or labels landed"),
        check_specs=[
            dg.AssetCheckSpec(
                PERFORMANCE_CHECK,
                asset=performance_key,
                partitions_def=stage.partitions,
                description=f"Realised (or, before labels, estimated) {spec.metric} within {tolerance} of validation.",
            )
        ],
        retry_policy=TRANSIENT_RETRY,
        kinds={"mlflow", "pandas"},
    )
    @retry_only_transient
    def performance(
        context: dg.AssetExecutionContext,
        predictions: Frame,
        registry: MlflowRegistry,
        lake: Lake,
        metrics: MetricsSink,
    ):
        """The day's realised metric once labels land, the CBPE estimate before, against validation."""
        from mlops_platform.ml.days import within_days
        from mlops_platform.ml.performance import (
            estimate_metric,
            match_labels,
            metric_noise,
            realised_metric,
            within_tolerance,
            worse_by,
        )

        day = dt.date.fromisoformat(context.partition_key)
        labels, labels_versions = _landed_labels(context, lake, labels_key, day, delay)
        events = labels[within_days(labels[spec.event_timestamp], day, day)] if len(labels) else labels
        scored_by = _versions(predictions)
        version = scored_by[0] if scored_by else None
        validation, calibration, validation_se, version_note = (
            _validation_of(registry, spec, version) if version else (None, None, 0.0, None)
        )
        estimated = None
        if spec.task == "classification" and len(predictions):
            estimated = estimate_metric(predictions["probability"].to_numpy(), spec.metric, calibration)
        if len(events):
            matched = match_labels(
                predictions, events, spec.entity_key, spec.event_timestamp, spec.label, spec.label_timestamp
            )
            frame, unmatched, label_days = matched.frame, matched.labels_without_prediction, matched.label_days
        else:
            frame, unmatched, label_days = predictions.iloc[:0], 0, ()
        realised, why, noise = None, None, None
        if len(frame):
            try:
                realised = realised_metric(
                    spec.metric,
                    frame[spec.label].to_numpy(),
                    frame["prediction"].to_numpy(),
                    frame["probability"].to_numpy() if "probability" in frame else None,
                )
            except ValueError as exc:
                why = f"realised {spec.metric} not computable: {exc}"
        due = day + dt.timedelta(days=delay)
        # Decisions the retraining sensor reads: ok, error (realised beyond tolerance), warn (estimate beyond
        # it), pending (labels not landed, estimate within), no_data and unmatched (nothing to judge the model
        # by: never a retrain, always a failed check so that nobody mistakes it for a pass).
        if len(predictions) == 0:
            status, passed, severity = "no_data", False, dg.AssetCheckSeverity.WARN
            description = f"no predictions on {day}: performance not assessed"
        elif validation is None:
            status, passed, severity = "no_data", False, dg.AssetCheckSeverity.WARN
            description = f"model version {version} records no validation {spec.metric}: nothing to compare with"
        elif realised is not None:
            gap = worse_by(realised, validation, spec.greater_is_better)
            # Sampling noise of both metrics: a small day (or a small validation split) is no evidence.
            realised_se = metric_noise(
                spec.metric,
                frame[spec.label].to_numpy(),
                frame["prediction"].to_numpy(),
                frame["probability"].to_numpy() if "probability" in frame else None,
            )
            passed, noise = within_tolerance(gap, tolerance, realised_se, validation_se)
            status, severity = ("ok" if passed else "error"), dg.AssetCheckSeverity.ERROR
            description = (
                f"realised {spec.metric} {realised:.4f} over {len(frame)} labels vs validation {validation:.4f}: "
                f"worse by {gap:.4f} ({'within' if passed else 'beyond'} tolerance {tolerance} "
                f"+ sampling noise {noise:.4f})"
            )
            if estimated is not None:
                description += f"; estimated before labels {estimated:.4f}"
        elif len(events) and not len(frame):
            status, passed, severity = "unmatched", False, dg.AssetCheckSeverity.WARN
            description = (
                f"{len(events)} label(s) of {day}'s events landed but none matches a prediction on "
                f"({spec.entity_key}, {spec.event_timestamp}): were these events scored?"
            )
        elif why:
            status, passed, severity = "no_data", False, dg.AssetCheckSeverity.WARN
            description = why
        elif estimated is not None:
            gap = worse_by(estimated, validation, spec.greater_is_better)
            passed = gap <= tolerance
            status, severity = ("pending" if passed else "warn"), dg.AssetCheckSeverity.WARN
            description = (
                f"labels not landed yet (due {due}); estimated {spec.metric} {estimated:.4f} "
                f"vs validation {validation:.4f}, worse by {gap:.4f} "
                f"({'within' if passed else 'beyond'} tolerance {tolerance})"
            )
        else:
            status, passed, severity = "pending", True, dg.AssetCheckSeverity.WARN
            description = f"labels not landed yet (due {due}); {spec.metric} has no estimate before labels"
        if unmatched and status != "unmatched":
            description += f"; {unmatched} label(s) match no prediction"
        if version_note:
            description += f"; {version_note}"
        metadata = {
            f"realised_{spec.metric}": None if realised is None else dg.MetadataValue.float(realised),
            f"estimated_{spec.metric}": None if estimated is None else dg.MetadataValue.float(estimated),
            f"validation_{spec.metric}": None if validation is None else dg.MetadataValue.float(validation),
            "sampling_noise": None if noise is None else dg.MetadataValue.float(noise),
            "estimate_error": None
            if realised is None or estimated is None
            else dg.MetadataValue.float(estimated - realised),
            "predictions": len(predictions),
            "labelled_predictions": len(frame),
            "labels_without_prediction": unmatched,
            "label_days": ",".join(label_days) or None,
            "labels_due": due.isoformat(),
            "model_version": None if version is None else int(version),
            "status": status,
            "summary": description,
            "predictions_delta_versions": dg.MetadataValue.json(predictions.attrs.get("delta_versions", {})),
            "labels_delta_versions": dg.MetadataValue.json(labels_versions),
        }
        figures = {"performance_realised": realised, "performance_estimated": estimated}
        dimensions = {"model": spec.name, "metric": spec.metric}
        metrics.record(
            [Metric(name, float(value), dimensions) for name, value in figures.items() if value is not None],
            context.log,
        )
        check = dg.AssetCheckResult(
            check_name=PERFORMANCE_CHECK,
            passed=passed,
            severity=severity,
            description=description,
            metadata=present({DECISION_KEY: status, "tolerance": tolerance}),
        )
        return dg.MaterializeResult(metadata=present(metadata), check_results=[check])

    return performance


def _versions(predictions) -> list[str]:
    """The model versions that scored ``predictions``, the most frequent first."""
    if not len(predictions) or "model_version" not in predictions.columns:
        return []
    return [str(v) for v in predictions["model_version"].astype(str).value_counts().index]


def _validation_of(registry: MlflowRegistry, spec, version: str):
    """(validation metric, calibration curve, the metric's standard error, note) of a model version, from
    its profile or its MLflow run (a standard error of 0 when the profile records none).

    A version trained before reference profiles existed still has its validation metric on its run;
    its estimate is then uncalibrated, and the note says so.
    """
    from mlops_platform.tracking.profiles import MissingProfileError, load_profile

    try:
        profile = load_profile(registry, spec.registered_model_name, version)
    except MissingProfileError as exc:
        client = registry.client()
        run_id = client.get_model_version(spec.registered_model_name, version).run_id
        metric = client.get_run(run_id).data.metrics.get(f"validation_{spec.metric}")
        return metric, None, 0.0, f"{exc}; validation {spec.metric} read from its MLflow run, estimate uncalibrated"
    return profile.validation_metric, profile.calibration, profile.validation_metric_se or 0.0, None


def _landed_labels(context, lake: Lake, labels_key: dg.AssetKey, day: dt.date, delay: int):
    """Labels that landed ``delay`` and ``delay + 1`` days after ``day``, each at its recorded Delta version.

    Label days not ingested yet are skipped (an empty frame when none is): the labels are pending.
    """
    import pandas as pd

    from mlops_platform.storage.delta import read_days_at_versions
    from mlops_platform.storage.io_manager import recorded_versions

    days = [(day + dt.timedelta(days=delay + i)).isoformat() for i in range(2)]
    versions = recorded_versions(context.instance, labels_key, days)
    by_day = {dt.date.fromisoformat(k): v for k, v in versions.items() if k is not None}
    if not by_day:
        return pd.DataFrame(), {}
    frame = read_days_at_versions(lake.uri(labels_key), by_day, storage_options=lake.storage_options)
    return frame, {d.isoformat(): v for d, v in sorted(by_day.items())}


def build_monitoring(stage: Stage) -> list:
    """The monitoring assets of one family: drift and performance (checks evaluated per partition)."""
    with chosen_beta_features():
        return [build_drift(stage), build_performance(stage)]
