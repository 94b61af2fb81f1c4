"""The promotion stage: challenger vs champion on the same pinned test set, and the gated alias move.

A spec with ``requires_approval`` also has ``<model>/approval``, an external asset that
``mlops-platform approve`` / ``reject`` report to: champion depends on it, so a person's decision re-runs
the champion, which moves the alias only to a challenger a person approved (and otherwise records that
it is waiting, as an observation of champion).
"""

import datetime as dt

import dagster as dg

from mlops_platform.assets.common import (
    REGRESSION_CHECK,
    THRESHOLD_CHECK,
    TRAINING_TAGS,
    TRANSIENT_RETRY,
    Stage,
    present,
    retry_only_transient,
)
from mlops_platform.automation.conditions import promote_when_gates_pass
from mlops_platform.storage.io_manager import Lake
from mlops_platform.tracking.registry import MlflowRegistry


def build_evaluation(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec
    evaluation_key, training_key = stage.key("evaluation"), stage.key("training_set")

    @dg.asset(
        key=evaluation_key,
        group_name=stage.group,
        ins={"model": dg.AssetIn(stage.key("model"))},
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
        tags=TRAINING_TAGS,
        kinds={"mlflow"},
    )
    @retry_only_transient
    def evaluation(context: dg.AssetExecutionContext, model: dict, registry: MlflowRegistry, lake: Lake):
        """Challenger and champion scored on the same pinned test set; the gates decide promotion."""
        from mlops_platform.ml.metrics import regression_gate, score, threshold_gate
        from mlops_platform.tracking.registry import CHAMPION

        # Only the test split is read, not the whole training set.
        test = lake.load_version(training_key, model["training_set_version"], where="split = 'test'")
        challenger_score = score(registry.load_model(model["name"], model["version"]), test, spec)
        champion_version = registry.alias_version(spec.registered_model_name, CHAMPION)
        champion_score = None
        if champion_version is not None and champion_version != model["version"]:
            champion_score = score(registry.load_model(spec.registered_model_name, champion_version), test, spec)
        threshold = threshold_gate(challenger_score, spec)
        regression = regression_gate(challenger_score, champion_score, spec)
        from mlops_platform.tracking.registry import GATES_TAG

        # The version remembers its gates: an approval of a version that failed them is refused.
        gates = "passed" if threshold.passed and regression.passed else "failed"
        registry.set_version_tag(model["name"], model["version"], GATES_TAG, gates)
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
            metadata=present(
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
                    "approval": ("required" if result["passed"] else None) if spec.requires_approval else None,
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

    return evaluation


def build_approval(stage: Stage) -> dg.AssetSpec:
    """``<model>/approval``: the decisions people record with ``mlops-platform approve`` / ``reject``."""
    return dg.AssetSpec(
        key=stage.key("approval"),
        group_name=stage.group,
        description=(
            f"A person's decision on a {stage.spec.name} challenger that passed its gates "
            "(mlops-platform approve / reject); champion waits for it."
        ),
        kinds={"mlflow"},
    )


def build_champion(stage: Stage) -> dg.AssetsDefinition | list:
    spec = stage.spec
    approval = build_approval(stage) if spec.requires_approval else None
    champion_key = stage.key("champion")

    @dg.asset(
        key=champion_key,
        group_name=stage.group,
        ins={"evaluation": dg.AssetIn(stage.key("evaluation"))},
        deps=[approval.key] if approval is not None else [],
        output_required=False,
        automation_condition=promote_when_gates_pass(),
        retry_policy=TRANSIENT_RETRY,
        tags=TRAINING_TAGS,
        pool="mlflow",
        kinds={"mlflow"},
    )
    @retry_only_transient
    def champion(context: dg.AssetExecutionContext, evaluation: dict, registry: MlflowRegistry):
        """Moves the champion alias to the challenger when its gates passed (and, if the spec requires it,
        a person approved it), and records the decision."""
        if not evaluation["passed"]:
            raise dg.Failure(
                description=(
                    f"{spec.name} version {evaluation['challenger_version']} failed its promotion gates; "
                    "the champion alias was not moved"
                ),
                metadata={"evaluation": dg.MetadataValue.json(evaluation)},
            )
        from mlops_platform.tracking.registry import APPROVAL_AT_TAG, APPROVAL_BY_TAG, APPROVAL_TAG, ChampionMovedError

        version = evaluation["challenger_version"]
        approved_by = None
        if spec.requires_approval:
            tags = registry.version_tags(spec.registered_model_name, version)
            decision = tags.get(APPROVAL_TAG)
            if decision != "approved":
                why = (
                    f"rejected by {tags.get(APPROVAL_BY_TAG)} at {tags.get(APPROVAL_AT_TAG)}"
                    if decision == "rejected"
                    else "waiting for approval: mlops-platform approve "
                    f"--model {spec.name} --version {version} --by NAME"
                )
                context.log.info(f"{spec.name} version {version} passed its gates; champion not moved, {why}")
                # No materialization: the champion did not change. The observation shows the wait in the UI.
                yield dg.AssetObservation(
                    asset_key=champion_key,
                    description=f"version {version} passed its gates; {why}",
                    metadata={"challenger_version": int(version), "approval": decision or "pending"},
                )
                return
            approved_by = f"{tags.get(APPROVAL_BY_TAG)} at {tags.get(APPROVAL_AT_TAG)}"
        try:
            # Compare-and-set: only replace the champion this evaluation compared the challenger against.
            previous = registry.promote(
                spec.registered_model_name, version, expected_current=evaluation["champion_version"]
            )
        except ChampionMovedError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        yield dg.MaterializeResult(
            metadata=present(
                {
                    "action": "promote",
                    "approved_by": approved_by,
                    "champion_version": int(version),
                    "previous_champion_version": int(previous) if previous else None,
                    f"champion_{spec.metric}": dg.MetadataValue.float(evaluation["challenger_score"]),
                    "decided_at": dt.datetime.now(dt.UTC).isoformat(),
                }
            )
        )

    return [approval, champion] if approval is not None else champion
