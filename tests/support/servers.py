"""The ASGI servers the server tests (and benchmarks/servers_shutdown.py) start, each with its command line per protocol."""

from __future__ import annotations

import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.serverprocess import ServerProcess, environment, free_port, wait_listening

APP = "tests.support.shutdown_asgi:application"


@dataclass(frozen=True)
class Certificate:
    cert: str
    key: str
    context: ssl.SSLContext  # a client's, trusting the certificate


@dataclass(frozen=True)
class Case:
    """A server's command line for one protocol; ``{port}``, ``{cert}``, ``{key}`` filled in at start."""

    package: str
    command: tuple[str, ...]
    ready: str
    http2: bool = False
    tls: bool = False

    def start(
        self, certificate: Certificate, settings: str = "tests.support.shutdown_settings"
    ) -> tuple[ServerProcess, int]:
        port = free_port()
        values = {"port": str(port), "cert": certificate.cert, "key": certificate.key}
        command = [sys.executable, "-m", *(part.format(**values) for part in self.command)]
        server = ServerProcess(command, self.ready, environment(settings))
        wait_listening(server, port)
        return server, port


TLS = ("--certfile", "{cert}", "--keyfile", "{key}")
HYPERCORN = ("hypercorn", APP, "-w", "0", "-b", "127.0.0.1:{port}")
HYPERCORN_TLS = (*HYPERCORN, *TLS)
HYPERCORN_WORKER = ("hypercorn", APP, "-b", "127.0.0.1:{port}")  # the default command: a worker process
GRANIAN = ("granian", "--interface", "asginl", "--host", "127.0.0.1", "--port", "{port}")
GRANIAN_TLS = ("--ssl-certificate", "{cert}", "--ssl-keyfile", "{key}")
CASES = {
    "hypercorn -w 0 http/1.1": Case("hypercorn", HYPERCORN, "Running on"),
    "hypercorn -w 0 h2 tls": Case("hypercorn", HYPERCORN_TLS, "Running on", http2=True, tls=True),
    "hypercorn -w 0 h2c": Case("hypercorn", HYPERCORN, "Running on", http2=True),
    "hypercorn worker http/1.1": Case("hypercorn", HYPERCORN_WORKER, "Running on"),
    "hypercorn worker h2 tls": Case("hypercorn", (*HYPERCORN_WORKER, *TLS), "Running on", http2=True, tls=True),
    "granian http/1.1": Case("granian", (*GRANIAN, "--http", "1", APP), "Started worker-1"),
    "granian h2 tls": Case("granian", (*GRANIAN, "--http", "2", *GRANIAN_TLS, APP), "Started worker-1", True, True),
    "granian h2c": Case("granian", (*GRANIAN, "--http", "2", APP), "Started worker-1", http2=True),
    "daphne http/1.1": Case("daphne", ("daphne", "-b", "127.0.0.1", "-p", "{port}", APP), "Listening on"),
    "daphne h2 tls": Case(
        "daphne",
        ("daphne", "-e", "ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}", APP),
        "Listening on",
        http2=True,
        tls=True,
    ),
}


UVICORN = Case(
    "uvicorn", ("uvicorn", APP, "--host", "127.0.0.1", "--port", "{port}", "--lifespan", "off"), "running on"
)


def make_certificate(folder: Path) -> Certificate:
    """A self-signed CA and a certificate for localhost and 127.0.0.1, written to ``folder``."""
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return Certificate(str(folder / "cert.pem"), str(folder / "key.pem"), context)
