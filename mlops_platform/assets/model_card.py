"""The model card: one markdown page per evaluated model version, written from lineage, never by hand.

``<model>/model_card`` follows the evaluation (and the champion and approval decisions after it): the
intended use (the spec's description), the data (the training set's Delta URI and version, and the
versions of the features and labels it was built from), the code version, the estimator and its
parameters, the validation and test metrics, the gate results, the approval, the champion history,
the reference profile's hash with the drift thresholds, and the latest monitoring status. The card is
asset metadata and the MLflow artifact ``model_card/model_card.md`` of the version's run (rewritten in
place each time). A field the lineage does not hold (a version trained before reference profiles, a
version never scored) is listed under "Missing" instead of being guessed.
"""

import json
from typing import Any

import dagster as dg

from mlops_platform.assets.common import REGRESSION_CHECK, THRESHOLD_CHECK, TRANSIENT_RETRY, Stage, retry_only_transient
from mlops_platform.tracking.registry import MlflowRegistry

CARD_ARTIFACT = "model_card/model_card.md"
HISTORY = 10


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, limit: int = 50) -> list[dict[str, Any]]:
    """The metadata (values only) of ``key``'s newest materializations, newest first."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=limit).records
    found = []
    for record in records:
        materialization = record.asset_materialization
        if materialization is not None:
            found.append({k: v.value for k, v in materialization.metadata.items()} | {"_ts": record.timestamp})
    return found


def _gates(instance: dg.DagsterInstance, evaluation_key: dg.AssetKey) -> list[str]:
    lines = []
    for name in (THRESHOLD_CHECK, REGRESSION_CHECK):
        key = dg.AssetCheckKey(evaluation_key, name)
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        evaluation = records[0].event.asset_check_evaluation if records and records[0].event else None
        if evaluation is None:
            lines.append(f"- `{name}`: not evaluated")
        else:
            verdict = "passed" if evaluation.passed else "FAILED"
            lines.append(f"- `{name}`: {verdict}: {(evaluation.description or '').strip()}")
    return lines


def _estimator(registry: MlflowRegistry, name: str, version: str, trusted: list[str]) -> tuple[str, str]:
    """(estimator class, its parameters as JSON) of the version's fitted pipeline."""
    pipeline = registry.load_model(name, version, extra_trusted_types=trusted)
    final = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    params = {k: v for k, v in final.get_params(deep=False).items() if isinstance(v, int | float | str | bool)}
    return type(final).__name__, json.dumps(params, sort_keys=True, default=str)


def write_card(context: Any, stage: Stage, evaluation: dict, registry: MlflowRegistry) -> tuple[str, list[str]]:
    """The card's markdown and the fields it could not fill."""
    from mlops_platform.tracking.profiles import PROFILE_TAG
    from mlops_platform.tracking.registry import (
        APPROVAL_AT_TAG,
        APPROVAL_BY_TAG,
        APPROVAL_TAG,
        CHAMPION,
        GATES_TAG,
    )

    spec = stage.spec
    instance = context.instance
    name, version = spec.registered_model_name, str(evaluation["challenger_version"])
    client = registry.client()
    model_version = client.get_model_version(name, version)
    tags = dict(model_version.tags)
    run = client.get_run(model_version.run_id)
    run_tags, metrics = run.data.tags, run.data.metrics
    missing: list[str] = []

    def have(value: Any, what: str) -> Any:
        if value is None or value == "":
            missing.append(what)
            return "missing"
        return value

    lines = [f"# Model card: {spec.name} version {version}", ""]
    lines += ["## Intended use", "", spec.description or have(None, "intended use (the spec has no description)"), ""]
    lines += ["## Data", ""]
    training_version = run_tags.get("mlops.training_set_version") or evaluation.get("training_set_version")
    lines.append(
        f"- training set: `{have(run_tags.get('mlops.training_set_uri'), 'training set URI')}` "
        f"at Delta version {have(training_version, 'training set version')}"
    )
    built_from = next(
        (
            m
            for m in _latest(instance, stage.key("training_set"))
            if str(m.get("delta_version")) == str(training_version)
        ),
        None,
    )
    if built_from is None:
        have(None, "the training set's input versions (its materialization is not in this instance)")
    else:
        for upstream in ("features", "labels"):
            versions = built_from.get(f"{upstream}_delta_versions")
            lines.append(f"- {upstream}: Delta versions by day `{json.dumps(versions, sort_keys=True)}`")
    lines.append(f"- train sample: {run_tags.get('mlops.train_sample', 'all rows')}")
    lines += ["", "## Code", ""]
    lines.append(f"- code version: `{have(run_tags.get('mlops.code_version'), 'code version')}`")
    lines.append(f"- trained by Dagster run `{have(run_tags.get('dagster.run_id'), 'training run id')}`")
    lines.append(f"- MLflow run: {registry.run_url(run.info.experiment_id, run.info.run_id)}")
    if run_tags.get("mlops.retrain_reason"):
        lines.append(f"- retrained because: {run_tags['mlops.retrain_reason']}")
    lines += ["", "## Estimator", ""]
    estimator, params = _estimator(registry, name, version, list(spec.skops_trusted_types))
    lines += [f"- estimator: `{estimator}`", f"- parameters: `{params}`"]
    lines += ["", "## Metrics", ""]
    validation = metrics.get(f"validation_{spec.metric}")
    lines.append(f"- validation {spec.metric}: {have(validation, 'validation metric')}")
    lines.append(
        f"- test {spec.metric}: {evaluation['challenger_score']:.4f} over {evaluation.get('test_rows', '?')} rows "
        f"(champion then: {evaluation.get('champion_version') or 'none'}"
        + (f", {evaluation['champion_score']:.4f}" if evaluation.get("champion_score") is not None else "")
        + ")"
    )
    lines += ["", "## Gates", ""]
    lines.append(f"- decision: {have(tags.get(GATES_TAG), 'gate results')}")
    lines += _gates(instance, stage.key("evaluation"))
    lines += ["", "## Approval", ""]
    if not spec.requires_approval:
        lines.append("- not required (the gates decide)")
    elif tags.get(APPROVAL_TAG):
        lines.append(f"- {tags[APPROVAL_TAG]} by {tags.get(APPROVAL_BY_TAG)} at {tags.get(APPROVAL_AT_TAG)}")
    else:
        lines.append(f"- pending: `mlops-platform approve --model {spec.name} --version {version} --by NAME`")
    lines += ["", "## Champion history", ""]
    current = registry.alias_version(name, CHAMPION)
    lines.append(f"- champion now: version {current or 'none'}" + (" (this version)" if current == version else ""))
    for decision in _latest(instance, stage.key("champion"), HISTORY):
        when = decision.get("decided_at") or decision.get("rolled_back_at") or ""
        previous = decision.get("previous_champion_version", "none")
        lines.append(
            f"- {when} {decision.get('action', 'move')}: version {decision.get('champion_version')} "
            f"(replacing {previous})"
        )
    lines += ["", "## Monitoring", ""]
    policy = spec.monitoring
    lines.append(
        f"- reference profile sha256: `{have(tags.get(PROFILE_TAG), 'reference profile (trained before monitoring)')}`"
    )
    lines.append(
        f"- drift thresholds: warn {policy.drift_warn_threshold}, error {policy.drift_error_threshold}; "
        f"performance tolerance {policy.performance_tolerance}"
    )
    drift = next(
        (m for m in _latest(instance, stage.key("drift")) if str(m.get("profile_model_version")) == version), None
    )
    performance = next(
        (m for m in _latest(instance, stage.key("performance")) if str(m.get("model_version")) == version), None
    )
    lines.append(
        f"- latest drift: {drift['decision']}: {drift.get('summary', '')}" if drift else "- latest drift: none"
    )
    lines.append(
        f"- latest performance: {performance['status']}: {performance.get('summary', '')}"
        if performance
        else "- latest performance: none"
    )
    if drift is None and performance is None:
        missing.append("monitoring status (not monitored yet)")
    lines += ["", "## Missing", ""]
    lines += [f"- {what}" for what in missing] or ["- nothing"]
    return "\n".join(lines) + "\n", missing


def build_model_card(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec
    champion_key = stage.key("champion")
    ignored = [champion_key, *([stage.key("approval")] if spec.requires_approval else [])]

    @dg.asset(
        key=stage.key("model_card"),
        group_name=stage.group,
        ins={"evaluation": dg.AssetIn(stage.key("evaluation"))},
        deps=ignored,
        automation_condition=(
            (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
            & ~dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets(*ignored))
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()
        ).with_label("evaluated, promoted or decided"),
        retry_policy=TRANSIENT_RETRY,
        kinds={"mlflow"},
    )
    @retry_only_transient
    def model_card(context: dg.AssetExecutionContext, evaluation: dict, registry: MlflowRegistry):
        """One page per evaluated version, from its lineage: data, code, estimator, metrics, gates, decisions."""
        card, missing = write_card(context, stage, evaluation, registry)
        version = str(evaluation["challenger_version"])
        client = registry.client()
        run_id = client.get_model_version(spec.registered_model_name, version).run_id
        client.log_text(run_id, card, CARD_ARTIFACT)
        return dg.MaterializeResult(
            metadata={
                "model_version": int(version),
                "card": dg.MetadataValue.md(card),
                "missing": ", ".join(missing) or "nothing",
                "mlflow_artifact": f"runs:/{run_id}/{CARD_ARTIFACT}",
            }
        )

    return model_card
