"""The ASGI servers the server tests (and benchmarks/servers_shutdown.py) start, each with its command line per protocol."""

from __future__ import annotations

import ssl
import sys
from dataclasses import dataclass

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

    def start(self, certificate: Certificate) -> tuple[ServerProcess, int]:
        port = free_port()
        values = {"port": str(port), "cert": certificate.cert, "key": certificate.key}
        command = [sys.executable, "-m", *(part.format(**values) for part in self.command)]
        server = ServerProcess(command, self.ready, environment())
        wait_listening(server, port)
        return server, port


HYPERCORN = ("hypercorn", APP, "-w", "0", "-b", "127.0.0.1:{port}")
HYPERCORN_TLS = (*HYPERCORN, "--certfile", "{cert}", "--keyfile", "{key}")
GRANIAN = ("granian", "--interface", "asginl", "--host", "127.0.0.1", "--port", "{port}")
GRANIAN_TLS = ("--ssl-certificate", "{cert}", "--ssl-keyfile", "{key}")
CASES = {
    "hypercorn http/1.1": Case("hypercorn", HYPERCORN, "Running on"),
    "hypercorn h2 tls": Case("hypercorn", HYPERCORN_TLS, "Running on", http2=True, tls=True),
    "hypercorn h2c": Case("hypercorn", HYPERCORN, "Running on", http2=True),
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
