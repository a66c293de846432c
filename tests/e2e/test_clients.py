"""Python clients nobody here wrote, and curl, against a live stream with ids and frequent keep-alives.

Keep-alives are comment lines that end no event block: a parser that remembers the last id
(httpx-sse 0.4 dispatches an empty event on a blank line once it holds one) sees nothing for them.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest
import sseclient
from httpx_sse import connect_sse

PACED = "/paced/?n=6&interval=0.1&stream=1"  # keep-alives every 0.02 s: several between two events


def test_the_stream_carries_keepalives_between_events(live_url: str) -> None:
    with httpx.Client(base_url=live_url, timeout=10) as client:
        body = client.get(PACED).text
    assert body.count(": ping\n") >= 5  # the condition the clients below are tested under


def test_httpx_sse_sees_each_event_and_no_empty_one(live_url: str) -> None:
    with httpx.Client(base_url=live_url, timeout=10) as client, connect_sse(client, "GET", PACED) as source:
        events = list(source.iter_sse())
    assert [(e.event, e.id) for e in events] == [("message", str(i)) for i in range(6)] + [
        ("done", "dualstream-completed")
    ]
    assert [json.loads(e.data) for e in events[:-1]] == [{"i": i} for i in range(6)]


def test_sseclient_py_sees_each_event_and_no_empty_one(live_url: str) -> None:
    with httpx.Client(base_url=live_url, timeout=10) as client, client.stream("GET", PACED) as response:
        events = list(sseclient.SSEClient(response.iter_bytes()).events())
    assert [(e.event, e.id) for e in events] == [("message", str(i)) for i in range(6)] + [
        ("done", "dualstream-completed")
    ]
    assert [json.loads(e.data) for e in events[:-1]] == [{"i": i} for i in range(6)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(
    ("query", "parse"),
    [
        ("format=json", lambda out: json.loads(out)["items"]),
        ("format=ndjson", lambda out: [json.loads(line) for line in out.splitlines()]),
        ("stream=1", lambda out: [json.loads(line[6:]) for line in out.splitlines() if line.startswith("data: {")]),
    ],
)
def test_curl_reads_every_mode(live_url: str, query: str, parse: object) -> None:
    out = subprocess.run(
        ["curl", "-sSN", "--max-time", "10", f"{live_url}/paced/?n=3&interval=0.05&{query}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    assert parse(out) == [{"i": i} for i in range(3)]  # type: ignore[operator]


def test_httpx_sse_reconnecting_after_done_sees_an_empty_stream_not_an_error(live_url: str) -> None:
    # The 204 that tells a browser to stop was typed text/html: httpx-sse raised SSEError on it.
    headers = {"Last-Event-ID": "dualstream-completed"}
    with (
        httpx.Client(base_url=live_url, timeout=10) as client,
        connect_sse(client, "GET", PACED, headers=headers) as source,
    ):
        assert source.response.status_code == 204
        assert list(source.iter_sse()) == []
