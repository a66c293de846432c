"""Broadcast under faults: Redis behind a proxy that drops, stalls and delays, entries other tools wrote,
hostile ids, mass reconnects, many topics, a join cancelled as it completes. (Hostile topic names,
churn and who may read a topic, on each engine: tests/unit/test_broadcast_faults.py.)

The guarantee every test holds the code to: a subscriber sees each event of its topic once, in order,
or a ``reset`` at the point where continuity cannot be proven, before any later event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest
import redis
from django.test import override_settings

from dualstream import Event
from dualstream.broadcast import BroadcastUnavailable, apublish, history, subscribe
from dualstream.broadcast.backends import get_backend, get_fanout
from dualstream.broadcast.backends.redis import STALL
from tests.support.broadcast import (
    REDIS_URL,
    broadcast_settings,
    direct_backend,
    joined,
    redis_reason,
    take,
    via,
)
from tests.support.broadcast_proxy import Proxy


async def take_until(events: Any, last_id: str, timeout: float = 20.0) -> list[Event]:
    """Events up to and including the one with ``last_id``."""
    out: list[Event] = []
    async with asyncio.timeout(timeout):
        async for event in events:
            out.append(event)
            if event.id == last_id:
                return out
    raise AssertionError(f"the stream ended before {last_id}")


def assert_tail_after_reset(got: list[Event], ids: list[str]) -> None:
    """``got`` is a reset, then the newest events of ``ids`` in order, each once: the gap is announced."""
    assert got[0].event == "reset" and got[0].id is None, [e.event for e in got[:3]]
    rest = [e.id for e in got[1:]]
    assert rest and rest == ids[len(ids) - len(rest) :]
    assert len(rest) < len(ids) - 1  # events were lost while the reader was away, and it said so


# Outages ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["cut", "stall"])
def test_an_outage_longer_than_retention_gives_a_reset_at_the_gap(proxy: Proxy, fault: str) -> None:
    opts = broadcast_settings("redis", URL=via(proxy), MAXLEN=10, OUTAGE_TIMEOUT=60)

    async def main() -> None:
        sub, first = await joined("gap")
        ids = [publisher.publish_sync("gap", "0", None)]
        assert (await first).id == ids[0]
        getattr(proxy, fault)()
        # Far more than MAXLEN while this process cannot read: Redis trims what it has not seen.
        ids += [publisher.publish_sync("gap", json.dumps(n), None) for n in range(1, 400)]
        proxy.restore()
        ids.append(publisher.publish_sync("gap", "400", None))
        assert_tail_after_reset(await take_until(sub, ids[-1]), ids[1:])
        # Live delivery goes on, without another reset.
        more = publisher.publish_sync("gap", "401", None)
        assert [e.id for e in await take(sub, 1)] == [more]
        await sub.aclose()

    with direct_backend(opts) as publisher, override_settings(DUALSTREAM=opts):  # publisher: another process
        asyncio.run(main())


def test_a_short_outage_within_retention_loses_nothing_and_gives_no_reset(proxy: Proxy) -> None:
    opts = broadcast_settings("redis", URL=via(proxy), MAXLEN=10_000)

    async def main() -> None:
        sub, first = await joined("blip")
        ids = [publisher.publish_sync("blip", "0", None)]
        assert (await first).id == ids[0]
        proxy.cut()
        ids += [publisher.publish_sync("blip", json.dumps(n), None) for n in range(1, 50)]
        proxy.restore()
        ids.append(publisher.publish_sync("blip", "50", None))
        assert [e.id for e in await take_until(sub, ids[-1])] == ids[1:]
        await sub.aclose()

    with direct_backend(opts) as publisher, override_settings(DUALSTREAM=opts):  # publisher: another process
        asyncio.run(main())


def test_a_deleted_or_recreated_stream_gives_a_reset(proxy: Proxy) -> None:
    opts = broadcast_settings("redis", URL=via(proxy))
    direct = redis.Redis.from_url(REDIS_URL)

    async def main() -> None:
        sub, first = await joined("again")
        first_id = publisher.publish_sync("again", "0", None)
        assert (await first).id == first_id
        proxy.cut()
        direct.delete(opts["BROADCAST"]["PREFIX"] + "again")  # as a Redis restarted without persistence would
        ids = [publisher.publish_sync("again", json.dumps(n), None) for n in (1, 2)]
        proxy.restore()
        got = await take_until(sub, ids[-1])
        assert [(e.event, e.id) for e in got] == [("reset", None), (None, ids[0]), (None, ids[1])]
        await sub.aclose()

    with direct_backend(opts) as publisher, override_settings(DUALSTREAM=opts):  # publisher: another process
        asyncio.run(main())


@pytest.mark.parametrize("fault", ["cut", "stall"])
def test_streams_end_within_the_outage_timeout_when_redis_is_unreachable_or_stalled(proxy: Proxy, fault: str) -> None:
    outage_timeout = 1.0
    opts = broadcast_settings("redis", URL=via(proxy), OUTAGE_TIMEOUT=outage_timeout)

    async def main() -> float:
        sub, first = await joined("quiet")
        await apublish("quiet", {"n": 0})
        await first
        getattr(proxy, fault)()
        started = time.monotonic()
        with pytest.raises(BroadcastUnavailable, match="live feed was lost"):
            await take(sub, 1, timeout=30)
        return time.monotonic() - started

    with override_settings(DUALSTREAM=opts):
        elapsed = asyncio.run(main())
    proxy.restore()
    assert elapsed <= outage_timeout + 1.0, f"the streams ended {elapsed:.2f} s into the {fault}"


def test_a_stall_longer_than_the_stall_limit_reconnects_and_loses_nothing(proxy: Proxy) -> None:
    opts = broadcast_settings("redis", URL=via(proxy), OUTAGE_TIMEOUT=60)

    async def main() -> None:
        sub, first = await joined("frozen")
        ids = [publisher.publish_sync("frozen", "0", None)]
        assert (await first).id == ids[0]
        proxy.stall()
        ids += [publisher.publish_sync("frozen", json.dumps(n), None) for n in range(1, 20)]
        backend = get_backend()
        async with asyncio.timeout(20):
            while backend._conn is not None:  # the reader gives the silent connection up
                await asyncio.sleep(0.05)
        proxy.restore()
        ids.append(publisher.publish_sync("frozen", "20", None))
        assert [e.id for e in await take_until(sub, ids[-1])] == ids[1:]
        await sub.aclose()

    with direct_backend(opts) as publisher, override_settings(DUALSTREAM=opts):  # publisher: another process
        asyncio.run(main())


def test_a_process_starved_of_cpu_is_not_taken_for_a_stalled_redis(caplog: pytest.LogCaptureFixture) -> None:
    """The backend's thread blocked past the stall limit: the replies waiting for it are not a silence."""
    if reason := redis_reason():
        pytest.skip(reason)
    opts = broadcast_settings("redis")

    async def main() -> None:
        sub, first = await joined("starved")
        backend = get_backend()
        blocked = threading.Event()
        backend._started_loop().call_soon_threadsafe(lambda: (blocked.set(), time.sleep(STALL + 1)))
        await asyncio.to_thread(blocked.wait, 10)
        sent = publisher.publish_sync("starved", "1", None)  # while the process cannot read
        assert (await first).id == sent
        joined_after, first_after = await joined("starved-2")  # joins work: nothing was taken for an outage
        later = publisher.publish_sync("starved-2", "2", None)
        assert (await first_after).id == later
        await sub.aclose()
        await joined_after.aclose()

    with direct_backend(opts) as publisher, override_settings(DUALSTREAM=opts), caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert not [r.getMessage() for r in caplog.records if r.name == "dualstream.broadcast"]


def test_latency_on_the_wire_keeps_every_event_in_order(proxy: Proxy) -> None:
    opts = broadcast_settings("redis", URL=via(proxy))

    async def main() -> None:
        sub, first = await joined("slow")
        proxy.delay = 0.02
        ids: list[str] = []
        for n in range(30):  # two publishers: this process through the slow link, another straight to Redis
            ids.append(await apublish("slow", {"n": n}) if n % 2 else publisher.publish_sync("slow", "0", None))
        got = [await first, *await take(sub, len(ids) - 1, timeout=30)]
        assert [e.id for e in got] == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        await sub.aclose()

    with direct_backend(opts) as publisher, override_settings(DUALSTREAM=opts):
        try:
            asyncio.run(main())
        finally:
            proxy.delay = 0.0


# Entries this library did not write -----------------------------------------------------------------

MALFORMED: list[dict[str, Any]] = [
    {"x": "no data field"},
    {"d": "{not json"},
    {"d": "1", "e": "two\nlines"},
    {"d": "1", "e": "done"},  # would pass for the library's own end of stream
    {"d": b"\xff\xfe"},  # not UTF-8
]


def test_malformed_entries_are_skipped_with_one_warning_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if reason := redis_reason():
        pytest.skip(reason)
    opts = broadcast_settings("redis")
    direct = redis.Redis.from_url(REDIS_URL)
    key = opts["BROADCAST"]["PREFIX"] + "mixed"

    async def main() -> None:
        sub, first = await joined("mixed")
        other, other_first = await joined("other")
        a = await apublish("mixed", {"n": "a"})
        assert (await first).id == a
        bad = [direct.xadd(key, fields).decode() for fields in MALFORMED]
        b = await apublish("mixed", {"n": "b"})
        c = await apublish("mixed", {"n": "c"})
        live = await take_until(sub, c)
        assert [(e.event, e.id) for e in live] == [("reset", None), (None, b), (None, c)]
        # The reader lives on, for every topic.
        elsewhere = await apublish("other", {"n": 1})
        assert (await other_first).id == elsewhere
        # A replay across them says the same; the history leaves them out.
        async with subscribe("mixed", last_event_id=a) as replay:
            assert [(e.event, e.id) for e in await take(replay, 3)] == [("reset", None), (None, b), (None, c)]
        assert [e.id for e in await history("mixed")] == [a, b, c]
        await sub.aclose()
        await other.aclose()
        warnings = [r for r in caplog.records if r.name == "dualstream.broadcast" and r.levelno == logging.WARNING]
        for entry_id in bad:  # one each, naming the topic and the id, however often it was read
            assert sum(entry_id in r.getMessage() and "'mixed'" in r.getMessage() for r in warnings) == 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    with override_settings(DUALSTREAM=opts), caplog.at_level(logging.WARNING):
        asyncio.run(main())


# Mass reconnect and many topics -----------------------------------------------------------------------


def count_calls(backend: Any, method: str) -> list[int]:
    """Count the backend's calls of one Redis command (its own client, in its own thread)."""
    backend._started_loop()
    client = backend._client
    original = getattr(client, method)
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(client, method, counted)
    return calls


def test_subscribers_resuming_from_the_same_id_share_one_replay_read() -> None:
    if reason := redis_reason():
        pytest.skip(reason)
    subscribers = 300

    async def main() -> None:
        ids = [await apublish("crowd", {"n": n}) for n in range(20)]
        xranges = count_calls(get_backend(), "xrange")
        subs = [subscribe("crowd", last_event_id=ids[4]) for _ in range(subscribers)]
        replays = await asyncio.gather(*(take(sub, 15, timeout=30) for sub in subs))
        assert all([e.id for e in replay] == ids[5:] for replay in replays)
        assert xranges[0] <= subscribers // 10, f"{xranges[0]} XRANGE for {subscribers} subscribers at one point"
        for sub in subs:
            await sub.aclose()

    with override_settings(DUALSTREAM=broadcast_settings("redis", MAX_CONNECTIONS=2)):
        asyncio.run(main())


def test_joining_many_topics_costs_redis_work_linear_in_their_number(proxy: Proxy) -> None:
    topics = 300

    async def main() -> None:
        subs = []
        before = proxy.sent
        for n in range(topics):  # one after the other, as users arrive
            sub, first = await joined(f"user-{n}")
            subs.append((sub, first))
        per_topic = (proxy.sent - before) / topics
        assert per_topic < 1_000, f"{per_topic:.0f} bytes sent to Redis per topic joined"
        sent = await apublish("user-123", {"n": 1})
        assert (await subs[123][1]).id == sent
        for sub, first in subs:
            first.cancel()
            await sub.aclose()

    with override_settings(DUALSTREAM=broadcast_settings("redis", URL=via(proxy))):
        asyncio.run(main())


# Cancellation on every Python ---------------------------------------------------------------------------


def test_a_cancellation_that_arrives_as_the_join_completes_is_not_lost() -> None:
    """Python 3.11's ``asyncio.wait_for`` returns the result instead of raising when the cancellation
    lands after the awaited future is done but before the task resumes: the subscriber would run on."""
    if reason := redis_reason():
        pytest.skip(reason)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        subs = [subscribe("edge") for _ in range(10)]
        tasks = [asyncio.ensure_future(sub.__anext__()) for sub in subs]
        fanout = get_fanout()
        while "edge" not in fanout.topics():
            await asyncio.sleep(0)
        ready = fanout._topics["edge"].ready  # the join every subscriber of the topic waits for
        assert not ready.done()
        # Scheduled right behind the callback that completes each subscriber's wait: inside the window.
        ready.add_done_callback(lambda _: loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks]))
        done, pending = await asyncio.wait(tasks, timeout=10)
        assert not pending, f"{len(pending)} of 10 subscribers kept running after being cancelled"
        assert all(task.cancelled() for task in done)

    with override_settings(DUALSTREAM=broadcast_settings("redis")):
        asyncio.run(main())
