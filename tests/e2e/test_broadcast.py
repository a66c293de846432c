"""Broadcast end to end: Redis cut away behind a proxy, and topic views read over HTTP from uvicorn in this process."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import httpx
import pytest
from django.test import override_settings

from dualstream.broadcast import (
    BroadcastUnavailable,
    apublish,
    publish,
    subscribe,
)
from dualstream.broadcast.backends import get_fanout
from tests.support.broadcast import (
    TOPIC_URLS,
    broadcast_settings,
    configure,
    direct_backend,
    joined,
    sse_lines,
    take,
    via,
    wait_for,
)
from tests.support.broadcast_proxy import Proxy
from tests.support.broadcast_urls import FINISHED


def test_redis_down_publish_raises_and_open_streams_resume_without_loss(proxy: Proxy) -> None:
    opts = broadcast_settings("redis", URL=via(proxy), TIMEOUT=1.0)

    async def main() -> None:
        sub, first = await joined("down")
        before = await apublish("down", {"n": 0})
        assert (await first).id == before
        proxy.cut()
        with pytest.raises(BroadcastUnavailable, match="cannot publish"):
            await apublish("down", {"n": 1})
        with pytest.raises(BroadcastUnavailable, match="cannot publish"):
            await asyncio.to_thread(publish, "down", {"n": 1})
        # Published elsewhere while this process cannot see Redis: it must get them once back.
        missed = [publisher.publish_sync("down", json.dumps({"n": n}), None) for n in (1, 2)]
        proxy.restore()
        after = await apublish("down", {"n": 3})
        assert [e.id for e in await take(sub, 3, timeout=15)] == [*missed, after]
        await sub.aclose()

    with direct_backend(opts) as publisher, override_settings(DUALSTREAM=opts):  # publisher: another process
        asyncio.run(main())


def test_redis_down_too_long_ends_streams_with_an_error_and_refuses_new_ones(proxy: Proxy) -> None:
    opts = broadcast_settings("redis", URL=via(proxy), TIMEOUT=0.5, OUTAGE_TIMEOUT=0.5)

    async def main() -> None:
        sub, first = await joined("gone")
        await apublish("gone", {"n": 0})
        await first
        proxy.cut()
        with pytest.raises(BroadcastUnavailable, match="live feed was lost"):
            await take(sub, 1, timeout=15)
        with pytest.raises(BroadcastUnavailable):
            await take(subscribe("gone", last_event_id="1-1"), 1, timeout=15)

    with override_settings(DUALSTREAM=opts):
        asyncio.run(main())


@pytest.mark.django_db(transaction=True)
def test_topic_view_batch_ndjson_and_sse_replay(engine: str, live_url: str) -> None:
    with override_settings(**TOPIC_URLS):
        ids = [publish("view", {"n": n}, event="tick" if n == 2 else None) for n in range(4)]
        batch = httpx.get(f"{live_url}/topic/view/", timeout=10)
        assert batch.json() == {"items": [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]}
        with httpx.stream(
            "GET", f"{live_url}/topic/view/?stream=1", headers={"Last-Event-ID": ids[0]}, timeout=10
        ) as r:
            events = sse_lines(r)
            got = [next(events) for _ in range(3)]
        assert [(e["id"], e.get("event"), json.loads(e["data"])) for e in got] == [
            (ids[1], None, {"n": 1}), (ids[2], "tick", {"n": 2}), (ids[3], None, {"n": 3})
        ]  # fmt: skip
        with httpx.stream("GET", f"{live_url}/topic/view/?format=ndjson&lastEventId={ids[2]}", timeout=10) as r:
            assert json.loads(next(r.iter_lines())) == {"n": 3}
        wait_for(lambda: get_fanout().topics() == [])  # both streams left the topic


@pytest.mark.django_db(transaction=True)
def test_custom_producer_finally_runs_on_disconnect(engine: str, live_url: str) -> None:
    name = f"fin-{engine}"  # each run its own: a late finally of another must not count
    finished = FINISHED.setdefault(name, threading.Event())
    with override_settings(**TOPIC_URLS):
        with httpx.stream(
            "GET", f"{live_url}/custom/{name}/?stream=1", headers={"Last-Event-ID": "x"}, timeout=10
        ) as r:
            events = sse_lines(r)  # kept: a dropped generator would close the response, and so the connection
            assert next(events)["event"] == "reset"
            assert not finished.is_set()  # the stream is endless: only the client's leaving ends it
        assert finished.wait(10)
        wait_for(lambda: get_fanout().topics() == [])


def send_buffer_max() -> int:
    """The most a TCP socket's send buffer may grow to (Linux: tcp_wmem's maximum); 4 MiB where unknown."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


@pytest.mark.django_db(transaction=True)
def test_overflow_ends_the_stream_without_done_and_the_client_resumes(engine: str, live_url: str) -> None:
    with override_settings(**TOPIC_URLS), configure(engine, BUFFER=3):
        first = publish("flood", {"n": 0})
        with httpx.stream(
            "GET", f"{live_url}/topic/flood/?stream=1", headers={"Last-Event-ID": first}, timeout=10
        ) as r:
            stream = r.iter_raw()
            # The client reads nothing while far more than the buffer and the socket can hold is published:
            # twice the largest send buffer the kernel may give the server's socket.
            pad = 20_000
            ids = [publish("flood", {"n": n, "pad": "x" * pad}) for n in range(1, 2 * send_buffer_max() // pad + 2)]
            body = b"".join(stream)  # the server ends the stream
        assert b"event: done" not in body and b"event: error" not in body
        seen = [line.split(b": ", 1)[1].decode() for line in body.splitlines() if line.startswith(b"id: ")]
        assert seen == ids[: len(seen)] and len(seen) < len(ids)
        resume = seen[-1] if seen else first
        with httpx.stream(
            "GET", f"{live_url}/topic/flood/?stream=1", headers={"Last-Event-ID": resume}, timeout=10
        ) as r:
            events = sse_lines(r)
            rest = [next(events)["id"] for _ in range(len(ids) - len(seen))]
        assert seen + rest == ids


@pytest.mark.django_db(transaction=True)
def test_topic_view_answers_503_when_redis_is_down(proxy: Proxy, live_url: str) -> None:
    proxy.cut()
    with override_settings(**TOPIC_URLS, DUALSTREAM=broadcast_settings("redis", URL=via(proxy), TIMEOUT=0.5)):
        for query in ["", "?stream=1"]:
            r = httpx.get(f"{live_url}/topic/view/{query}", headers={"Last-Event-ID": "1-1"}, timeout=10)
            assert r.status_code == 503
            assert r.json()["error"]["status"] == 503
