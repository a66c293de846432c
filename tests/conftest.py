"""A real uvicorn server for end-to-end tests, in this process so tests can watch the producers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from tests.servercases import Certificate, make_certificate

#: Fixtures of the broadcast tests (engine, proxy), shared by their modules.
pytest_plugins = ["tests.broadcast_support"]


class _Server(uvicorn.Server):
    """uvicorn, telling us when it accepts connections instead of being polled for it."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """uvicorn serving ``app`` on a free loopback port, in a thread of this process; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=2)
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not server.ready.wait(timeout=30):
        raise RuntimeError("uvicorn did not start")
    host, port = sock.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_url() -> Iterator[str]:
    """The base URL of uvicorn serving the test project's ASGI app on a free loopback port."""
    with serve(ASGIStaticFilesHandler(get_asgi_application())) as url:
        yield url


def http_scope(path: str, query: str = "") -> dict[str, Any]:
    """An ASGI HTTP scope for a GET of ``path?query``, as a server on 127.0.0.1 would pass it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def raw_request(url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> socket.socket:
    """A socket that has sent one HTTP/1.1 request: for tests where the exact bytes or a stalled reader matter."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    """Bytes from ``sock`` up to and including ``marker``."""
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}; got {data[-300:]!r}")
        data += chunk
        assert len(data) < limit, "marker not found"
    return data


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed CA and a certificate for localhost and 127.0.0.1, made for this run (the server tests')."""
    pytest.importorskip("trustme", reason="trustme makes the test certificates")
    return make_certificate(tmp_path_factory.mktemp("tls"))
