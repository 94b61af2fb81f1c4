"""The asset family of one model spec.

raw + labels (daily, from the landing zone) -> features (daily) -> training_set -> model ->
evaluation (blocking gates) -> champion -> predictions (daily). Assets are thin: load, call the pure
functions in ``mlops_platform.ml``, record metadata.
"""

import datetime as dt
import functools
import inspect
import json
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import dagster as dg

from mlops_platform.automation.conditions import follows_upstream, promote_when_gates_pass, retrain_on
from mlops_platform.specs.base import ModelSpec, spec_code_version
from mlops_platform.storage.delta import DAY_COLUMN
from mlops_platform.storage.io_manager import Lake
from mlops_platform.storage.landing import LandingZone, stream_of
from mlops_platform.tracking.registry import MlflowRegistry

DELTA = "delta_io_manager"
FILES_VALID_CHECK = "files_valid"
THRESHOLD_CHECK = "meets_threshold"
REGRESSION_CHECK = "no_regression_vs_champion"
SOURCE_FILE_COLUMN = "source_file"

# A pandas DataFrame. Typed as Any because Dagster evaluates asset annotations when the code location
# loads, and importing pandas there would cost every run, step and sensor tick ~0.4 s.
Frame: TypeAlias = Any

TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
# Beyond what storage.errors.is_unavailable recognises: SQLite's lock (the local MLflow store) and
# looser signs of a network hiccup in messages of clients it does not know.
TRANSIENT_MARKERS = ("database is locked", "connection", "503", "429")


def _is_transient(exc: Exception) -> bool:
    """A hiccup a later attempt can get past: an unreachable or overloaded store, a locked database.

    A store that answered and refused (StorageError: 403, 404, a bad request) is not one, whatever
    its message says. Storage clients' connection errors count by type, also when wrapped (boto3's
    EndpointConnectionError is no OSError; MLflow re-raises the SDK's error from its own).
    """
    from mlops_platform.storage.errors import StorageError, is_unavailable

    if isinstance(exc, StorageError):
        return False
    if isinstance(exc, OSError) or is_unavailable(exc):  # ConnectionError and TimeoutError are OSErrors
        return True
    return any(marker in str(exc).lower() for marker in TRANSIENT_MARKERS)


def retry_only_transient(fn):
    """Let the RetryPolicy retry storage and network hiccups, but fail at once on everything else.

    A deterministic error (bad data, an untrusted type, a failed fit) would fail the same way on
    every retry; it becomes a Failure that names the asset and is not retried.
    """

    def convert(exc: Exception) -> Exception:
        if isinstance(exc, dg.Failure) or _is_transient(exc):
            return exc
        return dg.Failure(description=f"{fn.__name__}: {type(exc).__name__}: {exc}", allow_retries=False)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise convert(exc) from exc

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise convert(exc) from exc

    return wrapper


@dataclass
class Family:
    """Everything one spec contributes to the Definitions."""

    spec: ModelSpec
    assets: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.spec.name, name])


def _present(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata without the entries that do not apply (shown as "null" in the UI otherwise)."""
    return {key: value for key, value in metadata.items() if value is not None}


def daily_partitions(spec: ModelSpec) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=spec.start_date.isoformat())


def _freshness(spec: ModelSpec) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=spec.freshness_hours),
        warn_window=dt.timedelta(hours=max(1, spec.freshness_hours // 2)),
    )


def _ingest_stream(
    files: list, stream: str, spec: ModelSpec, day: dt.date, landing: LandingZone, log: Any
) -> tuple[Frame, list[str], dict[str, str]]:
    """Valid files of one stream concatenated; bad ones quarantined with their reason."""
    import pandas as pd

    from mlops_platform.ml.validation import InvalidFile, conform, read_landed_file

    schema = spec.source.events if stream == "events" else spec.source.labels
    day_column = spec.event_timestamp if stream == "events" else spec.label_timestamp
    frames, ingested, quarantined = [], [], {}
    for path in files:
        try:
            frame = conform(
                read_landed_file(path),
                schema,
                day=day,
                day_column=day_column,
                key_columns=(spec.entity_key, day_column),
            )
        except InvalidFile as exc:
            target = landing.quarantine(path, spec.name, day.isoformat(), str(exc))
            quarantined[path.name] = str(exc)
            log.warning(f"quarantined {path} -> {target}: {exc}")
            continue
        frame[SOURCE_FILE_COLUMN] = path.name
        frames.append(frame)
        ingested.append(path.name)
    if frames:
        combined = pd.concat(frames, ignore_index=True)
    else:
        combined = pd.DataFrame({c: pd.Series(dtype=_pandas_dtype(t)) for c, t in schema.items()})
        combined[SOURCE_FILE_COLUMN] = pd.Series(dtype=object)
    combined[DAY_COLUMN] = combined[day_column].dt.date if len(combined) else pd.Series(dtype=object)
    return combined, ingested, quarantined


def _pandas_dtype(column_type: str) -> str:
    return {"string": "object", "timestamp": "datetime64[ns]"}.get(column_type, column_type)


def _dedupe(frame: Frame, keys: list[str]) -> tuple[Frame, int]:
    """One row per key (the last file wins), so a file landed twice never doubles its rows."""
    deduped = frame.drop_duplicates(subset=keys, keep="last")
    return deduped.reset_index(drop=True), len(frame) - len(deduped)


@dataclass
class _DayIngest:
    day: dt.date
    frames: dict[str, Frame]
    ingested: dict[str, list[str]]
    rejected: dict[str, dict[str, str]]
    duplicates: dict[str, int]


def _ingest_day(spec: ModelSpec, day: dt.date, landing: LandingZone, log: Any) -> _DayIngest:
    """Both streams of one day: valid files typed and deduplicated, the rest quarantined."""
    by_stream: dict[str, list] = {"events": [], "labels": []}
    unknown: dict[str, str] = {}
    for path in landing.files_for(spec.name, day):
        stream = stream_of(path)
        if stream is None:
            reason = "file name must start with 'events-' or 'labels-'"
            landing.quarantine(path, spec.name, day.isoformat(), reason)
            log.warning(f"quarantined {path}: {reason}")
            unknown[path.name] = reason
        else:
            by_stream[stream].append(path)
    result = _DayIngest(day, {}, {}, {"events": unknown, "labels": {}}, {})
    for stream, paths in by_stream.items():
        frame, ingested, rejected = _ingest_stream(paths, stream, spec, day, landing, log)
        result.frames[stream], result.duplicates[stream] = _dedupe(frame, [spec.entity_key, spec.event_timestamp])
        result.ingested[stream] = ingested
        result.rejected[stream].update(rejected)
    return result


def build_family(spec: ModelSpec) -> Family:
    """All assets, checks, jobs and schedules of one spec. Group and key prefix are the spec name."""
    family = Family(spec=spec)
    partitions = daily_partitions(spec)
    group = spec.name
    code_version = spec_code_version(spec)
    raw_key, labels_key = family.key("raw"), family.key("labels")
    features_key, training_key = family.key("features"), family.key("training_set")
    model_key, evaluation_key = family.key("model"), family.key("evaluation")
    champion_key, predictions_key = family.key("champion"), family.key("predictions")
    freshness = _freshness(spec)

    @dg.multi_asset(
        name=f"{spec.name}__ingest",
        outs={
            f"{spec.name}__raw": dg.AssetOut(
                key=raw_key,
                io_manager_key=DELTA,
                description=f"Events of {spec.name} landed for the day, validated and typed.",
                group_name=group,
                freshness_policy=freshness,
                kinds={"delta", "pandas"},
                metadata={"partition_column": DAY_COLUMN},
            ),
            f"{spec.name}__labels": dg.AssetOut(
                key=labels_key,
                io_manager_key=DELTA,
                description=f"Labels ({spec.label}) of {spec.name} that landed on the day.",
                group_name=group,
                kinds={"delta", "pandas"},
                metadata={"partition_column": DAY_COLUMN},
            ),
        },
        check_specs=[
            dg.AssetCheckSpec(
                FILES_VALID_CHECK,
                asset=raw_key,
                description="Every file landed for the day was ingested; none sits in quarantine.",
            )
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=TRANSIENT_RETRY,
    )
    @retry_only_transient
    def ingest(context: dg.AssetExecutionContext, landing: LandingZone):
        """Ingest exactly the files of each day in the run; quarantine bad files with their reason."""
        import pandas as pd

        days = [_ingest_day(spec, dt.date.fromisoformat(key), landing, context.log) for key in context.partition_keys]
        quarantined = {
            path: reason for d in days for path, reason in landing.quarantined(spec.name, d.day.isoformat()).items()
        }
        for stream, output in (("events", f"{spec.name}__raw"), ("labels", f"{spec.name}__labels")):
            frames = [d.frames[stream] for d in days]
            yield dg.Output(
                pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0],
                output_name=output,
                metadata={
                    "files_ingested": dg.MetadataValue.json({d.day.isoformat(): d.ingested[stream] for d in days}),
                    "files_quarantined_this_run": dg.MetadataValue.json(
                        {name: reason for d in days for name, reason in d.rejected[stream].items()}
                    ),
                    "duplicate_rows_dropped": sum(d.duplicates[stream] for d in days),
                },
            )
        total = sum(len(d.ingested[s]) for d in days for s in d.ingested)
        span = days[0].day.isoformat() if len(days) == 1 else f"{days[0].day}..{days[-1].day}"
        yield dg.AssetCheckResult(
            asset_key=raw_key,
            check_name=FILES_VALID_CHECK,
            passed=not quarantined,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(quarantined)} file(s) of {span} are in quarantine; see reasons"
                if quarantined
                else f"all {total} file(s) of {span} ingested"
            ),
            metadata={
                "quarantined": dg.MetadataValue.json(quarantined),
                "quarantine_folder": dg.MetadataValue.path(f"{landing.quarantine_root}/{spec.name}"),
            },
        )

    @dg.asset(
        key=features_key,
        group_name=group,
        partitions_def=partitions,
        io_manager_key=DELTA,
        ins={"raw": dg.AssetIn(raw_key)},
        automation_condition=follows_upstream(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=TRANSIENT_RETRY,
        freshness_policy=freshness,
        code_version=code_version,
        kinds={"delta", "pandas"},
        metadata={"partition_column": DAY_COLUMN},
    )
    @retry_only_transient
    def features(context: dg.AssetExecutionContext, raw: Frame) -> Frame:
        """Point-in-time keyed features (entity, event time) of one day, computed from its raw events."""
        from mlops_platform.ml.features import compute_features

        result = compute_features(raw, spec)
        context.add_output_metadata({"raw_delta_versions": dg.MetadataValue.json(raw.attrs.get("delta_versions", {}))})
        return result

    @dg.asset(
        key=training_key,
        group_name=group,
        io_manager_key=DELTA,
        ins={"features": dg.AssetIn(features_key), "labels": dg.AssetIn(labels_key)},
        automation_condition=retrain_on(spec.retrain_cron),
        retry_policy=TRANSIENT_RETRY,
        code_version=code_version,
        kinds={"delta", "pandas"},
    )
    @retry_only_transient
    def training_set(context: dg.AssetExecutionContext, features: Frame, labels: Frame) -> Frame:
        """Labels of the training window joined point-in-time with features, split by entity hash."""
        from mlops_platform.ml.dataset import point_in_time_join, window_bounds

        start, end = window_bounds(labels, spec)
        joined = point_in_time_join(features, labels, spec)
        if joined.empty:
            raise ValueError(
                f"{spec.name}: no label between {start} and {end} has a feature row at or before its event"
            )
        label_days = labels[spec.label_timestamp].dt.date
        labels_in_window = int(((label_days >= start) & (label_days <= end)).sum())
        counts = joined["split"].value_counts()
        context.add_output_metadata(
            {
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "features_delta_versions": dg.MetadataValue.json(features.attrs["delta_versions"]),
                "labels_delta_versions": dg.MetadataValue.json(labels.attrs["delta_versions"]),
                "labels_without_features": labels_in_window - len(joined),
                **{f"rows_{name}": int(counts.get(name, 0)) for name in ("train", "validation", "test")},
            }
        )
        return joined

    @dg.asset(
        key=model_key,
        group_name=group,
        ins={"training_set": dg.AssetIn(training_key)},
        automation_condition=dg.AutomationCondition.eager(),
        code_version=code_version,
        retry_policy=TRANSIENT_RETRY,
        pool="mlflow",
        kinds={"mlflow", "scikitlearn"},
    )
    @retry_only_transient
    def model(context: dg.AssetExecutionContext, training_set: Frame, registry: MlflowRegistry) -> dict:
        """A scikit-learn pipeline trained on the pinned training set, registered in MLflow as challenger."""
        from mlops_platform.ml.metrics import score
        from mlops_platform.ml.training import train

        pipeline = train(training_set, spec)
        validation = training_set[training_set["split"] == "validation"]
        metrics = {f"validation_{spec.metric}": score(pipeline, validation, spec)}
        training_version = int(training_set.attrs["delta_versions"]["all"])
        tags = {
            "mlops.spec": spec.name,
            "dagster.run_id": context.run.run_id,
            "dagster.asset_key": model_key.to_user_string(),
            "mlops.code_version": code_version,
            "mlops.training_set_uri": training_set.attrs["delta_uri"],
            "mlops.training_set_version": str(training_version),
            "mlops.input_data_versions": json.dumps({training_key.to_user_string(): training_version}, sort_keys=True),
        }
        record = registry.log_model(
            model_name=spec.registered_model_name,
            experiment=f"mlops/{spec.name}",
            pipeline=pipeline,
            input_example=training_set[spec.feature_names].head(5),
            metrics=metrics,
            params={
                "estimator": type(pipeline[-1]).__name__,
                "rows_train": int((training_set["split"] == "train").sum()),
            },
            tags=tags,
            training_set_version=training_version,
            skops_trusted_types=list(spec.skops_trusted_types),
        )
        context.add_output_metadata(
            {
                "mlflow_run_url": dg.MetadataValue.url(record.run_url),
                "mlflow_run_id": record.run_id,
                "model_version": int(record.version),
                "model_uri": record.model_uri,
                "training_set_version": training_version,
                **{name: dg.MetadataValue.float(value) for name, value in metrics.items()},
            }
        )
        return record.to_dict()

    @dg.asset(
        key=evaluation_key,
        group_name=group,
        ins={"model": dg.AssetIn(model_key)},
        deps=[training_key],
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=[
            dg.AssetCheckSpec(
                THRESHOLD_CHECK,
                asset=evaluation_key,
                blocking=True,
                description=f"Challenger {spec.metric} reaches {spec.metric_threshold}.",
            ),
            dg.AssetCheckSpec(
                REGRESSION_CHECK,
                asset=evaluation_key,
                blocking=True,
                description=f"Challenger is no worse than the champion beyond {spec.regression_tolerance}.",
            ),
        ],
        retry_policy=TRANSIENT_RETRY,
        kinds={"mlflow"},
    )
    @retry_only_transient
    def evaluation(context: dg.AssetExecutionContext, model: dict, registry: MlflowRegistry, lake: Lake):
        """Challenger and champion scored on the same pinned test set; the gates decide promotion."""
        from mlops_platform.ml.metrics import regression_gate, score, threshold_gate
        from mlops_platform.tracking.registry import CHAMPION

        data = lake.load_version(training_key, model["training_set_version"])
        test = data[data["split"] == "test"]
        challenger_score = score(registry.load_model(model["name"], model["version"]), test, spec)
        champion_version = registry.alias_version(spec.registered_model_name, CHAMPION)
        champion_score = None
        if champion_version is not None and champion_version != model["version"]:
            champion_score = score(registry.load_model(spec.registered_model_name, champion_version), test, spec)
        threshold = threshold_gate(challenger_score, spec)
        regression = regression_gate(challenger_score, champion_score, spec)
        result = {
            "challenger_version": model["version"],
            "champion_version": champion_version,
            "challenger_score": challenger_score,
            "champion_score": champion_score,
            "metric": spec.metric,
            "training_set_version": model["training_set_version"],
            "test_rows": len(test),
            "passed": threshold.passed and regression.passed,
        }
        yield dg.Output(
            result,
            metadata=_present(
                {
                    f"challenger_{spec.metric}": dg.MetadataValue.float(challenger_score),
                    f"champion_{spec.metric}": None
                    if champion_score is None
                    else dg.MetadataValue.float(champion_score),
                    "challenger_version": int(model["version"]),
                    "champion_version": int(champion_version) if champion_version else None,
                    "training_set_version": model["training_set_version"],
                    "test_rows": len(test),
                    "gates_passed": result["passed"],
                }
            ),
        )
        yield dg.AssetCheckResult(
            check_name=THRESHOLD_CHECK,
            passed=threshold.passed,
            description=threshold.description,
            metadata={"value": challenger_score, "threshold": spec.metric_threshold},
        )
        yield dg.AssetCheckResult(
            check_name=REGRESSION_CHECK,
            passed=regression.passed,
            description=regression.description,
            metadata={
                "challenger": challenger_score,
                "champion": champion_score,
                "tolerance": spec.regression_tolerance,
            },
        )

    @dg.asset(
        key=champion_key,
        group_name=group,
        ins={"evaluation": dg.AssetIn(evaluation_key)},
        automation_condition=promote_when_gates_pass(),
        retry_policy=TRANSIENT_RETRY,
        pool="mlflow",
        kinds={"mlflow"},
    )
    @retry_only_transient
    def champion(context: dg.AssetExecutionContext, evaluation: dict, registry: MlflowRegistry) -> dg.MaterializeResult:
        """Moves the champion alias to the challenger when its gates passed, and records the decision."""
        if not evaluation["passed"]:
            raise dg.Failure(
                description=(
                    f"{spec.name} version {evaluation['challenger_version']} failed its promotion gates; "
                    "the champion alias was not moved"
                ),
                metadata={"evaluation": dg.MetadataValue.json(evaluation)},
            )
        version = evaluation["challenger_version"]
        previous = registry.promote(spec.registered_model_name, version)
        return dg.MaterializeResult(
            metadata=_present(
                {
                    "action": "promote",
                    "champion_version": int(version),
                    "previous_champion_version": int(previous) if previous else None,
                    f"champion_{spec.metric}": dg.MetadataValue.float(evaluation["challenger_score"]),
                    "decided_at": dt.datetime.now(dt.UTC).isoformat(),
                }
            )
        )

    @dg.asset(
        key=predictions_key,
        group_name=group,
        partitions_def=partitions,
        io_manager_key=DELTA,
        ins={"features": dg.AssetIn(features_key)},
        deps=[champion_key],
        automation_condition=follows_upstream(ignore=dg.AssetSelection.assets(champion_key)),
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=freshness,
        retry_policy=TRANSIENT_RETRY,
        kinds={"delta", "mlflow"},
        metadata={"partition_column": DAY_COLUMN},
    )
    @retry_only_transient
    def predictions(context: dg.AssetExecutionContext, features: Frame, registry: MlflowRegistry) -> Frame:
        """The day's feature rows scored by the current champion; the version used is recorded."""
        import pandas as pd

        from mlops_platform.tracking.registry import CHAMPION

        version = registry.alias_version(spec.registered_model_name, CHAMPION)
        if version is None:
            raise dg.Failure(f"{spec.name} has no champion yet: promote a model before scoring", allow_retries=False)
        scored = features[[spec.entity_key, spec.event_timestamp, DAY_COLUMN]].copy()
        if len(features):
            from mlops_platform.ml.training import predict

            predicted = predict(registry.load_model(spec.registered_model_name, version), features, spec)
            for column in predicted.columns:
                scored[column] = predicted[column].to_numpy()
        else:
            scored["prediction"] = pd.Series(dtype="float64")
            if spec.task == "classification":
                scored["probability"] = pd.Series(dtype="float64")
        scored["prediction"] = scored["prediction"].astype("float64")
        scored["model_version"] = version
        context.add_output_metadata(
            _present(
                {
                    "champion_version": int(version),
                    "features_delta_versions": dg.MetadataValue.json(features.attrs["delta_versions"]),
                    "mean_prediction": dg.MetadataValue.float(float(scored["prediction"].mean()))
                    if len(scored)
                    else None,
                }
            )
        )
        return scored

    family.assets = [ingest, features, training_set, model, evaluation, champion, predictions]

    ingest_job = dg.define_asset_job(
        f"{spec.name}_ingest",
        selection=dg.AssetSelection.assets(raw_key, labels_key),
        partitions_def=partitions,
        description=f"Ingest one day of {spec.name} files from the landing zone.",
    )
    train_job = dg.define_asset_job(
        f"{spec.name}_train",
        selection=dg.AssetSelection.assets(training_key, model_key, evaluation_key, champion_key),
        description=f"Build the training set, train, evaluate and (if the gates pass) promote {spec.name}.",
    )
    from mlops_platform.automation.operations import build_rollback_job

    family.jobs = [ingest_job, train_job, build_rollback_job(spec, champion_key)]
    family.schedules = [
        dg.build_schedule_from_partitioned_job(
            ingest_job,
            hour_of_day=0,
            minute_of_hour=30,
            name=f"{spec.name}_daily_ingest",
            description="Every day, ingest yesterday's files (a sweep behind the landing sensor).",
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
    ]
    return family
