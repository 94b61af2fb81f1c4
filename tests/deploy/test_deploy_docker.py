"""Static checks of deploy/docker/Dockerfile (nothing is built: there is no Docker engine here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
ENTRYPOINT = ["dagster", "api", "grpc", "-m", "mlops_platform.definitions", "-h", "0.0.0.0", "-p", "4000"]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined, current = [], ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        joined.append(current.strip())
        current = ""
    return [(i.split(None, 1)[0].upper(), i.split(None, 1)[1] if " " in i else "") for i in joined]


def arg_defaults() -> dict[str, str]:
    out = {}
    for op, args in instructions():
        if op == "ARG" and "=" in args:
            name, value = args.split("=", 1)
            out[name] = value.strip('"')
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for op, args in instructions():
        if op == "FROM":
            result.append([])
        if result:
            result[-1].append((op, args))
    return result


def resolve(image: str) -> str:
    defaults = arg_defaults()
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), image)


def test_multi_stage_build() -> None:
    froms = [args.split() for op, args in instructions() if op == "FROM"]
    assert len(froms) >= 2
    names = [f[2] for f in froms if len(f) >= 3 and f[1].upper() == "AS"]
    assert "builder" in names and "runtime" in names
    assert any(op == "COPY" and "--from=builder" in args for op, args in stages()[-1])


def test_base_images_are_pinned() -> None:
    stage_names = set()
    for op, args in instructions():
        if op != "FROM":
            continue
        parts = args.split()
        image = resolve(parts[0])
        if image in stage_names:
            continue
        assert not image.endswith(":latest") and ":" in image, f"{image} is not pinned"
        tag_or_digest = re.search(r"(@sha256:[0-9a-f]{64}$)|:(\d+\.\d+\.\d+[^:@]*)(@sha256:[0-9a-f]{64})?$", image)
        assert tag_or_digest, f"{image} is pinned neither by exact version tag nor by digest"
        if len(parts) >= 3:
            stage_names.add(parts[2])
    python_base = resolve(stages()[-1][0][1].split()[0])
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", python_base), python_base


def test_dependencies_install_from_the_lock_file_with_uv() -> None:
    runs = [args for op, args in instructions() if op == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-dev" in r for r in syncs), syncs
    assert any("uv.lock" in r for r in syncs) or any(op == "COPY" and "uv.lock" in a for op, a in instructions())
    assert not any(re.search(r"\bpip3? install\b", r) for r in runs), "install through uv sync only"
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        assert (REPO / name).exists(), f"the build copies {name}, which is missing from the repo root"


def test_runs_as_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = [args for op, args in final if op == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]
    last_user = max(i for i, (op, _) in enumerate(final) if op == "USER")
    assert not [op for op, _ in final[last_user:] if op == "RUN"], "RUN after USER would run as the app user"


def test_entry_point_is_the_dagster_grpc_server() -> None:
    final = stages()[-1]
    cmds = [args for op, args in final if op == "CMD"]
    assert cmds and json.loads(cmds[-1]) == ENTRYPOINT
    # An ENTRYPOINT would swallow the run launcher's `dagster api execute_run` arguments.
    assert not [op for op, _ in final if op == "ENTRYPOINT"]


def test_dockerignore_allow_lists_the_build_context() -> None:
    lines = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "uv.lock", "README.md", "mlops_platform"} <= allowed
    copied = {src for op, args in instructions() if op == "COPY" and "--from" not in args for src in args.split()[:-1]}
    assert copied <= allowed, f"COPY sources not in the allow-list: {copied - allowed}"
