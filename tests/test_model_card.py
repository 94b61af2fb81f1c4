"""Model cards from lineage, and a person in the loop: a spec with requires_approval waits for
`mlops-platform approve` before champion moves; bad decisions are refused with a clear error."""

import dagster as dg
import pytest

from mlops_platform import cli
from mlops_platform.assets.model_card import CARD_ARTIFACT
from mlops_platform.settings import Settings
from mlops_platform.tracking.profiles import PROFILE_TAG
from mlops_platform.tracking.registry import APPROVAL_BY_TAG, APPROVAL_TAG, CHAMPION, GATES_TAG
from tests.conftest import Platform, day

SPEC_MODULE = "approval_specs"
DAYS = 16


@pytest.fixture(scope="module")
def approved(tmp_path_factory, churn):
    spec = churn.model_copy(update={"requires_approval": True})
    root = tmp_path_factory.mktemp("approval")
    (root / f"{SPEC_MODULE}.py").write_text(
        "from mlops_platform.specs import get_spec\n"
        "SPEC = get_spec('churn').model_copy(update={'requires_approval': True})\n"
    )
    (root / "dagster").mkdir()
    with pytest.MonkeyPatch.context() as patch, dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        patch.syspath_prepend(str(root))
        patch.setenv("MLOPS_HOME", str(root / "home"))
        patch.setenv("MLOPS_SPECS", SPEC_MODULE)
        patch.setenv("DAGSTER_HOME", str(root / "dagster"))
        platform = Platform(Settings(home=root / "home"), instance, specs=[spec])
        platform.land(spec, days=DAYS, rows=150)
        dg.materialize(
            platform.assets,
            selection=dg.AssetSelection.assets(*(dg.AssetKey([spec.name, n]) for n in ("raw", "labels", "features"))),
            resources=platform.resources,
            instance=instance,
            tags={"dagster/asset_partition_range_start": day(0), "dagster/asset_partition_range_end": day(DAYS - 1)},
        )
        yield spec, platform


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()  # what the runs before logged
    code = cli.run(list(args))
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def _champion_requested(platform: Platform, spec, cursor):
    key = dg.AssetKey([spec.name, "champion"])
    result = dg.evaluate_automation_conditions(
        defs=platform.defs, instance=platform.instance, asset_selection=dg.AssetSelection.assets(key), cursor=cursor
    )
    return result.get_num_requested(key), result.cursor


def test_a_challenger_waits_for_a_person_then_becomes_champion(approved, capsys) -> None:
    spec, platform = approved
    registry = platform.resources["registry"]
    champion = dg.AssetKey([spec.name, "champion"])
    result = platform.train(spec)
    assert result.success
    # The gates passed, the alias did not move: champion was observed waiting, not materialized.
    assert registry.version_tags(spec.name, "1")[GATES_TAG] == "passed"
    assert registry.alias_version(spec.name, CHAMPION) is None
    assert not result.asset_materializations_for_node(f"{spec.name}__champion")
    observation = platform.instance.fetch_observations(champion, limit=1).records[0].asset_observation
    assert observation.description == (
        "version 1 passed its gates; waiting for approval: mlops-platform approve --model churn --version 1 --by NAME"
    )
    assert platform.latest_metadata(spec, "evaluation")["approval"] == "required"
    requested, cursor = _champion_requested(platform, spec, None)
    assert requested == 0  # the automation does not move it before a decision

    # Bad decisions: each refused with one line naming what was wrong.
    assert _cli(capsys, "approve", "--model", "churn", "--version", "7", "--by", "alice") == (
        1,
        "",
        "error: approve refused: model 'churn' has no version 7 in the registry",
    )
    assert _cli(capsys, "approve", "--model", "churn", "--version", "1", "--by", " ") == (
        1,
        "",
        "error: approve refused: --by must name the person deciding (1-100 printable characters)",
    )
    assert _cli(capsys, "approve", "--model", "delivery_eta", "--version", "1", "--by", "alice")[0] == 2

    code, out, err = _cli(capsys, "approve", "--model", "churn", "--version", "1", "--by", "alice")
    assert code == 0, err
    assert out.splitlines()[0].startswith("churn version 1 approved by alice at ")
    tags = registry.version_tags(spec.name, "1")
    assert (tags[APPROVAL_TAG], tags[APPROVAL_BY_TAG]) == ("approved", "alice")
    # A second approval is idempotent: nothing changes, nothing is reported again.
    code, out, _ = _cli(capsys, "approve", "--model", "churn", "--version", "1", "--by", "bob")
    assert code == 0 and out.endswith("nothing changed") and "already approved by alice" in out
    assert registry.version_tags(spec.name, "1")[APPROVAL_BY_TAG] == "alice"
    approvals = platform.instance.fetch_materializations(dg.AssetKey([spec.name, "approval"]), limit=10).records
    assert len(approvals) == 1
    # Rejecting an approved version is refused: a decision is final.
    code, _, err = _cli(capsys, "reject", "--model", "churn", "--version", "1", "--by", "bob")
    assert code == 1 and "was already approved by alice" in err

    requested, cursor = _champion_requested(platform, spec, cursor)
    assert requested == 1  # the decision re-runs the champion
    platform.run(spec, ["champion"])
    assert registry.alias_version(spec.name, CHAMPION) == "1"
    meta = platform.latest_metadata(spec, "champion")
    assert meta["champion_version"] == 1 and meta["approved_by"].startswith("alice at ")


def test_the_card_is_written_from_lineage(approved) -> None:
    spec, platform = approved
    registry = platform.resources["registry"]
    platform.run(spec, ["model_card"])
    meta = platform.latest_metadata(spec, "model_card")
    card = meta["card"]
    tags = registry.version_tags(spec.name, "1")
    assert card.startswith("# Model card: churn version 1\n\n## Intended use\n\n" + spec.description)
    run_id = registry.client().get_model_version(spec.name, "1").run_id
    run_tags = registry.client().get_run(run_id).data.tags
    training = platform.latest_metadata(spec, "training_set")
    assert (
        f"- training set: `{run_tags['mlops.training_set_uri']}` at Delta version {training['delta_version']}" in card
    )
    assert "- features: Delta versions by day `{" in card and f'"{day(0)}"' in card
    assert f"- code version: `{run_tags['mlops.code_version']}`" in card
    assert "- estimator: `" in card and "- parameters: `{" in card
    validation = registry.client().get_run(run_id).data.metrics["validation_roc_auc"]
    evaluation = platform.latest_metadata(spec, "evaluation")
    assert f"- validation roc_auc: {validation}\n" in card
    assert f"- test roc_auc: {evaluation['challenger_roc_auc']:.4f} over {evaluation['test_rows']} rows" in card
    assert "- decision: passed" in card and "- `meets_threshold`: passed: " in card
    assert "- approved by alice at " in card
    assert "- champion now: version 1 (this version)" in card
    assert f"- reference profile sha256: `{tags[PROFILE_TAG]}`" in card
    assert "- drift thresholds: warn " in card
    assert meta["missing"] == "monitoring status (not monitored yet)"
    # The same card is the MLflow artifact of the version's run.
    assert meta["mlflow_artifact"] == f"runs:/{run_id}/{CARD_ARTIFACT}"
    import mlflow.artifacts

    assert mlflow.artifacts.load_text(f"runs:/{run_id}/{CARD_ARTIFACT}") == card


def test_a_card_of_a_version_without_a_profile_says_what_is_missing(approved) -> None:
    spec, platform = approved
    registry = platform.resources["registry"]
    # A version trained before reference profiles existed carries no profile tag.
    registry.client().delete_model_version_tag(spec.name, "1", PROFILE_TAG)
    platform.run(spec, ["model_card"])
    meta = platform.latest_metadata(spec, "model_card")
    assert "- reference profile sha256: `missing`" in meta["card"]
    assert meta["missing"] == "reference profile (trained before monitoring), monitoring status (not monitored yet)"
    assert "## Missing\n\n- reference profile (trained before monitoring)\n" in meta["card"]


def test_a_rejected_or_failed_version_never_becomes_champion(approved, capsys) -> None:
    spec, platform = approved
    registry = platform.resources["registry"]
    assert platform.train(spec).success  # version 2: passes its gates (same data as version 1), then waits
    assert registry.version_tags(spec.name, "2")[GATES_TAG] == "passed"
    code, out, _ = _cli(capsys, "reject", "--model", "churn", "--version", "2", "--by", "carol")
    assert code == 0 and out.startswith("churn version 2 rejected by carol at ")
    code, _, err = _cli(capsys, "approve", "--model", "churn", "--version", "2", "--by", "alice")
    assert code == 1 and "was already rejected by carol" in err and "train a new version" in err
    platform.run(spec, ["champion"])
    assert registry.alias_version(spec.name, CHAMPION) == "1"
    observation = platform.instance.fetch_observations(dg.AssetKey([spec.name, "champion"]), limit=1).records[0]
    assert observation.asset_observation.description.startswith("version 2 passed its gates; rejected by carol at ")

    # Version 3 fails its gates (a stricter threshold): approving it is refused, naming why.
    strict = spec.model_copy(update={"metric_threshold": 0.9999})
    Platform(platform.settings, platform.instance, specs=[strict]).train(strict, raise_on_error=False)
    assert registry.version_tags(spec.name, "3")[GATES_TAG] == "failed"
    assert _cli(capsys, "approve", "--model", "churn", "--version", "3", "--by", "alice") == (
        1,
        "",
        "error: approve refused: churn version 3 failed its promotion gates; there is nothing to approve",
    )
    # Version 2 is no longer the challenger either.
    assert registry.alias_version(spec.name, CHAMPION) == "1"
