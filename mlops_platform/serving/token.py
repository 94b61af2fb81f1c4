"""The local serving app's bearer token when MLOPS_SERVING_TOKEN is unset: one random token in
``$MLOPS_HOME/serving/token`` (mode 0600), written by ``mlops-platform serve`` on first start and read
by the local deployer, so a newcomer's ``make dev`` needs no setting and the admin route is never open.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_VAR = "MLOPS_SERVING_TOKEN"
MIN_TOKEN_CHARS = 16


def token_file(home: Path) -> Path:
    """Where the generated token of the platform home ``home`` lives."""
    return Path(home) / "serving" / "token"


def read_token(path: Path) -> str | None:
    """The token in ``path``, or None when there is none yet."""
    try:
        token = Path(path).read_text().strip()
    except FileNotFoundError:
        return None
    return token or None


def ensure_token(path: Path) -> str:
    """The token in ``path``, generated (owner-only file, created exclusively) when absent."""
    existing = read_token(path)
    if existing is not None:
        return existing
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # Written whole to a private temporary file, then linked into place: a reader never sees a
    # half-written token, and of two first starts exactly one token wins.
    tmp = path.with_name(f".token.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        token = read_token(path) or token
    finally:
        tmp.unlink()
    return token
