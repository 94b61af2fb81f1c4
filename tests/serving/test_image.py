"""The serving image, checked without a Docker daemon: its Dockerfile's shape, and that its entry point
(single-model mode) runs without Dagster on the path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "serving" / "Dockerfile"


def test_dockerfile_is_multi_stage_non_root_and_installs_no_dagster() -> None:
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 3
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert 'ENTRYPOINT ["python", "-m", "mlops_platform.serving.cli"]' in text
    install = text.split("uv pip install --constraint", 1)[1].split("COPY", 1)[0]
    assert "dagster" not in install.lower() and "mlflow" not in install.lower()
    assert "--frozen" in text and "--no-deps" in text


def test_single_model_entry_point_never_imports_dagster(tmp_path) -> None:
    code = (
        "import sys, argparse\n"
        "from mlops_platform.serving.cli import add_serve_parser, build_from_args\n"
        "from mlops_platform.serving.app import create_app\n"
        "p = argparse.ArgumentParser(); add_serve_parser(p.add_subparsers(dest='c'))\n"
        f"args = p.parse_args(['serve', '--single-model', 'churn', '--model-dir', {str(tmp_path)!r},"
        " '--host', '0.0.0.0'])\n"
        "config, source = build_from_args(args, {'MLOPS_SERVING_AUTH': 'cloud'})\n"
        "create_app(config, source)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'mlflow'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
