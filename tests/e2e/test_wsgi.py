"""Under WSGI (``manage.py runserver``, gunicorn sync workers) streams stream too, and a leaving client stops them.

The server is the one ``runserver`` uses: ``django.core.servers.basehttp.WSGIServer``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from httpx_sse import connect_sse

from tests.support.probes import new_probe


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def wsgi_url() -> Iterator[str]:
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_events_arrive_as_produced_under_wsgi(wsgi_url: str) -> None:
    token, probe = new_probe()
    arrivals = []
    with (
        httpx.Client(base_url=wsgi_url, timeout=10) as http,
        connect_sse(http, "GET", f"/count/?n=4&interval=0.15&probe={token}&stream=1") as source,
    ):
        events = []
        for event in source.iter_sse():
            arrivals.append(time.monotonic())
            events.append(event)
    assert [json.loads(e.data) for e in events[:-1]] == [{"i": i} for i in range(4)]
    assert events[-1].event == "done"
    for arrived, next_produced in zip(arrivals, probe.produced_at[1:]):
        assert arrived < next_produced


def test_errors_before_the_first_item_are_http_errors_under_wsgi(wsgi_url: str) -> None:
    response = httpx.get(f"{wsgi_url}/count/?fail=404&stream=1")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such thing."


def test_a_client_that_leaves_stops_the_producer_under_wsgi(wsgi_url: str) -> None:
    token, probe = new_probe()
    with (
        httpx.Client(base_url=wsgi_url, timeout=10) as http,
        connect_sse(http, "GET", f"/endless/?size=1000&probe={token}&stream=1") as source,
    ):
        next(source.iter_sse())
    # WSGI learns of a disconnect only when a write fails: the endless producer writes at once.
    assert probe.finished.wait(10), "produce()'s finally did not run"
    assert probe.exit in ("cancelled", "closed")


def test_heartbeats_flow_under_wsgi(wsgi_url: str) -> None:
    with (
        httpx.Client(base_url=wsgi_url, timeout=10) as http,
        http.stream("GET", "/slow-start/?delay=0.4&stream=1") as response,
    ):
        text = ""
        for chunk in response.iter_text():
            text += chunk
            if "data:" in text:
                break
    assert text.count(": ping") >= 2
