"""Broadcast semantics on the memory backend and on a real Redis (``TEST_REDIS_URL``; skipped without it)."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from pathlib import Path

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings

from dualstream.broadcast import (
    BroadcastUnavailable,
    SubscriptionOverflow,
    apublish,
    history,
    publish,
    subscribe,
)
from dualstream.broadcast import subscription as subscription_module
from dualstream.broadcast.backends import close_backends, get_backend
from tests.support.broadcast import (
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

# Publishing --------------------------------------------------------------------------------------


def test_topic_and_event_names_are_validated(engine: str) -> None:
    for topic in ["", "has space", "-dash-first", "x" * 201, "new\nline", 7]:
        with pytest.raises(ValueError, match="Invalid topic"):
            publish(topic, {})  # type: ignore[arg-type]
    for name in ["done", "error", "reset", ""]:
        with pytest.raises(ValueError, match="Invalid event name"):
            publish("orders", {}, event=name)
    with pytest.raises(ValueError):
        publish("orders", {}, event="two\nlines")
    assert publish("orders.eu:7_a-b", {}, event="created")


def test_publish_refuses_a_running_event_loop_and_apublish_works_there(engine: str) -> None:
    async def main() -> str:
        with pytest.raises(RuntimeError, match="apublish"):
            publish("orders", {"id": 1})
        return await apublish("orders", {"id": 2})

    first = asyncio.run(main())
    second = publish("orders", {"id": 3})
    key = get_backend().parse_id
    assert key(first) < key(second)  # type: ignore[operator]
    assert [e.data for e in asyncio.run(history("orders"))] == [{"id": 2}, {"id": 3}]


def test_data_goes_through_the_json_encoder(engine: str) -> None:
    import datetime
    import decimal

    publish("typed", {"when": datetime.date(2024, 1, 2), "price": decimal.Decimal("1.50")}, event="priced")
    (event,) = asyncio.run(history("typed"))
    assert event.data == {"when": "2024-01-02", "price": "1.50"} and event.event == "priced"


# Fan-out -----------------------------------------------------------------------------------------


def test_every_subscriber_gets_every_event_in_publish_order(engine: str) -> None:
    async def main() -> None:
        subs = [await joined("orders") for _ in range(3)]
        ids = [await apublish("orders", {"n": n}) for n in range(50)]
        for sub, first in subs:
            got = [await first]
            got += await take(sub, 49)
            assert [e.data["n"] for e in got] == list(range(50))
            assert [e.id for e in got] == ids
            await sub.aclose()
        assert get_backend().fanout.topics() == []

    asyncio.run(main())


def test_publishes_from_many_threads_arrive_in_id_order(engine: str) -> None:
    async def main() -> None:
        sub, first = await joined("threads")
        ids: list[str] = []
        lock = threading.Lock()

        def worker(w: int) -> None:
            for n in range(25):
                event_id = publish("threads", {"w": w, "n": n})
                with lock:
                    ids.append(event_id)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        await asyncio.to_thread(lambda: [t.join() for t in threads])
        got = [await first]
        got += await take(sub, 99)
        key = get_backend().parse_id
        assert [e.id for e in got] == sorted(ids, key=key)  # type: ignore[arg-type, return-value]
        for w in range(4):  # and each thread's events in the order it published them
            assert [e.data["n"] for e in got if e.data["w"] == w] == list(range(25))
        await sub.aclose()

    asyncio.run(main())


def test_a_slow_subscriber_is_cut_without_holding_back_publishers_or_others(engine: str) -> None:
    async def main() -> None:
        with configure(engine, BUFFER=5):
            slow, slow_first = await joined("busy")
            fast, fast_first = await joined("busy")
            received: list[str] = []
            arrived = asyncio.Condition()

            async def read_fast() -> None:
                first = await fast_first
                async with arrived:  # notified like every other event: the publisher may wait already
                    received.append(first.id)  # type: ignore[arg-type]
                    arrived.notify_all()
                async for event in fast:
                    async with arrived:
                        received.append(event.id)  # type: ignore[arg-type]
                        arrived.notify_all()

            reader = asyncio.ensure_future(read_fast())
            ids = []
            for n in range(20):
                ids.append(await apublish("busy", {"n": n}))  # never waits for the slow one
                if n == 0:
                    assert (await slow_first).id == ids[0]  # then it stops reading
                async with arrived:
                    await asyncio.wait_for(arrived.wait_for(lambda: len(received) == len(ids)), 10)
            assert received == ids
            with pytest.raises(SubscriptionOverflow):
                await take(slow, 19)
            reader.cancel()
            await asyncio.wait([reader])
            await fast.aclose()
            assert get_backend().fanout.topics() == []  # the overflowed one left by itself

    asyncio.run(main())


# Replay ------------------------------------------------------------------------------------------


def test_replay_after_last_event_id_then_live(engine: str) -> None:
    async def main() -> None:
        ids = [await apublish("feed", {"n": n}) for n in range(10)]
        sub = subscribe("feed", last_event_id=ids[4])
        replayed = await take(sub, 5)
        assert [e.data["n"] for e in replayed] == [5, 6, 7, 8, 9]
        live = await apublish("feed", {"n": 10})
        (event,) = await take(sub, 1)
        assert event.id == live
        await sub.aclose()

    asyncio.run(main())


def test_recent_events_for_a_client_without_an_id(engine: str) -> None:
    async def main() -> None:
        for n in range(5):
            await apublish("feed", {"n": n})
        async with subscribe("feed", recent=2) as sub:
            assert [e.data["n"] for e in await take(sub, 2)] == [3, 4]
            await apublish("feed", {"n": 5})
            assert [e.data["n"] for e in await take(sub, 1)] == [5]

    asyncio.run(main())


@pytest.mark.parametrize("page", [3, 500])
def test_replay_racing_live_publishes_has_no_gap_and_no_duplicate(
    engine: str, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subscribers join at several points while another thread goes on publishing."""
    monkeypatch.setattr(subscription_module, "REPLAY_PAGE", page)
    total, joins, every = 400, 8, 40
    published: list[str] = [publish("race", {"n": 0})]
    reached = [threading.Event() for _ in range(joins)]  # the publisher is at follower k's resume point
    joining = [threading.Event() for _ in range(joins)]  # follower k took it: publish on while it joins

    def publisher() -> None:
        for n in range(1, total):
            published.append(publish("race", {"n": n}))
            if n % every == 0 and n // every <= joins:
                reached[n // every - 1].set()
                assert joining[n // every - 1].wait(10)

    async def follower(k: int) -> None:
        assert await asyncio.to_thread(reached[k].wait, 10)
        start = len(published) - 1
        async with subscribe("race", last_event_id=published[start]) as sub:
            joining[k].set()
            got = await take(sub, total - 1 - start, timeout=30)
        assert [e.data["n"] for e in got] == list(range(start + 1, total))

    async def main() -> None:
        thread = threading.Thread(target=publisher)
        thread.start()
        await asyncio.gather(*(follower(k) for k in range(joins)))
        await asyncio.to_thread(thread.join, 30)

    asyncio.run(main())


@pytest.mark.parametrize(
    "bad",
    [
        "garbage", "1-1", "99999999999999-0", "0-0", "1-2-3", "-1", "\u00b2-1",
        # Beyond Redis's 64-bit parts: Redis refuses them ("Invalid stream ID"), so they must not reach it.
        "99999999999999999999-0", "18446744073709551616-0", "1-99999999999999999999", "1" * 1024,
    ],
)  # fmt: skip
def test_unknown_or_malformed_id_gets_reset_then_live(engine: str, bad: str) -> None:
    async def main() -> None:
        await apublish("feed", {"n": 0})
        sub, first = await joined("feed", last_event_id=bad)
        reset = await first
        assert reset.event == "reset" and reset.id is None and reset.data == {"topic": "feed"}
        live = await apublish("feed", {"n": 1})
        assert [e.id for e in await take(sub, 1)] == [live]
        await sub.aclose()

    asyncio.run(main())


def test_id_older_than_retention_gets_reset(engine: str) -> None:
    async def main() -> None:
        with configure(engine, MAXLEN=5):
            old = await apublish("small", {"n": 0})
            # Redis trims whole nodes of entries (MAXLEN ~): enough events to drop the first node.
            for n in range(1, 400):
                await apublish("small", {"n": n})
            assert (await history("small", 1000))[0].data["n"] > 0
            async with subscribe("small", last_event_id=old) as sub:
                (reset,) = await take(sub, 1)
                assert reset.event == "reset"
                live = await apublish("small", {"n": 400})
                assert [e.id for e in await take(sub, 1)] == [live]

    asyncio.run(main())


def test_history_is_the_latest_events_oldest_first(engine: str) -> None:
    for n in range(7):
        publish("hist", {"n": n})
    assert [e.data["n"] for e in asyncio.run(history("hist", 3))] == [4, 5, 6]
    assert asyncio.run(history("nothing-here")) == []


# Settings and the command ------------------------------------------------------------------------


def test_backend_setting_accepts_a_dotted_path_and_refuses_others() -> None:
    path = "dualstream.broadcast.backends.memory.MemoryBackend"
    with override_settings(DUALSTREAM={"BROADCAST": {"BACKEND": path}}):
        assert type(get_backend()).__name__ == "MemoryBackend"
    for bad in ["nosuch.module.Backend", "dualstream.events.Event"]:
        with override_settings(DUALSTREAM={"BROADCAST": {"BACKEND": bad}}), pytest.raises(ImproperlyConfigured):
            get_backend()
    close_backends()


def test_publish_command(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    call_command("publish", "cmd", '{"id": 7}', "--event", "created", stdout=out)
    monkeypatch.setattr("sys.stdin", io.StringIO('1\n\n"two"\n'))
    call_command("publish", "cmd", "-", stdout=out)
    ids = out.getvalue().split()
    events = asyncio.run(history("cmd"))
    assert [e.id for e in events] == ids
    assert [(e.data, e.event) for e in events] == [({"id": 7}, "created"), (1, None), ("two", None)]
    with pytest.raises(CommandError, match="Not JSON"):
        call_command("publish", "cmd", "{nope")
    with pytest.raises(CommandError, match="Invalid topic"):
        call_command("publish", "no good", "1")


# Redis going away --------------------------------------------------------------------------------


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


# Over HTTP (uvicorn in this process) -------------------------------------------------------------

TOPIC_URLS = {"ROOT_URLCONF": "tests.support.broadcast_urls"}


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
        wait_for(lambda: get_backend().fanout.topics() == [])  # both streams left the topic


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
        wait_for(lambda: get_backend().fanout.topics() == [])


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


# The demo ----------------------------------------------------------------------------------------


def test_demo_activity_page_publishes_with_the_csrf_token_and_the_feed_has_it(engine: str) -> None:
    from django.test import Client
    from django.urls import reverse

    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("demo:activity-page"))
    assert page.status_code == 200 and b"activity.js" in page.content
    token = page.cookies["csrftoken"].value
    url = reverse("demo:activity-publish")
    body = json.dumps({"who": "tab-1", "text": "hello <b>all</b>"})
    assert client.post(url, body, content_type="application/json").status_code == 403  # no token
    created = client.post(url, body, content_type="application/json", headers={"X-CSRFToken": token})
    assert created.status_code == 201
    assert client.post(url, "{}", content_type="application/json", headers={"X-CSRFToken": token}).status_code == 400
    (item,) = client.get(reverse("demo:activity")).json()["items"]
    assert item["who"] == "tab-1" and item["text"] == "hello <b>all</b>"
    (event,) = asyncio.run(history("demo-activity"))
    assert event.id == created.json()["id"]
