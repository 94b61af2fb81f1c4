"""Static consistency checks of deploy/terraform (no Terraform binary, no providers, no cloud).

`terraform fmt` / `terraform validate` with the real CLI are in test_deploy_terraform_cli.py; these
checks catch what can be seen without Terraform: parse errors, unused or undeclared variables, module
wiring, provider pinning, tfvars keys, provider floors, and the settings that prod must keep (HA,
backups, deletion protection).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "deploy" / "terraform"
CLOUDS = ("aws", "gcp", "azure")
ENVS = ("dev", "prod")
ENV_DIRS = [(c, e) for c in CLOUDS for e in ENVS]
TF_DIRS = [TERRAFORM / "modules" / c for c in CLOUDS] + [TERRAFORM / "envs" / c / e for c, e in ENV_DIRS]
MODULE_META_ARGS = {"source", "version", "providers", "count", "for_each", "depends_on"}


def _tf_text(directory: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(directory.glob("*.tf")))


def _strip_blocks(text: str, opener: str) -> str:
    """Remove every top-level block whose header matches `opener` (brace matching)."""
    out, i = [], 0
    pattern = re.compile(opener)
    while True:
        m = pattern.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i : m.start()])
        depth, j = 0, text.index("{", m.start())
        while True:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1


@pytest.mark.parametrize("path", sorted(TERRAFORM.rglob("*.tf")), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(hclload, path: Path) -> None:
    doc = hclload.loads_tf(path.read_text())
    assert doc, f"{path} parsed to nothing"


@pytest.mark.parametrize("path", sorted(TERRAFORM.rglob("*.tfvars")), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tfvars_file_parses(hclload, path: Path) -> None:
    assert hclload.loads_tfvars(path.read_text())


@pytest.mark.parametrize("cloud", CLOUDS)
def test_module_has_the_standard_files(cloud: str) -> None:
    names = {p.name for p in (TERRAFORM / "modules" / cloud).glob("*")}
    assert {"versions.tf", "variables.tf", "outputs.tf", "README.md"} <= names


@pytest.mark.parametrize("cloud", CLOUDS)
def test_module_variables_are_documented_typed_and_bounded(terraform, cloud: str) -> None:
    variables = terraform.module(cloud)["variable"]
    assert variables
    for name, body in variables.items():
        assert body.get("description"), f"{cloud}: variable {name} has no description"
        assert body.get("type"), f"{cloud}: variable {name} has no type"
        if body["type"].strip("${}") == "number":
            assert body.get("validation"), f"{cloud}: number variable {name} has no validation (bounds)"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_module_outputs_are_documented(terraform, cloud: str) -> None:
    for name, body in terraform.module(cloud)["output"].items():
        assert body.get("description"), f"{cloud}: output {name} has no description"


@pytest.mark.parametrize("directory", TF_DIRS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_declared_variable_is_used(terraform, directory: Path) -> None:
    declared = terraform.hclload.load_dir(directory).get("variable", {})
    # A variable's own block (description, validation) does not count as a use.
    usage = _strip_blocks(_tf_text(directory), r'(?m)^variable\s+"[^"]+"\s*\{')
    unused = [name for name in declared if not re.search(rf"\bvar\.{re.escape(name)}\b", usage)]
    assert not unused, f"{directory.relative_to(TERRAFORM)}: unused variables {unused}"


@pytest.mark.parametrize("directory", TF_DIRS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_referenced_variable_is_declared(terraform, directory: Path) -> None:
    declared = set(terraform.hclload.load_dir(directory).get("variable", {}))
    referenced = set(re.findall(r"\bvar\.([A-Za-z0-9_]+)", _tf_text(directory)))
    assert referenced <= declared, f"undeclared: {sorted(referenced - declared)}"


@pytest.mark.parametrize(("cloud", "env"), ENV_DIRS)
def test_env_module_call_matches_the_module(terraform, cloud: str, env: str) -> None:
    env_dir = TERRAFORM / "envs" / cloud / env
    calls = terraform.env(cloud, env)["module"]
    assert calls, "the environment calls no module"
    for call_name, call in calls.items():
        source = (env_dir / call["source"]).resolve()
        assert source.is_dir() and any(source.glob("*.tf")), f"module source {call['source']} does not exist"
        module_vars = terraform.hclload.load_dir(source)["variable"]
        inputs = set(call) - MODULE_META_ARGS
        undeclared = inputs - set(module_vars)
        assert not undeclared, f"{call_name}: inputs not declared by the module: {sorted(undeclared)}"
        required = {name for name, body in module_vars.items() if "default" not in body}
        missing = required - inputs
        assert not missing, f"{call_name}: required module variables not passed: {sorted(missing)}"


def _pinned(constraint: str) -> bool:
    """A constraint with an upper bound: ~> x.y, < x, or an exact version."""
    return bool(re.search(r"~>|<|^=?\s*\d+\.\d+\.\d+$", constraint.strip()))


@pytest.mark.parametrize("directory", TF_DIRS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_terraform_and_providers_are_pinned_in_versions_tf(terraform, directory: Path) -> None:
    versions = terraform.hclload.loads_tf((directory / "versions.tf").read_text())
    block = versions["terraform"][0]
    assert _pinned(block["required_version"]), block["required_version"]
    required: dict[str, Any] = {}
    for providers in block["required_providers"]:
        required.update(providers)
    for name, spec in required.items():
        assert spec.get("source", "").startswith("hashicorp/"), f"{name}: unexpected source {spec.get('source')}"
        assert _pinned(spec.get("version", "")), f"{name}: version {spec.get('version')!r} has no upper bound"
    # Every provider a resource or data source needs is declared (and thus pinned).
    doc = terraform.hclload.load_dir(directory)
    used = {t.split("_", 1)[0] for kind in ("resource", "data") for t in doc.get(kind, {})}
    for by_name in doc.get("resource", {}).values():
        used |= {str(body["provider"]).strip("${}").split(".")[0] for body in by_name.values() if "provider" in body}
    used |= set(doc.get("provider", {}))
    assert used <= set(required), f"providers used but not pinned: {sorted(used - set(required))}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_envs_and_module_pin_the_same_provider_versions(terraform, cloud: str) -> None:
    def pins(directory: Path) -> dict[str, str]:
        block = terraform.hclload.loads_tf((directory / "versions.tf").read_text())["terraform"][0]
        return {name: spec["version"] for providers in block["required_providers"] for name, spec in providers.items()}

    module = pins(TERRAFORM / "modules" / cloud)
    for env in ENVS:
        assert pins(TERRAFORM / "envs" / cloud / env) == module


@pytest.mark.parametrize(("cloud", "env"), ENV_DIRS)
def test_tfvars_keys_are_declared_variables(terraform, cloud: str, env: str) -> None:
    declared = set(terraform.env(cloud, env)["variable"])
    keys = set(terraform.tfvars(cloud, env))
    assert keys <= declared, f"tfvars keys without a variable: {sorted(keys - declared)}"


@pytest.mark.parametrize(("cloud", "env"), ENV_DIRS)
def test_env_variables_without_default_are_set_in_tfvars(terraform, cloud: str, env: str) -> None:
    variables = terraform.env(cloud, env)["variable"]
    required = {name for name, body in variables.items() if "default" not in body}
    missing = required - set(terraform.tfvars(cloud, env))
    assert not missing, f"plan would prompt for: {sorted(missing)}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_dev_and_prod_roots_differ_only_in_environment_and_tfvars(cloud: str) -> None:
    dev, prod = TERRAFORM / "envs" / cloud / "dev", TERRAFORM / "envs" / cloud / "prod"
    assert sorted(p.name for p in dev.glob("*.tf")) == sorted(p.name for p in prod.glob("*.tf"))
    for tf in dev.glob("*.tf"):
        assert tf.read_text().replace('"dev"', '"ENV"') == (prod / tf.name).read_text().replace('"prod"', '"ENV"'), (
            tf.name
        )


# Prod must keep what the inline checkov skips leave to a variable (see the skip justifications).
PROD_REQUIREMENTS: dict[str, dict[str, Any]] = {
    "aws": {
        "db_multi_az": True,
        "db_deletion_protection": True,
        "replication_enabled": True,
        "single_nat_gateway": False,
    },
    "gcp": {
        "regional_cluster": True,
        "db_high_availability": True,
        "db_deletion_protection": True,
        "cluster_deletion_protection": True,
    },
    "azure": {
        "aks_sku_tier": "Standard",
        "db_high_availability": True,
        "db_geo_redundant_backup": True,
        "db_deletion_protection": True,
    },
}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_prod_keeps_ha_backups_and_deletion_protection(terraform, cloud: str) -> None:
    values = terraform.values(cloud, "prod")
    for key, expected in PROD_REQUIREMENTS[cloud].items():
        assert values[key] == expected, f"prod {cloud}: {key} = {values[key]!r}, expected {expected!r}"
    if cloud == "aws":
        assert len(values["availability_zones"]) >= 3 and values["db_backup_retention_days"] >= 7
    if cloud == "gcp":
        assert len(values["zones"]) >= 3 and values["db_backup_retention_count"] >= 7
        assert values["bucket_location"].lower() != values["region"], "prod bucket should be dual-region"
    if cloud == "azure":
        assert values["storage_replication_type"] in {"GRS", "RAGRS", "GZRS", "RAGZRS"}
        assert values["registry_geo_replica_location"]
        assert len(values["availability_zones"]) >= 2 and values["db_backup_retention_days"] >= 7


SPOT_MAX_KEY = {"aws": "spot_node_max_count", "gcp": "spot_node_max_count", "azure": "spot_node_max_count"}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_dev_is_smaller_than_prod(terraform, cloud: str) -> None:
    dev, prod = terraform.values(cloud, "dev"), terraform.values(cloud, "prod")
    assert dev["system_node_count"] <= prod["system_node_count"]
    assert dev[SPOT_MAX_KEY[cloud]] <= prod[SPOT_MAX_KEY[cloud]]
    assert dev["monthly_budget_usd"] < prod["monthly_budget_usd"]


def _spot_pool(terraform, cloud: str) -> dict[str, Any]:
    resources = terraform.module(cloud)["resource"]
    if cloud == "aws":
        return resources["aws_eks_node_group"]["spot"]
    if cloud == "gcp":
        return resources["google_container_node_pool"]["spot"]
    return resources["azurerm_kubernetes_cluster_node_pool"]["spot"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_spot_pool_is_spot_and_scales_to_zero(terraform, cloud: str) -> None:
    pool = _spot_pool(terraform, cloud)
    if cloud == "aws":
        assert pool["capacity_type"] == "SPOT"
        assert pool["scaling_config"][0]["min_size"] == 0 and pool["scaling_config"][0]["desired_size"] == 0
    elif cloud == "gcp":
        assert pool["node_config"][0]["spot"] is True
        assert pool["autoscaling"][0]["total_min_node_count"] == 0
    else:
        assert pool["priority"] == "Spot" and pool["auto_scaling_enabled"] is True
        assert pool["min_count"] == 0


STANDARD_TAGS = {
    "aws": {"Project", "Environment", "Stack", "CostCenter", "Owner", "ManagedBy"},
    "gcp": {"project", "environment", "stack", "cost_center", "owner", "managed_by"},
    "azure": {"Project", "Environment", "Stack", "CostCenter", "Owner", "ManagedBy"},
}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_cost_allocation_tags_are_defined(cloud: str) -> None:
    text = (TERRAFORM / "modules" / cloud / "main.tf").read_text()
    block = text.split("labels = {" if cloud == "gcp" else "tags = merge(var.tags, {", 1)[1].split("}", 1)[0]
    keys = set(re.findall(r"^\s*([A-Za-z_]+)\s*=", block, re.M))
    assert STANDARD_TAGS[cloud] <= keys


@pytest.mark.parametrize("cloud", CLOUDS)
def test_budget_with_alerts_exists(terraform, cloud: str) -> None:
    resources = terraform.module(cloud)["resource"]
    budget_type = {
        "aws": "aws_budgets_budget",
        "gcp": "google_billing_budget",
        "azure": "azurerm_consumption_budget_subscription",
    }[cloud]
    budget = next(iter(resources[budget_type].values()))
    rules = budget.get("notification") or budget.get("threshold_rules")
    assert rules and len(rules) >= 2


def test_aws_iam_has_no_wildcard_action_on_all_resources(terraform) -> None:
    documents = terraform.module("aws")["data"]["aws_iam_policy_document"]
    for name, document in documents.items():
        for statement in document.get("statement", []):
            actions = statement.get("actions", [])
            resources = statement.get("resources", [])
            assert "*" not in actions, f"{name}: action '*'"
            if "*" in resources:
                wild = [a for a in actions if a.endswith("*")]
                assert not wild, f"{name}: wildcard actions {wild} on all resources"


def test_no_long_lived_credentials_are_created() -> None:
    text = "\n".join(p.read_text() for p in TERRAFORM.rglob("*.tf"))
    for resource_type in (
        "aws_iam_access_key",
        "aws_iam_user",
        "google_service_account_key",
        "azuread_application_password",
        "azuread_service_principal_password",
    ):
        assert f'resource "{resource_type}"' not in text, resource_type
    assert re.search(r"shared_access_key_enabled\s*=\s*false", text), "Azure storage keys must be disabled"
    for primitive in ("roles/owner", "roles/editor", '"Owner"', '"Contributor"'):
        assert primitive not in text, f"broad role {primitive} granted"


@pytest.mark.parametrize("path", sorted(TERRAFORM.rglob("*.tf")), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_checkov_skips_are_inline_with_a_justification(path: Path) -> None:
    for line in path.read_text().splitlines():
        if "checkov:skip" in line:
            assert re.fullmatch(r"\s*#checkov:skip=CKV2?_[A-Z]+_\d+:\S.{15,}", line), f"{path.name}: {line.strip()}"


def test_no_checkov_config_file_skips_checks_outside_the_code() -> None:
    for name in (".checkov.yaml", ".checkov.yml"):
        assert not (REPO / name).exists() and not (REPO / "deploy" / name).exists()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_module_readme_documents_every_input_and_output(terraform, cloud: str) -> None:
    readme = (TERRAFORM / "modules" / cloud / "README.md").read_text()
    module = terraform.module(cloud)
    missing = [n for kind in ("variable", "output") for n in module[kind] if f"| `{n}` |" not in readme]
    assert not missing, f"modules/{cloud}/README.md does not document {missing}"


# --- provider floors against the arguments the modules use (issue 12, item 4) -------------------

# (provider, resource type, argument) -> first provider version that has the argument
ARGUMENT_SINCE = {
    ("azurerm", "azurerm_federated_identity_credential", "user_assigned_identity_id"): (4, 65, 0),
    ("azurerm", "azurerm_key_vault", "rbac_authorization_enabled"): (4, 42, 0),
    # the landing-event queue through Resource Manager (4.46, #28752); before, only the data-plane
    # storage_account_name, which the disabled shared keys and public network refuse
    ("azurerm", "azurerm_storage_queue", "storage_account_id"): (4, 46, 0),
    ("azurerm", "azurerm_eventgrid_system_topic", "source_resource_id"): (4, 40, 0),
}
# (provider, resource type, argument) -> why it must not be set
ARGUMENT_DEPRECATED = {
    ("azurerm", "azurerm_federated_identity_credential", "resource_group_name"): "deprecated in every azurerm 4.x",
    ("azurerm", "azurerm_federated_identity_credential", "parent_id"): "replaced by user_assigned_identity_id in 4.65",
    ("azurerm", "azurerm_storage_queue", "storage_account_name"): "deprecated for storage_account_id (4.46)",
    ("azurerm", "azurerm_eventgrid_system_topic", "source_arm_resource_id"): "deprecated for source_resource_id",
}
# blocks a provider declares in attribute mode: Terraform cannot generate them with `dynamic`
ATTRIBUTE_MODE_BLOCKS = {"azure": ("network_rule_set", "ip_rule")}


def _floor(constraint: str) -> tuple[int, ...]:
    """Lowest version a constraint such as '~> 4.65' or '>= 4.1, < 5' admits."""
    floors = []
    for part in constraint.split(","):
        match = re.match(r"\s*(~>|>=|=)?\s*(\d+(?:\.\d+)*)", part)
        if match and match.group(1) != "<":
            floors.append(tuple(int(x) for x in match.group(2).split(".")))
    assert floors, constraint
    return tuple(list(max(floors)) + [0] * (3 - len(max(floors))))


def _provider_pins(terraform, directory: Path) -> dict[str, str]:
    block = terraform.hclload.loads_tf((directory / "versions.tf").read_text())["terraform"][0]
    return {name: spec["version"] for providers in block["required_providers"] for name, spec in providers.items()}


@pytest.mark.parametrize("directory", TF_DIRS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_provider_floors_admit_only_versions_with_the_arguments_used(terraform, directory: Path) -> None:
    pins = _provider_pins(terraform, directory)
    cloud = directory.relative_to(TERRAFORM).parts[1]
    module = terraform.module(cloud)["resource"]
    for (provider, rtype, argument), since in ARGUMENT_SINCE.items():
        if provider not in pins:
            continue
        if any(argument in body for body in module.get(rtype, {}).values()):
            floor = _floor(pins[provider])
            assert floor >= since, (
                f"{directory.name}: {provider} {pins[provider]} admits {floor}, but {rtype}.{argument} "
                f"exists only from {'.'.join(map(str, since))}"
            )


@pytest.mark.parametrize("cloud", CLOUDS)
def test_no_deprecated_arguments_or_dynamic_attribute_mode_blocks(terraform, cloud: str) -> None:
    resources = terraform.module(cloud)["resource"]
    for (_, rtype, argument), why in ARGUMENT_DEPRECATED.items():
        for name, body in resources.get(rtype, {}).items():
            assert argument not in body, f"{rtype}.{name} sets {argument}: {why}"
    text = _tf_text(TERRAFORM / "modules" / cloud)
    for block in ATTRIBUTE_MODE_BLOCKS.get(cloud, ()):
        assert f'dynamic "{block}"' not in text, f'dynamic "{block}": an attribute-mode block, use the attribute syntax'


def test_floor_parsing_and_the_old_pin_would_fail() -> None:
    """The check can fail: the previous pin admitted 4.60, which lacks user_assigned_identity_id."""
    since = ARGUMENT_SINCE[("azurerm", "azurerm_federated_identity_credential", "user_assigned_identity_id")]
    assert _floor("~> 4.60") == (4, 60, 0) < since
    assert _floor(">= 1.10.0, < 2.0.0") == (1, 10, 0)


# --- AKS: no user labels under reserved prefixes (issue 12, item 5) ---------------------------------

RESERVED_LABEL_PREFIXES = ("kubernetes.azure.com/", "kubernetes.io/", "k8s.io/", "node-role.kubernetes.io/")


def test_aks_pools_set_no_label_under_a_reserved_prefix(terraform) -> None:
    resources = terraform.module("azure")["resource"]
    pools = {
        name: body.get("node_labels") or {} for name, body in resources["azurerm_kubernetes_cluster_node_pool"].items()
    }
    pools["default"] = resources["azurerm_kubernetes_cluster"]["this"]["default_node_pool"][0].get("node_labels") or {}
    for name, labels in pools.items():
        reserved = [k for k in labels if k.startswith(RESERVED_LABEL_PREFIXES) or ".kubernetes.io/" in k]
        assert not reserved, f"AKS pool {name} sets reserved labels {reserved} (AKS owns them)"
    # runs still find the pool: by our own label, tolerating both of the pool's taints
    spot = resources["azurerm_kubernetes_cluster_node_pool"]["spot"]
    assert spot["node_labels"] == {"mlops-platform/pool": "spot"}
    assert "kubernetes.azure.com/scalesetpriority=spot:NoSchedule" in spot["node_taints"]
