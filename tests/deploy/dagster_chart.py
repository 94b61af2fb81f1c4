"""What the official Dagster chart (dagster/dagster 1.13.27) makes of deploy/helm/dagster values.

No Helm binary is needed: the few templates that decide the Dagster instance and the code
location's container context are transcribed here, key by key, from the chart sources
(templates/configmap-instance.yaml, helpers/instance/_run-launcher.tpl, _run-coordinator.tpl,
_concurrency.tpl, _compute-log-manager.tpl, _postgresql.tpl, and the user-deployments subchart's
k8sContainerContext helper). Nothing here judges the result: the tests hand it to Dagster's and
dagster-k8s's own code (instance config validation, the classes' config schemas, the container
context merge, the Job builder).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"
RELEASE = "dagster"
NAMESPACE = "mlops"
FULLNAME = "dagster"  # release "dagster" of chart "dagster": the chart's fullname is the release name
COMPUTE_LOG_CLASSES = {
    "S3ComputeLogManager": ("dagster_aws.s3.compute_log_manager", "s3ComputeLogManager"),
    "GCSComputeLogManager": ("dagster_gcp.gcs.compute_log_manager", "gcsComputeLogManager"),
    "AzureBlobComputeLogManager": ("dagster_azure.blob.compute_log_manager", "azureBlobComputeLogManager"),
}


def helm_merge(base: Any, override: Any) -> Any:
    """Helm's merge of several -f files: maps deep-merged, lists and scalars replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = helm_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def rendered_values(cloud: str, render, placeholder_values: dict[str, str]) -> dict[str, Any]:
    """values.yaml + values-<cloud>.yaml after render.py filled the placeholders."""
    docs = [
        yaml.safe_load(render.render_text((HELM / "dagster" / name).read_text(), placeholder_values))
        for name in ("values.yaml", f"values-{cloud}.yaml")
    ]
    return helm_merge(docs[0], docs[1])


def _postgres_config(values: dict[str, Any]) -> dict[str, Any]:
    pg = values["postgresql"]
    config: dict[str, Any] = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
        }
    }
    if pg.get("postgresqlParams"):
        config["postgres_db"]["params"] = pg["postgresqlParams"]
    return config


def _run_launcher(values: dict[str, Any]) -> dict[str, Any]:
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher", "only the K8sRunLauncher template is transcribed"
    cfg = launcher["config"]["k8sRunLauncher"]
    config: dict[str, Any] = {
        "load_incluster_config": cfg.get("loadInclusterConfig", True),
        "job_namespace": cfg.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": cfg.get("imagePullPolicy", "Always"),
        "service_account_name": values["global"].get("serviceAccountName") or values["serviceAccount"]["name"],
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}]
        + [c["name"] for c in cfg.get("envConfigMaps", []) if "name" in c],
    }
    if "image" in cfg:
        image = cfg["image"]
        config["job_image"] = f"{image['repository']}:{image['tag']}"
    for key in ("envSecrets",):
        if cfg.get(key):
            config["env_secrets"] = [c["name"] for c in cfg[key] if "name" in c]
    for key in ("envVars", "volumeMounts", "volumes", "labels", "resources", "schedulerName", "securityContext"):
        if cfg.get(key):
            config[snake(key)] = cfg[key]
    if "failPodOnRunFailure" in cfg:
        config["fail_pod_on_run_failure"] = cfg["failPodOnRunFailure"]
    if cfg.get("runK8sConfig"):
        # top-level keys snake_cased; the Kubernetes fields inside stay as written (dagster-k8s
        # accepts both spellings when it builds the objects)
        config["run_k8s_config"] = {snake(k): v for k, v in cfg["runK8sConfig"].items()}
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def _run_coordinator(values: dict[str, Any]) -> dict[str, Any] | None:
    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    if not (daemon.get("enabled", True) and coordinator.get("enabled", True)):
        return None
    assert coordinator["type"] == "QueuedRunCoordinator", "only the QueuedRunCoordinator template is transcribed"
    qrc = coordinator.get("config", {}).get("queuedRunCoordinator") or {}
    rendered: dict[str, Any] = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
    if any(v not in (None, "", [], {}) for v in qrc.values()):
        config: dict[str, Any] = {}
        if qrc.get("maxConcurrentRuns") is not None:
            config["max_concurrent_runs"] = qrc["maxConcurrentRuns"]
        if qrc.get("tagConcurrencyLimits"):
            config["tag_concurrency_limits"] = qrc["tagConcurrencyLimits"]
        for key in ("dequeueIntervalSeconds", "dequeueUseThreads", "dequeueNumWorkers"):
            if qrc.get(key):
                config[snake(key)] = qrc[key]
        if qrc.get("blockOpConcurrencyLimitedRuns"):
            block = qrc["blockOpConcurrencyLimitedRuns"]
            config["block_op_concurrency_limited_runs"] = {
                "enabled": block.get("enabled"),
                "op_concurrency_slot_buffer": block.get("opConcurrencySlotBuffer"),
            }
        rendered["config"] = config
    return rendered


def _compute_logs(values: dict[str, Any]) -> dict[str, Any]:
    manager = values["computeLogManager"]
    module, key = COMPUTE_LOG_CLASSES[manager["type"]]
    return {
        "module": module,
        "class": manager["type"],
        "config": {snake(k): v for k, v in manager["config"][key].items()},
    }


def _concurrency(values: dict[str, Any]) -> dict[str, Any] | None:
    concurrency = values.get("concurrency") or {}
    if not concurrency.get("enabled"):
        return None
    rendered: dict[str, Any] = {}
    pools = concurrency.get("pools") or {}
    if pools.get("defaultLimit") is not None or pools.get("granularity") or pools.get("opGranularityRunBuffer"):
        rendered["pools"] = {snake(k): v for k, v in pools.items() if v is not None}
    runs = concurrency.get("runs") or {}
    if runs.get("maxConcurrentRuns") is not None or runs.get("tagConcurrencyLimits"):
        rendered["runs"] = {snake(k): v for k, v in runs.items() if v not in (None, [])}
    return rendered


def instance_config(values: dict[str, Any]) -> dict[str, Any]:
    """The dagster.yaml of the chart's instance ConfigMap, as a dict."""
    daemon = values["dagsterDaemon"]
    storage = {"config": _postgres_config(values)}
    instance: dict[str, Any] = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            **storage,
        },
        "run_launcher": _run_launcher(values),
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", **storage},
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            **storage,
        },
        "compute_logs": _compute_logs(values),
        "telemetry": {"enabled": values.get("telemetry", {}).get("enabled", True)},
    }
    coordinator = _run_coordinator(values)
    if coordinator:
        instance["run_coordinator"] = coordinator
    monitoring = daemon.get("runMonitoring") or {}
    if daemon.get("enabled", True) and monitoring.get("enabled"):
        instance["run_monitoring"] = {snake(k): v for k, v in monitoring.items()}
    retries = daemon.get("runRetries") or {}
    if daemon.get("enabled", True) and retries.get("enabled"):
        instance["run_retries"] = {snake(k): v for k, v in retries.items()}
    concurrency = _concurrency(values)
    if concurrency is not None:
        instance["concurrency"] = concurrency
    return instance


def code_location_container_context(values: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any] | None:
    """DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT of the code server, or None when the chart sets none.

    With includeConfigInLaunchedRuns on (the chart's default), the chart 1.13.27 copies the code
    server's own pull policy, env ConfigMaps and secrets, labels, resources and nodeSelector.
    """
    include = deployment.get("includeConfigInLaunchedRuns") or {"enabled": True}
    if not include.get("enabled", True):
        return None
    k8s: dict[str, Any] = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [f"{FULLNAME}-{deployment['name']}-user-env"]
        + [c["name"] for c in deployment.get("envConfigMaps", []) if "name" in c],
        "namespace": NAMESPACE,
        "service_account_name": values["global"].get("serviceAccountName"),
    }
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = [s["name"] for s in deployment["envSecrets"] if "name" in s]
    for key in ("labels", "resources", "volumeMounts", "volumes"):
        if deployment.get(key):
            k8s[snake(key)] = deployment[key]
    pod_spec: dict[str, Any] = {}
    if deployment.get("nodeSelector"):
        pod_spec["node_selector"] = deployment["nodeSelector"]
    if deployment.get("initContainers"):
        pod_spec["init_containers"] = deployment["initContainers"]
    if pod_spec:
        k8s["run_k8s_config"] = {"pod_spec_config": pod_spec}
    return {"k8s": k8s}


def service_pod_labels(values: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Pod-template labels of the webserver, daemon and code server (chart 1.13.27:
    helpers/_deployment-webserver.tpl, deployment-daemon.yaml and the user-deployments subchart's
    deployment-user.yaml: selector labels, component, deployment, then the values' labels)."""
    selector = {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": RELEASE}
    deployment = values["dagster-user-deployments"]["deployments"][0]
    return {
        "webserver": {
            **selector,
            "component": "dagster-webserver",
            **(values["dagsterWebserver"].get("labels") or {}),
        },
        "daemon": {
            **selector,
            "component": "dagster-daemon",
            "deployment": "daemon",
            **(values["dagsterDaemon"].get("labels") or {}),
        },
        "code server": {
            "app.kubernetes.io/name": "dagster-user-deployments",
            "app.kubernetes.io/instance": RELEASE,
            "component": "user-deployments",
            "deployment": deployment["name"],
            **(deployment.get("labels") or {}),
        },
    }
