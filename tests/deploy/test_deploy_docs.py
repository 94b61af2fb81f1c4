"""deploy/README.md and the disaster-recovery runbook reference what actually exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RUNBOOK = DEPLOY / "runbooks" / "disaster-recovery.md"

CLI = [
    r"mlops-platform delta restore --table \S+ --version \S+",
    r"mlops-platform delta restore --table \S+ --timestamp \S+",
    r"mlops-platform registry export --to \S+",
    r"mlops-platform registry import --from \S+",
    r"mlops-platform rollback --model \S+",
]


def test_runbook_uses_the_platform_cli_exactly() -> None:
    text = RUNBOOK.read_text()
    for pattern in CLI:
        assert re.search(pattern, text), f"runbook lacks `{pattern}`"
    # no other sub-commands of the platform CLI are invented
    used = set(re.findall(r"mlops-platform ((?:delta|registry) \w+|rollback)", text))
    assert used == {"delta restore", "registry export", "registry import", "rollback"}


def test_runbook_states_rpo_and_rto_for_every_component() -> None:
    text = RUNBOOK.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert "RPO" in table[0] and "RTO" in table[0]
    for component in ("Delta tables", "MLflow backend store", "MLflow artifacts", "Dagster instance", "Model registry"):
        row = next((line for line in table if line.startswith(f"| {component}")), None)
        assert row, f"no RPO/RTO row for {component}"
        assert len([c for c in row.split("|") if c.strip()]) == 5


def test_readme_documents_settings_markers_and_steps() -> None:
    text = (DEPLOY / "README.md").read_text()
    for name in (
        "MLOPS_PROFILE",
        "MLOPS_STORAGE_ROOT",
        "MLOPS_MLFLOW_TRACKING_URI",
        "MLOPS_MLFLOW_ARTIFACT_ROOT",
        "DAGSTER_HOME",
        "MLOPS_HOME",
        "global.postgresqlSecretName",
        "postgresql-password",
    ):
        assert name in text, name
    for step in (
        "terraform init",
        "terraform validate",
        "terraform plan",
        "helm upgrade --install",
        "docker build -f deploy/docker/Dockerfile",
        "deploy/helm/render.py",
    ):
        assert step in text, step
    assert text.count("<!-- cost-estimate:start") == 1 and text.count("<!-- cost-estimate:end -->") == 1


def test_readme_links_resolve() -> None:
    text = (DEPLOY / "README.md").read_text()
    for path in re.findall(r"`(deploy/[\w./-]+\.(?:py|yaml|md|tf))`", text):
        assert (REPO / path).exists(), path
