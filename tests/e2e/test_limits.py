"""Limits (max_streams, max_batch_items, long ids) and what a stream's end tells: the signal and the log line."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import Client, override_settings
from httpx_sse import connect_sse

from dualstream import stream_finished
from dualstream.lifecycle import Streams
from tests.support.probes import new_probe


@pytest.mark.django_db  # closing a response sends request_finished, which looks at the connections
def test_beyond_max_streams_a_new_stream_is_a_503_with_retry_after(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A registry of its own: streams of earlier tests may still be ending in the live server's thread.
    monkeypatch.setattr("dualstream.views.streams", Streams())
    with override_settings(DUALSTREAM={"MAX_STREAMS": 1}):
        first = client.get("/endless/?stream=1")  # open, and not yet read
        try:
            refused = client.get("/count/?stream=1")
            batch = client.get("/count/?format=json")  # not a stream: not counted, not refused
        finally:
            first.close()
        after = client.get("/count/?stream=1")
        b"".join(after)
    assert first.status_code == 200
    assert refused.status_code == 503
    assert refused["Retry-After"] == "1"
    assert json.loads(refused.content)["error"]["status"] == 503
    assert batch.status_code == 200
    assert after.status_code == 200


@pytest.mark.django_db
def test_beyond_max_batch_items_a_buffered_answer_is_a_400_that_points_to_streams(client: Client) -> None:
    with override_settings(DUALSTREAM={"MAX_BATCH_ITEMS": 3}):
        within = client.get("/count/?n=3&format=json")
        beyond = client.get("/count/?n=4&format=json")
        streamed = client.get("/count/?n=4&format=ndjson")
        lines = b"".join(streamed).splitlines()
    assert json.loads(within.content) == {"items": [{"i": i} for i in range(3)]}
    assert beyond.status_code == 400
    assert "ask for a stream" in json.loads(beyond.content)["error"]["message"]
    assert len(lines) == 4


@pytest.mark.django_db
def test_a_last_event_id_over_1024_characters_is_ignored_and_not_echoed(client: Client) -> None:
    long_id = "9" * 1025
    response = client.get("/resumable/?format=json", headers={"Last-Event-ID": long_id})
    resumed = client.get("/resumable/?format=json", headers={"Last-Event-ID": "6"})
    assert response.status_code == 200
    assert [item["i"] for item in json.loads(response.content)["items"]] == list(range(10))  # from the start
    assert [item["i"] for item in json.loads(resumed.content)["items"]] == [7, 8, 9]  # after the id
    assert long_id not in response.content.decode()


@pytest.fixture
def ends() -> Iterator[tuple[list[dict[str, Any]], threading.Condition]]:
    """Each ``stream_finished`` the live server sends, as its keyword arguments."""
    seen: list[dict[str, Any]] = []
    changed = threading.Condition()

    def receiver(sender: type, **kwargs: Any) -> None:
        with changed:
            seen.append({"sender": sender, **kwargs})
            changed.notify_all()

    stream_finished.connect(receiver, weak=False)
    yield seen, changed
    stream_finished.disconnect(receiver)


def wait_for_end(ends: tuple[list[dict[str, Any]], threading.Condition], path: str) -> dict[str, Any]:
    seen, changed = ends
    with changed:
        assert changed.wait_for(lambda: any(e["request"].get_full_path() == path for e in seen), timeout=5)
        return next(e for e in seen if e["request"].get_full_path() == path)


def test_a_completed_stream_sends_stream_finished_and_logs_one_line(
    live_url: str, ends: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token, _ = new_probe()
    path = f"/count/?n=4&stream=1&probe={token}"
    caplog.set_level(logging.INFO, logger="dualstream")
    with httpx.Client(base_url=live_url, timeout=10) as client, connect_sse(client, "GET", path) as source:
        assert [e.event for e in source.iter_sse()] == ["message"] * 4 + ["done"]
    end = wait_for_end(ends, path)
    assert (end["sender"].__name__, end["reason"], end["items"], end["error"]) == ("CountView", "completed", 4, None)
    assert end["duration"] >= 0
    lines = [r for r in caplog.records if r.name == "dualstream" and r.request.get_full_path() == path]  # type: ignore[attr-defined]
    assert [(r.levelname, r.getMessage()) for r in lines] == [
        ("INFO", f"Stream ended (completed): /count/, 4 items in {end['duration']:.3f} s")
    ]


def test_a_client_that_leaves_ends_its_stream_as_client_gone(live_url: str, ends: Any) -> None:
    token, probe = new_probe()
    path = f"/endless/?stream=1&probe={token}"
    with httpx.Client(base_url=live_url, timeout=10) as client, connect_sse(client, "GET", path) as source:
        events = source.iter_sse()
        next(events), next(events)
    end = wait_for_end(ends, path)
    assert end["reason"] == "client_gone"
    assert end["items"] >= 2
    assert probe.finished.is_set()  # the signal comes after produce()'s finally


def test_a_failure_mid_stream_ends_it_as_error_with_the_exception(live_url: str, ends: Any) -> None:
    path = "/count/?n=5&fail=500&after=2&stream=1"
    with httpx.Client(base_url=live_url, timeout=10) as client, connect_sse(client, "GET", path) as source:
        assert [e.event for e in source.iter_sse()] == ["message", "message", "error"]
    end = wait_for_end(ends, path)
    assert end["reason"] == "error"
    assert isinstance(end["error"], Exception)


def test_no_response_or_pump_outlives_its_stream(live_url: str, ends: Any) -> None:
    """Finished and cut streams leave nothing behind: a leak here grows a server's memory per request."""
    import gc

    from dualstream.pump import Pump
    from dualstream.responses import StreamResponse

    def alive() -> tuple[int, int]:
        gc.collect()
        objects = gc.get_objects()
        return sum(type(o) is StreamResponse for o in objects), sum(type(o) is Pump for o in objects)

    before = alive()
    with httpx.Client(base_url=live_url, timeout=10) as client:
        for _ in range(20):
            client.get("/count/?n=3&stream=1&leak=1")
        for _ in range(20):
            with client.stream("GET", "/endless/?stream=1&leak=1") as response:
                next(response.iter_bytes())
    seen, changed = ends
    with changed:  # every stream has ended, cut ones included
        assert changed.wait_for(lambda: sum("leak=1" in e["request"].get_full_path() for e in seen) == 40, timeout=10)
    # The last request may still be finishing (Django closes it after the stream's end is reported);
    # a leak would leave one of each per stream, 40.
    responses, pumps = alive()
    assert responses - before[0] <= 1 and pumps - before[1] <= 1, (before, responses, pumps)
