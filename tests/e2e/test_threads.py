"""An open stream does not keep an OS thread of its own (dualstream/threads.py), and the database still works."""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack

import httpx
import pytest
from httpx_sse import connect_sse


def open_streams(live_url: str, path: str, count: int, stack: ExitStack) -> list:
    """``count`` streams, each read up to its third event (well after the response started)."""
    client = stack.enter_context(
        httpx.Client(base_url=live_url, timeout=10, limits=httpx.Limits(max_connections=count))
    )
    sources = []
    for _ in range(count):
        source = stack.enter_context(connect_sse(client, "GET", path))
        events = source.iter_sse()
        for _ in range(3):
            next(events)
        sources.append(events)
    return sources


def alive_since(before: set[threading.Thread], settle: float = 2.0) -> int:
    """Threads started since ``before`` still alive once those on their way out have exited.

    A released thread exits on its own shortly after its stream let it go
    (``shutdown(wait=False)``): each new thread is joined until one shared deadline.
    """
    deadline = time.monotonic() + settle
    born = [thread for thread in threading.enumerate() if thread not in before and thread.ident is not None]
    for thread in born:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in born)


def test_open_streams_do_not_hold_a_thread_each(live_url: str) -> None:
    count = 20
    held = {}
    for path in ("/tick/?stream=1&interval=0.05", "/tick-hold/?stream=1&interval=0.05"):
        before = set(threading.enumerate())
        with ExitStack() as stack:
            # Kept until the count is taken: a dropped iterator closes its stream.
            streams = open_streams(live_url, path, count, stack)
            # Threads born while the streams opened and still alive with all of them open.
            held[path.split("/")[1]] = alive_since(before)
            assert len(streams) == count
    # Without the release, Django's per-request thread stays with each open stream; with it, it goes.
    assert held == {"tick": 0, "tick-hold": count}


@pytest.mark.django_db(transaction=True)
def test_the_database_works_after_the_thread_was_given_back(live_url: str) -> None:
    with (
        httpx.Client(base_url=live_url, timeout=10) as client,
        connect_sse(client, "GET", "/tick/?stream=1&interval=0.05&n=6&query_at=4") as source,
    ):
        items = [json.loads(e.data) for e in source.iter_sse() if e.event == "message"]
    assert [item["i"] for item in items] == list(range(6))
    assert items[4]["content_types"] > 0
