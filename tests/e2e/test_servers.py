"""The same streams under every ASGI server users deploy on, over HTTP/1.1 and HTTP/2.

hypercorn (``-w 0``, and its default command, which serves from a worker process), granian and
daphne, each started by the test in a subprocess serving ``tests.support.shutdown_views``; HTTP/2 over TLS
with a certificate made for the run (trustme), and h2c (prior knowledge) where the server speaks
it. For each: events arrive one by one, keep-alives flow while ``produce()`` is silent, a client
that leaves (a closed connection; an HTTP/2 stream reset) runs the producer's ``finally`` within
100 ms, and SIGTERM ends every stream with its ``retry:`` hint within 2 s, then the process exits
within 5 s. uvicorn and gunicorn are tests/e2e/test_shutdown.py's and the rest of the suite's. Last,
Chromium's eight tabs streaming at once over one HTTP/2 connection.

The clients are tests/support/streamclients.py's raw ones: they see each byte and frame as it comes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import CHROMIUM
from tests.support.serverprocess import FINALLY, NOISE, ServerProcess, environment, free_port, wait_listening
from tests.support.servers import CASES, UVICORN, Case, Certificate
from tests.support.streamclients import H1Client, H2Client

STREAMS = 20
TABS = 8


@dataclass
class Served:
    case: Case
    server: ServerProcess
    port: int
    certificate: Certificate
    started: int = 0  # streams opened on this server so far

    def client(self) -> H1Client | H2Client:
        if not self.case.http2:
            return H1Client(self.port)
        return H2Client(self.port, self.certificate.context if self.case.tls else None)


@pytest.fixture(scope="class", params=list(CASES))
def served(request: pytest.FixtureRequest, certificate: Certificate) -> Iterator[Served]:
    """One server for one protocol, for the tests of the class; the last one stops it."""
    case = CASES[request.param]
    if importlib.util.find_spec(case.package) is None:
        pytest.skip(f"{case.package} is not installed on this Python")
    server, port = case.start(certificate)
    yield Served(case, server, port, certificate)
    server.kill()


@pytest.fixture
def raw_client(served: Served) -> Iterator[H1Client | H2Client]:
    """A client of the class's server; closed after the test, and its streams' producers with it.

    So that a test that fails with streams open leaves none to the next one (the last stops the
    server and counts every ``finally``).
    """
    opened_client = served.client()
    yield opened_client
    opened_client.close()
    if served.server.process.poll() is None:
        served.server.wait_for(lambda: served.server.count(FINALLY) >= served.started, 5, "a finally did not run")


def opened(served: Served, client: H1Client | H2Client, path: str, count: int = 1) -> list[int]:
    """``count`` streams of ``path`` whose first event has arrived."""
    ids = [client.get(path) for _ in range(count)]
    served.started += count
    assert client.read_until(lambda: all(b"data:" in client.streams[i].body for i in ids), 20), client.streams
    assert {client.streams[i].status for i in ids} == {200}
    return ids


def finally_count_reaches(server: ServerProcess, count: int) -> Callable[[], bool]:
    return lambda: server.count(FINALLY) >= count


class TestServer:
    def test_events_arrive_one_by_one(self, served: Served, raw_client: H1Client | H2Client) -> None:
        (stream_id,) = opened(served, raw_client, "/ticks/")
        stream = raw_client.streams[stream_id]
        assert raw_client.read_until(lambda: stream.body.count(b"data:") >= 5, 10), stream.body
        # An event every 0.1 s: a server that buffered would hand them over together, or never. (Not one
        # arrival per event: a busy client may read two at once.)
        assert len(stream.arrivals) >= 3
        assert stream.arrivals[-1] - stream.arrivals[0] >= 0.25
        finallies = served.server.count(FINALLY)
        raw_client.close()
        served.server.wait_for(finally_count_reaches(served.server, finallies + 1), 5, "produce() was not closed")

    def test_keepalives_flow_while_produce_is_silent(self, served: Served, raw_client: H1Client | H2Client) -> None:
        (stream_id,) = opened(served, raw_client, "/quiet/")
        stream = raw_client.streams[stream_id]
        assert raw_client.read_until(lambda: stream.body.count(b": ping\n") >= 3, 10), stream.body
        assert stream.body.count(b"data:") == 1
        finallies = served.server.count(FINALLY)
        raw_client.close()
        served.server.wait_for(finally_count_reaches(served.server, finallies + 1), 5, "produce() was not closed")

    def test_a_client_that_leaves_runs_finally_within_100_ms(
        self, served: Served, raw_client: H1Client | H2Client
    ) -> None:
        """HTTP/1.1: the connection closes; HTTP/2: the stream is reset, the connection stays open."""
        kept, left = opened(served, raw_client, "/quiet/", 2)
        finallies = served.server.count(FINALLY)
        left_at = time.time()  # the clock of the server's log lines
        raw_client.reset(left)
        served.server.wait_for(finally_count_reaches(served.server, finallies + 1), 5, "produce() was not closed")
        assert served.server.stamps(FINALLY)[-1] - left_at < 0.1
        # Only the stream that left: the other one goes on.
        stream = raw_client.streams[kept]
        pings = stream.body.count(b": ping\n")
        assert raw_client.read_until(lambda: stream.body.count(b": ping\n") > pings, 5)
        assert served.server.count(FINALLY) == finallies + 1
        raw_client.close()
        served.server.wait_for(finally_count_reaches(served.server, finallies + 2), 5, "produce() was not closed")

    def test_sigterm_ends_every_stream_within_two_seconds_and_the_server_exits(
        self, served: Served, raw_client: H1Client | H2Client
    ) -> None:
        ids = opened(served, raw_client, "/endless/", STREAMS)
        finallies = served.server.count(FINALLY)
        stopped_at = time.monotonic()
        served.server.process.send_signal(signal.SIGTERM)
        streams = [raw_client.streams[i] for i in ids]
        assert raw_client.read_until(lambda: all(s.ended or s.reset for s in streams), 2.0), [s.body for s in streams]
        for stream in streams:
            assert stream.ended, stream.body  # the chunked terminator, or END_STREAM: not a cut connection
            assert b"retry: 1000\n" in stream.body
            assert b"event: done" not in stream.body
        raw_client.close()  # as a browser does once the server has said goodbye and no stream is left
        served.server.process.wait(5)
        assert time.monotonic() - stopped_at < 5
        assert served.server.count(FINALLY) == finallies + STREAMS
        assert served.server.count("Stream ended (shutdown)") == STREAMS
        assert [line for line in served.server.lines if any(word in line for word in NOISE)] == []


# HTTP/2 in a browser: eight tabs' streams on one connection, past HTTP/1.1's six per origin. Over
# HTTP/1.1 the seventh tab's EventSource would wait for a free connection; over HTTP/2 all flow,
# from a server that speaks it, or through nginx speaking HTTP/2 to the browser and HTTP/1.1 to uvicorn.


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True)
        try:
            yield browser
        finally:
            browser.close()


NGINX = """
pid {dir}/nginx.pid;
error_log stderr notice;
worker_processes 1;
events {{}}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{  # docs/deployment.md's "nginx in front"
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Connection "";
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


@pytest.fixture(params=["hypercorn", "nginx → uvicorn"])
def https_server(request: pytest.FixtureRequest, certificate: Certificate, tmp_path: Path) -> Iterator[int]:
    """hypercorn with TLS, or nginx terminating TLS and HTTP/2 in front of uvicorn over HTTP/1.1."""
    case = CASES["hypercorn -w 0 h2 tls"] if request.param == "hypercorn" else UVICORN
    if importlib.util.find_spec(case.package) is None:
        pytest.skip(f"{case.package} is not installed on this Python")
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if request.param != "hypercorn" and nginx is None:
        pytest.skip("nginx is missing (apt-get install nginx-light)")
    server: ServerProcess
    server, port = case.start(certificate)
    front: ServerProcess | None = None
    if nginx is not None and request.param != "hypercorn":
        upstream, port = port, free_port()
        values = {"dir": tmp_path, "port": port, "upstream": upstream, "cert": certificate.cert, "key": certificate.key}
        (tmp_path / "nginx.conf").write_text(NGINX.format(**values))
        command = [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"]
        front = ServerProcess(command, "start worker process", environment())
        wait_listening(front, port)
    yield port
    if front is not None:
        front.process.terminate()  # its master stops its workers; SIGKILL would leave them running
        front.process.wait(10)
    server.kill()


def test_eight_tabs_stream_at_once_over_one_http2_connection(chromium: Any, https_server: int) -> None:
    context = chromium.new_context(ignore_https_errors=True)  # the run's own CA is not in Chromium's store
    try:
        pages = []
        for _ in range(TABS):
            page = context.new_page()
            page.goto(f"https://localhost:{https_server}/plain/")
            page.evaluate(
                """() => {
                    window.received = 0;
                    const source = new EventSource("/ticks/");
                    source.onmessage = () => { window.received += 1; };
                }"""
            )
            pages.append(page)
        for page in pages:  # every tab's stream delivers, all open at once
            page.wait_for_function("window.received >= 3", timeout=10_000)
        # The page's own protocol: an open EventSource has no timing entry until it ends.
        protocols = {page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") for page in pages}
        assert protocols == {"h2"}
    finally:
        context.close()
