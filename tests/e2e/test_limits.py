"""What a stream's end tells, read from the live server: the ``stream_finished`` signal and the log line; no leak.

The limits themselves (max_streams, max_batch_items, long ids) are tests/unit/test_limits.py's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from dualstream import stream_finished
from tests.support.probes import new_probe


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
