"""The Dagster deployment of each cloud, judged by Dagster's and dagster-k8s's own code.

The instance the chart renders from deploy/helm/dagster (tests/deploy/dagster_chart.py) goes
through `dagster._core.instance.config.dagster_instance_config` (the function every Dagster
process calls at start-up, including validate_concurrency_config) and each configurable class's
own config schema. Run and step pods are built with dagster-k8s: K8sRunLauncher from that config,
K8sContainerContext.create_for_run / merge (the code location's context included, as the chart
sets it) and construct_dagster_k8s_job, the function that produces the Job the launcher submits.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

import dagster_chart as chart

CLOUDS = ("aws", "gcp", "azure")
ENV = {
    "DAGSTER_PG_PASSWORD": "not-a-password",
    "DAGSTER_HOME": "/opt/dagster/dagster_home",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
    "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "dagster-pipeline-env",
}
KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
    "users": [{"name": "offline", "user": {"token": "offline"}}],
    "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
    "current-context": "offline",
}


@pytest.fixture(autouse=True)
def _instance_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def values_for(terraform, render, cloud: str) -> dict[str, Any]:
    keys = set(terraform.module(cloud)["output"]["helm_env"]["value"])
    return chart.rendered_values(cloud, render, {k: f"test-{k.lower()}" for k in keys} | {"IMAGE_TAG": "1.0.0"})


def validate_instance(instance: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    from dagster._core.instance.config import dagster_instance_config

    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    return dict(config)


def class_config(section: dict[str, Any]) -> dict[str, Any]:
    """The section's config, processed by its class's own config schema (defaults applied)."""
    from dagster._config import process_config

    module = importlib.import_module(section["module"].replace("dagster.core.", "dagster._core."))
    klass = getattr(module, section["class"])
    result = process_config(klass.config_type(), section.get("config") or {})
    assert result.success, f"{section['class']}: {[e.message for e in result.errors or []]}"
    return dict(result.value or {})


# --- the instance ------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUDS)
def test_dagster_accepts_the_instance_each_cloud_renders(terraform, render, tmp_path: Path, cloud: str) -> None:
    instance = chart.instance_config(values_for(terraform, render, cloud))
    config = validate_instance(instance, tmp_path)
    for section in ("run_launcher", "run_coordinator", "compute_logs", "run_storage", "event_log_storage"):
        class_config(config[section])
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["max_resume_run_attempts"] >= 1
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0  # pools leak slots without it
    assert config["run_retries"]["enabled"] and config["run_retries"]["max_retries"] >= 1
    assert config["compute_logs"]["class"] == chart.instance_config(values_for(terraform, render, cloud))[
        "compute_logs"
    ]["class"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_run_limits_reach_dagster(terraform, render, tmp_path: Path, cloud: str) -> None:
    """The limits the README promises are in the instance Dagster loads, in concurrency > runs."""
    from dagster._core.instance.config import ConcurrencyConfig

    from dagster._core.run_coordinator import QueuedRunCoordinator

    config = validate_instance(chart.instance_config(values_for(terraform, render, cloud)), tmp_path)
    coordinator = QueuedRunCoordinator(**class_config(config["run_coordinator"]))
    # what DagsterInstance.get_concurrency_config() combines: concurrency settings over the queue's
    settings = ConcurrencyConfig.from_concurrency_settings(config["concurrency"], coordinator.get_run_queue_config())
    assert settings.run_queue_config.max_concurrent_runs == 10
    limits = {(limit["key"], limit.get("value")): limit["limit"] for limit in settings.run_queue_config.tag_concurrency_limits}
    assert limits == {("dagster/backfill", None): 3, ("mlops-platform/stage", "training"): 2}
    assert settings.pool_config.default_pool_limit == 1  # registry writes serial (tests/test_postgres.py)


def test_dagster_refuses_run_limits_in_both_places(terraform, render, tmp_path: Path) -> None:
    """The check can fail: the combination the values used to have is rejected by Dagster."""
    from dagster._core.errors import DagsterInvalidConfigError

    values = values_for(terraform, render, "aws")
    values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"] = {"maxConcurrentRuns": 10}
    with pytest.raises(DagsterInvalidConfigError, match="max_concurrent_runs"):
        validate_instance(chart.instance_config(values), tmp_path)


# --- run and step pods --------------------------------------------------------------------------


def _launcher(config: dict[str, Any], tmp_path: Path):
    from dagster_k8s import K8sRunLauncher

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(KUBECONFIG))
    launcher_config = class_config(config["run_launcher"]) | {
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
    }
    return K8sRunLauncher(**launcher_config)


def _run(container_context: dict[str, Any] | None):
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun

    origin = JobPythonOrigin(
        "train_job",
        RepositoryPythonOrigin(
            executable_path="/opt/venv/bin/python",
            code_pointer=ModuleCodePointer("mlops_platform.definitions", "defs", working_directory=None),
            container_image="registry.example/user-code:1.0.0",
            container_context=container_context,
        ),
    )
    return DagsterRun(job_name="train_job", run_id="0" * 36, job_code_origin=origin, tags={})


def pod_specs(values: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """{'run': V1PodSpec, 'step': V1PodSpec} as dagster-k8s builds them for these values."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job

    config = validate_instance(chart.instance_config(values), tmp_path)
    launcher = _launcher(config, tmp_path)
    deployment = values["dagster-user-deployments"]["deployments"][0]
    run = _run(chart.code_location_container_context(values, deployment))
    contexts = {
        # K8sRunLauncher.launch_run
        "run": K8sContainerContext.create_for_run(run, launcher, include_run_tags=True),
        # K8sStepHandler._get_container_context, with the platform's k8s_job_executor (no config)
        "step": K8sContainerContext.create_for_run(run, launcher, include_run_tags=False).merge(K8sContainerContext()),
    }
    specs = {}
    for kind, context in contexts.items():
        job = construct_dagster_k8s_job(
            context.get_k8s_job_config(run.job_code_origin.repository_origin.container_image, launcher),
            args=["dagster", "api", "execute_run"],
            job_name=f"dagster-{kind}-test",
            user_defined_k8s_config=context.run_k8s_config,
            component="run_worker" if kind == "run" else "step_worker",
        )
        specs[kind] = job.spec.template.spec
    return specs


def _tolerations(spec) -> list[dict[str, Any]]:
    return [{"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect} for t in spec.tolerations or []]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_run_and_step_pods_land_on_the_spot_pool_with_the_run_resources(
    terraform, render, tmp_path: Path, cloud: str
) -> None:
    from test_deploy_helm import spot_pool_contract, system_pool_labels

    values = values_for(terraform, render, cloud)
    labels, taints = spot_pool_contract(terraform, cloud)
    wanted = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    for kind, spec in pod_specs(values, tmp_path).items():
        selector = spec.node_selector or {}
        assert selector and selector.items() <= labels.items(), f"{cloud} {kind} pods select {selector}, not {labels}"
        assert not selector.items() <= system_pool_labels(terraform, cloud).items()
        for taint in taints:
            assert {**taint, "operator": "Equal"} in _tolerations(spec), f"{kind} pods do not tolerate {taint}"
        resources = spec.containers[0].resources
        assert resources.requests == wanted["requests"], f"{cloud} {kind} pods request {resources.requests}"
        assert resources.limits == wanted["limits"]
        assert spec.security_context.run_as_user == 10001 and spec.security_context.run_as_non_root
        assert spec.service_account_name == values["global"]["serviceAccountName"]
        assert spec.containers[0].image == "registry.example/user-code:1.0.0"
        env_from = {e.config_map_ref.name for e in spec.containers[0].env_from if e.config_map_ref}
        assert "mlops-platform-env" in env_from


def test_a_code_location_context_with_the_code_servers_placement_would_win(terraform, render, tmp_path: Path) -> None:
    """The check can fail: with includeConfigInLaunchedRuns on, runs inherit the system pool."""
    values = values_for(terraform, render, "aws")
    values["dagster-user-deployments"]["deployments"][0]["includeConfigInLaunchedRuns"] = {"enabled": True}
    run_spec = pod_specs(values, tmp_path)["run"]
    assert run_spec.node_selector == {"mlops-platform/pool": "system"}
    assert run_spec.containers[0].resources.requests == {"cpu": "250m", "memory": "1Gi"}


# --- users of the chart's pods ------------------------------------------------------------------


def _dockerfile_user() -> str:
    lines = (chart.REPO / "deploy" / "docker" / "Dockerfile").read_text().splitlines()
    return [line.split()[1] for line in lines if line.startswith("USER ")][-1]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_webserver_and_daemon_can_start_as_non_root(terraform, render, cloud: str) -> None:
    """runAsNonRoot needs a numeric user the kubelet can check: the chart's default image and its
    init containers' images declare root, so the pods set runAsUser and run our image."""
    values = values_for(terraform, render, cloud)
    deployment = values["dagster-user-deployments"]["deployments"][0]
    uid = int(_dockerfile_user().split(":")[0])
    for name in ("dagsterWebserver", "dagsterDaemon"):
        component = values[name]
        context = component["podSecurityContext"]
        assert context["runAsNonRoot"] is True
        assert context.get("runAsUser") == uid and context.get("runAsGroup") == uid, f"{name} has no runAsUser"
        assert component["image"] == deployment["image"], f"{name} does not run the user-code image"
        assert component["securityContext"]["allowPrivilegeEscalation"] is False
    # uid 10001 without NET_BIND_SERVICE cannot bind a port below 1024
    assert values["dagsterWebserver"]["service"]["port"] >= 1024
    assert deployment["port"] >= 1024
    for context in (deployment["podSecurityContext"], values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]["securityContext"]):
        assert context["runAsNonRoot"] is True and context["runAsUser"] == uid
