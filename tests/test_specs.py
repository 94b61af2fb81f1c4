"""Model specs: validation catches inconsistent specs; discovery finds the reference ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlops_platform.specs import discover_specs, get_spec
from mlops_platform.specs.base import Feature, spec_code_version


def test_reference_specs_are_discovered() -> None:
    specs = {spec.name: spec for spec in discover_specs()}
    assert set(specs) >= {"churn", "delivery_eta"}
    assert specs["churn"].task == "classification"
    assert specs["delivery_eta"].task == "regression"


def test_unknown_spec_error_lists_known_names() -> None:
    with pytest.raises(KeyError, match="known: churn, delivery_eta"):
        get_spec("no_such_model")


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"name": "Bad Name"}, "must match"),
        ({"metric": "rmse"}, "does not fit task"),
        ({"metric": "nope"}, "unknown metric"),
        ({"label": "missing_column"}, "'missing_column' is not a label column"),
        ({"entity_key": "nope"}, "'nope' is not an event column"),
        ({"features": ()}, "at least one feature"),
        ({"features": (Feature(name="ghost", kind="numeric"),)}, "'ghost' has no compute"),
        ({"training_window_days": 0}, "greater than or equal to 1"),
    ],
)
def test_invalid_specs_are_rejected_with_the_reason(churn, update, message) -> None:
    data = {name: getattr(churn, name) for name in type(churn).model_fields}
    data.update(update)
    with pytest.raises(ValidationError, match=message):
        type(churn)(**data)


def test_code_version_changes_with_what_the_model_learns(churn) -> None:
    assert spec_code_version(churn) == spec_code_version(churn)
    fewer = churn.model_copy(update={"features": churn.features[:-1]})
    assert spec_code_version(fewer) != spec_code_version(churn)
    # The train sample's size changes what is learnt, so a model trained on a sample is not shown as
    # current after the cap is lifted or changed.
    sampled = churn.model_copy(update={"max_training_rows": 1000})
    assert spec_code_version(sampled) != spec_code_version(churn)
    assert spec_code_version(sampled) != spec_code_version(churn.model_copy(update={"max_training_rows": 2000}))


def _write_module(root, name: str, body: str) -> None:
    (root / f"{name}.py").write_text(body)


def test_mlops_specs_loads_a_teams_own_modules_and_names_both_modules_of_a_duplicate(tmp_path, monkeypatch) -> None:
    from mlops_platform.specs import discover_specs

    reference = "from mlops_platform.specs.delivery import SPEC as _ref\n"
    _write_module(tmp_path, "team_a", reference + "SPEC = _ref.model_copy(update={'name': 'eta_v2'})\n")
    _write_module(
        tmp_path,
        "team_b",
        reference + "SPECS = [_ref.model_copy(update={'name': n}) for n in ('eta_v2', 'eta_v3')]\n",
    )
    _write_module(tmp_path, "team_c", "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [s.name for s in discover_specs(["team_a"])] == ["eta_v2"]
    with pytest.raises(ValueError, match="two specs are named 'eta_v2': one in team_a, one in team_b"):
        discover_specs(["team_a", "team_b"])
    with pytest.raises(ValueError, match="module team_c defines neither SPEC nor SPECS"):
        discover_specs(["team_c"])
    with pytest.raises(ValueError, match="MLOPS_SPECS names 'team_missing', which cannot be imported"):
        discover_specs(["team_missing"])


def test_definitions_follow_mlops_specs(tmp_path, monkeypatch) -> None:
    from mlops_platform.definitions import build_definitions
    from mlops_platform.settings import Settings

    _write_module(tmp_path, "team_d", "from mlops_platform.specs.delivery import SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.from_env({"MLOPS_HOME": str(tmp_path / "home"), "MLOPS_SPECS": "team_d"})
    groups = {key.path[0] for key in build_definitions(settings).resolve_all_asset_keys()}
    assert groups == {"delivery_eta"}
