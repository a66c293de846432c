"""Redis Streams: one stream per topic, one blocking ``XREAD`` per process for all its topics.

* ``publish``: ``XADD <prefix><topic> MAXLEN ~ <MAXLEN> * d <json> [e <event>]``; the entry id is the SSE id.
* Live: one reader task, in this backend's own thread and event loop, ``XREAD BLOCK``s on every
  topic this process has subscribers for, from the last id it delivered, and hands each batch to
  the in-process fan-out. Redis connections grow with processes, never with subscribers: the reader,
  plus at most ``MAX_CONNECTIONS`` for commands (publish, replay), plus a sync pool in processes
  that call ``publish()`` from sync code.
* A topic joins the reader at the id of its newest entry (``XREVRANGE + - COUNT 1``), read before
  any of its subscribers replays, so replay and live overlap instead of leaving a gap; ``CLIENT
  UNBLOCK`` wakes the reader to add it at once.
* Redis away: commands raise ``BroadcastUnavailable``; the reader reconnects with backoff and
  resumes from its ids, so open streams miss nothing; past ``OUTAGE_TIMEOUT`` they end with an error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
import redis.asyncio

from ..errors import BroadcastUnavailable
from .base import Backend, Item, make_item

T = TypeVar("T")
logger = logging.getLogger("dualstream.broadcast")

#: Milliseconds one XREAD blocks: also how soon a topic joins when CLIENT UNBLOCK is not allowed.
BLOCK_MS = 2_000
#: Entries one XREAD returns per topic at most.
READ_COUNT = 1_000
_MAX_BACKOFF = 5.0


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Item:
    event = fields.get(b"e")
    return make_item(entry_id.decode(), fields[b"d"].decode(), event.decode() if event is not None else None)


class RedisBackend(Backend):
    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.url = str(self.options["URL"])
        self.prefix = str(self.options["PREFIX"])
        self.maxlen = int(self.options["MAXLEN"])
        self.timeout = float(self.options["TIMEOUT"])
        self._lock = threading.Lock()
        self._sync_client: redis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Owned by this backend's loop:
        self._client: redis.asyncio.Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._positions: dict[str, str] = {}  # topic -> last id delivered
        self._wanted: dict[str, object] = {}  # topic -> token of its latest follow
        self._changed: asyncio.Event | None = None
        self._reader_id: int | None = None
        self._unblocking: set[asyncio.Task[None]] = set()
        self._reading = 0  # the number of the XREAD in flight, 0 when none is
        self._stopping = False

    def key(self, topic: str) -> str:
        return self.prefix + topic

    # Publishing -------------------------------------------------------------------------------

    def publish_sync(self, topic: str, data: str, event: str | None) -> str:
        with self._lock:
            if self._sync_client is None:
                self._sync_client = redis.Redis.from_url(
                    self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                    max_connections=int(self.options["MAX_CONNECTIONS"]),
                )  # fmt: skip
            client = self._sync_client
        try:
            entry_id: Any = client.xadd(self.key(topic), _fields(data, event), maxlen=self.maxlen, approximate=True)
        except redis.RedisError as exc:
            raise self._unavailable(f"cannot publish to {topic!r}", exc) from exc
        return str(entry_id.decode())

    async def publish(self, topic: str, data: str, event: str | None) -> str:
        async def xadd(client: redis.asyncio.Redis) -> str:
            entry_id: Any = await client.xadd(
                self.key(topic), _fields(data, event), maxlen=self.maxlen, approximate=True
            )
            return str(entry_id.decode())

        return await self._command(xadd, f"cannot publish to {topic!r}")

    # Reading ----------------------------------------------------------------------------------

    async def history(self, topic: str, limit: int) -> list[Item]:
        async def xrevrange(client: redis.asyncio.Redis) -> list[Item]:
            entries: Any = await client.xrevrange(self.key(topic), count=limit)
            return [_entry(*entry) for entry in reversed(entries)]

        return await self._command(xrevrange, f"cannot read {topic!r}")

    async def read_after(self, topic: str, after: str, limit: int) -> list[Item] | None:
        if self.parse_id(after) is None:
            return None

        async def xrange(client: redis.asyncio.Redis) -> list[Item] | None:
            # From `after` itself: it must still be there, or what followed it may have been trimmed.
            entries: Any = await client.xrange(self.key(topic), min=after, count=limit + 1)
            if not entries or entries[0][0].decode() != after:
                return None
            return [_entry(*entry) for entry in entries[1:]]

        return await self._command(xrange, f"cannot replay {topic!r}")

    def follow(self, topic: str) -> concurrent.futures.Future[None]:
        return asyncio.run_coroutine_threadsafe(self._follow(topic), self._started_loop())

    def unfollow(self, topic: str) -> None:
        loop = self._started_loop()
        loop.call_soon_threadsafe(self._forget, topic)

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            sync_client, self._sync_client = self._sync_client, None
        if sync_client is not None:
            sync_client.close()
        if loop is not None and thread is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    # In this backend's loop -------------------------------------------------------------------

    async def _follow(self, topic: str) -> None:
        token = self._wanted[topic] = object()
        assert self._client is not None
        try:
            newest: Any = await self._client.xrevrange(self.key(topic), count=1)
        except redis.RedisError as exc:
            raise self._unavailable(f"cannot follow {topic!r}", exc) from exc
        if self._wanted.get(topic) is token:
            self._positions[topic] = newest[0][0].decode() if newest else "0-0"
            self._wake_reader()

    def _forget(self, topic: str) -> None:
        self._wanted.pop(topic, None)
        self._positions.pop(topic, None)

    def _wake_reader(self) -> None:
        assert self._changed is not None
        self._changed.set()
        if self._reading:
            # Held until done: the loop keeps only a weak reference to a task.
            task = asyncio.get_running_loop().create_task(self._unblock(self._reading))
            self._unblocking.add(task)
            task.add_done_callback(self._unblocking.discard)

    async def _unblock(self, xread: int) -> None:
        """Make the reader's XREAD return now, so that it reads a topic just added."""
        assert self._client is not None
        if self._reader_id is None:
            return  # not connected yet: the topic joins at the reader's first XREAD
        try:
            for _ in range(20):
                # The XREAD may not have reached Redis yet (UNBLOCK answers 0): try again shortly.
                if self._reading != xread or await self._client.client_unblock(self._reader_id):
                    return
                await asyncio.sleep(0.005)
        except redis.RedisError as exc:  # e.g. an ACL without CLIENT: the topic joins at the next XREAD
            logger.debug("CLIENT UNBLOCK failed: %s", exc)

    async def _read_forever(self) -> None:
        loop = asyncio.get_running_loop()
        backoff, down_since, failed = 0.1, None, False
        xreads = 0
        while not self._stopping:
            conn = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=BLOCK_MS / 1000 + self.timeout, socket_connect_timeout=self.timeout,
                single_connection_client=True,
            )  # fmt: skip
            try:
                self._reader_id = await conn.client_id()
                if down_since is not None:
                    logger.warning("Redis is back at %s: broadcast resumes", _safe_url(self.url))
                backoff, down_since, failed = 0.1, None, False
                while not self._stopping:
                    assert self._changed is not None
                    self._changed.clear()
                    if not self._positions:
                        await self._changed.wait()
                        continue
                    sent = dict(self._positions)
                    xreads += 1
                    self._reading = xreads
                    try:
                        reply = await conn.xread({self.key(t): p for t, p in sent.items()}, READ_COUNT, BLOCK_MS)
                    finally:
                        self._reading = 0
                    self._dispatch(sent, reply)
            except (redis.RedisError, OSError) as exc:
                now = loop.time()
                if down_since is None:
                    down_since = now
                    logger.warning("Redis unreachable at %s (%s): reconnecting", _safe_url(self.url), exc)
                elif not failed and now - down_since > float(self.options["OUTAGE_TIMEOUT"]):
                    failed = True
                    self.fanout.fail_all(self._unavailable("the live feed was lost", exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            finally:
                await conn.aclose()

    def _dispatch(self, sent: dict[str, str], reply: Any) -> None:
        start = len(self.prefix)
        for key, entries in reply or ():
            topic = key.decode()[start:]
            if not entries or self._positions.get(topic) != sent.get(topic):
                continue  # forgotten, or followed anew, while this XREAD was in flight
            items = [_entry(*entry) for entry in entries]
            self._positions[topic] = str(items[-1][1].id)
            self.fanout.deliver(topic, items)

    async def _shutdown(self) -> None:
        # The flag as well as the cancellation: a command cancelled mid-reply may swallow the CancelledError.
        self._stopping = True
        if self._reader is not None:
            assert self._changed is not None
            self._changed.set()
            self._reader.cancel()
            await asyncio.wait([self._reader])
        if self._client is not None:
            await self._client.aclose()

    # Plumbing ---------------------------------------------------------------------------------

    def _started_loop(self) -> asyncio.AbstractEventLoop:
        """This backend's event loop, started in its own thread on first use."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()
                self._thread = threading.Thread(
                    target=self._run_loop, args=(loop, started), name="dualstream-broadcast", daemon=True
                )
                self._thread.start()
                started.wait()
                self._loop = loop
            return self._loop

    def _run_loop(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self.url, max_connections=int(self.options["MAX_CONNECTIONS"]), timeout=self.timeout,
            socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
        )  # fmt: skip
        self._client = redis.asyncio.Redis.from_pool(pool)  # closing the client closes the pool
        self._changed = asyncio.Event()
        self._reader = loop.create_task(self._read_forever())
        started.set()
        loop.run_forever()

    async def _command(self, command: Callable[[redis.asyncio.Redis], Awaitable[T]], what: str) -> T:
        """Run ``command(client)`` in this backend's loop, from any loop; Redis errors become BroadcastUnavailable."""
        loop = self._started_loop()

        async def run() -> T:
            assert self._client is not None
            result: T = await command(self._client)
            return result

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            raise self._unavailable(what, exc) from exc

    def _unavailable(self, what: str, exc: BaseException) -> BroadcastUnavailable:
        return BroadcastUnavailable(
            f"{what}: Redis at {_safe_url(self.url)} is unavailable ({exc or type(exc).__name__})"
        )


def _fields(data: str, event: str | None) -> Any:
    return {"d": data} if event is None else {"d": data, "e": event}


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    return (
        parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
        if parts.hostname
        else url
    )
