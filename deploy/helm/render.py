#!/usr/bin/env python3
"""Render deploy/helm for one cloud and environment.

Fills the ${NAME} placeholders of the Dagster Helm values and the Kubernetes manifests with the
environment's Terraform outputs (`terraform output -json helm_env`) plus the image tag, and writes
the files for that cloud to an output directory:

    python deploy/helm/render.py --cloud aws --env prod --image-tag 2026.11.29-3f2a1c --out deploy/build/aws-prod

Files named *-<cloud>.yaml belong to that cloud only; all other files are shared. A placeholder
without a value is an error (nothing is left half-rendered).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HELM_DIR = Path(__file__).resolve().parent
TERRAFORM_ENVS = HELM_DIR.parent / "terraform" / "envs"
CLOUDS = ("aws", "gcp", "azure")
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
EXTRA_KEYS = ("IMAGE_TAG",)  # placeholders that do not come from Terraform


def files_for(cloud: str) -> list[Path]:
    """The YAML files (relative to deploy/helm) that make up the deployment on one cloud."""
    if cloud not in CLOUDS:
        raise ValueError(f"unknown cloud {cloud!r}")
    selected = []
    for path in sorted(HELM_DIR.rglob("*.yaml")):
        suffix_cloud = next((c for c in CLOUDS if path.stem.endswith(f"-{c}")), None)
        if suffix_cloud in (None, cloud):
            selected.append(path.relative_to(HELM_DIR))
    return selected


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render_text(text: str, values: dict[str, str]) -> str:
    missing = sorted(placeholders(text) - values.keys())
    if missing:
        raise KeyError(f"no value for placeholders: {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def terraform_helm_env(cloud: str, env: str, terraform: str = "terraform") -> dict[str, str]:
    env_dir = TERRAFORM_ENVS / cloud / env
    result = subprocess.run(
        [terraform, f"-chdir={env_dir}", "output", "-json", "helm_env"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout)


def render(cloud: str, values: dict[str, str], out_dir: Path) -> list[Path]:
    written = []
    for rel in files_for(cloud):
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_text((HELM_DIR / rel).read_text(), values))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", choices=CLOUDS, required=True)
    parser.add_argument("--env", required=True, help="environment directory under deploy/terraform/envs/<cloud>")
    parser.add_argument("--image-tag", required=True, help="tag of the pushed user-code image")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--helm-env", type=Path, help="JSON file with the helm_env output (default: run terraform)")
    parser.add_argument("--terraform", default="terraform", help="terraform binary")
    args = parser.parse_args(argv)

    if args.helm_env:
        values = json.loads(args.helm_env.read_text())
    else:
        values = terraform_helm_env(args.cloud, args.env, args.terraform)
    values = {**values, "IMAGE_TAG": args.image_tag}
    for path in render(args.cloud, values, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
