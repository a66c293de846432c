"""Redis Streams for storage and replay, Redis Pub/Sub as the doorbell that says which topic has news.

* **Publish**: one Lua script appends ``XADD <key> MAXLEN ~ <MAXLEN> * p <previous id> d <json> [e <event>]``
  and then ``PUBLISH <key> <id>``, atomically. Every entry names the entry before it (``p``), so whoever
  reads a run of entries can prove it missed none: trimmed while the reader was away, deleted,
  recreated, or lost with a Redis that restarted without persistence all break the chain.
* **Live**: each process keeps one Pub/Sub connection, ``SUBSCRIBE``d to the key of every topic it has
  subscribers for. A message names a topic; the reader then reads that topic from the last id it
  delivered (``XREAD``, batched over every topic that rang meanwhile) and hands the entries to the
  fan-out. Joining or leaving a topic is one ``SUBSCRIBE``/``UNSUBSCRIBE`` and one ``XREVRANGE``:
  the cost does not grow with the number of topics already followed.
* **Continuity**: where the chain breaks, or an entry cannot be decoded (written by another tool),
  the subscribers get a ``reset`` at that point, before any later event (``link()``).
* **Outage**: a ``PING`` every ``PING_INTERVAL`` seconds; a connection silent for ``STALL`` seconds is
  dropped (stalls are found, not only refusals). Silence is counted by a watchdog that skips the time
  this process itself was starved of CPU: a busy worker is not an unreachable Redis. On reconnecting, the reader subscribes again and reads
  every topic from its last id: a message missed meanwhile loses nothing. ``OUTAGE_TIMEOUT`` seconds
  after Redis last answered, open streams end with an error.
* **Replays** of the same (topic, last id) in flight at once share one ``XRANGE``; commands wait for a
  pooled connection rather than fail while the pool is busy (each is bounded by ``TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Hashable, Iterable, Mapping
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
import redis.asyncio

from ..errors import BroadcastUnavailable
from ..topics import check_event_name
from .base import RESET, Backend, Item, make_item, parse_id, reset_item

T = TypeVar("T")
logger = logging.getLogger("dualstream.broadcast")

#: Entries one XREAD or XRANGE returns per topic at most.
READ_COUNT = 1_000
#: Topics (or keys) per XREAD, SUBSCRIBE or pipeline: bounds the size of one command.
BATCH = 500
#: Seconds between PINGs on the Pub/Sub connection, and between checks of the outage clock.
PING_INTERVAL = 0.5
#: Seconds without any reply after which the Pub/Sub connection is taken for stalled and dropped.
STALL = 3.0
#: The most one watchdog tick adds to the silence: a loop that ran late heard nothing either.
_MAX_TICK = 2 * PING_INTERVAL
_MAX_BACKOFF = 2.0

# KEYS[1]: the topic's key; ARGV: MAXLEN, the JSON text, and the event name if there is one.
_PUBLISH = """
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local previous = newest[1] and newest[1][1] or '0-0'
local id
if ARGV[3] then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'p', previous, 'd', ARGV[2], 'e', ARGV[3])
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'p', previous, 'd', ARGV[2])
end
redis.call('PUBLISH', KEYS[1], id)
return id
"""

Entry = tuple[bytes, dict[bytes, bytes]]


class _Warned:
    """Entries already reported as undecodable: one WARNING each per process, however often they are read."""

    def __init__(self, size: int = 1024) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._size = size

    def first_time(self, topic: str, entry_id: str) -> bool:
        if (topic, entry_id) in self._seen:
            return False
        self._seen[topic, entry_id] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


_warned = _Warned()


def decode(topic: str, entry_id: str, fields: dict[bytes, bytes]) -> Item | None:
    """An entry as subscribers get it; None (after one WARNING) if it is not an event this library could write."""
    try:
        name = fields.get(b"e")
        event = check_event_name(name.decode()) if name is not None else None
        return make_item(entry_id, fields[b"d"].decode(), event)
    except (KeyError, ValueError, TypeError) as exc:  # no data, not UTF-8, not JSON, a bad or reserved name
        if _warned.first_time(topic, entry_id):
            logger.warning("Skipped entry %s of topic %r, which is not a dualstream event: %r", entry_id, topic, exc)
        return None


def link(topic: str, previous: str, entries: Iterable[Entry]) -> tuple[list[Item], str]:
    """Entries read after ``previous`` as items, a ``reset`` wherever nothing proves that none is missing.

    An entry continues the run when its ``p`` names the entry before it; an entry that cannot be
    decoded is replaced by a ``reset``, since its subscribers miss an event. Returns the items and
    the id of the last entry read.
    """
    items: list[Item] = []
    for raw_id, fields in entries:
        entry_id = raw_id.decode()
        item = decode(topic, entry_id, fields)
        if item is None or fields.get(b"p", b"").decode() != previous:
            key = parse_id(entry_id)
            assert key is not None, entry_id
            if not items or items[-1][1].event != RESET:
                items.append(reset_item(topic, key))
        if item is not None:
            items.append(item)
        previous = entry_id
    return items, previous


class _Followed:
    """A topic this process reads: from ``position``, the last id handed to the fan-out (None: joining)."""

    __slots__ = ("position", "rang", "waiters")

    def __init__(self) -> None:
        self.position: str | None = None
        self.rang = False  # a message came while joining: read once the position is known
        self.waiters: list[asyncio.Future[None]] = []


class RedisBackend(Backend):
    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.url = str(self.options["URL"])
        self.prefix = str(self.options["PREFIX"])
        self.maxlen = int(self.options["MAXLEN"])
        self.timeout = float(self.options["TIMEOUT"])
        self.outage_timeout = float(self.options["OUTAGE_TIMEOUT"])
        self._lock = threading.Lock()
        self._sync_client: redis.Redis | None = None
        self._sync_publish: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Owned by this backend's loop:
        self._client: redis.asyncio.Redis | None = None
        self._publish_script: Any = None
        self._followed: dict[str, _Followed] = {}
        self._confirming: dict[str, int] = {}  # topic -> SUBSCRIBEs sent on this connection and not yet confirmed
        self._outbox: list[tuple[str, str]] = []  # (SUBSCRIBE | UNSUBSCRIBE | PING, key) for the Pub/Sub connection
        self._send: asyncio.Event | None = None
        self._down = False  # the last attempt to reach Redis failed: joins fail at once instead of waiting
        self._silence = 0.0  # seconds this process has been running without a reply from Redis
        self._conn: Any = None  # the Pub/Sub connection while it is up (None: connecting, or Redis away)
        self._failed = False
        self._dirty: set[str] = set()  # topics that rang and have not been read since
        self._joining: set[str] = set()  # topics whose subscription is confirmed and whose position is unknown
        self._tasks: dict[str, asyncio.Task[None]] = {}  # the reader, the watchdog, the drain and join steps
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}
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
                self._sync_publish = self._sync_client.register_script(_PUBLISH)
            script = self._sync_publish
        try:
            entry_id: Any = script(keys=[self.key(topic)], args=_publish_args(self.maxlen, data, event))
        except redis.RedisError as exc:
            raise self._unavailable(f"cannot publish to {topic!r}", exc) from exc
        return str(entry_id.decode())

    async def publish(self, topic: str, data: str, event: str | None) -> str:
        async def run() -> str:
            entry_id: Any = await self._publish_script(
                keys=[self.key(topic)], args=_publish_args(self.maxlen, data, event)
            )
            return str(entry_id.decode())

        return await self._command(run, f"cannot publish to {topic!r}")

    # Reading ----------------------------------------------------------------------------------

    async def history(self, topic: str, limit: int) -> list[Item]:
        async def run() -> list[Item]:
            assert self._client is not None
            entries: Any = await self._client.xrevrange(self.key(topic), count=limit)
            items = (decode(topic, entry_id.decode(), fields) for entry_id, fields in reversed(entries))
            return [item for item in items if item is not None]

        return await self._command(run, f"cannot read {topic!r}")

    async def read_after(self, topic: str, after: str, limit: int) -> tuple[list[Item], str | None] | None:
        if self.parse_id(after) is None:
            return None

        async def run() -> tuple[list[Item], str | None] | None:
            assert self._client is not None
            # From `after` itself: it must still be there, or what followed it may have been trimmed.
            entries: Any = await self._client.xrange(self.key(topic), min=after, count=limit + 1)
            if not entries or entries[0][0].decode() != after:
                return None
            items, last = link(topic, after, entries[1:])
            return items, (last if len(entries) > limit else None)

        # Every subscriber resuming from the same id at once (a worker restarted) waits for one read.
        return await self._command(run, f"cannot replay {topic!r}", share=("replay", topic, after, limit))

    def follow(self, topic: str) -> concurrent.futures.Future[None]:
        return asyncio.run_coroutine_threadsafe(self._follow(topic), self._started_loop())

    def unfollow(self, topic: str) -> None:
        self._started_loop().call_soon_threadsafe(self._unfollow, topic)

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

    # Following topics, in this backend's loop ----------------------------------------------------

    async def _follow(self, topic: str) -> None:
        if self._down:
            raise self._unavailable(f"cannot follow {topic!r}", ConnectionError("reconnecting"))
        state = self._followed.get(topic)
        if state is None:
            state = self._followed[topic] = _Followed()
            if self._conn is not None:
                self._subscribe(topic)
        if state.position is None:
            waiter = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
            await waiter

    def _unfollow(self, topic: str) -> None:
        state = self._followed.pop(topic, None)
        if state is None:
            return
        for waiter in state.waiters:
            waiter.cancel()
        self._dirty.discard(topic)
        self._joining.discard(topic)
        if self._conn is not None:
            self._queue("UNSUBSCRIBE", self.key(topic))

    def _fail_joins(self, error: BroadcastUnavailable) -> None:
        for state in self._followed.values():
            for waiter in state.waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            state.waiters.clear()

    def _subscribe(self, topic: str) -> None:
        self._confirming[topic] = self._confirming.get(topic, 0) + 1
        self._queue("SUBSCRIBE", self.key(topic))

    def _queue(self, command: str, key: str) -> None:
        self._outbox.append((command, key))
        assert self._send is not None
        self._send.set()

    def _on_reply(self, reply: Any) -> None:
        """One message from the Pub/Sub connection: a topic's news, a confirmed SUBSCRIBE, a PONG."""
        kind = reply[0]
        if kind not in (b"message", b"subscribe"):
            return  # a PONG, a confirmed UNSUBSCRIBE: Redis answered, which is all they say
        topic = reply[1].decode()[len(self.prefix) :]
        if kind == b"message":
            state = self._followed.get(topic)
            if state is None:
                return
            if state.position is None:
                state.rang = True
            else:
                self._mark_dirty(topic)
        else:
            left = self._confirming.pop(topic, 1) - 1
            if left:
                self._confirming[topic] = left
                return  # a later SUBSCRIBE of the same topic is the one that counts
            state = self._followed.get(topic)
            if state is None:
                return
            if state.position is None:
                self._joining.add(topic)
                self._start("join", self._join_positions)
            else:  # subscribed again after a reconnection: read what was published meanwhile
                self._mark_dirty(topic)

    def _mark_dirty(self, topic: str) -> None:
        self._dirty.add(topic)
        self._start("drain", self._drain)

    def _start(self, name: str, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``step`` unless it runs already: it loops until its set of topics is empty."""
        if name not in self._tasks:
            self._tasks[name] = asyncio.get_running_loop().create_task(self._run(name, step))

    async def _run(self, name: str, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await step()
        except Exception:  # a bug here must not stop delivery for good: the next message starts the step again
            logger.exception("Broadcast %s failed", name)
        finally:
            # At once, not in a done callback: a topic marked between the step's last check and such a
            # callback would find the step still registered, and wait for the next message.
            del self._tasks[name]

    async def _join_positions(self) -> None:
        """Each joining topic starts from its newest entry, read once its subscription is confirmed."""
        assert self._client is not None
        while self._joining and not self._stopping:
            topics = list(islice(self._joining, BATCH))
            self._joining.difference_update(topics)
            pipe = self._client.pipeline(transaction=False)
            for topic in topics:
                pipe.xrevrange(self.key(topic), count=1)
            try:
                replies = await pipe.execute()
            except (redis.RedisError, OSError) as exc:
                self._joining.update(t for t in topics if t in self._followed)
                await self._after_failure("join", exc)
                continue
            for topic, newest in zip(topics, replies):
                state = self._followed.get(topic)
                if state is None or state.position is not None:
                    continue
                state.position = newest[0][0].decode() if newest else "0-0"
                for waiter in state.waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                state.waiters.clear()
                if state.rang:
                    self._mark_dirty(topic)

    async def _drain(self) -> None:
        """Read every topic that rang, from its position, and hand what follows to the fan-out."""
        assert self._client is not None
        while self._dirty and not self._stopping:
            topics = list(islice(self._dirty, BATCH))
            self._dirty.difference_update(topics)
            states = {t: s for t in topics if (s := self._followed.get(t)) is not None and s.position is not None}
            if not states:
                continue
            streams = {self.key(t): s.position for t, s in states.items()}
            try:
                reply: Any = await self._client.xread(streams, count=READ_COUNT)  # type: ignore[arg-type]
            except (redis.RedisError, OSError) as exc:
                self._dirty.update(states)
                await self._after_failure("read", exc)
                continue
            start = len(self.prefix)
            for raw_key, entries in reply or ():
                topic = raw_key.decode()[start:]
                state = states[topic]
                if self._followed.get(topic) is not state or not entries:
                    continue  # left, or left and joined again, while this XREAD was in flight
                assert state.position is not None
                items, state.position = link(topic, state.position, entries)
                if items:
                    self.deliver(topic, items)
                if len(entries) == READ_COUNT:
                    self._dirty.add(topic)  # more to read

    async def _after_failure(self, what: str, exc: BaseException) -> None:
        # Redis away: the reader notices and reconnects; this step tries again, later, from the same positions.
        logger.debug("Broadcast %s failed, retrying: %s", what, exc)
        await asyncio.sleep(PING_INTERVAL)

    # The Pub/Sub connection -----------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.1
        # RESP2: Pub/Sub messages are then plain replies in order, read here one by one. No read timeout:
        # the watchdog tells a stalled Redis from a starved process, and drops the connection itself.
        pool = redis.asyncio.ConnectionPool.from_url(
            self.url, socket_timeout=None, socket_connect_timeout=min(self.timeout, STALL), protocol=2
        )
        while not self._stopping:
            conn = pool.make_connection()  # type: ignore[no-untyped-call]
            writer: asyncio.Task[None] | None = None
            try:
                async with asyncio.timeout(self.timeout):  # the handshake's replies too: reads have no timeout
                    await conn.connect()
                self._conn = conn
                self._down = False
                self._confirming.clear()
                self._outbox.clear()
                for topic in self._followed:
                    self._subscribe(topic)
                writer = loop.create_task(self._write(conn))
                while not self._stopping:
                    reply = await conn.read_response()
                    self._contact()
                    backoff = 0.1
                    self._on_reply(reply)
            except (redis.RedisError, OSError, TimeoutError) as exc:
                if self._conn is not None or backoff == 0.1:
                    logger.warning("Redis unreachable at %s (%s): reconnecting", _safe_url(self.url), exc)
                self._down = True
                self._fail_joins(self._unavailable("cannot follow a topic", exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            except Exception:  # a bug here must not end live delivery for the whole process
                logger.exception("The broadcast reader failed: reconnecting")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            finally:
                self._conn = None
                if writer is not None:
                    # Woken, not cancelled: redis-py writes under wait_for(), which can swallow a cancellation
                    # on Python 3.11; the writer sees that its connection is no longer the current one.
                    assert self._send is not None
                    self._send.set()
                    await asyncio.wait([writer])
                await conn.disconnect()
        await pool.aclose()

    async def _write(self, conn: Any) -> None:
        """Send what ``_queue()`` asked for, in order, SUBSCRIBEs and UNSUBSCRIBEs grouped into few commands."""
        assert self._send is not None
        try:
            while True:
                await self._send.wait()
                self._send.clear()
                if self._conn is not conn:
                    return
                outbox, self._outbox = self._outbox, []
                while outbox:
                    command = outbox[0][0]
                    run = [key for _, key in _leading(outbox, command)]
                    del outbox[: len(run)]
                    for chunk in _chunks(run, BATCH):
                        # check_health=False: a health check would read a reply, and only the reader reads.
                        await conn.send_command(command, *(k for k in chunk if k), check_health=False)
        except (redis.RedisError, OSError):
            return  # the connection broke: the reader's read fails too, and it reconnects

    def _contact(self) -> None:
        """Redis answered: the outage clock restarts."""
        self._silence = 0.0
        if self._failed:
            self._failed = False
            logger.warning("Redis is back at %s: broadcast resumes", _safe_url(self.url))

    async def _watch(self) -> None:
        """PING the Pub/Sub connection; drop it once silent for STALL, end every open stream at OUTAGE_TIMEOUT."""
        loop = asyncio.get_running_loop()
        last_tick = loop.time()
        while not self._stopping:
            await asyncio.sleep(PING_INTERVAL)
            now = loop.time()
            self._silence += min(now - last_tick, _MAX_TICK)
            last_tick = now
            conn = self._conn
            if conn is not None and self._silence > STALL:
                logger.warning("Redis at %s has not answered for %.1f s: reconnecting", _safe_url(self.url), STALL)
                await conn.disconnect(nowait=True)  # the reader's read fails, and it reconnects
            elif conn is not None:
                self._queue("PING", "")
            if not self._failed and self._silence > self.outage_timeout and self._followed:
                self._failed = True
                lost = BroadcastUnavailable(
                    f"the live feed was lost: Redis at {_safe_url(self.url)} has not answered for {self._silence:.1f} s"
                )
                for topic in self._followed:
                    self.deliver(topic, lost)

    async def _shutdown(self) -> None:
        # The flag as well as the cancellation: a command cancelled mid-reply may swallow the CancelledError.
        self._stopping = True
        # Every task of this backend's loop, not only the reader's: a command whose caller gave up, or a
        # shared replay that outlived its waiters, would otherwise hold a connection past the loop's close.
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
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
        # timeout=None: a command waits for a pooled connection; the caller's TIMEOUT bounds the whole command.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self.url, max_connections=int(self.options["MAX_CONNECTIONS"]), timeout=None,
            socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
        )  # fmt: skip
        self._client = redis.asyncio.Redis.from_pool(pool)  # closing the client closes the pool
        self._publish_script = self._client.register_script(_PUBLISH)
        self._send = asyncio.Event()
        self._tasks["listen"] = loop.create_task(self._listen_forever())
        self._tasks["watch"] = loop.create_task(self._watch())
        started.set()
        loop.run_forever()

    async def _command(self, run: Callable[[], Coroutine[Any, Any, T]], what: str, share: Hashable | None = None) -> T:
        """Run ``run()`` in this backend's loop, from any loop, within TIMEOUT; Redis errors become BroadcastUnavailable.

        With ``share``, callers asking for the same key while one run is in flight wait for that run.
        """
        loop = self._started_loop()
        future = asyncio.run_coroutine_threadsafe(self._shared(run, share) if share else run(), loop)
        try:
            # asyncio.timeout(), not wait_for(): on Python 3.11, wait_for can swallow a cancellation.
            async with asyncio.timeout(self.timeout):
                return await asyncio.wrap_future(future)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            raise self._unavailable(what, exc) from exc

    async def _shared(self, run: Callable[[], Coroutine[Any, Any, T]], key: Hashable) -> T:
        task = self._inflight.get(key)
        if task is None:
            task = self._inflight[key] = asyncio.ensure_future(run())
            task.add_done_callback(lambda done: _forget(self._inflight, key, done))
        # Shielded: one caller giving up (its client left) must not cancel the read the others wait for.
        result: T = await asyncio.shield(task)
        return result

    def _unavailable(self, what: str, exc: BaseException) -> BroadcastUnavailable:
        return BroadcastUnavailable(
            f"{what}: Redis at {_safe_url(self.url)} is unavailable ({exc or type(exc).__name__})"
        )


def _forget(inflight: dict[Hashable, asyncio.Task[Any]], key: Hashable, task: asyncio.Task[Any]) -> None:
    inflight.pop(key, None)
    if not task.cancelled():
        task.exception()  # retrieved here: every waiter may have left before it ended


def _publish_args(maxlen: int, data: str, event: str | None) -> list[Any]:
    return [maxlen, data] if event is None else [maxlen, data, event]


def _leading(outbox: list[tuple[str, str]], command: str) -> Iterable[tuple[str, str]]:
    for item in outbox:
        if item[0] != command:
            return
        yield item


def _chunks(keys: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    return (
        parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
        if parts.hostname
        else url
    )
