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
