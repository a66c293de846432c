"""Stopping a real server with streams open: uvicorn alone, and gunicorn with uvicorn workers.

Each server runs in a subprocess serving ``tests.shutdown_views``; its producers write a line to
stderr from their ``finally``. Readiness is read from the server's own log, never guessed with sleeps.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STREAMS = 20
FINALLY = "producer finally ran"
NOISE = ("Traceback", "Task was destroyed", "already running", "ignored GeneratorExit", "Exception in ASGI")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server subprocess whose stderr is collected by a thread, line by line."""

    def __init__(self, command: list[str], ready: str, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()
        self.wait_for(lambda: any(ready in line for line in self.lines), 30, f"the server never logged {ready!r}")

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: object, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():  # type: ignore[operator]
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not condition()):  # type: ignore[operator]
                    raise AssertionError(f"{message}; log:\n" + "\n".join(self.lines[-40:]))
                self._changed.wait(min(left, 0.5))

    def count(self, text: str) -> int:
        with self._changed:
            return sum(line.count(text) for line in self.lines)  # workers' lines may interleave

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def open_stream(port: int) -> socket.socket:
    """An SSE request whose first event has arrived."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /endless/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
    data = b""
    while b"data: " not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the first event: {data!r}"
        data += chunk
    return sock


def read_to_eof(sockets: list[socket.socket], timeout: float) -> list[bytes]:
    """What each socket receives until its server closes it, all read at once; fails past ``timeout``."""
    selector = selectors.DefaultSelector()
    tails = dict.fromkeys(sockets, b"")
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    open_ = set(sockets)
    while open_:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(open_)} of {len(sockets)} streams still open after {timeout} s"
        for key, _ in selector.select(left):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            chunk = sock.recv(65536)
            if chunk:
                tails[sock] += chunk
            else:
                selector.unregister(sock)
                open_.discard(sock)
    for sock in sockets:
        sock.close()
    return [tails[sock] for sock in sockets]


def environment() -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.shutdown_settings", "PYTHONUNBUFFERED": "1"}
    env.pop("TEST_POSTGRES_URL", None)
    return env


def start_uvicorn() -> tuple[ServerProcess, int]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "django.core.asgi:get_asgi_application",
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--timeout-graceful-shutdown", "10",
    ]  # fmt: skip
    return ServerProcess(command, "Uvicorn running on", environment()), port


@pytest.fixture(params=["uvicorn", "gunicorn"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, int]]:
    """uvicorn alone, or gunicorn with two uvicorn workers, serving the shutdown test's streams."""
    if request.param == "uvicorn":
        running, port = start_uvicorn()
    else:
        running, port = start_gunicorn()
    yield running, port
    running.kill()


def start_gunicorn() -> tuple[ServerProcess, int]:
    pytest.importorskip("uvicorn_worker", reason="gunicorn's uvicorn worker is not installed")
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "tests.shutdown_asgi:application", "-k", "uvicorn_worker.UvicornWorker",
        "--workers", "2", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "10",
    ]  # fmt: skip
    server = ServerProcess(command, "Booting worker", environment())
    # Both workers up: each logs its boot, then uvicorn's startup line.
    server.wait_for(lambda: server.count("Application startup complete") >= 2, 30, "the workers never started")
    return server, port


def assert_cut_and_closed(server: ServerProcess, tails: list[bytes], stopped_at: float) -> None:
    for tail in tails:
        assert b"retry: 1000\n" in tail, tail  # the reconnection hint, as the stream's last field
        assert b"event: done" not in tail  # not a completed stream: clients reconnect and resume
        assert tail.endswith(b"0\r\n\r\n"), tail  # a clean end of the chunked body, not a reset
    server.process.wait(10)
    assert time.monotonic() - stopped_at < 5
    assert server.count(FINALLY) == STREAMS
    assert server.count("Stream ended (shutdown)") == STREAMS
    noise = [line for line in server.lines if any(word in line for word in NOISE)]
    assert noise == []


def test_sigterm_cuts_every_stream_within_two_seconds_and_the_server_exits(
    server: tuple[ServerProcess, int], request: pytest.FixtureRequest
) -> None:
    running, port = server
    sockets = [open_stream(port) for _ in range(STREAMS)]
    stopped_at = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    tails = read_to_eof(sockets, timeout=2.0)
    assert_cut_and_closed(running, tails, stopped_at)
    if request.node.callspec.params["server"] == "uvicorn":
        # uvicorn re-raises the signal once it has shut down, as it does with no stream open.
        assert running.process.returncode == -signal.SIGTERM
