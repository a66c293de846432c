"""Broadcast semantics on the memory backend and on a real Redis (``TEST_REDIS_URL``; skipped without it).

The Redis variant of each test (``engine`` "redis") is end to end; Redis cut away, and topic views
read over HTTP, are tests/e2e/test_broadcast.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings

from dualstream.broadcast import (
    SubscriptionOverflow,
    apublish,
    history,
    publish,
    subscribe,
)
from dualstream.broadcast import subscription as subscription_module
from dualstream.broadcast.backends import close_backends, get_backend, get_fanout
from tests.support.broadcast import (
    configure,
    joined,
    take,
)

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
        assert get_fanout().topics() == []

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
            assert get_fanout().topics() == []  # the overflowed one left by itself

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
