"""Delivery, end to end: a real uvicorn server on 127.0.0.1, read by real clients (httpx, httpx-sse, raw sockets)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from django.core.signals import request_finished
from httpx_sse import connect_sse

from tests.support.probes import Probe, new_probe
from tests.support.rawhttp import raw_request, read_until


@pytest.fixture
def finished_before_request_finished():
    """Whether a probe's producer had ended when Django sent ``request_finished`` (and closed DB connections)."""
    seen: list[bool] = []
    signalled = threading.Event()
    watched: list[Probe] = []

    def receiver(**kwargs) -> None:
        if watched:
            seen.append(watched[0].finished.is_set())
            signalled.set()

    def watch(probe: Probe) -> Callable[[], list[bool]]:
        watched.append(probe)
        return lambda: seen if signalled.wait(5) else []

    request_finished.connect(receiver, weak=False)
    yield watch
    request_finished.disconnect(receiver)


def test_sse_headers_and_gzip_middleware_keeps_off(http: httpx.Client) -> None:
    # httpx asks for gzip and the test settings enable GZipMiddleware.
    assert "gzip" in http.headers["Accept-Encoding"]
    with connect_sse(http, "GET", "/count/?n=50") as source:
        headers = source.response.headers
        events = list(source.iter_sse())
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert headers["content-encoding"] == "identity"
    assert "Accept" in headers["vary"]
    assert "connection" not in headers
    assert [json.loads(e.data) for e in events[:-1]] == [{"i": i} for i in range(50)]
    assert (events[-1].event, events[-1].data) == ("done", "")


def test_each_event_arrives_before_the_next_is_produced(http: httpx.Client) -> None:
    token, probe = new_probe()
    arrivals = []
    with connect_sse(http, "GET", f"/count/?n=5&interval=0.15&probe={token}&stream=1") as source:
        for event in source.iter_sse():
            if event.event == "message":
                arrivals.append(time.monotonic())
    assert len(arrivals) == len(probe.produced_at) == 5
    for arrived, next_produced in zip(arrivals, probe.produced_at[1:]):
        assert arrived < next_produced


def test_ndjson_lines_arrive_as_produced(http: httpx.Client) -> None:
    token, probe = new_probe()
    arrivals, values = [], []
    with http.stream(
        "GET", f"/count/?n=4&interval=0.15&probe={token}", headers={"Accept": "application/x-ndjson"}
    ) as response:
        assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"
        for line in response.iter_lines():
            arrivals.append(time.monotonic())
            values.append(json.loads(line))
    assert values == [{"i": i} for i in range(4)]
    for arrived, next_produced in zip(arrivals, probe.produced_at[1:]):
        assert arrived < next_produced


def test_streamed_batch_arrives_incrementally_and_parses(http: httpx.Client) -> None:
    token, probe = new_probe()
    first_bytes_at = None
    body = b""
    with http.stream("GET", f"/count-streamed/?n=3&interval=0.2&probe={token}") as response:
        for chunk in response.iter_bytes():
            first_bytes_at = first_bytes_at or time.monotonic()
            body += chunk
    assert first_bytes_at < probe.produced_at[1]
    assert json.loads(body) == {"items": [{"i": 0}, {"i": 1}, {"i": 2}]}


def test_heartbeats_flow_while_the_producer_is_silent(live_url: str) -> None:
    sock = raw_request(live_url, "/slow-start/?delay=0.5&stream=1")
    with sock:
        head = read_until(sock, b"\r\n\r\n")  # the headers come after one heartbeat interval, before the item
        assert b" 200 OK" in head
        body = read_until(sock, b"data: ")
    assert body.count(b": ping\n") >= 2


def test_without_heartbeats_nothing_is_sent_before_the_first_item(live_url: str) -> None:
    sock = raw_request(live_url, "/slow-start-no-hb/?delay=0.3&stream=1")
    with sock:
        data = read_until(sock, b"data: ")
    body = data.split(b"\r\n\r\n", 1)[1]
    assert b":" not in body.split(b"data: ")[0].replace(b"\r\n", b"").lstrip(b"0123456789abcdef")


def test_a_failure_after_headers_were_committed_is_an_error_event(http: httpx.Client) -> None:
    with connect_sse(http, "GET", "/slow-start/?delay=0.3&fail=1&stream=1") as source:
        assert source.response.status_code == 200
        events = list(source.iter_sse())
    assert [e.event for e in events] == ["error"]
    assert json.loads(events[0].data) == {"error": {"status": 500, "message": "Internal Server Error"}}


def test_a_failure_mid_stream_ends_with_an_error_event(http: httpx.Client, server_errors) -> None:
    with connect_sse(http, "GET", "/count/?n=5&fail=404&after=2&stream=1") as source:
        events = list(source.iter_sse())
    assert [e.event for e in events] == ["message", "message", "error"]
    assert json.loads(events[-1].data)["error"]["status"] == 404
    assert len(server_errors()) == 1


@pytest.mark.parametrize("mode", ["stream=1", "format=ndjson", "format=json"])
def test_an_error_before_the_first_item_is_an_http_error_on_the_wire(http: httpx.Client, mode: str) -> None:
    response = http.get(f"/count/?fail=403&{mode}")
    assert response.status_code == 403
    assert response.json() == {"error": {"status": 403, "message": "Not yours."}}


def test_a_client_that_leaves_cancels_the_producer_at_once_and_quietly(
    http: httpx.Client, server_errors, finished_before_request_finished
) -> None:
    token, probe = new_probe()
    seen = finished_before_request_finished(probe)
    with connect_sse(http, "GET", f"/endless/?probe={token}&stream=1") as source:
        next(source.iter_sse())
    assert probe.finished.wait(5), "produce()'s finally did not run"
    assert probe.exit in ("cancelled", "closed")
    assert server_errors() == []
    assert seen() == [True]


def test_a_stalled_reader_pauses_the_producer_and_leaving_then_stops_it(
    live_url: str, server_errors, finished_before_request_finished
) -> None:
    size = 100_000
    token, probe = new_probe()
    seen = finished_before_request_finished(probe)
    sock = raw_request(live_url, f"/endless/?size={size}&probe={token}&stream=1")
    read_until(sock, b"\r\n\r\n")
    # The client now reads nothing: what may be produced is bounded by the pump's buffer,
    # the server's write buffer and the kernel's socket buffers, not by time.
    time.sleep(1.0)
    stalled_at = probe.produced
    time.sleep(0.5)
    assert probe.produced == stalled_at, "the producer kept going while the client read nothing"
    assert stalled_at * size < 32 * 1024 * 1024
    # Reading resumes production.
    for _ in range(200):
        sock.recv(1 << 20)
    assert probe.produced > stalled_at
    # Leaving while the server is blocked sending still runs produce()'s finally.
    time.sleep(0.5)
    sock.close()
    assert probe.finished.wait(5)
    assert server_errors() == []
    assert seen() == [True], "produce() was left to the garbage collector, after the request had finished"


def test_head_answers_headers_without_running_an_endless_producer(http: httpx.Client) -> None:
    token, probe = new_probe()
    response = http.head(f"/endless/?probe={token}&stream=1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert probe.finished.wait(5)


def test_a_completed_stream_is_not_replayed_on_reconnect(http: httpx.Client) -> None:
    with connect_sse(http, "GET", "/count/?n=2&stream=1") as source:
        events = list(source.iter_sse())
    assert events[-1].event == "done"
    last_id = events[-1].id  # what a browser sends back as Last-Event-ID
    response = http.get("/count/?n=2&stream=1", headers={"Last-Event-ID": last_id})
    assert response.status_code == 204


def test_resume_after_a_cut_continues_after_the_last_id(http: httpx.Client) -> None:
    with connect_sse(http, "GET", "/resumable/?stream=1") as source:
        first = [e for _, e in zip(range(4), source.iter_sse())]
    assert [e.id for e in first] == ["0", "1", "2", "3"]
    with connect_sse(http, "GET", "/resumable/?stream=1", headers={"Last-Event-ID": first[-1].id}) as source:
        rest = [json.loads(e.data)["i"] for e in source.iter_sse() if e.event == "message"]
    assert rest == [4, 5, 6, 7, 8, 9]


def test_post_streams_too(http: httpx.Client) -> None:
    with connect_sse(http, "POST", "/count-csrf-exempt/?n=3&stream=1") as source:
        assert [e.data for e in source.iter_sse()][:3] == ['{"i":0}', '{"i":1}', '{"i":2}']


def test_demo_ticker_endpoint_answers_both_ways(http: httpx.Client) -> None:
    batch = http.get("/api/ticker/?from=3&interval=0").json()["items"]
    with connect_sse(http, "GET", "/api/ticker/?from=3&interval=0&stream=1") as source:
        streamed = [json.loads(e.data) for e in source.iter_sse() if e.event == "message"]
    assert batch == streamed and [item["n"] for item in batch] == [3, 2, 1, 0]
    assert http.get("/api/ticker/?from=abc").status_code == 400
    assert http.get("/ticker/").status_code == 200
    assert http.get("/static/demo/ticker.js").status_code == 200
