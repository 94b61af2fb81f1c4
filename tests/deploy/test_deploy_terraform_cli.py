"""`terraform fmt` and `terraform validate` on deploy/terraform with the real Terraform CLI (issue 12).

fmt runs whenever a `terraform` binary is on PATH. validate also needs, for every environment, each
provider it pins (its own `required_providers` and those of its local modules) in a local provider
mirror: `MLOPS_TF_PLUGIN_DIR`, else `/opt/tf-plugins`; an environment whose providers are not all
there is skipped with the reason naming them. Nothing reaches the network: the CLI configuration
written here installs providers from that mirror only (no `direct` source), the checkpoint call is
off, and the backend is not initialised. Each environment is validated in a temporary copy of
deploy/terraform, with one plugin cache for the session, so no `.terraform` directory or lock file
appears in the tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "deploy" / "terraform"
ENV_DIRS = sorted(p for p in (TERRAFORM / "envs").glob("*/*") if p.is_dir())
DEFAULT_PLUGIN_DIR = Path("/opt/tf-plugins")
PLUGIN_DIR_VARIABLE = "MLOPS_TF_PLUGIN_DIR"
TERRAFORM_BIN = shutil.which("terraform")
DEFAULT_REGISTRY = "registry.terraform.io"
TIMEOUT = 300

needs_terraform = pytest.mark.skipif(
    TERRAFORM_BIN is None,
    reason="no `terraform` binary on PATH: terraform fmt and validate not run (install Terraform >= 1.10)",
)

Version = tuple[int, int, int]


# --- version constraints, as Terraform reads them --------------------------------------------------


def _version(text: str) -> Version:
    parts = text.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a release version: {text!r}")
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    return numbers[0], numbers[1], numbers[2]


def satisfies(version: Version, constraint: str) -> bool:
    """Whether `version` meets a Terraform version constraint such as '~> 6.40' or '>= 1.10, < 2'."""
    for part in constraint.split(","):
        match = re.fullmatch(r"\s*(~>|>=|<=|!=|>|<|=)?\s*(\d+(?:\.\d+){0,2})\s*", part)
        if not match:
            raise ValueError(f"unsupported version constraint {part.strip()!r} in {constraint!r}")
        op, text = match.group(1) or "=", match.group(2)
        bound = _version(text)
        if op == "~>":
            # the last given segment may grow: ~> 6.40 is >= 6.40, < 7; ~> 1.2.3 is >= 1.2.3, < 1.3
            segments = [int(s) for s in text.split(".")]
            bump = max(len(segments) - 2, 0)
            upper = [*segments[:bump], segments[bump] + 1] + [0] * (2 - bump)
            ok = bound <= version < (upper[0], upper[1], upper[2])
        else:
            ok = {
                "=": version == bound,
                "!=": version != bound,
                ">": version > bound,
                ">=": version >= bound,
                "<": version < bound,
                "<=": version <= bound,
            }[op]
        if not ok:
            return False
    return True


def _show(version: Version) -> str:
    return ".".join(map(str, version))


# --- what the mirror holds and what an environment needs ------------------------------------------


def mirrored_providers(plugin_dir: Path, platform: str) -> dict[str, set[Version]]:
    """Provider address -> release versions for `platform` in a filesystem mirror.

    Both layouts Terraform reads: unpacked HOST/NAMESPACE/TYPE/VERSION/PLATFORM/ (what `-plugin-dir`
    and image builds usually hold) and packed HOST/NAMESPACE/TYPE/terraform-provider-TYPE_VERSION_PLATFORM.zip
    (what `terraform providers mirror` writes).
    """
    found: dict[str, set[Version]] = {}
    for type_dir in plugin_dir.glob("*/*/*"):
        if not type_dir.is_dir():
            continue
        address = "/".join(type_dir.relative_to(plugin_dir).parts).lower()
        versions: set[Version] = set()
        for entry in type_dir.iterdir():
            text = None
            if entry.is_dir() and (entry / platform).is_dir():
                text = entry.name
            else:
                packed = re.fullmatch(
                    rf"terraform-provider-{re.escape(type_dir.name)}_(.+)_{platform}\.zip", entry.name
                )
                if packed:
                    text = packed.group(1)
            if text is None:
                continue
            try:
                versions.add(_version(text))
            except ValueError:
                continue  # pre-releases: Terraform picks them only when pinned exactly
        if versions:
            found[address] = versions
    return found


def _address(source: str) -> str:
    parts = source.lower().split("/")
    return "/".join([DEFAULT_REGISTRY, *parts] if len(parts) == 2 else parts)


def required_providers(root: Path, hclload: Any) -> tuple[dict[str, list[str]], list[str]]:
    """(provider address -> every constraint on it, reasons offline validation is impossible).

    Gathers the `required_providers` of `root` and of every module it calls, recursively (Terraform
    intersects them all). A committed `.terraform.lock.hcl` pins the exact version init must find.
    """
    constraints: dict[str, list[str]] = {}
    problems: list[str] = []
    pending, seen = [root.resolve()], set()
    while pending:
        directory = pending.pop()
        if directory in seen:
            continue
        seen.add(directory)
        config = hclload.load_dir(directory)
        for block in config.get("terraform", []):
            for providers in block.get("required_providers", []):
                for name, spec in providers.items():
                    spec = spec if isinstance(spec, dict) else {"version": spec}
                    address = _address(spec.get("source", f"hashicorp/{name}"))
                    constraints.setdefault(address, [])
                    if spec.get("version") and spec["version"] not in constraints[address]:
                        constraints[address].append(spec["version"])
        for name, call in config.get("module", {}).items():
            source = call.get("source", "")
            if source.startswith(("./", "../")):
                pending.append((directory / source).resolve())
            else:
                problems.append(f"module {name!r} comes from {source!r}, which init would download")
    lock = root / ".terraform.lock.hcl"
    if lock.exists():
        for address, bodies in hclload.loads_tf(lock.read_text()).get("provider", {}).items():
            for body in bodies if isinstance(bodies, list) else [bodies]:
                constraints.setdefault(address.lower(), []).append(f"= {body['version']}")
    return constraints, problems


def unmet_providers(needed: dict[str, list[str]], mirror: dict[str, set[Version]]) -> list[str]:
    """One line per needed provider that the mirror cannot satisfy, saying what it holds instead."""
    unmet = []
    for address, constraints in sorted(needed.items()):
        wanted = ", ".join(constraints) or "any version"
        short = address.removeprefix(f"{DEFAULT_REGISTRY}/")
        held = mirror.get(address, set())
        if not held:
            unmet.append(f"{short} {wanted} (not in the mirror)")
        elif not any(all(satisfies(v, c) for c in constraints) for v in held):
            unmet.append(f"{short} {wanted} (the mirror has {', '.join(_show(v) for v in sorted(held))})")
    return unmet


# --- the Terraform CLI, offline --------------------------------------------------------------------


@dataclass
class TerraformCli:
    binary: str
    version: Version
    platform: str
    env: dict[str, str]
    workdir: Path
    plugin_dir: Path | None
    no_plugin_dir_reason: str

    def mirror(self) -> Path:
        """The provider mirror; skips the test (fails it, if MLOPS_TF_PLUGIN_DIR is wrong) when there is none."""
        if self.plugin_dir is None:
            if self.no_plugin_dir_reason.startswith("error: "):
                pytest.fail(self.no_plugin_dir_reason.removeprefix("error: "))
            pytest.skip(self.no_plugin_dir_reason)
        return self.plugin_dir

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def init(self, directory: Path) -> subprocess.CompletedProcess[str]:
        return self.run("init", "-backend=false", "-input=false", "-no-color", cwd=directory)

    def validate(self, directory: Path) -> list[dict[str, Any]]:
        """`terraform init` from the mirror, then `terraform validate`: its diagnostics (empty: valid)."""
        init = self.init(directory)
        assert init.returncode == 0, f"terraform init in {directory} failed:\n{init.stdout}\n{init.stderr}"
        result = self.run("validate", "-json", "-no-color", cwd=directory)
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"terraform validate in {directory} printed no JSON:\n{result.stdout}\n{result.stderr}")
        diagnostics: list[dict[str, Any]] = report.get("diagnostics", [])
        assert diagnostics or (report.get("valid") and result.returncode == 0), report
        return diagnostics


def _plugin_dir() -> tuple[Path | None, str]:
    """(the provider mirror, why there is none); a set but wrong MLOPS_TF_PLUGIN_DIR is an error, not a skip."""
    configured = os.environ.get(PLUGIN_DIR_VARIABLE)
    if configured:
        if Path(configured).is_dir():
            return Path(configured), ""
        return None, f"error: {PLUGIN_DIR_VARIABLE}={configured!r} is not a directory (a Terraform provider mirror)"
    if DEFAULT_PLUGIN_DIR.is_dir():
        return DEFAULT_PLUGIN_DIR, ""
    return None, (
        f"no Terraform provider mirror: set {PLUGIN_DIR_VARIABLE} or fill {DEFAULT_PLUGIN_DIR} "
        "(`terraform providers mirror -platform=linux_amd64 DIR` in each environment, on a machine with network)"
    )


@pytest.fixture(scope="session")
def tf(tmp_path_factory: pytest.TempPathFactory) -> TerraformCli:
    if TERRAFORM_BIN is None:
        pytest.skip("no `terraform` binary on PATH")
    root = tmp_path_factory.mktemp("terraform-cli")
    plugin_dir, reason = _plugin_dir()
    cache = root / "plugin-cache"
    cache.mkdir()
    cli_config = root / "terraform.rc"
    # Only the filesystem mirror: without a `direct` block Terraform has no way to reach a registry.
    mirror = plugin_dir if plugin_dir is not None else root / "no-mirror"
    mirror.mkdir(exist_ok=True)
    mirror_block = f"provider_installation {{\n  filesystem_mirror {{\n    path = {json.dumps(str(mirror))}\n  }}\n}}\n"
    cli_config.write_text(f"{mirror_block}plugin_cache_dir = {json.dumps(str(cache))}\ndisable_checkpoint = true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "CHECKPOINT_"))}
    env.update(TF_CLI_CONFIG_FILE=str(cli_config), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    out = subprocess.run(
        [TERRAFORM_BIN, "version", "-json"], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    info = json.loads(out.stdout)
    workdir = root / "copy"
    shutil.copytree(
        TERRAFORM,
        workdir / "terraform",
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", "*.tfplan", "backend.hcl"),
    )
    return TerraformCli(
        binary=TERRAFORM_BIN,
        version=_version(info["terraform_version"].split("-")[0]),
        platform=info["platform"],
        env=env,
        workdir=workdir / "terraform",
        plugin_dir=plugin_dir,
        no_plugin_dir_reason=reason,
    )


def _describe(diagnostics: list[dict[str, Any]], directory: Path, root: Path, shown_root: Path) -> str:
    """One line per diagnostic; a file under `root` is shown under `shown_root` (the repository's path)."""
    lines = []
    for d in diagnostics:
        where = ""
        if "range" in d:
            path = (directory / d["range"]["filename"]).resolve()
            if path.is_relative_to(root):
                path = shown_root / path.relative_to(root)
            where = f" ({path}:{d['range']['start']['line']})"
        lines.append(f"{d['severity']}: {d['summary']}{where}: {d.get('detail', '')}")
    return "\n".join(lines)


# --- the pure parts, checked without Terraform ----------------------------------------------------


def test_version_constraints_follow_terraform_semantics() -> None:
    assert satisfies((6, 40, 0), "~> 6.40") and satisfies((6, 99, 3), "~> 6.40")
    assert not satisfies((7, 0, 0), "~> 6.40") and not satisfies((5, 100, 0), "~> 6.40")
    assert satisfies((1, 2, 9), "~> 1.2.3") and not satisfies((1, 3, 0), "~> 1.2.3")
    assert satisfies((1, 11, 4), ">= 1.10.0, < 2.0.0") and not satisfies((1, 9, 8), ">= 1.10.0, < 2.0.0")
    assert (
        satisfies((5, 100, 0), "5.100.0")
        and satisfies((5, 100, 0), "= 5.100")
        and not satisfies((5, 100, 1), "5.100.0")
    )
    assert not satisfies((3, 7, 0), "!= 3.7.0")
    with pytest.raises(ValueError, match="unsupported version constraint"):
        satisfies((1, 0, 0), "^1.0")


def test_mirror_listing_reads_both_layouts_for_this_platform_only(tmp_path: Path) -> None:
    (tmp_path / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").mkdir(parents=True)
    (tmp_path / "registry.terraform.io/hashicorp/aws/6.1.0/darwin_arm64").mkdir(parents=True)
    packed = tmp_path / "registry.terraform.io/hashicorp/random"
    packed.mkdir(parents=True)
    (packed / "terraform-provider-random_3.7.2_linux_amd64.zip").write_bytes(b"")
    (packed / "terraform-provider-random_3.8.0-beta1_linux_amd64.zip").write_bytes(b"")
    assert mirrored_providers(tmp_path, "linux_amd64") == {
        "registry.terraform.io/hashicorp/aws": {(5, 100, 0)},
        "registry.terraform.io/hashicorp/random": {(3, 7, 2)},
    }


def test_each_env_needs_its_own_and_its_modules_providers(hclload: ModuleType, tmp_path: Path) -> None:
    """The requirements come from the environment and its module, and the mirror check names what is missing."""
    for env_dir in ENV_DIRS:
        needed, problems = required_providers(env_dir, hclload)
        assert not problems, f"{env_dir}: {problems}"
        module_pins = hclload.load_dir(TERRAFORM / "modules" / env_dir.parent.name)["terraform"][0][
            "required_providers"
        ][0]
        for name, spec in module_pins.items():
            assert spec["version"] in needed[_address(spec["source"])], (
                f"{env_dir}: {name} pin of the module not gathered"
            )
    # a committed lock file pins the exact version init must find in the mirror
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy)
    (copy / "envs/aws/dev/.terraform.lock.hcl").write_text(
        'provider "registry.terraform.io/hashicorp/aws" {\n  version     = "6.41.0"\n  constraints = "~> 6.40"\n}\n'
    )
    locked, _ = required_providers(copy / "envs/aws/dev", hclload)
    assert "= 6.41.0" in locked["registry.terraform.io/hashicorp/aws"], locked
    needed = {"registry.terraform.io/hashicorp/aws": ["~> 6.40"], "registry.terraform.io/hashicorp/random": ["~> 3.7"]}
    mirror = {"registry.terraform.io/hashicorp/aws": {(5, 100, 0)}}
    assert unmet_providers(needed, mirror) == [
        "hashicorp/aws ~> 6.40 (the mirror has 5.100.0)",
        "hashicorp/random ~> 3.7 (not in the mirror)",
    ]
    assert unmet_providers(needed, {**mirror, "registry.terraform.io/hashicorp/random": {(3, 7, 2)}}) == [
        "hashicorp/aws ~> 6.40 (the mirror has 5.100.0)"
    ]


# --- terraform fmt -------------------------------------------------------------------------------


@needs_terraform
def test_terraform_fmt_check_passes_on_deploy_terraform(tf: TerraformCli) -> None:
    result = tf.run("fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM), cwd=REPO)
    assert result.returncode == 0, (
        f"`terraform fmt -check -recursive deploy/terraform` wants changes (run `terraform fmt -recursive "
        f"deploy/terraform`):\n{result.stdout}{result.stderr}"
    )


@needs_terraform
def test_terraform_fmt_check_fails_on_a_misformatted_file(tf: TerraformCli, tmp_path: Path) -> None:
    """The fmt check can fail: misaligned `=` is reported with the file's name, and nothing is rewritten."""
    text = 'resource "aws_s3_bucket" "x" {\n  bucket = "a"\n  force_destroy = true\n}\n'
    (tmp_path / "main.tf").write_text(text)
    result = tf.run("fmt", "-check", "-recursive", "-no-color", str(tmp_path), cwd=tmp_path)
    assert result.returncode != 0 and "main.tf" in result.stdout, result
    assert (tmp_path / "main.tf").read_text() == text


# --- terraform validate --------------------------------------------------------------------------

# A resource per provider the harness can probe: a valid body, for a config that must validate.
PROBES = {
    "registry.terraform.io/hashicorp/aws": ('resource "aws_s3_bucket" "probe" {', '  bucket = "mlops-probe"'),
    "registry.terraform.io/hashicorp/random": ('resource "random_password" "probe" {', "  length = 16"),
    "registry.terraform.io/hashicorp/google": (
        'resource "google_storage_bucket" "probe" {',
        '  name     = "mlops-probe"\n  location = "EU"',
    ),
    "registry.terraform.io/hashicorp/azurerm": (
        'resource "azurerm_resource_group" "probe" {',
        '  name     = "mlops-probe"\n  location = "westeurope"',
    ),
}


@needs_terraform
def test_validate_harness_passes_a_valid_config_and_names_a_wrong_argument(tf: TerraformCli, tmp_path: Path) -> None:
    """The harness runs the provider's own schema: a valid resource passes, an unknown argument fails at its line."""
    plugin_dir = tf.mirror()
    mirror = mirrored_providers(plugin_dir, tf.platform)
    usable = [a for a in PROBES if a in mirror]
    if not usable:
        pytest.skip(f"the mirror {plugin_dir} holds none of {sorted(PROBES)} for {tf.platform}")
    address = usable[0]
    version = _show(max(mirror[address]))
    namespace, name = address.split("/")[1:]
    header, body = PROBES[address]
    config = tmp_path / "main.tf"
    config.write_text(
        f'terraform {{\n  required_providers {{\n    {name} = {{\n      source  = "{namespace}/{name}"\n'
        f'      version = "{version}"\n    }}\n  }}\n}}\n\n{header}\n{body}\n}}\n'
    )
    assert tf.validate(tmp_path) == [], "a valid probe config did not validate"
    config.write_text(config.read_text().replace(body, f"{body}\n  mlops_no_such_argument = true"))
    diagnostics = tf.validate(tmp_path)
    [wrong] = [d for d in diagnostics if "mlops_no_such_argument" in d.get("detail", "")]
    assert wrong["severity"] == "error" and wrong["summary"] == "Unsupported argument", wrong
    line = body.count("\n") + 12
    assert f"error: Unsupported argument (probe/main.tf:{line}): " in _describe(
        diagnostics, tmp_path, tmp_path, Path("probe")
    )


@needs_terraform
@pytest.mark.parametrize("env_dir", ENV_DIRS, ids=lambda p: "/".join(p.parts[-2:]))
def test_terraform_validate_env(tf: TerraformCli, hclload: ModuleType, env_dir: Path) -> None:
    """Every environment (with its module) validates against the pinned providers, no error, no warning."""
    name = "/".join(env_dir.parts[-2:])
    plugin_dir = tf.mirror()
    directory = tf.workdir / env_dir.relative_to(TERRAFORM)
    needed, problems = required_providers(directory, hclload)
    required = [
        c for block in hclload.load_dir(directory).get("terraform", []) for c in [block.get("required_version")] if c
    ]
    if not all(satisfies(tf.version, c) for c in required):
        pytest.skip(f"{name}: terraform {_show(tf.version)} on PATH does not meet required_version {required}")
    if problems:
        pytest.skip(f"{name}: terraform validate not run offline: {'; '.join(problems)}")
    unmet = unmet_providers(needed, mirrored_providers(plugin_dir, tf.platform))
    if unmet:
        # Terraform must agree that it cannot install them from the mirror (it names each one).
        init = tf.init(directory)
        output = init.stdout + init.stderr
        assert init.returncode != 0, f"{name}: init succeeded although the mirror check found {unmet}:\n{output}"
        for line in unmet:
            assert line.split()[0] in output, f"{name}: init did not name {line.split()[0]}:\n{output}"
        pytest.skip(
            f"{name}: terraform validate not run: the provider mirror {plugin_dir} lacks {'; '.join(unmet)} "
            f"(add them with `terraform providers mirror -platform={tf.platform} DIR` in this environment, "
            f"and point {PLUGIN_DIR_VARIABLE} at DIR)"
        )
    diagnostics = tf.validate(directory)
    if diagnostics:
        shown = _describe(diagnostics, directory, tf.workdir, TERRAFORM.relative_to(REPO))
        pytest.fail(f"terraform validate {name}:\n{shown}")
