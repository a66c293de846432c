"""Stopping a real server with streams open: uvicorn alone, and gunicorn with uvicorn workers.

A server stops on a signal, or on its own when a worker reaches its request limit (uvicorn's
``--limit-max-requests``, gunicorn's ``--max-requests``): on every path each stream ends with
its ``retry:`` hint and its ``finally``, the worker exits (and is replaced), and plain requests
are answered meanwhile.

Each server runs in a subprocess serving ``tests.support.shutdown_views``; its producers write a line to
stderr from their ``finally``. Readiness is read from the server's own log, never guessed with sleeps.
"""

from __future__ import annotations

import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.serverprocess import FINALLY, NOISE, ServerProcess, environment, free_port

STREAMS = 20


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


def start_uvicorn(*options: str, workers: int = 1) -> tuple[ServerProcess, int]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "django.core.asgi:get_asgi_application",
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--timeout-graceful-shutdown", "10",
        *options,
    ]  # fmt: skip
    if workers == 1:
        return ServerProcess(command, "Uvicorn running on", environment()), port
    server = ServerProcess([*command, "--workers", str(workers)], "Uvicorn running on", environment())
    server.wait_for(lambda: server.count("Started server process") >= workers, 30, "the workers never started")
    return server, port


def start_gunicorn(*options: str, worker: str = "uvicorn_worker.UvicornWorker") -> tuple[ServerProcess, int]:
    pytest.importorskip("uvicorn_worker", reason="gunicorn's uvicorn worker is not installed")
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "tests.support.shutdown_asgi:application", "-k", worker,
        "--workers", "2", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "10", *options,
    ]  # fmt: skip
    server = ServerProcess(command, "Booting worker", environment())
    # Both workers up: each logs its boot, then uvicorn's startup line.
    server.wait_for(lambda: server.count("Application startup complete") >= 2, 30, "the workers never started")
    return server, port


@pytest.fixture(params=["uvicorn", "gunicorn"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, int]]:
    """uvicorn alone, or gunicorn with two (stock) uvicorn workers, serving the shutdown test's streams."""
    if request.param == "uvicorn":
        running, port = start_uvicorn()
    else:
        running, port = start_gunicorn()
    yield running, port
    running.kill()


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


def test_gunicorn_quick_shutdown_cuts_every_stream_within_two_seconds() -> None:
    """SIGINT to the master sends SIGQUIT to each worker: dualstream's worker ends its streams as on SIGTERM.

    uvicorn_worker's own worker only sets a flag uvicorn never reads: the streams stayed open
    until the master's SIGKILL, with no ``retry:`` hint and no ``finally``.
    """
    running, port = start_gunicorn(worker="dualstream.workers.UvicornWorker")
    try:
        sockets = [open_stream(port) for _ in range(STREAMS)]
        stopped_at = time.monotonic()
        running.process.send_signal(signal.SIGINT)
        tails = read_to_eof(sockets, timeout=2.0)
        assert_cut_and_closed(running, tails, stopped_at)
        assert running.process.returncode == 0
    finally:
        running.kill()


def plain_request(port: int) -> bytes:
    """The status line of a GET of a plain page, on a connection of its own."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /plain/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.partition(b"\r\n")[0]


LIMIT = 12  # requests a worker serves before it stops and is replaced; the streams count
RECYCLED = [
    pytest.param(
        lambda: start_uvicorn(
            "--http", "dualstream.servers:HTTPProtocol", "--limit-max-requests", str(LIMIT), workers=2
        ),
        "Started server process",
        id="uvicorn --limit-max-requests",
    ),
    pytest.param(
        lambda: start_gunicorn(
            "--max-requests", str(LIMIT), "--max-requests-jitter", "4", worker="dualstream.workers.UvicornWorker"
        ),
        "Booting worker",
        id="gunicorn --max-requests",
    ),
]


@pytest.mark.parametrize(("start", "booted"), RECYCLED)
def test_a_worker_at_its_request_limit_ends_its_streams_exits_and_is_replaced(start: Any, booted: str) -> None:
    """Each stream ends within 2 s of its worker's decision to stop; no plain request fails meanwhile.

    With uvicorn's own protocol and worker every stream stayed open: the workers stopped
    accepting but never exited, and plain requests failed once both had reached the limit.
    """
    running, port = start()
    try:
        sockets = [open_stream(port) for _ in range(STREAMS // 2)]
        streams = ReadingStreams(sockets)
        answers: list[bytes] = []
        deadline = time.monotonic() + 60
        # Plain requests until every stream has ended and a new worker has started: they are the
        # load that drives the workers to their limit, and what must not fail while they stop.
        while streams.open or running.count(booted) <= 2:
            assert time.monotonic() < deadline, f"{streams.open} streams open; log:\n" + "\n".join(running.lines)
            answers.append(plain_request(port))
        assert set(answers) == {b"HTTP/1.1 200 OK"}
        decisions = running.stamps("Maximum request limit")
        for tail, ended_at in streams.results():
            assert b"retry: 1000\n" in tail and tail.endswith(b"0\r\n\r\n"), tail
            assert b"event: done" not in tail
            decided_at = max(at for at in decisions if at <= ended_at)  # the latest decision before the cut
            assert ended_at - decided_at < 2.0
        running.wait_for(lambda: running.count(FINALLY) == len(sockets), 5, "a finally did not run")
        assert running.count("Stream ended (shutdown)") == len(sockets)
        assert [line for line in running.lines if any(word in line for word in NOISE)] == []
    finally:
        running.kill()


class ReadingStreams:
    """Open streams read by a thread of their own while the test does other work; when each one ended."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.received = dict.fromkeys(sockets, b"")
        self.ends: dict[socket.socket, float] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def open(self) -> int:
        return len(self.sockets) - len(self.ends)

    def _read(self) -> None:
        selector = selectors.DefaultSelector()
        for sock in self.sockets:
            selector.register(sock, selectors.EVENT_READ)
        while len(self.ends) < len(self.sockets):
            for key, _ in selector.select(60):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(65536)
                self.received[sock] += chunk
                if not chunk:
                    selector.unregister(sock)
                    sock.close()
                    self.ends[sock] = time.time()  # the clock of the workers' log lines

    def results(self) -> list[tuple[bytes, float]]:
        """What each stream received and when it ended, once all have."""
        self._thread.join(10)
        return [(self.received[sock], self.ends[sock]) for sock in self.sockets]
