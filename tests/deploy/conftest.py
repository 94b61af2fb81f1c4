"""Fixtures for the offline checks of deploy/ (Terraform, Helm, Docker, cost estimate).

Nothing here needs a network, a cloud account, Docker, Terraform or Helm (test_deploy_terraform_cli.py uses a
terraform binary and a provider mirror when present): files are parsed with
python-hcl2 and PyYAML and compared with each other. The helper scripts under deploy/ are
loaded from their paths because deploy/ is not a Python package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def load_script(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Terraform:
    """Cached, parsed view of deploy/terraform."""

    def __init__(self, root: Path, hclload: ModuleType) -> None:
        self.root = root
        self.hclload = hclload
        self._dirs: dict[Path, dict[str, Any]] = {}

    def _load(self, directory: Path) -> dict[str, Any]:
        if directory not in self._dirs:
            self._dirs[directory] = self.hclload.load_dir(directory)
        return self._dirs[directory]

    def module(self, cloud: str) -> dict[str, Any]:
        return self._load(self.root / "modules" / cloud)

    def env(self, cloud: str, env: str) -> dict[str, Any]:
        return self._load(self.root / "envs" / cloud / env)

    def tfvars(self, cloud: str, env: str) -> dict[str, Any]:
        path = self.root / "envs" / cloud / env / "terraform.tfvars"
        return self.hclload.loads_tfvars(path.read_text())

    def values(self, cloud: str, env: str) -> dict[str, Any]:
        return self.hclload.env_variables(self.root / "envs" / cloud / env)


@pytest.fixture(scope="session")
def hclload() -> ModuleType:
    return load_script("mlops_deploy_hclload", DEPLOY / "cost" / "hclload.py")


@pytest.fixture(scope="session")
def terraform(hclload: ModuleType) -> Terraform:
    return Terraform(DEPLOY / "terraform", hclload)


@pytest.fixture(scope="session")
def estimate() -> ModuleType:
    return load_script("mlops_deploy_estimate", DEPLOY / "cost" / "estimate.py")


@pytest.fixture(scope="session")
def render() -> ModuleType:
    return load_script("mlops_deploy_render", DEPLOY / "helm" / "render.py")
