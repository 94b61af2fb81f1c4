"""Storage servers for the cloud suites: real server processes on free loopback ports.

Each server is a subprocess of the test run, bound to 127.0.0.1, and is stopped by the fixture that
started it (also when a test fails). ``stop``/``start`` model an outage: the process ends, and a
new one comes up on the same port (with the same data where the server can keep it on disk).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AZURITE_BLOB = REPO / "node_modules" / ".bin" / "azurite-blob"
AZURITE_QUEUE = REPO / "node_modules" / ".bin" / "azurite-queue"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.2).close()
    except OSError:
        return False
    return True


@dataclass
class Server:
    """One storage server process; ``command`` is re-run by ``start`` on the same port."""

    name: str
    command: list[str]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        assert self.process is None or self.process.poll() is not None, f"{self.name} is already running"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,  # Ctrl-C on the test run does not reach it half-way
            )
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not listen on {self.port} within {timeout:.0f}s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL) and wait until the port is free."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def pause(self) -> None:
        """Freeze the server: connections are accepted by the kernel but never answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def moto_server(workdir: Path) -> Server:
    """S3 (moto's server mode, its own process). It keeps objects in memory only."""
    port = free_port()
    command = [str(VENV_BIN / "moto_server"), "-H", HOST, "-p", str(port)]
    return Server("moto_server", command, port, workdir / "moto.log").start()


def node_path() -> str | None:
    return shutil.which("node")


def azurite(workdir: Path, account: str, key: str) -> Server:
    """Azure Blob (Azurite, from package-lock.json), persisting to ``workdir`` so a restart keeps data.

    The bin script is started with node directly (not npx) so that the PID we stop is the server.
    The account and its key come from AZURITE_ACCOUNTS, so no fixed emulator key is involved.
    """
    return _azurite("blob", AZURITE_BLOB, workdir / "azurite", workdir / "azurite.log", account, key)


def azurite_queue(workdir: Path, account: str, key: str) -> Server:
    """Azure Storage Queue (Azurite's queue service), for the landing zone's Event Grid notifications."""
    return _azurite("queue", AZURITE_QUEUE, workdir / "azurite-queue", workdir / "azurite-queue.log", account, key)


def _azurite(service: str, script: Path, location: Path, log: Path, account: str, key: str) -> Server:
    node = node_path()
    assert node is not None
    if not script.exists():
        raise RuntimeError(f"{script} is missing: run `make install` (npm ci)")
    port = free_port()
    location.mkdir(parents=True, exist_ok=True)
    command = [
        node,
        str(script.resolve()),
        f"--{service}Host",
        HOST,
        f"--{service}Port",
        str(port),
        "--location",
        str(location),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
        "--silent",
    ]
    env = {"AZURITE_ACCOUNTS": f"{account}:{key}"}
    return Server(f"azurite-{service}", command, port, log, env=env).start()


def gcs_emulator(workdir: Path, bucket: str) -> Server:
    """GCS (gcp-storage-emulator), storing on disk under ``workdir`` so a restart keeps data."""
    port = free_port()
    data = workdir / "gcs"
    data.mkdir(parents=True, exist_ok=True)
    command = [
        str(VENV_BIN / "gcp-storage-emulator"),
        "start",
        "--host",
        HOST,
        "--port",
        str(port),
        "--default-bucket",
        bucket,
        "--quiet",
    ]
    return Server("gcp-storage-emulator", command, port, workdir / "gcs.log", cwd=data).start()


def random_account_key() -> str:
    """A fresh storage-account key for the emulator (base64 of 64 random bytes, like Azure's)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()
