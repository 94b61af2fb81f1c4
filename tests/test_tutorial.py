"""The README's "Add your own model" tutorial, run as written: it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Add your own model"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def tutorial_blocks() -> list[tuple[str, str]]:
    readme = (REPO / "README.md").read_text()
    start = readme.index(SECTION)
    end = readme.index("\n## ", start + len(SECTION))
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(readme[start:end])]


def test_the_tutorial_has_a_spec_files_and_commands() -> None:
    kinds = [kind for kind, _ in tutorial_blocks()]
    assert kinds.count("python") == 1 and kinds.count("bash") >= 4


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    script = ["set -euo pipefail"]
    for kind, body in tutorial_blocks():
        if kind == "python":
            target = body.splitlines()[0].removeprefix("# ").strip()
            # The spec file is written where the tutorial says, before the commands that follow it run.
            script.append(f"cat > {target} <<'PY'\n{body}PY")
        else:
            script.append(body)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLOPS_", "DAGSTER_")) and key != "PYTHONPATH"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    (tmp_path / "dagster_home").mkdir()
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert done.stdout.splitlines()[0].startswith("tickets\t")
    # The champion exists and scored the day, exactly as the tutorial says.
    from deltalake import DeltaTable

    predictions = DeltaTable(str(tmp_path / ".mlops" / "lake" / "tickets" / "predictions")).to_pyarrow_table()
    assert predictions.num_rows == 30
    assert set(predictions.column("model_version").to_pylist()) == {"1"}
    assert not any((tmp_path / ".mlops").glob("quarantine/**/*.reason.txt"))
