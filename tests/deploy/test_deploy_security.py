"""Security checks of deploy/ (issue 15): who may reach the Dagster webserver, code server and
MLflow, where MLflow's database password travels, and what the GCP Dagster identity may do.

NetworkPolicies are evaluated here the way Kubernetes evaluates them (a pod selected by a policy
with policyType Ingress admits only what one of its rules' peers and ports allow), against the
labels the pods really carry: the Dagster chart's webserver, daemon and code-server labels
(transcribed in dagster_chart.py) and the run and step pods' labels as dagster-k8s's own
construct_dagster_k8s_job builds them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster_chart as chart
import pytest
import yaml
from test_deploy_dagster import ENV, _launcher, _run, validate_instance, values_for

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"
CLOUDS = ("aws", "gcp", "azure")
WEBSERVER_PORT = 3000
CODE_SERVER_PORT = 4000
MLFLOW_PORT = 5000


@pytest.fixture(autouse=True)
def _instance_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


# --- NetworkPolicy semantics -------------------------------------------------------------------


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_admits(peer: dict[str, Any], source: dict[str, str]) -> bool:
    if "ipBlock" in peer:
        return False  # pod-to-pod traffic of the namespace is what is judged here
    if "namespaceSelector" in peer:
        return True  # any namespace selector reaches beyond the namespace: treated as admitting
    return _selects(peer.get("podSelector") or {}, source)


def admits(policies: list[dict[str, Any]], target: dict[str, str], source: dict[str, str], port: int) -> bool:
    """Whether a pod labelled `source` in the namespace may open TCP `port` on pod `target`."""
    selecting = [
        p
        for p in policies
        if _selects(p["spec"]["podSelector"], target) and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True  # no policy: Kubernetes admits everything
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(p.get("protocol", "TCP") == "TCP" and p.get("port") == port for p in ports):
                continue
            peers = rule.get("from")
            if not peers or any(_peer_admits(peer, source) for peer in peers):
                return True
    return False


def network_policies() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(HELM.rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "NetworkPolicy"]
    return docs


def worker_labels(values: dict[str, Any], tmp_path: Path) -> dict[str, dict[str, str]]:
    """Labels of run and step pods, as dagster-k8s's construct_dagster_k8s_job sets them."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job

    config = validate_instance(chart.instance_config(values), tmp_path)
    launcher = _launcher(config, tmp_path)
    run = _run(chart.code_location_container_context(values, values["dagster-user-deployments"]["deployments"][0]))
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    labels = {}
    for component in ("run_worker", "step_worker"):
        job = construct_dagster_k8s_job(
            context.get_k8s_job_config(run.job_code_origin.repository_origin.container_image, launcher),
            args=["dagster", "api", "execute_run"],
            job_name=f"dagster-{component}",
            user_defined_k8s_config=context.run_k8s_config,
            component=component,
            labels={"dagster/job": run.job_name},
        )
        labels[component] = dict(job.spec.template.metadata.labels)
    return labels


def pods(values: dict[str, Any], tmp_path: Path) -> dict[str, dict[str, str]]:
    mlflow = {d["kind"]: d for d in yaml.safe_load_all((HELM / "mlflow" / "mlflow.yaml").read_text()) if d}
    export = yaml.safe_load((HELM / "platform" / "registry-export.yaml").read_text())
    return {
        **chart.service_pod_labels(values),
        **worker_labels(values, tmp_path),
        "mlflow": mlflow["Deployment"]["spec"]["template"]["metadata"]["labels"],
        "registry-export": export["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
        "any other pod": {"app.kubernetes.io/name": "notebook", "app.kubernetes.io/part-of": "mlops-platform"},
        "unlabelled pod": {},
    }


@pytest.mark.parametrize("cloud", CLOUDS)
def test_only_the_pods_that_need_them_reach_webserver_code_server_and_mlflow(
    terraform, render, tmp_path: Path, cloud: str
) -> None:
    values = values_for(terraform, render, cloud)
    labels = pods(values, tmp_path)
    policies = network_policies()
    wanted = {
        # the UI: port-forward and kubelet probes only, which NetworkPolicy does not filter
        ("webserver", WEBSERVER_PORT): set(),
        ("code server", CODE_SERVER_PORT): {"webserver", "daemon", "run_worker", "step_worker"},
        ("mlflow", MLFLOW_PORT): {"run_worker", "step_worker", "code server", "daemon", "registry-export"},
    }
    for (target, port), allowed in wanted.items():
        admitted = {
            source for source in labels if source != target and admits(policies, labels[target], labels[source], port)
        }
        assert admitted == allowed, f"{cloud}: {target} admits {sorted(admitted)} on {port}, want {sorted(allowed)}"
    # and nothing on another port
    assert not admits(policies, labels["code server"], labels["webserver"], 22)
    assert not admits(policies, labels["mlflow"], labels["run_worker"], 22)


def test_the_policy_semantics_would_catch_an_open_namespace() -> None:
    """The check can fail: the MLflow policy as it was (every pod of the namespace) admits a
    notebook pod, and a pod without any policy admits everyone."""
    target = {"app.kubernetes.io/name": "mlflow"}
    old = {
        "kind": "NetworkPolicy",
        "spec": {
            "podSelector": {"matchLabels": target},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 5000}]}],
        },
    }
    assert admits([old], target, {"app.kubernetes.io/name": "notebook"}, 5000)
    assert admits([], {"component": "dagster-webserver"}, {}, 3000)


def test_helm_paths_named_in_the_values_exist() -> None:
    for path in sorted((HELM / "dagster").glob("*.yaml")):
        for named in re.findall(r"deploy/helm/[\w./-]+\.yaml", path.read_text()):
            assert (REPO / named).is_file(), f"{path.name} names {named}, which does not exist"


# --- MLflow's database credentials --------------------------------------------------------------


def _containers(path: Path) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") not in ("Deployment", "Job", "CronJob"):
            continue
        spec = (
            doc["spec"]["template"]["spec"]
            if doc["kind"] != "CronJob"
            else doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        )
        for container in spec.get("initContainers", []) + spec["containers"]:
            found.append((f"{doc['metadata']['name']}/{container['name']}", container))
    return found


def _secret_derived(env: list[dict[str, Any]]) -> set[str]:
    """Env names holding a secret: from a secretKeyRef, or built from one with $(VAR)."""
    tainted: set[str] = set()
    for entry in env:  # Kubernetes expands only variables defined earlier in the list
        if (
            "secretKeyRef" in (entry.get("valueFrom") or {})
            or set(re.findall(r"\$\((\w+)\)", entry.get("value", ""))) & tainted
        ):
            tainted.add(entry["name"])
    return tainted


@pytest.mark.parametrize(
    "path", [HELM / "mlflow" / "mlflow.yaml", HELM / "mlflow" / "mlflow-database.yaml"], ids=lambda p: p.name
)
def test_no_database_password_on_a_command_line(path: Path) -> None:
    """/proc/<pid>/cmdline is world-readable: no container's command or args may expand a
    variable that holds a password, nor hold a URI with credentials."""
    containers = _containers(path)
    assert containers
    for name, container in containers:
        tainted = _secret_derived(container.get("env") or [])
        argv = " ".join(container.get("command", []) + container.get("args", []))
        expanded = set(re.findall(r"\$\((\w+)\)", argv))
        assert not expanded & tainted, f"{name} puts {sorted(expanded & tainted)} on its command line"
        assert not re.search(r"://[^/\s]*:[^/\s]*@", argv), f"{name} has credentials in a URI on its command line"


def test_mlflow_server_and_upgrade_read_the_backend_uri_from_the_environment(tmp_path: Path) -> None:
    """mlflow's own CLI reads --backend-store-uri from MLFLOW_BACKEND_STORE_URI; the upgrade init
    container's command, run as written against SQLite, upgrades the schema from that variable."""
    import mlflow.cli

    (option,) = [p for p in mlflow.cli.server.params if p.name == "backend_store_uri"]
    containers = dict(_containers(HELM / "mlflow" / "mlflow.yaml"))
    server = containers["mlflow/mlflow"]
    assert option.envvar in {e["name"] for e in server["env"]}
    assert not [a for a in server["args"] if a.startswith("--backend-store-uri")]
    assert server["command"] == ["mlflow", "server"]
    upgrade = containers["mlflow/upgrade-schema"]
    uri = next(e["value"] for e in upgrade["env"] if e["name"] == option.envvar)
    assert uri.startswith("postgresql://$(DB_USERNAME):$(DB_PASSWORD)@") and "/mlflow?sslmode=require" in uri
    db = tmp_path / "mlflow.db"
    result = subprocess.run(
        [sys.executable if upgrade["command"][0] == "python" else upgrade["command"][0], *upgrade["command"][1:]],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), option.envvar: f"sqlite:///{db}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    import sqlalchemy as sa

    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_mlflow_has_its_own_database_user_and_secret(terraform, cloud: str) -> None:
    module = terraform.module(cloud)
    helm_env = module["output"]["helm_env"]["value"]
    assert "MLFLOW_DB_USERNAME" in helm_env and helm_env["MLFLOW_DB_USERNAME"] != helm_env["DB_USERNAME"]
    assert "mlflow_db" in module["resource"]["random_password"], "no password of MLflow's own"
    secrets = {
        "aws": ("aws_secretsmanager_secret_version", "mlflow_db"),
        "gcp": ("google_secret_manager_secret_version", "mlflow_db"),
        "azure": ("azurerm_key_vault_secret", "mlflow_db_password"),
    }[cloud]
    stored = module["resource"][secrets[0]][secrets[1]]
    assert "random_password.mlflow_db.result" in str(stored) and "random_password.db." not in str(stored)
    # the MLflow pods read MLflow's secret only
    refs = re.findall(r"secretKeyRef:\s*\n\s*name: (\S+)", (HELM / "mlflow" / "mlflow.yaml").read_text())
    assert refs and set(refs) == {"mlflow-postgresql-secret"}
    for _, container in _containers(HELM / "mlflow" / "mlflow.yaml"):
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if "DB_USERNAME" in env:
            assert env["DB_USERNAME"] == "${MLFLOW_DB_USERNAME}"


def test_the_database_job_creates_the_role_without_logging_its_password() -> None:
    ((name, container),) = _containers(HELM / "mlflow" / "mlflow-database.yaml")
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"DB_PASSWORD": "dagster-postgresql-secret", "MLFLOW_DB_PASSWORD": "mlflow-postgresql-secret"}
    script = container["command"][-1]
    compile(script, name, "exec")
    # the role's password goes to the server as a SCRAM verifier, never as clear text in DDL
    assert 'encrypt_password(os.environ["MLFLOW_DB_PASSWORD"]' in script and "scram-sha-256" in script
    assert script.count('os.environ["MLFLOW_DB_PASSWORD"]') == 1
    for statement in (
        "ALTER DATABASE mlflow OWNER TO",
        "CREATE DATABASE mlflow OWNER",
        "REVOKE CONNECT ON DATABASE dagster FROM PUBLIC",
    ):
        assert statement in script


# --- GCP: the Dagster identity on Vertex AI --------------------------------------------------------

VERTEX_DEPLOYER = {
    "aiplatform.models.upload",
    "aiplatform.models.get",
    "aiplatform.endpoints.create",
    "aiplatform.endpoints.list",
    "aiplatform.endpoints.deploy",
    "aiplatform.endpoints.undeploy",
    "aiplatform.endpoints.predict",
    "aiplatform.endpoints.delete",
    "aiplatform.operations.get",
}


def test_gcp_dagster_holds_only_the_vertex_deployer_permissions(terraform) -> None:
    module = terraform.module("gcp")
    resources = module["resource"]
    dagster = "serviceAccount:${google_service_account.dagster.email}"
    project_roles = [r for r in resources["google_project_iam_member"].values() if r["member"] == dagster]
    # The one predefined role: writing custom metrics (time series), which no narrower scope than the
    # project can grant (test_deploy_metrics_iam.py); nothing of Vertex AI or anything else.
    predefined = [b["role"] for b in project_roles if str(b["role"]).startswith("roles/")]
    assert predefined == ["roles/monitoring.metricWriter"], f"Dagster holds the predefined {predefined} on the project"
    project_roles = [b for b in project_roles if b["role"] != "roles/monitoring.metricWriter"]
    (role,) = resources["google_project_iam_custom_role"].values()
    permissions = role["permissions"]
    if isinstance(permissions, str):  # a reference to the local
        permissions = module["locals"][permissions.removeprefix("${").removesuffix("}").removeprefix("local.")]
    assert set(permissions) == VERTEX_DEPLOYER
    assert not [p for p in permissions if p.startswith("iam.")], "actAs belongs on the endpoint identity only"
    assert [b["role"] for b in project_roles] == ["${google_project_iam_custom_role.vertex_deployer.id}"]
    acts_as = [r for r in resources["google_service_account_iam_member"].values() if r["member"] == dagster]
    assert [(r["service_account_id"], r["role"]) for r in acts_as] == [
        ("${google_service_account.vertex.name}", "roles/iam.serviceAccountUser")
    ]
