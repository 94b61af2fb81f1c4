"""A loopback HTTP(S) server that records every request and answers from a handler function.

The cloud SDKs under test (google-cloud-aiplatform's REST transport, azure-ai-ml) send their real requests
here; the handler keeps just enough of the service's state to answer them. ``tls=True`` serves HTTPS with a
throwaway certificate for 127.0.0.1 (``ca_file`` verifies it): azure-ai-ml sends bearer tokens over TLS only.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# (method, path with query, JSON body or None) -> (status, body) or (status, body, headers)
Answer = Callable[[str, str, Any], tuple]


class Recorder:
    def __init__(self, answer: Answer, tls: bool = False):
        self.answer = answer
        self.requests: list[tuple[str, str, Any]] = []
        self.unauthorized: list[str] = []  # requests without a bearer token (the test asserts there are none)
        self.ca_file: str | None = None
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                recorder.requests.append((self.command, self.path, body))
                if not self.headers.get("Authorization", "").startswith("Bearer "):
                    recorder.unauthorized.append(f"{self.command} {self.path}")
                # The handler gets its own copy: what it stores or changes leaves the record as sent.
                status, answer, *rest = recorder.answer(self.command, self.path, json.loads(raw) if raw else None)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (rest[0] if rest else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            self._tmp = tempfile.TemporaryDirectory()
            cert, key = _self_signed(Path(self._tmp.name))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.ca_file, scheme = str(cert), "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def sent(self, *methods: str) -> list[tuple[str, str, Any]]:
        """The recorded requests with these methods (all when none), paths without their query."""
        return [(m, urlsplit(p).path, b) for m, p, b in self.requests if not methods or m in methods]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        if self.ca_file:
            self._tmp.cleanup()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, valid for a day, and its key (PEM files in ``folder``)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key_file
