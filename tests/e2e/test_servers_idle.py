"""A thousand idle streams held open under every server and protocol, then all ended by SIGTERM.

Each server starts fresh in a subprocess (tests/support/servers.py's command lines) serving
tests/support/shutdown_views.py's ``/idle/`` without middleware (tests/support/idle_settings.py): one event, then
a keep-alive comment every 0.5 s. Over HTTP/1.1 each stream has a connection of its own, opened
in waves below every server's listen backlog (Twisted's is 50: a connection past it waits a
second for its SYN to be sent again). Over HTTP/2 each connection carries as many streams as the
server allows (its SETTINGS_MAX_CONCURRENT_STREAMS, checked against docs/deployment.md's figure),
on as many connections as it takes. Every stream must have its first event and a keep-alive;
then SIGTERM: every stream ends cleanly with its ``retry:`` hint, every ``finally`` runs and the
process exits.
"""

from __future__ import annotations

import importlib.util
import resource
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.serverprocess import FINALLY, NOISE, ServerProcess
from tests.support.servers import CASES, UVICORN, Case, Certificate
from tests.support.streamclients import H1Client, H2Client, Stream, read_until

IDLE = 1_000
WAVE = 50  # HTTP/1.1 connections opened at once
MAX_STREAMS = {"hypercorn": 100, "granian": 200, "daphne": 100}  # per HTTP/2 connection, as each server comes
SERVERS = {
    "uvicorn http/1.1": UVICORN,
    **{
        name: CASES[name]
        for name in (
            "hypercorn worker http/1.1",
            "hypercorn worker h2 tls",
            "granian http/1.1",
            "granian h2 tls",
            "daphne http/1.1",
            "daphne h2 tls",
        )
    },
}


@pytest.fixture(scope="module", autouse=True)
def descriptors() -> Iterator[None]:
    """Room for a thousand connections at each end (the servers inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * IDLE
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.fail(f"RLIMIT_NOFILE's hard limit ({hard}) is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def all_have(streams: list[Stream], text: bytes) -> Callable[[], bool]:
    return lambda: all(text in stream.body for stream in streams)


def open_h1(port: int) -> tuple[list[H1Client], list[Stream]]:
    client = H1Client(port)
    for _ in range(0, IDLE, WAVE):
        wave = [client.streams[client.get("/idle/")] for _ in range(WAVE)]
        assert read_until([client], all_have(wave, b"data:"), 30), len(client.streams)
    return [client], list(client.streams.values())


def open_h2(case: Case, port: int, certificate: Certificate) -> tuple[list[H2Client], list[Stream]]:
    clients: list[H2Client] = []
    streams: list[Stream] = []
    while len(streams) < IDLE:
        client = H2Client(port, certificate.context if case.tls else None)
        clients.append(client)
        allowed = client.max_streams()
        assert allowed == MAX_STREAMS[case.package]
        batch = [client.streams[client.get("/idle/")] for _ in range(min(allowed, IDLE - len(streams)))]
        assert read_until([client], all_have(batch, b"data:"), 30), len(streams)
        streams += batch
    return clients, streams


@pytest.mark.parametrize("name", list(SERVERS))
def test_a_thousand_idle_streams_are_held_then_all_end_at_sigterm(name: str, certificate: Certificate) -> None:
    case = SERVERS[name]
    if importlib.util.find_spec(case.package) is None:
        pytest.skip(f"{case.package} is not installed on this Python")
    server: ServerProcess
    server, port = case.start(certificate, settings="tests.support.idle_settings")
    clients: list[H1Client] | list[H2Client] = []
    try:
        clients, streams = open_h2(case, port, certificate) if case.http2 else open_h1(port)
        assert {s.status for s in streams} == {200}
        assert read_until(clients, all_have(streams, b": ping\n"), 10)
        assert server.count(FINALLY) == 0  # all still open
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert read_until(clients, lambda: all(s.ended or s.reset for s in streams), 5)
        ended = time.monotonic() - stopped_at
        assert [s for s in streams if not (s.ended and b"retry: 1000\n" in s.body)] == []
        assert not any(b"event: done" in s.body for s in streams)
        for client in clients:
            client.close()
        server.process.wait(10)
        print(f"{name}: every stream ended {ended:.2f} s after SIGTERM, exit {time.monotonic() - stopped_at:.2f} s")
        assert server.count(FINALLY) == IDLE
        assert server.count("Stream ended (shutdown)") == IDLE
        assert [line for line in server.lines if any(word in line for word in NOISE)] == []
    finally:
        for client in clients:
            client.close()
        server.kill()
