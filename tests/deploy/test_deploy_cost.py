"""The cost table in deploy/README.md is the estimator's output for the committed tfvars, and the
estimate follows the tfvars when they change."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def test_readme_table_is_the_estimators_output(estimate) -> None:
    expected = estimate.render_markdown(estimate.estimate_all())
    current = estimate.readme_block((DEPLOY / "README.md").read_text())
    assert current == expected, "deploy/README.md is stale: run python deploy/cost/estimate.py --write-readme"


def test_script_runs_as_documented() -> None:
    check = subprocess.run(
        [sys.executable, "deploy/cost/estimate.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    printed = subprocess.run(
        [sys.executable, "deploy/cost/estimate.py"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "| Cloud (region) | Env |" in printed.stdout and "Total / month" in printed.stdout


@pytest.fixture()
def terraform_copy(tmp_path: Path) -> Path:
    root = tmp_path / "terraform"
    shutil.copytree(DEPLOY / "terraform", root)
    return root


def _set_tfvar(root: Path, cloud: str, env: str, key: str, value: str) -> None:
    path = root / "envs" / cloud / env / "terraform.tfvars"
    text, count = re.subn(rf"(?m)^{key}(\s*)=.*$", rf"{key}\g<1>= {value}", path.read_text())
    assert count == 1, f"{key} not found in {path}"
    path.write_text(text)


CHANGES = [
    ("aws", "dev", "system_node_count", "3", "system_nodes"),
    ("aws", "prod", "db_multi_az", "false", "postgres"),
    ("gcp", "dev", "db_tier", '"db-custom-2-7680"', "postgres"),
    ("gcp", "prod", "regional_cluster", "false", "control_plane"),
    ("azure", "dev", "system_node_vm_size", '"Standard_D4ds_v5"', "system_nodes"),
    ("azure", "prod", "storage_replication_type", '"LRS"', "object_storage"),
]


@pytest.mark.parametrize(("cloud", "env", "key", "value", "item"), CHANGES)
def test_changing_a_tfvar_changes_the_estimate(estimate, terraform_copy: Path, cloud, env, key, value, item) -> None:
    before = estimate.estimate_all(terraform_copy)[(cloud, env)]
    _set_tfvar(terraform_copy, cloud, env, key, value)
    after = estimate.estimate_all(terraform_copy)[(cloud, env)]
    assert after.items[item] != pytest.approx(before.items[item]), f"{key}={value} did not change {item}"
    assert after.total != pytest.approx(before.total)


def test_more_system_nodes_cost_proportionally_more(estimate, terraform_copy: Path) -> None:
    one = estimate.estimate_all(terraform_copy)[("aws", "dev")].items["system_nodes"]
    _set_tfvar(terraform_copy, "aws", "dev", "system_node_count", "2")
    two = estimate.estimate_all(terraform_copy)[("aws", "dev")].items["system_nodes"]
    assert two == pytest.approx(2 * one)


def test_unknown_instance_type_fails_loudly(estimate, terraform_copy: Path) -> None:
    _set_tfvar(terraform_copy, "aws", "dev", "system_node_instance_types", '["x9.huge"]')
    with pytest.raises(SystemExit, match=r"x9\.huge"):
        estimate.estimate_all(terraform_copy)


def test_levers_are_computed_for_every_environment(estimate) -> None:
    estimates = estimate.estimate_all()
    for (cloud, env), est in estimates.items():
        assert set(est.levers) == {key for key, _ in estimate.LEVERS}
        assert all(saving >= 0 for saving in est.levers.values()), (cloud, env, est.levers)
        assert est.levers["scale_to_zero"] > 0 and est.levers["spot_instead_of_on_demand"] > 0
        assert (est.levers["dev_scale_down"] > 0) == (env == "dev")
        assert est.total > 0
    # prod costs more than dev on every cloud
    for cloud in estimate.CLOUDS:
        assert estimates[(cloud, "prod")].total > estimates[(cloud, "dev")].total
